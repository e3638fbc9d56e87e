"""The frozen-feature cache: when a run trains on features, extracting them, storing them, finding them.

Why: when every backbone of a run is fully frozen (a linear probe, or a fusion of
frozen backbones) the bodies are fixed functions of the image, so forwarding them
every epoch repeats the same work. The trainer asks :func:`prepare_features` for the
features of both splits and then trains only the head, projections and alpha on them.
What makes a key is :mod:`transfer_core.training.feature_key`.

Layout (one file per backbone and split, written atomically)::

    <cache>/features/<backbone>/<split>-<key>.pt   {"features": float32 N x D,
                                                    "labels": int64 N,
                                                    "key": the key material, "version": 1}

``<cache>`` is ``$TRANSFER_LAB_CACHE``, else ``<runs>/_cache``. Files are read with
``weights_only=True`` and checked against the key material they carry, so a truncated
key hash can never hand back the wrong features.

Frozen bodies are evaluated in eval mode for extraction (BatchNorm running statistics,
no dropout / stochastic depth inside a frozen body) and on the unaugmented images: a
cached run does not augment (the trainer records a warning when ``data.augment`` is on;
``train.feature_cache: false`` trains through the bodies instead).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..config import RunConfig
from ..data import DataBundle
from ..paths import cache_dir
from .feature_key import FEATURES_VERSION, compute_key, feature_key, weights_identity
from .keyed_files import read_keyed, write_keyed
from .loaders import image_batches, to_model_input

__all__ = [
    "AUGMENT_NOTE",
    "FeatureSet",
    "cache_dir",
    "cache_size_bytes",
    "clear_cache",
    "cache_decision",
    "extract_features",
    "prepare_features",
]

log = logging.getLogger(__name__)

_SUBDIR = "features"
AUGMENT_NOTE = (
    "data.augment is not applied: every backbone is frozen, so this run trains on cached features of the "
    "unaugmented images (set train.feature_cache: false to augment through the frozen bodies)"
)

ProgressFn = Callable[[int, int], None]  # (batches done, batches in all)


def _features_dir(root: str | os.PathLike | None, runs_root: str | os.PathLike | None = None) -> Path:
    return (Path(root) if root is not None else cache_dir(runs_root)) / _SUBDIR


def cache_size_bytes(root: str | os.PathLike | None = None, runs_root: str | os.PathLike | None = None) -> int:
    """Bytes the feature cache takes on disk (0 when there is none)."""
    base = _features_dir(root, runs_root)
    total = 0
    if not base.is_dir():
        return 0
    for dirpath, _dirs, files in os.walk(base):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def clear_cache(root: str | os.PathLike | None = None, runs_root: str | os.PathLike | None = None) -> int:
    """Delete every cached feature file; returns the bytes freed.

    Only the ``features`` folder inside the cache root is removed, never the root itself
    (``$TRANSFER_LAB_CACHE`` may point at a folder that holds other things). A run that
    already loaded its features keeps training; one writing at that moment logs a
    warning and carries on with its features in memory.
    """
    base = _features_dir(root, runs_root)
    size = cache_size_bytes(root, runs_root)
    if base.is_dir():
        shutil.rmtree(base, ignore_errors=True)
    return size


def cache_decision(cfg: RunConfig, model: nn.Module) -> tuple[bool, str]:
    """Whether a run trains on cached features, and why (or why not), in one line."""
    bodies = list(getattr(model, "bodies", []))
    if not bodies or not hasattr(model, "forward_features"):
        return False, "the model has no backbone bodies"
    if not cfg.train.feature_cache:
        return False, "train.feature_cache is off"
    if cfg.method == "distill":
        return False, "distillation trains the student on images, with its teachers' outputs cached instead"
    not_frozen = [b.name for b in bodies if not b.fully_frozen]
    if not_frozen:
        return False, f"not every backbone is fully frozen ({', '.join(not_frozen)} trains)"
    if cfg.train.bn_train_frozen:
        # BatchNorm in train mode makes the features depend on the batch: not a fixed function.
        return False, "train.bn_train_frozen keeps frozen BatchNorm in train mode, so features are not fixed"
    return True, "every backbone is fully frozen"


def _path(base: Path, backbone: str, split: str, key: str) -> Path:
    return base / backbone / f"{split}-{key}.pt"


def extract_features(
    bodies: Sequence[nn.Module],
    ds: Any,
    device: torch.device,
    batch_size: int = 256,
    amp_dtype: torch.dtype | None = None,
    check_stop: Callable[[], None] | None = None,
    on_batch: Callable[[], None] | None = None,
    num_workers: int = 0,
    channels_last: bool = False,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Features of every body on ``ds`` in ONE pass over the data; float32 on the CPU.

    Each batch is read (decoded) once and handed to every body. Bodies run in eval mode
    and are put back in the mode they were in.
    """
    modes = [b.training for b in bodies]
    outs: list[list[torch.Tensor]] = [[] for _ in bodies]
    ys: list[torch.Tensor] = []
    try:
        for b in bodies:
            b.eval()
        with torch.inference_mode():
            for x, y in image_batches(ds, batch_size, num_workers, pin_memory=device.type == "cuda"):
                if check_stop is not None:
                    check_stop()
                x = to_model_input(x, device, channels_last)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    for i, body in enumerate(bodies):
                        outs[i].append(body(x).float().cpu())
                ys.append(torch.as_tensor(y).long().cpu())
                if on_batch is not None:
                    on_batch()
    finally:
        for b, m in zip(bodies, modes):
            b.train(m)
    labels = torch.cat(ys) if ys else torch.zeros(0, dtype=torch.long)
    feats = [torch.cat(o) if o else torch.zeros(0, getattr(b, "feature_dim", 0)) for o, b in zip(outs, bodies)]
    return feats, labels


@dataclass
class FeatureSet:
    """Cached features of every body for both splits (CPU tensors, float32)."""

    train: list[torch.Tensor]
    train_labels: torch.Tensor
    val: list[torch.Tensor]
    val_labels: torch.Tensor
    loaded: list[str] = field(default_factory=list)  # "<backbone>/<split>" read from the cache
    extracted: list[str] = field(default_factory=list)  # "<backbone>/<split>" computed now
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _load(path: Path, material: dict[str, Any], n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    obj = read_keyed(path, material, "features")
    if obj is None:
        return None
    feats, labels = obj.get("features"), obj.get("labels")
    if (not isinstance(feats, torch.Tensor) or not isinstance(labels, torch.Tensor) or feats.dim() != 2
            or feats.shape[0] != n or labels.shape[0] != n or feats.dtype != torch.float32):
        log.warning("ignoring cached features %s: holds %s rows, expected %d", path,
                    getattr(feats, "shape", None), n)
        return None
    return feats, labels.long()


def _save(path: Path, feats: torch.Tensor, labels: torch.Tensor, material: dict[str, Any]) -> bool:
    return write_keyed(path, {"features": feats.contiguous(), "labels": labels, "key": material,
                              "version": FEATURES_VERSION}, "features")


def prepare_features(
    model: nn.Module,
    bundle: DataBundle,
    cfg: RunConfig,
    device: torch.device,
    runs_root: str | os.PathLike | None = None,
    cache_root: str | os.PathLike | None = None,
    batch_size: int = 256,
    amp_dtype: torch.dtype | None = None,
    check_stop: Callable[[], None] | None = None,
    on_extract: ProgressFn | None = None,
    num_workers: int = 0,
    channels_last: bool = False,
    dist: Any = None,
) -> FeatureSet:
    """Features of every body of ``model`` on both splits: from the cache, else extracted.

    Bodies whose features are missing for a split are extracted together in one pass
    over that split, then written to the cache. ``on_extract(done, total)`` is called
    per extraction batch; ``check_stop`` too (it raises to stop; nothing partial is kept).
    ``dist`` (a :class:`transfer_core.distributed.DistContext`, under torchrun): each rank
    extracts its share of the batches, every rank gets all of them, rank 0 writes the files.
    """
    t0 = time.perf_counter()
    base = _features_dir(cache_root, runs_root)
    bodies = list(model.bodies)
    compute = compute_key(device, amp_dtype)
    idents = [weights_identity(cfg.backbones[i].weights, b, runs_root) for i, b in enumerate(bodies)]
    splits = {"train": bundle.train, "val": bundle.val}
    result: dict[str, tuple[list[torch.Tensor | None], torch.Tensor | None]] = {}
    fs = FeatureSet([], torch.zeros(0), [], torch.zeros(0))
    plan: list[tuple[str, Any, list[int], list[tuple[Path, dict[str, Any]]]]] = []
    for split, ds in splits.items():
        n = len(ds)
        feats: list[torch.Tensor | None] = [None] * len(bodies)
        labels: torch.Tensor | None = None
        keys = []
        for i, body in enumerate(bodies):
            key, material = feature_key(cfg, bundle, i, body, split, n, runs_root, compute, idents[i])
            keys.append((_path(base, body.name, split, key), material))
        hits = [_load(path, material, n) for path, material in keys]
        if dist is not None:  # DDP hook: a hit only where every rank has it, so all ranks extract alike
            hits = dist.agree_hits(hits)
        for i, (body, hit, (path, _material)) in enumerate(zip(bodies, hits, keys)):
            if hit is not None:
                feats[i], labels = hit
                fs.loaded.append(f"{body.name}/{split}")
                fs.files.append(path)
        missing = [i for i, f in enumerate(feats) if f is None]
        result[split] = (feats, labels)
        if missing:
            plan.append((split, ds, missing, keys))
    total = sum(-(-len(ds) // batch_size) for _, ds, _, _ in plan)
    if dist is not None:  # DDP hook: this rank extracts every N-th batch
        total = sum(dist.shard_batches(-(-len(ds) // batch_size)) for _, ds, _, _ in plan)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_extract is not None:
            on_extract(done, total)

    for split, ds, missing, keys in plan:
        log.info("extracting %s features of %s (%d images)", split, ", ".join(bodies[i].name for i in missing), len(ds))
        args = ([bodies[i] for i in missing], ds, device, batch_size, amp_dtype, check_stop, tick, num_workers, channels_last)
        # DDP hook: each rank extracts its share of the batches, gathered back in order
        got, labels = dist.extract_features(extract_features, *args) if dist is not None else extract_features(*args)
        feats, _ = result[split]
        for i, f in zip(missing, got):
            feats[i] = f
            path, material = keys[i]
            if (dist is None or dist.is_main) and _save(path, f, labels, material):
                fs.files.append(path)
            fs.extracted.append(f"{bodies[i].name}/{split}")
        result[split] = (feats, labels)
    fs.train, fs.train_labels = [f for f in result["train"][0] if f is not None], result["train"][1]  # type: ignore[assignment]
    fs.val, fs.val_labels = [f for f in result["val"][0] if f is not None], result["val"][1]  # type: ignore[assignment]
    if fs.train_labels is None or fs.val_labels is None:  # pragma: no cover - both splits always resolve
        raise RuntimeError("feature cache: labels missing")
    fs.seconds = time.perf_counter() - t0
    return fs
