"""Registry over torchvision's image classifiers, seen as headless feature extractors.

Why a registry of *bodies*: transfer learning always does the same three things to a
torchvision classifier -- cut off the final ``Linear``, load some weights into what is
left, and freeze a prefix of it. This module describes every classifier once
(:class:`BackboneSpec`: feature width, parameter count, fastai-style layer groups,
normalisation, input size limits, where its ImageNet weights live) so that the config
validator, the UI and the trainer all read the same facts.

Specs are computed lazily and cheaply: the model is built on the ``meta`` device (no
memory, no initialisation), so listing ~80 backbones or showing the freeze slider never
allocates a real network. Weights are always read with ``weights_only=True``.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import pickle
import socket
import time
import urllib.error
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Union
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = [
    "WeightsError",
    "LayerGroup",
    "BackboneSpec",
    "CURATED",
    "register_backbone",
    "list_backbones",
    "get_backbone",
    "build_body",
    "input_size",
    "group_index_of",
    "frozen_groups",
    "trainable_params",
    "imagenet_weights_info",
    "load_imagenet_state",
    "load_state_into_body",
    "load_weights_file",
]

logger = logging.getLogger(__name__)

Freeze = Union[int, str]

#: Backbones shown first in the UI: small or classic, each a different family.
CURATED: tuple[str, ...] = (
    "alexnet",
    "convnext_tiny",
    "densenet121",
    "efficientnet_b0",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "regnet_y_400mf",
    "resnet18",
    "resnet34",
    "resnet50",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "vgg11",
    "vgg16",
    "vit_b_16",
)

# torchvision module name -> family shown to users (and used to pick a group layout).
_FAMILY_BY_MODULE = {
    "alexnet": "alexnet",
    "convnext": "convnext",
    "densenet": "densenet",
    "efficientnet": "efficientnet",
    "googlenet": "googlenet",
    "inception": "inception",
    "maxvit": "maxvit",
    "mnasnet": "mnasnet",
    "mobilenetv2": "mobilenet",
    "mobilenetv3": "mobilenet",
    "regnet": "regnet",
    "resnet": "resnet",
    "shufflenetv2": "shufflenet",
    "squeezenet": "squeezenet",
    "swin_transformer": "swin",
    "vgg": "vgg",
    "vision_transformer": "vit",
}

# Sizes tried when probing which input sides a body accepts (on the meta device).
_PROBE_SIZES = (32, 48, 64, 75, 96, 128, 160, 192, 224, 256, 299, 320, 384, 448, 512, 518)
_NUM_CLASSES = 1000  # torchvision builds ImageNet heads by default; that is how the head is found
_TARGET_CHUNKS = 4  # trunk stages are merged into about this many groups (3..8 groups in all)


class WeightsError(ValueError):
    """Weights that cannot be obtained or do not fit; the message is one user-facing line."""


@dataclass(frozen=True)
class LayerGroup:
    """A contiguous slice of the body that is frozen or unfrozen as one unit."""

    name: str  # "stem", "layer1", "features.4-7", "classifier", ...
    prefixes: tuple[str, ...]  # parameter-name prefixes in the torchvision model namespace
    num_params: int


@dataclass(frozen=True)
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


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Entry:
    name: str
    curated: bool


_REGISTRY: dict[str, _Entry] = {}


def register_backbone(name: str, *, curated: bool = False) -> str:
    """Add a torchvision classifier to the registry; a second registration of a name fails.

    Refusing duplicates (as torchvision's ``register_model`` does) keeps one name meaning
    one architecture, which saved configs and runs rely on.
    """
    if name in _REGISTRY:
        raise ValueError(f"backbone {name!r} is already registered")
    _REGISTRY[name] = _Entry(name=name, curated=curated)
    return name


def _register_torchvision() -> None:
    for model_name in torchvision.models.list_models(module=torchvision.models):
        register_backbone(model_name, curated=model_name in CURATED)
    missing = [n for n in CURATED if n not in _REGISTRY]
    if missing:  # a torchvision upgrade renamed something: say so rather than fail at import
        logger.warning("curated backbones missing from torchvision: %s", ", ".join(missing))


_register_torchvision()


def list_backbones(curated_only: bool = False) -> list[str]:
    """Registered names, sorted. Builds nothing."""
    return sorted(n for n, e in _REGISTRY.items() if e.curated or not curated_only)


def _canonical(name: str) -> str:
    key = str(name).strip()
    if key in _REGISTRY:
        return key
    if key.lower() in _REGISTRY:
        return key.lower()
    close = difflib.get_close_matches(key.lower(), list(_REGISTRY), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (python -m transfer_core backbones lists them)"
    raise ValueError(f"unknown backbone {name!r}{hint}")


def get_backbone(name: str) -> BackboneSpec:
    """The spec of a registered backbone (computed on the meta device once, then cached).

    Specs are also kept on disk (see :func:`_disk_specs`), because computing all of
    them costs seconds a model on a small CPU and a server restart would pay it again.
    """
    key = _canonical(name)
    with _DISK_LOCK:
        stored = _disk_specs().get(key)
    if stored is not None:
        return stored
    spec = _compute_spec(key)
    _store_spec(spec)
    return spec


# --------------------------------------------------------------------------- spec disk cache

_DISK_LOCK = __import__("threading").Lock()
_DISK: dict[str, dict[str, "BackboneSpec"]] = {}


def _spec_cache_file() -> Path:
    """One JSON file per (torch, torchvision, this module's source), so any change recomputes."""
    import hashlib

    src = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    root = os.environ.get("TRANSFER_LAB_CACHE") or str(Path(os.environ.get("TRANSFER_LAB_RUNS") or "runs") / "_cache")
    tag = f"{torch.__version__}-{torchvision.__version__}-{src}".replace("+", "_")
    return Path(root) / f"backbone_specs-{tag}.json"


def _disk_specs() -> dict[str, "BackboneSpec"]:
    path = _spec_cache_file()
    if str(path) in _DISK:
        return _DISK[str(path)]
    specs: dict[str, BackboneSpec] = {}
    try:
        import json

        raw = json.loads(path.read_text(encoding="utf-8"))
        for name, d in raw.items():
            if name in _REGISTRY:
                d["groups"] = tuple(LayerGroup(g["name"], tuple(g["prefixes"]), int(g["num_params"])) for g in d["groups"])
                d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
                specs[name] = BackboneSpec(**d)
    except (OSError, ValueError, TypeError, KeyError):
        specs = {}
    _DISK[str(path)] = specs
    return specs


def _store_spec(spec: "BackboneSpec") -> None:
    import dataclasses
    import json

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
            logger.debug("could not store backbone specs in %s: %s", path, exc)


# --------------------------------------------------------------------------- building


def _family(name: str) -> str:
    module = torchvision.models.get_model_builder(name).__module__.rsplit(".", 1)[-1]
    return _FAMILY_BY_MODULE.get(module, module)


def _default_weights(name: str) -> Any:
    return torchvision.models.get_model_weights(name).DEFAULT


def _builder_kwargs(name: str) -> dict[str, Any]:
    """Builder arguments that make a random-init model match its DEFAULT ImageNet weights."""
    family = _family(name)
    if family in ("googlenet", "inception"):
        # No auxiliary heads: forward must return one tensor in train mode too.
        # transform_input=True is what torchvision sets when it loads ImageNet weights.
        return {"aux_logits": False, "transform_input": True, "init_weights": True}
    if family == "vit":
        # vit_h_14's DEFAULT (SWAG) weights are for 518 px; the position embedding
        # must be built for that size or those weights cannot be loaded.
        return {"image_size": int(_default_weights(name).meta.get("min_size", (224, 224))[0])}
    return {}


class _EmptyOnMeta(TorchFunctionMode):
    """Put only ``torch.empty`` (parameter storage) on meta; other tensors stay on CPU.

    RegNet computes its stage widths with tensors and calls ``.tolist()`` while
    building, which a blanket ``torch.device("meta")`` cannot do.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = dict(kwargs or {})
        if func is torch.empty and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


_META_INPLACE = frozenset(
    {"normal_", "uniform_", "fill_", "zero_", "erfinv_", "mul_", "add_", "sub_", "div_", "clamp_", "copy_"}
)


class _SkipMetaInit(TorchFunctionMode):
    """Turn weight initialisation of meta tensors into a no-op.

    In-place init on meta changes nothing but still runs Python decompositions,
    which were about half the cost of a meta build.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name.endswith("_") and (name in _META_INPLACE or getattr(func, "__module__", "") == "torch.nn.init"):
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


def _construct(name: str) -> nn.Module:
    with _SkipMetaInit():
        return torchvision.models.get_model(name, weights=None, **_builder_kwargs(name))


def _build_meta(name: str) -> nn.Module:
    """The full torchvision model with meta tensors: shapes only, no memory, no init cost."""
    try:
        with torch.device("meta"):
            return _construct(name)
    except NotImplementedError:
        # CPU default for the helper tensors even inside a caller's meta context.
        with torch.device("cpu"), _EmptyOnMeta():
            return _construct(name).to("meta")


def _find_head(model: nn.Module) -> tuple[str, int]:
    """Dotted path and input width of the final classifier layer.

    The final layer is the last ``Linear`` producing the 1000 ImageNet logits;
    SqueezeNet's is a 1x1 ``Conv2d`` inside ``classifier``.
    """
    found: tuple[str, int] | None = None
    for path, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == _NUM_CLASSES:
            found = (path, module.in_features)
    if found is not None:
        return found
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Sequential):
        for module in classifier:
            if isinstance(module, nn.Conv2d) and module.out_channels == _NUM_CLASSES:
                return "classifier", module.in_channels
    raise RuntimeError(f"cannot find the final classifier layer of {type(model).__name__}")


def _strip_head(model: nn.Module) -> tuple[nn.Module, str, int]:
    """Replace the final classifier layer in place; return (body, head_path, feature_dim)."""
    head_path, feature_dim = _find_head(model)
    parent_path, _, child = head_path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    if isinstance(getattr(parent, child), nn.Linear):
        setattr(parent, child, nn.Identity())
    else:  # SqueezeNet: a conv classifier; global-average-pool its input instead
        setattr(parent, child, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)))
    return model, head_path, feature_dim


def build_body(name: str) -> nn.Module:
    """A randomly initialised torchvision model whose final classifier layer is gone.

    ``forward(x)`` maps ``B x 3 x H x W`` (H = W = :func:`input_size`) to
    ``B x feature_dim``. Built on the current default device (so ``with
    torch.device("meta")`` gives a shape-only body).
    """
    key = _canonical(name)
    meta = torch.get_default_device().type == "meta"
    body, _, _ = _strip_head(_build_meta(key) if meta else _construct(key))
    return body


# --------------------------------------------------------------------------- layer groups


def _param_counts(module: nn.Module) -> dict[str, int]:
    return {n: p.numel() for n, p in module.named_parameters()}


def _owns(prefix: str, param_name: str) -> bool:
    return param_name == prefix or param_name.startswith(prefix + ".")


def _children_with_params(model: nn.Module, path: str) -> list[str]:
    module = model.get_submodule(path) if path else model
    out = []
    for child_name, child in module.named_children():
        if any(True for _ in child.parameters()):
            out.append(f"{path}.{child_name}" if path else child_name)
    return out


def _short(path: str) -> str:
    """Last path component, without a word prefix: 'encoder_layer_3' -> '3'."""
    last = path.rsplit(".", 1)[-1]
    digits = last.rsplit("_", 1)[-1]
    return digits if digits.isdigit() and not last.isdigit() else last


def _chunk(paths: list[str], k: int, container: str) -> list[tuple[str, tuple[str, ...]]]:
    """Split consecutive units into ``k`` groups; larger groups last (deep stages are wider)."""
    if not paths:
        return []
    k = max(1, min(k, len(paths)))
    base, extra = divmod(len(paths), k)
    sizes = [base + (1 if i >= k - extra else 0) for i in range(k)]
    out, start = [], 0
    for size in sizes:
        part = paths[start : start + size]
        start += size
        first, last = _short(part[0]), _short(part[-1])
        span = first if first == last else f"{first}-{last}"
        out.append((f"{container}.{span}" if container else span, tuple(part)))
    return out


def _tail_classifier(model: nn.Module) -> list[tuple[str, tuple[str, ...]]]:
    """Penultimate Linear layers kept in the body (VGG fc6/fc7, MobileNetV3, MaxViT) form a group."""
    classifier = getattr(model, "classifier", None)
    if classifier is not None and any(isinstance(m, nn.Linear) for m in classifier.modules()):
        return [("classifier", ("classifier",))]
    return []


def _split_at_pools(model: nn.Module, container: str) -> list[tuple[str, tuple[str, ...]]]:
    """VGG / AlexNet / SqueezeNet: one group per resolution, i.e. split ``features`` at max-pools."""
    seq = model.get_submodule(container)
    groups: list[list[str]] = []
    current: list[str] = []
    for idx, module in seq.named_children():
        if any(True for _ in module.parameters()):
            current.append(f"{container}.{idx}")
        if isinstance(module, nn.MaxPool2d) and current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    out = []
    for i, part in enumerate(groups):
        first, last = _short(part[0]), _short(part[-1])
        label = "stem" if i == 0 else (f"{container}.{first}" if first == last else f"{container}.{first}-{last}")
        out.append((label, tuple(part)))
    return out


def _stem_and_trunk(model: nn.Module, container: str, n_stem: int = 1) -> list[tuple[str, tuple[str, ...]]]:
    """Stem = first ``n_stem`` units of ``container``; the rest chunked into ~4 stage groups."""
    units = _children_with_params(model, container)
    return [("stem", tuple(units[:n_stem]))] + _chunk(units[n_stem:], _TARGET_CHUNKS, container)


def _layout(model: nn.Module, family: str) -> list[tuple[str, tuple[str, ...]]]:
    """Family-specific group layout; parameters it leaves out are merged into neighbours later."""
    if family == "resnet":
        return [("stem", ("conv1", "bn1"))] + [(f"layer{i}", (f"layer{i}",)) for i in range(1, 5)]
    if family == "regnet":
        blocks = _children_with_params(model, "trunk_output")
        return [("stem", ("stem",))] + [(_short(b), (b,)) for b in blocks]
    if family == "shufflenet":
        return [("stem", ("conv1",))] + [(m, (m,)) for m in ("stage2", "stage3", "stage4", "conv5")]
    if family == "googlenet":
        return [
            ("stem", ("conv1", "conv2", "conv3")),
            ("inception3", ("inception3a", "inception3b")),
            ("inception4", tuple(f"inception4{c}" for c in "abcde")),
            ("inception5", ("inception5a", "inception5b")),
        ]
    if family == "inception":
        return [
            ("stem", ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")),
            ("Mixed_5", ("Mixed_5b", "Mixed_5c", "Mixed_5d")),
            ("Mixed_6", tuple(f"Mixed_6{c}" for c in "abcde")),
            ("Mixed_7", ("Mixed_7a", "Mixed_7b", "Mixed_7c")),
        ]
    if family == "densenet":
        out = [("stem", ("features.conv0", "features.norm0"))]
        for i in range(1, 5):
            parts = tuple(p for p in (f"features.denseblock{i}", f"features.transition{i}") if _has(model, p))
            out.append((f"denseblock{i}", parts))
        return out
    if family in ("vgg", "alexnet", "squeezenet"):
        return _split_at_pools(model, "features") + _tail_classifier(model)
    if family in ("mobilenet", "efficientnet", "convnext", "swin"):
        return _stem_and_trunk(model, "features") + _tail_classifier(model)
    if family == "mnasnet":
        # layers 0-7: stem conv + first depthwise-separable block; 8-13: the six stacks.
        units = _children_with_params(model, "layers")
        stem = tuple(u for u in units if int(_short(u)) <= 7)
        stacks = [u for u in units if 8 <= int(_short(u)) <= 13]
        return [("stem", stem)] + _chunk(stacks, _TARGET_CHUNKS, "layers")
    if family == "vit":
        layers = _children_with_params(model, "encoder.layers")
        stem = ("class_token", "conv_proj", "encoder.pos_embedding")
        return [("stem", stem)] + _chunk(layers, _TARGET_CHUNKS, "encoder.layers")
    if family == "maxvit":
        blocks = _children_with_params(model, "blocks")
        return [("stem", ("stem",))] + [(b, (b,)) for b in blocks] + _tail_classifier(model)
    return _generic_layout(model)


def _has(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
        return True
    except AttributeError:
        return False


def _generic_layout(model: nn.Module) -> list[tuple[str, tuple[str, ...]]]:
    """Fallback for architectures without a layout: stem + ~4 chunks of the trunk.

    The trunk is the shallowest container with at least four parameter-bearing
    children (the model itself, ``features``, ``encoder.layers``, ...). Everything
    registered before it is the stem (else its first child is); what follows joins
    the last chunk.
    """
    counts = _param_counts(model)
    trunk, units = "", _children_with_params(model, "")
    level = [""]
    while level and len(units) < 4:
        found = next(((p, c) for p in level if len(c := _children_with_params(model, p)) >= 4), None)
        if found is not None:
            trunk, units = found
            break
        level = [c for p in level for c in _children_with_params(model, p)]
    if not units:
        raise RuntimeError(f"{type(model).__name__} has no parameters")
    names = list(counts)
    first = next(i for i, n in enumerate(names) if _owns(units[0], n))
    stem: dict[str, None] = {}
    for name in names[:first]:
        parts = name.split(".")
        # shortest prefix of the name that is not an ancestor of the trunk
        depth = next(d for d in range(1, len(parts) + 1) if not _owns(".".join(parts[:d]), trunk))
        stem[".".join(parts[:depth])] = None
    if stem:
        return [("stem", tuple(stem))] + _chunk(units, _TARGET_CHUNKS, trunk)
    return [("stem", (units[0],))] + _chunk(units[1:], _TARGET_CHUNKS, trunk)


def _make_groups(body: nn.Module, layout: list[tuple[str, tuple[str, ...]]]) -> tuple[LayerGroup, ...]:
    """Turn a layout into groups that cover every body parameter exactly once.

    Parameters the layout does not name (final norms such as ViT's ``encoder.ln``,
    Swin's ``norm``, DenseNet's ``norm5``; loose tensors) join the group of the
    parameter registered just before them, so the layouts stay short and nothing is
    silently left trainable when everything is frozen.
    """
    counts = _param_counts(body)
    names = list(counts)
    layout = [(label, tuple(p for p in prefixes if p)) for label, prefixes in layout if prefixes]
    owner: dict[str, int] = {}
    for name in names:
        hits = [gi for gi, (_, prefixes) in enumerate(layout) if any(_owns(p, name) for p in prefixes)]
        if len(hits) > 1:
            raise RuntimeError(f"parameter {name} is claimed by groups {[layout[h][0] for h in hits]}")
        if hits:
            owner[name] = hits[0]
    if not owner:
        raise RuntimeError("layout covers no parameter")
    # Leftovers: attach to the previous covered parameter's group (or the next one at the start).
    assigned: dict[str, int] = {}
    last: int | None = None
    pending: list[str] = []
    for name in names:
        if name in owner:
            last = owner[name]
            for p in pending:
                assigned[p] = last
            pending = []
        elif last is None:
            pending.append(name)
        else:
            assigned[name] = last
    extra: dict[int, list[str]] = {}
    for name, gi in assigned.items():
        extra.setdefault(gi, []).append(_widest_prefix(name, gi, assigned, names))
    groups = []
    for gi, (label, prefixes) in enumerate(layout):
        all_prefixes = tuple(prefixes) + tuple(dict.fromkeys(extra.get(gi, [])))
        n = sum(c for name, c in counts.items() if owner.get(name, assigned.get(name)) == gi)
        if n == 0:
            continue  # a layout entry for a stage this variant does not have
        groups.append(LayerGroup(name=label, prefixes=all_prefixes, num_params=n))
    return tuple(groups)


def _widest_prefix(name: str, gi: int, assigned: Mapping[str, int], names: list[str]) -> str:
    """Shortest module path above ``name`` whose parameters are all leftovers of group ``gi``."""
    parts = name.split(".")
    for depth in range(1, len(parts)):
        prefix = ".".join(parts[:depth])
        under = [n for n in names if _owns(prefix, n)]
        if all(assigned.get(n) == gi for n in under):
            return prefix
    return name


# --------------------------------------------------------------------------- spec


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
    family = _family(name)
    body, head_path, feature_dim = _strip_head(_build_meta(name))
    body.eval()
    weights = _default_weights(name)
    hint = int(weights.meta.get("min_size", (1, 1))[0])
    groups = _make_groups(body, _layout(body, family))
    num_params = sum(_param_counts(body).values())
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
        groups=groups,
        mean=tuple(float(v) for v in transforms.mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in transforms.std),  # type: ignore[arg-type]
        min_size=min_size,
        fixed_size=fixed_size,
        head_path=head_path,
        weights_enum=f"{type(weights).__name__}.{weights.name}",
        curated=_REGISTRY[name].curated,
    )
    logger.debug("spec %s computed in %.3fs", name, time.perf_counter() - start)
    return spec


def input_size(spec: BackboneSpec, image_size: int) -> int:
    """Side the images must be resized to for this body: its fixed size, else at least ``min_size``."""
    return spec.fixed_size if spec.fixed_size is not None else max(int(image_size), spec.min_size)


def group_index_of(spec: BackboneSpec, param_name: str) -> int:
    """Index of the group that owns a body parameter (name in the torchvision namespace)."""
    for i, group in enumerate(spec.groups):
        if any(_owns(p, param_name) for p in group.prefixes):
            return i
    raise KeyError(f"{param_name!r} is not a parameter of the {spec.name} body")


def frozen_groups(spec: BackboneSpec, freeze: Freeze) -> int:
    """Number of leading groups frozen: ``"all"`` -> every group, else ``0..len(groups)``."""
    k = len(spec.groups)
    if isinstance(freeze, str):
        if freeze.strip().lower() == "all":
            return k
        raise ValueError(f"freeze must be 'all' or a number 0..{k}, got {freeze!r}")
    if isinstance(freeze, bool) or not isinstance(freeze, int) or not 0 <= freeze <= k:
        raise ValueError(f"{spec.name} has {k} layer groups: freeze must be 0..{k} or 'all', got {freeze!r}")
    return freeze


def trainable_params(spec: BackboneSpec, freeze: Freeze) -> int:
    """Body parameters left trainable with the first ``freeze`` groups frozen (head excluded)."""
    n = frozen_groups(spec, freeze)
    return spec.num_params - sum(g.num_params for g in spec.groups[:n])


# --------------------------------------------------------------------------- weights


def _cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weights_info(name: str) -> dict[str, Any]:
    """Where the DEFAULT ImageNet weights come from and whether they are already on disk."""
    key = _canonical(name)
    weights = _default_weights(key)
    filename = os.path.basename(urlparse(weights.url).path)
    cache_dir = _cache_dir()
    return {
        "weights": f"{type(weights).__name__}.{weights.name}",
        "url": weights.url,
        "filename": filename,
        "cache_dir": str(cache_dir),
        "cached": (cache_dir / filename).is_file(),
    }


def _reason(exc: BaseException) -> str:
    """First sentence of an exception, short enough for a one-line message."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        text = str(exc.reason)
    else:
        text = str(exc)
    line = (text.strip().splitlines() or [""])[0].split(". ")[0].strip()
    if not any(c.isalpha() for c in line):  # e.g. KeyError(101): the type says more
        line = f"{type(exc).__name__} {line}".strip()
    return line if len(line) <= 160 else line[:157] + "..."


_DOWNLOAD_TIMEOUT_S = 60.0


def load_imagenet_state(name: str) -> dict[str, torch.Tensor]:
    """torchvision's DEFAULT ImageNet state dict, from the hub cache or downloaded into it.

    The state is in the full-model namespace (final layer included); pass it to
    :func:`load_state_into_body`, which drops the head keys.
    """
    key = _canonical(name)
    info = imagenet_weights_info(key)
    path = Path(info["cache_dir"]) / info["filename"]
    if not info["cached"]:
        logger.info("downloading %s to %s", info["url"], path)
    # torch.hub's download has no timeout: on a network that drops packets it would
    # hang the run forever. A socket default timeout turns that into a clear error.
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        state = torch.hub.load_state_dict_from_url(
            info["url"],
            model_dir=info["cache_dir"],
            map_location="cpu",
            progress=False,
            check_hash=True,
            file_name=info["filename"],
            weights_only=True,
        )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if path.is_file():
            raise WeightsError(f"ImageNet weights for {key} in {path} cannot be read ({_reason(exc)})") from None
        raise WeightsError(
            f"ImageNet weights for {key} are not cached and cannot be downloaded ({_reason(exc)}): "
            f"place {info['filename']} in {info['cache_dir']}"
        ) from None
    except Exception as exc:  # corrupt cached file, hash mismatch, unpickling refusal
        raise WeightsError(
            f"ImageNet weights for {key} in {path} are unreadable ({_reason(exc)}): delete the file and retry"
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)
    return _as_state_dict(state, f"ImageNet weights for {key}")


def _as_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Accept a plain state_dict, or a checkpoint dict holding one under "state_dict" / "model"."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{source} does not contain a state_dict")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{source} is not a state_dict: entry {bad[0]!r} is not a tensor")
    return dict(obj)


def load_weights_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a user-supplied weights file safely (``weights_only=True``, never arbitrary pickles)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file {p} does not exist")
    try:
        # torch warns on stderr about foreign pickle protocols before it refuses them: the
        # refusal below is the message, the warning would only break the one-line error.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise WeightsError(
                f"weights file {p} was refused: it contains Python objects, not only tensors "
                "(save model.state_dict() instead)"
            ) from None
        raise WeightsError(f"weights file {p} is not a PyTorch checkpoint ({_reason(exc)})") from None
    except Exception as exc:  # truncated zips, empty files, random bytes: torch.load's errors vary
        raise WeightsError(f"weights file {p} is truncated or not a PyTorch checkpoint ({_reason(exc)})") from None
    return _as_state_dict(obj, f"weights file {p}")


def _ignored_prefixes(spec: BackboneSpec) -> tuple[str, ...]:
    """Keys of the full model that the body does not have by design."""
    aux = {"googlenet": ("aux1", "aux2"), "inception": ("AuxLogits",)}.get(spec.family, ())
    return (spec.head_path,) + aux


def _strip_wrapper_prefix(keys: Iterable[str]) -> str:
    keys = list(keys)
    for wrapper in ("module.", "_orig_mod."):  # DataParallel/DDP, torch.compile
        if keys and all(k.startswith(wrapper) for k in keys):
            return wrapper
    return ""


def _examples(label: str, keys: list[str]) -> list[str]:
    return [f"{label} {k!r}" for k in keys[:2]]


def load_state_into_body(body: nn.Module, spec: BackboneSpec, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy a full-model state dict into ``body``; nothing is changed unless everything fits.

    ``source`` names where the state came from for the message, e.g. ``"file
    /path/w.pt"``. Keys of the replaced final layer (and of GoogLeNet / Inception
    auxiliary heads) are dropped; any other difference raises :class:`WeightsError`.
    """
    prefix = _strip_wrapper_prefix(state.keys())
    ignored = _ignored_prefixes(spec)
    given = {k[len(prefix) :]: v for k, v in state.items()}
    given = {k: v for k, v in given.items() if not any(_owns(p, k) for p in ignored)}
    expected = body.state_dict()
    # Checkpoints from before PyTorch 0.4.1 lack BatchNorm's counter; the module tolerates that.
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        k for k in given if k in expected and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        counts = []
        if missing:
            counts.append(f"{len(missing)} missing keys")
        if unexpected:
            counts.append(f"{len(unexpected)} unexpected keys")
        if mismatched:
            k = mismatched[0]
            counts.append(
                f"{len(mismatched)} shape mismatches ({k}: {tuple(given[k].shape)} vs {tuple(expected[k].shape)})"
            )
        examples = _examples("missing", missing) + _examples("unexpected", unexpected)
        eg = f" (e.g. {', '.join(examples)})" if examples else ""
        raise WeightsError(f"weights {source} does not fit {spec.name}: {', '.join(counts)}{eg}")
    result = body.load_state_dict(given, strict=False)
    leftover = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if leftover or result.unexpected_keys:  # pragma: no cover - guarded by the checks above
        raise WeightsError(f"weights {source} does not fit {spec.name}: {len(leftover)} missing keys")
    logger.info("loaded %d tensors from %s into %s", len(given), source, spec.name)
