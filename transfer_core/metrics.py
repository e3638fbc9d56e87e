"""Evaluation summaries: confusion matrix and per-class precision / recall / F1.

scikit-learn computes these (one well-tested implementation, zero_division handled),
on the validation predictions the trainer already has, so nothing is recomputed.
scikit-learn is imported inside the functions that use it: importing this module (as
the trainer and the report do) costs nothing until a matrix is computed.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["confusion", "per_class_metrics", "normalise_confusion"]


def confusion(targets: Sequence[int], preds: Sequence[int], num_classes: int) -> list[list[int]]:
    """Rows are true classes, columns predicted classes."""
    from sklearn.metrics import confusion_matrix

    m = confusion_matrix(np.asarray(targets), np.asarray(preds), labels=list(range(num_classes)))
    return m.astype(int).tolist()


def per_class_metrics(targets: Sequence[int], preds: Sequence[int], labels: Sequence[str]) -> list[dict[str, Any]]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(
        np.asarray(targets), np.asarray(preds), labels=list(range(len(labels))), zero_division=0
    )
    return [
        {"class": str(name), "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(labels)
    ]


def normalise_confusion(matrix: Sequence[Sequence[int]]) -> list[list[float]]:
    """Row-normalised (each true class sums to 1; empty rows stay 0)."""
    m = np.asarray(matrix, dtype=float)
    sums = m.sum(axis=1, keepdims=True)
    out = np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
    return out.round(4).tolist()
