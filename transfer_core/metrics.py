"""Evaluation summaries: confusion matrix and per-class precision / recall / F1.

Computed with numpy on the validation predictions the trainer already has (nothing is
recomputed). Every run writes both at its end, so they are a few lines of ``bincount``
here rather than scikit-learn, whose import alone cost a run 1.5 s (2-core box,
2026-12-03); tests check them against scikit-learn's ``confusion_matrix`` and
``precision_recall_fscore_support(zero_division=0)``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["confusion", "per_class_metrics", "normalise_confusion"]


def _matrix(targets: Sequence[int], preds: Sequence[int], num_classes: int) -> np.ndarray:
    t = np.asarray(targets, dtype=np.int64).ravel()
    p = np.asarray(preds, dtype=np.int64).ravel()
    keep = (t >= 0) & (t < num_classes) & (p >= 0) & (p < num_classes)  # labels outside the classes: not counted
    return np.bincount(t[keep] * num_classes + p[keep], minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion(targets: Sequence[int], preds: Sequence[int], num_classes: int) -> list[list[int]]:
    """Rows are true classes, columns predicted classes."""
    return _matrix(targets, preds, num_classes).astype(int).tolist()


def per_class_metrics(targets: Sequence[int], preds: Sequence[int], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each class; 0 where a ratio has no denominator."""
    m = _matrix(targets, preds, len(labels)).astype(float)
    tp, predicted, support = np.diag(m), m.sum(axis=0), m.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return [
        {"class": str(name), "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
         "support": int(support[i])}
        for i, name in enumerate(labels)
    ]


def normalise_confusion(matrix: Sequence[Sequence[int]]) -> list[list[float]]:
    """Row-normalised (each true class sums to 1; empty rows stay 0)."""
    m = np.asarray(matrix, dtype=float)
    sums = m.sum(axis=1, keepdims=True)
    out = np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
    return out.round(4).tolist()
