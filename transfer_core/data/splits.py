"""Choosing and splitting: which classes a run uses (``data.classes``), and the seeded,
stratified train/validation split with few-shot sampling (``train_per_class``).

Each class is permuted by a generator seeded with (run seed, class name), so a class splits
the same whatever other classes are selected and whatever ``train_per_class`` is:
scratch/transfer twins and few-shot variants share one validation set.
"""
from __future__ import annotations

import math
import zlib
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..i18n import _

__all__ = ["select_classes", "split", "unlabeled_rest"]


def select_classes(requested: Sequence[int | str] | None, available: list[str], dataset: str) -> list[int]:
    """Indices into ``available`` in the requested order; ConfigError naming data.classes otherwise."""
    if requested is None:
        return list(range(len(available)))
    listing = ", ".join(available[:30]) + (", ..." if len(available) > 30 else "")
    out: list[int] = []
    for item in requested:
        if isinstance(item, bool):
            idx = -1
        elif isinstance(item, int):
            idx = item if 0 <= item < len(available) else -1
        else:
            s = str(item)
            idx = available.index(s) if s in available else -1
        if idx < 0:
            raise ConfigError("data.classes", _("class '{name}' is not in {dataset} (classes: {classes})").format(
                name=item, dataset=dataset, classes=listing))
        if idx in out:
            raise ConfigError("data.classes", _("class '{name}' is listed twice").format(name=available[idx]))
        out.append(idx)
    if len(out) < 2:
        raise ConfigError("data.classes", _("needs at least two classes"))
    return out


def _n_val(n: int, fraction: float) -> int:
    """round(fraction * n) half-up, at least 1 when n >= 2, never the whole class."""
    if n < 2:
        return 0
    return min(max(int(math.floor(fraction * n + 0.5)), 1), n - 1)


def _class_rng(seed: int, name: str) -> np.random.Generator:
    # Seeded per class name: a class splits the same whatever other classes are selected.
    return np.random.default_rng([int(seed) % (2**64), zlib.crc32(name.encode("utf-8"))])


def _class_parts(
    labels: np.ndarray, ci: int, name: str, seed: int, fraction: float, train_per_class: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(validation, labeled training, unlabeled rest) pool indices of class ``ci``."""
    idx = np.flatnonzero(labels == ci)
    perm = idx[_class_rng(seed, name).permutation(len(idx))]
    nv = _n_val(len(idx), fraction)
    val, train = perm[:nv], perm[nv:]
    if train_per_class is None:
        return val, train, train[:0]
    return val, train[:train_per_class], train[train_per_class:]


def split(
    labels: np.ndarray, order: list[int], names: list[str], seed: int, fraction: float, train_per_class: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Stratified split: per class, permute, first round(f*n) to val, the rest (first n) to train."""
    tr_idx, tr_lab, va_idx, va_lab = [], [], [], []
    short: list[str] = []
    for k, ci in enumerate(order):
        val, train, _rest = _class_parts(labels, ci, names[ci], seed, fraction, train_per_class)
        if train_per_class is not None and train_per_class > len(train):
            short.append(f"'{names[ci]}' ({len(train)})")
        tr_idx.append(train)
        va_idx.append(val)
        tr_lab.append(np.full(len(train), k, dtype=np.int64))
        va_lab.append(np.full(len(val), k, dtype=np.int64))
    warnings = []
    if short:
        shown = ", ".join(short[:5])
        if len(short) > 5:
            shown = _("{classes} and {n} more").format(classes=shown, n=len(short) - 5)
        warnings.append(
            _("train_per_class={n} is more than the training images of class {classes}; using all of them").format(
                n=train_per_class, classes=shown)
        )
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    return cat(tr_idx), cat(tr_lab), cat(va_idx), cat(va_lab), warnings


def unlabeled_rest(
    labels: np.ndarray, order: list[int], names: list[str], seed: int, fraction: float, train_per_class: int | None
) -> np.ndarray:
    """Pool indices of the training images beyond ``train_per_class`` (never validation ones).

    They are what a few-label user has without labels: distillation shows them to the
    teachers and the student, and never returns their labels (the caller gets indices only).
    """
    parts = [_class_parts(labels, ci, names[ci], seed, fraction, train_per_class)[2] for ci in order]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
