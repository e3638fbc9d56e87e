"""Which validation images to show: one confusion-matrix cell's, and the highest losses.

Each selection reads a validation pass (predictions, probabilities, labels) and returns
the images as uint8 H x W x 3 with what the model said about them.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data import DataBundle
from ..metrics import confusion
from ..predict import LoadedRun
from .val_pass import ValPass, ensure_pass, val_image

__all__ = ["confusion_from_pass", "confusion_cell_images", "top_losses"]

log = logging.getLogger(__name__)


def confusion_from_pass(vp: ValPass, classes: Sequence[str]) -> dict[str, Any]:
    """{"labels", "matrix"} of the pass (rows true, columns predicted), like confusion.json."""
    return {"labels": [str(c) for c in classes], "matrix": confusion(vp.labels.tolist(), vp.preds.tolist(), len(classes))}


def _top3(probs: torch.Tensor, classes: Sequence[str]) -> list[tuple[str, float]]:
    k = min(3, probs.shape[-1])
    vals, idx = probs.topk(k)
    return [(str(classes[int(i)]), float(v)) for v, i in zip(vals, idx)]


def confusion_cell_images(
    loaded: LoadedRun, bundle: DataBundle, true_idx: int, pred_idx: int, limit: int = 12, vp: ValPass | None = None
) -> list[tuple[np.ndarray, list[tuple[str, float]]]]:
    """Validation images of true class ``true_idx`` predicted as ``pred_idx``, most confident first.

    Each item: (uint8 H x W x 3 image, top-3 [(class, prob), ...]).
    """
    vp = ensure_pass(loaded, bundle, vp)
    probs = vp.probs
    rows = np.flatnonzero((vp.labels == int(true_idx)) & (vp.preds == int(pred_idx)))
    rows = sorted(rows.tolist(), key=lambda r: -float(probs[r, int(pred_idx)]))[: max(0, int(limit))]
    return [(val_image(bundle, int(vp.indices[r])), _top3(probs[r], loaded.classes)) for r in rows]


def top_losses(
    loaded: LoadedRun, bundle: DataBundle, k: int = 9, vp: ValPass | None = None
) -> list[tuple[np.ndarray, str, str, float, float]]:
    """The ``k`` validation images with the highest loss: (image, true, predicted, loss, prob).

    ``prob`` is the model's probability for its own prediction (a confident mistake
    has a high one).
    """
    vp = ensure_pass(loaded, bundle, vp)
    if not len(vp.labels):
        return []
    losses = F.cross_entropy(vp.logits, torch.as_tensor(vp.labels), reduction="none")
    probs = vp.probs
    order = torch.argsort(losses, descending=True)[: max(0, int(k))].tolist()
    out = []
    for r in order:
        p = int(vp.preds[r])
        out.append((
            val_image(bundle, int(vp.indices[r])),
            str(loaded.classes[int(vp.labels[r])]),
            str(loaded.classes[p]),
            float(losses[r]),
            float(probs[r, p]),
        ))
    return out
