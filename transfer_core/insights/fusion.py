"""What each backbone of a fusion run brings: contributions, drop-one ablation, disagreement, α.

All of it reads the fused model through :meth:`FusionModel.fuse` (``keep=`` leaves
backbones out) on the features of a validation pass, so no view needs a new forward
over the images except :func:`contributions` on images a page passes in.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..data import DataBundle
from ..i18n import _
from ..models import FusionModel
from ..predict import LoadedRun
from .val_pass import ValPass, ensure_pass

__all__ = ["contributions", "mean_contributions", "ablation", "disagreement", "alpha_trajectory", "require_fusion"]

log = logging.getLogger(__name__)


def _shares(model: Any, feats: Sequence[torch.Tensor]) -> list[float]:
    """alpha_i * mean ||P_i f_i|| per backbone (concat: no alpha; one backbone: mean ||f||)."""
    with torch.no_grad():
        if not isinstance(model, FusionModel):
            return [float(feats[0].norm(dim=1).mean())]
        proj = [p(f) for p, f in zip(model.projections, feats)]
        alpha = model.alpha_list() if model.mode == "sum" else [1.0] * len(proj)
        return [float(a * p.norm(dim=1).mean()) for a, p in zip(alpha, proj)]


def contributions(loaded: LoadedRun, x: torch.Tensor) -> list[float]:
    """Each backbone's share of the fused vector for image(s) ``x``: alpha_i * ||P_i f_i(x)||.

    Concat fusion has no alpha: its contributions are ||P_i f_i(x)||. A transfer run has
    one backbone: [||f(x)||]. With a batch, the mean over the images.
    """
    x = (x.unsqueeze(0) if x.dim() == 3 else x).float()
    with torch.no_grad():
        feats = loaded.model.features(x)
    return _shares(loaded.model, feats)


def mean_contributions(loaded: LoadedRun, vp: ValPass) -> list[float]:
    """:func:`contributions` averaged over the images of a validation pass (no new forward)."""
    return _shares(loaded.model, vp.feats)


def require_fusion(loaded: LoadedRun) -> FusionModel:
    """The run's FusionModel; ValueError naming the run for a single-backbone run."""
    if not isinstance(loaded.model, FusionModel):
        raise ValueError(_("run {run_id} is a {method} run: this needs a fusion run").format(
            run_id=loaded.run.id, method=loaded.cfg.method))
    return loaded.model


def _accuracy_with(model: FusionModel, vp: ValPass, keep: Sequence[int]) -> np.ndarray:
    """Per image: is the fused model right with only the backbones in ``keep``."""
    preds = model.classifier(model.fuse(vp.feats, keep=keep)).argmax(1).numpy()
    return preds == vp.labels


def ablation(loaded: LoadedRun, bundle: DataBundle, vp: ValPass | None = None) -> list[dict[str, Any]]:
    """Validation accuracy of the fusion model with each backbone's contribution removed.

    Rows: the full model first (``removed`` = None), then one per backbone with
    ``val_acc`` and ``change`` (accuracy minus the full model's: negative = it helped).
    """
    model = require_fusion(loaded)
    vp = ensure_pass(loaded, bundle, vp)
    full = vp.acc
    n = len(vp.names)
    rows: list[dict[str, Any]] = [{"removed": None, "val_acc": full, "change": 0.0}]
    with torch.no_grad():
        for i, name in enumerate(vp.names):
            right = _accuracy_with(model, vp, [j for j in range(n) if j != i])
            acc = float(right.mean()) if len(right) else 0.0
            rows.append({"removed": name, "val_acc": acc, "change": acc - full})
    return rows


def disagreement(loaded: LoadedRun, bundle: DataBundle, vp: ValPass | None = None) -> dict[str, Any]:
    """Which backbone is right where another is wrong.

    Backbone i alone = the fusion model with every OTHER backbone dropped.
    ``matrix[i][j]`` = fraction of validation images where i alone is right and j alone
    is wrong (the diagonal is 0). Also ``solo_acc`` (accuracy of each backbone alone) and
    ``both_wrong`` (fraction where all of them are wrong).
    """
    model = require_fusion(loaded)
    vp = ensure_pass(loaded, bundle, vp)
    n = len(vp.names)
    with torch.no_grad():
        right = [_accuracy_with(model, vp, [i]) for i in range(n)]
    m = len(vp.labels) or 1
    matrix = [[float((right[i] & ~right[j]).sum() / m) if i != j else 0.0 for j in range(n)] for i in range(n)]
    all_wrong = ~np.any(np.stack(right), axis=0) if right else np.zeros(0, dtype=bool)
    return {
        "names": list(vp.names),
        "matrix": matrix,
        "solo_acc": [float(r.sum() / m) for r in right],
        "both_wrong": float(all_wrong.sum() / m),
        "n": int(len(vp.labels)),
    }


def alpha_trajectory(metrics: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, tuple[list[int], list[float]]]:
    """The fusion weights per epoch from a run's metrics rows: name -> (epochs, alpha_i).

    Keyed ``"α1 resnet18"``, ``"α2 ..."`` in backbone order; empty when no row has an
    ``alpha`` (a concat or fixed-α run, or no epoch yet).
    """
    rows = [r for r in metrics if r.get("alpha")]
    if not rows:
        return {}
    return {
        f"α{i + 1} {name}": ([int(r["epoch"]) for r in rows], [float(r["alpha"][i]) for r in rows])
        for i, name in enumerate(names)
    }
