"""Backbone specs: the facts about a body that the config, the UI and the trainer read, computed once.

:class:`BackboneSpec` holds a body's feature width, parameter count, layer groups,
normalisation, input size limits and weights name. :func:`get_backbone` computes it on the
meta device (no memory, no initialisation; input sizes are found by probing a few sides) and
keeps it in memory and in a JSON file under the cache folder, keyed by the torch and
torchvision versions and the source of every module here that shapes a spec, so a server
restart does not pay seconds per model again and any change to that code recomputes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

from ..paths import cache_dir
from . import build as _build
from . import groups as _groups
from . import registry as _registry
from .build import build_meta, strip_head
from .groups import LayerGroup, family_layout, make_groups, param_counts
from .registry import canonical_name, default_weights, family_of, is_curated, list_backbones

__all__ = ["BackboneSpec", "get_backbone", "input_size"]

log = logging.getLogger(__name__)

# Sizes tried when probing which input sides a body accepts (on the meta device).
_PROBE_SIZES = (32, 48, 64, 75, 96, 128, 160, 192, 224, 256, 299, 320, 384, 448, 512, 518)

# The modules whose code decides what a spec holds: a change to any of them recomputes.
_SPEC_SOURCES: tuple[str, ...] = (_registry.__file__, _build.__file__, _groups.__file__, __file__)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """Everything the rest of the app needs to know about a body, without building it."""

    name: str  # torchvision builder name, e.g. "resnet18"
    family: str  # "resnet", "vgg", "vit", ...
    feature_dim: int  # width of the body output (input of the replaced final Linear)
    num_params: int  # params of the body (model without that final Linear)
    groups: tuple[LayerGroup, ...]  # ordered body groups, stem first; the new head is NOT a group
    mean: tuple[float, float, float]  # from get_model_weights(name).DEFAULT.transforms()
    std: tuple[float, float, float]
    min_size: int  # smallest input side the body accepts
    fixed_size: int | None  # exact input side required (ViT, MaxViT, ...), else None
    head_path: str  # dotted path of the final layer replaced by Identity: "fc", "classifier.6", "heads.head"
    weights_enum: str  # e.g. "ResNet18_Weights.IMAGENET1K_V1" (the DEFAULT)
    curated: bool


def get_backbone(name: str) -> BackboneSpec:
    """The spec of a registered backbone (computed on the meta device once, then cached).

    Specs are also kept on disk (see :func:`_disk_specs`), because computing all of
    them costs seconds a model on a small CPU and a server restart would pay it again.
    """
    key = canonical_name(name)
    with _DISK_LOCK:
        stored = _disk_specs().get(key)
    if stored is not None:
        return stored
    spec = _compute_spec(key)
    _store_spec(spec)
    return spec


def input_size(spec: BackboneSpec, image_size: int) -> int:
    """Side the images must be resized to for this body: its fixed size, else at least ``min_size``."""
    return spec.fixed_size if spec.fixed_size is not None else max(int(image_size), spec.min_size)


# --------------------------------------------------------------------------- disk cache

_DISK_LOCK = threading.Lock()
_DISK: dict[str, dict[str, BackboneSpec]] = {}


def _source_digest(paths: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def _spec_cache_file() -> Path:
    """One JSON file per (torch, torchvision, spec-shaping source), so any change recomputes."""
    tag = f"{torch.__version__}-{torchvision.__version__}-{_source_digest(_SPEC_SOURCES)}".replace("+", "_")
    return cache_dir() / f"backbone_specs-{tag}.json"


def _disk_specs() -> dict[str, BackboneSpec]:
    path = _spec_cache_file()
    if str(path) in _DISK:
        return _DISK[str(path)]
    specs: dict[str, BackboneSpec] = {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = set(list_backbones())
        for name, d in raw.items():
            if name in known:
                d["groups"] = tuple(LayerGroup(g["name"], tuple(g["prefixes"]), int(g["num_params"])) for g in d["groups"])
                d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
                specs[name] = BackboneSpec(**d)
    except (OSError, ValueError, TypeError, KeyError):
        specs = {}
    _DISK[str(path)] = specs
    return specs


def _store_spec(spec: BackboneSpec) -> None:
    with _DISK_LOCK:
        specs = _disk_specs()
        specs[spec.name] = spec
        path = _spec_cache_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({n: dataclasses.asdict(s) for n, s in specs.items()}), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # a read-only folder only costs speed
            log.debug("could not store backbone specs in %s: %s", path, exc)


# --------------------------------------------------------------------------- computing a spec


def _probe(body: nn.Module, size: int) -> int | None:
    """Output width for a ``2 x 3 x size x size`` meta input, or None if the body rejects it."""
    try:
        with torch.no_grad():
            out = body(torch.empty(2, 3, size, size, device="meta"))
    except Exception:  # a probe: any refusal (assert, shape error) means "not this size"
        return None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
        return None
    return int(out.shape[1])


# Shape-preserving layers: on the meta device they run as slow Python decompositions
# (BatchNorm and Hardtanh alone were ~90% of a CNN probe) without telling us anything.
_SHAPE_PRESERVING = (
    nn.modules.batchnorm._BatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.SiLU,
    nn.GELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.modules.dropout._DropoutNd,
    torchvision.ops.StochasticDepth,
)


def _drop_shape_preserving(body: nn.Module) -> None:
    """Replace norms, activations and dropouts by Identity, in place, before probing.

    They preserve shapes, so a probe's answer is unchanged, only faster.
    """
    for module in list(body.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, _SHAPE_PRESERVING):
                setattr(module, child_name, nn.Identity())


def _size_limits(body: nn.Module, hint: int) -> tuple[int, int | None, int]:
    """(min_size, fixed_size, output width) found by probing a meta body with a few sides.

    ``hint`` is the weights' documented ``min_size``; it is tried too when it lies in
    16..32 (smaller hints such as 1 px are technically true but useless). A body that
    also accepts an odd, larger side is taken to accept any side >= min_size;
    otherwise (ViT, MaxViT) it only works at one resolution: ``fixed_size``.
    """
    candidates = set(_PROBE_SIZES)
    if 16 <= hint < 32:
        candidates.add(hint)
    own = getattr(body, "image_size", None)
    if isinstance(own, int):
        candidates.add(own)
    for size in sorted(candidates):
        width = _probe(body, size)
        if width is not None:
            break
    else:
        raise RuntimeError(f"{type(body).__name__} accepts none of the probed input sizes")
    if _probe(body, 2 * size + 5) is not None:
        return size, None, width
    return size, int(own) if isinstance(own, int) else size, width


@functools.lru_cache(maxsize=None)
def _compute_spec(name: str) -> BackboneSpec:
    start = time.perf_counter()
    family = family_of(name)
    body, head_path, feature_dim = strip_head(build_meta(name))
    body.eval()
    weights = default_weights(name)
    hint = int(weights.meta.get("min_size", (1, 1))[0])
    layer_groups = make_groups(body, family_layout(body, family))
    num_params = sum(param_counts(body).values())
    _drop_shape_preserving(body)  # from here on the meta body only answers shape questions
    min_size, fixed_size, width = _size_limits(body, hint)
    if width != feature_dim:
        raise RuntimeError(f"{name}: body outputs {width} features, expected {feature_dim}")
    transforms = weights.transforms()
    spec = BackboneSpec(
        name=name,
        family=family,
        feature_dim=feature_dim,
        num_params=num_params,
        groups=layer_groups,
        mean=tuple(float(v) for v in transforms.mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in transforms.std),  # type: ignore[arg-type]
        min_size=min_size,
        fixed_size=fixed_size,
        head_path=head_path,
        weights_enum=f"{type(weights).__name__}.{weights.name}",
        curated=is_curated(name),
    )
    log.debug("spec %s computed in %.3fs", name, time.perf_counter() - start)
    return spec
