"""The teachers' outputs for every training image, computed once and kept.

Why: a teacher is a fixed function of the image, like a frozen body, so the student's
epochs should never run it. Each teacher's logits (in the student's class order) and
penultimate features (what its final linear layer reads) are computed in one pass over
the labeled and the unlabeled training images, on the unaugmented images, and stored
like the feature cache (:mod:`transfer_core.training.feature_cache`)::

    <cache>/teachers/<teacher run id>-<key>.pt   {"logits": N x C, "features": N x D, "key": material}

The key material (teacher run and its checkpoint's size and mtime, the student's data,
split and unlabeled images, preprocessing, torch version) is stored with the tensors and
checked on reading, so a truncated hash never hands back another run's outputs. The
temperature and the teachers' weights are not in the key: they are applied per run from
the logits (:func:`soft_targets`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..paths import cache_dir
from ..training.keyed_files import read_keyed, write_keyed
from .teachers import Teacher

__all__ = ["TEACHERS_VERSION", "TeacherOutputs", "teacher_outputs", "soft_targets", "teacher_pass"]

log = logging.getLogger(__name__)

TEACHERS_VERSION = 1
_SUBDIR = "teachers"


@dataclass
class TeacherOutputs:
    """Per teacher: logits N x C (student class order) and penultimate features N x D, CPU float32."""

    logits: list[torch.Tensor]
    features: list[torch.Tensor]
    loaded: list[str] = field(default_factory=list)  # teacher run ids read from the cache
    computed: list[str] = field(default_factory=list)  # teacher run ids forwarded now
    seconds: float = 0.0


def _material(teacher: Teacher, data_key: dict[str, Any], n: int) -> dict[str, Any]:
    import torchvision

    st = teacher.run.checkpoint_path.stat()
    material = {
        "version": TEACHERS_VERSION,
        "teacher": teacher.run.id,
        "checkpoint": [st.st_size, st.st_mtime_ns],
        "order": list(teacher.order),
        "data": data_key,
        "n": int(n),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
    return json.loads(json.dumps(material, sort_keys=True, default=str))


def _path(base: Path, teacher: Teacher, material: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]
    return base / f"{teacher.run.id}-{key}.pt"


def _load(path: Path, material: dict[str, Any], n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    obj = read_keyed(path, material, "teacher outputs")
    if obj is None:
        return None
    logits, feats = obj.get("logits"), obj.get("features")
    if not isinstance(logits, torch.Tensor) or not isinstance(feats, torch.Tensor) or logits.shape[0] != n \
            or feats.shape[0] != n:
        log.warning("ignoring cached teacher outputs %s: not %d rows", path, n)
        return None
    return logits.float(), feats.float()


def _save(path: Path, logits: torch.Tensor, feats: torch.Tensor, material: dict[str, Any]) -> None:
    write_keyed(path, {"logits": logits.contiguous(), "features": feats.contiguous(), "key": material},
                "teacher outputs")


def teacher_pass(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, penultimate features) of a run's model: one forward through its bodies."""
    feats = model.features(x)
    z = model.fuse(feats) if hasattr(model, "fuse") else feats[0]
    return model.forward_features(feats), z


def teacher_outputs(
    teachers: Sequence[Teacher],
    datasets: Sequence[Any],
    data_key: dict[str, Any],
    device: torch.device,
    runs_root: str | os.PathLike | None = None,
    cache_root: str | os.PathLike | None = None,
    batch_size: int = 128,
    check_stop: Callable[[], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> TeacherOutputs:
    """Every teacher's outputs on the images of ``datasets`` (in order, concatenated): cached or computed now."""
    from ..predict import load_run_model  # lazy: loading a model pulls in the model zoo
    from ..training.loaders import image_batches, to_model_input

    t0 = time.perf_counter()
    base = (Path(cache_root) if cache_root is not None else cache_dir(runs_root)) / _SUBDIR
    n = sum(len(ds) for ds in datasets)
    out = TeacherOutputs([], [])
    todo: list[tuple[int, Teacher, Path, dict[str, Any]]] = []
    for i, t in enumerate(teachers):
        material = _material(t, data_key, n)
        path = _path(base, t, material)
        hit = _load(path, material, n)
        out.logits.append(hit[0] if hit else torch.zeros(0))
        out.features.append(hit[1] if hit else torch.zeros(0))
        if hit:
            out.loaded.append(t.run.id)
        else:
            todo.append((i, t, path, material))
    total = len(todo) * sum(-(-len(ds) // batch_size) for ds in datasets)
    done = 0
    for i, t, path, material in todo:
        loaded = load_run_model(t.run, runs_root)
        model = loaded.model.to(device).eval()
        logits, feats = [], []
        with torch.no_grad():
            for ds in datasets:
                for x, _ in image_batches(ds, batch_size):  # the images only: unlabeled items carry -1
                    if check_stop is not None:
                        check_stop()
                    z, f = teacher_pass(model, to_model_input(x, device))
                    logits.append(z.float().cpu())
                    feats.append(f.float().cpu())
                    done += 1
                    if on_progress is not None:
                        on_progress(done, total)
        lg = torch.cat(logits)[:, t.order]  # the student's class order
        ft = torch.cat(feats)
        _save(path, lg, ft, material)
        out.logits[i], out.features[i] = lg, ft
        out.computed.append(t.run.id)
        del model, loaded
    out.seconds = time.perf_counter() - t0
    return out


def soft_targets(outputs: TeacherOutputs, weights: Sequence[float], temperature: float) -> torch.Tensor:
    """The teachers' weighted mean of ``softmax(logits / T)``: N x C, rows sum to one."""
    probs = [w * F.softmax(z / temperature, dim=1) for w, z in zip(weights, outputs.logits)]
    return torch.stack(probs).sum(0) / float(sum(weights))
