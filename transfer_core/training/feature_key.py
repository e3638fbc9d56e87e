"""What identifies a body's cached features: the key material and its hash.

Changing alpha, the head, lr, epochs or the optimizer reuses the cache; any change to
what the features depend on (backbone, weights, data, split, preprocessing, torch
versions, the device and precision they were computed with) gives a new key. The key
material is stored with the features, so a truncated hash can never hand back the wrong
ones (see :mod:`transfer_core.training.feature_cache`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import RunConfig
from ..data import DataBundle

__all__ = ["FEATURES_VERSION", "weights_identity", "feature_key", "compute_key", "data_key"]

log = logging.getLogger(__name__)

FEATURES_VERSION = 1


def _tensor_digest(module: nn.Module) -> str:
    """sha256 over a module's state (names, shapes, dtypes, bytes): the identity of random init."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:  # noqa: ARG001 - size/mtime key the memo
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_identity(source: str, body: nn.Module, runs_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """What identifies the weights a body was loaded with.

    imagenet: torchvision's weights enum. file: the file's sha256 (memoised on path, size
    and mtime). run: the source run id and its checkpoint's size and mtime (a completed
    run's checkpoint no longer changes). none: a digest of the random-init state itself,
    which depends on the seed and on the other bodies built before it.
    """
    source = source.strip()
    spec = getattr(body, "spec", None)
    if source == "imagenet":
        return {"source": "imagenet", "weights": getattr(spec, "weights_enum", "")}
    if source.startswith("file:"):
        p = Path(source[5:]).expanduser().resolve()
        try:
            st = p.stat()
            return {"source": "file", "path": str(p), "sha256": _file_sha256(str(p), st.st_size, st.st_mtime_ns)}
        except OSError:
            pass  # loaded earlier, gone now: fall back to the state itself
    elif source.startswith("run:"):
        from ..runs import RunStore

        try:
            run = RunStore(runs_root).get(source[4:])
            st = run.checkpoint_path.stat()
            return {"source": "run", "run": run.id, "checkpoint": [st.st_size, st.st_mtime_ns]}
        except (ValueError, OSError):
            pass
    return {"source": source if source == "none" else "state", "sha256": _tensor_digest(body)}


def data_key(cfg: RunConfig, bundle: DataBundle) -> dict[str, Any]:
    d = cfg.data
    out: dict[str, Any] = {
        "dataset": d.dataset,
        "classes": d.classes,
        "class_names": list(bundle.classes),
        "train_per_class": d.train_per_class,
        "val_fraction": float(d.val_fraction),
        "image_size": int(d.image_size),
        "seed": int(cfg.seed),  # the split depends on it
        "source": bundle.info.get("source"),
        # build_data's fingerprint: source, file identities, split indices, preprocessing
        "fingerprint": bundle.info.get("fingerprint"),
    }
    if d.dataset == "shapes":
        out["shapes"] = [int(d.shapes_classes), int(d.shapes_per_class)]
    return out


def compute_key(device: torch.device, amp_dtype: torch.dtype | None) -> dict[str, Any]:
    """The part of the key that says where and in which precision features were computed."""
    return {"device": device.type, "amp": str(amp_dtype).replace("torch.", "") if amp_dtype is not None else None}


def feature_key(
    cfg: RunConfig,
    bundle: DataBundle,
    index: int,
    body: nn.Module,
    split: str,
    n: int,
    runs_root: str | os.PathLike | None = None,
    compute: dict[str, Any] | None = None,
    weights: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """``(hex key, key material)`` of backbone ``index``'s features on ``split``."""
    import torchvision

    material = {
        "version": FEATURES_VERSION,
        "backbone": body.name,
        "weights": weights if weights is not None else weights_identity(cfg.backbones[index].weights, body, runs_root),
        "input_size": int(getattr(body, "size", cfg.data.image_size)),
        "data": data_key(cfg, bundle),
        "split": split,
        "n": int(n),
        "preprocessing": dict(bundle.preprocessing),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "compute": compute or {"device": "cpu", "amp": None},
    }
    blob = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32], json.loads(blob)
