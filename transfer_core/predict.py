"""Load a finished run's model and predict images with the run's own preprocessing.

Why the preprocessing comes from the checkpoint: a prediction must see exactly the
tensor the model saw in training (size, crop, channels). Rebuilding it by hand in a
page is how train/serve skew starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .checkpoint_files import read_checkpoint
from .config import RunConfig, from_dict
from .data import preprocess_image
from .errors import WeightsError
from .i18n import _
from .models import build_model
from .runs import Run, RunStore

__all__ = ["LoadedRun", "load_run_model", "predict_tensors", "predict_images"]


@dataclass
class LoadedRun:
    run: Run
    cfg: RunConfig
    model: nn.Module
    classes: list[str]
    preprocessing: dict[str, Any]
    epoch: int


def load_run_model(ref: str | Path | Run, runs_root: str | Path | None = None, which: str = "last") -> LoadedRun:
    """The model of a run (``last`` or ``best`` checkpoint), in eval mode on the CPU."""
    run = ref if isinstance(ref, Run) else RunStore(runs_root).get(str(ref))
    path = run.best_path if which == "best" and run.best_path.exists() else run.checkpoint_path
    if not path.exists():
        raise WeightsError(_("run {run_id} has no checkpoint yet (state: {state})").format(
            run_id=run.id, state=run.status().get("state")))
    try:
        ckpt = read_checkpoint(path)  # weights_only=True, the frozen part merged back
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(_("cannot read checkpoint {path}: {error}").format(
            path=path, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")) from None
    cfg = from_dict(ckpt["config"])
    classes = list(ckpt["classes"])
    model = build_model(cfg, len(classes), runs_root, load_weights=False)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return LoadedRun(run, cfg, model, classes, dict(ckpt["preprocessing"]), int(ckpt["epoch"]))


def predict_tensors(loaded: LoadedRun, x: torch.Tensor, top_k: int = 3) -> list[list[dict[str, Any]]]:
    with torch.no_grad():
        probs = torch.softmax(loaded.model(x), dim=1)
    k = min(top_k, probs.shape[1])
    vals, idx = probs.topk(k, dim=1)
    return [
        [{"class": loaded.classes[int(i)], "prob": round(float(v), 6)} for v, i in zip(vr, ir)]
        for vr, ir in zip(vals, idx)
    ]


def predict_images(
    loaded: LoadedRun, images: Sequence[Any], top_k: int = 3
) -> list[list[dict[str, Any]]]:
    """Top-k classes with probabilities for each image (a path, bytes or a PIL image)."""
    x = torch.stack([preprocess_image(img, loaded.preprocessing) for img in images])
    return predict_tensors(loaded, x, top_k)
