"""One pass of a run's model over its validation images, shared by every insight view.

:func:`val_pass` computes the body features per backbone and the logits once (over a
stratified subset above ``limit``); every view takes an optional ``vp=`` to reuse it
(:func:`ensure_pass`), so a page computes it once and draws many views from it. Also the
validation images themselves, unaugmented, as model input or as uint8 pictures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..data import DataBundle, images_to_float
from ..errors import DataError
from ..i18n import _
from ..predict import LoadedRun

__all__ = [
    "ValPass",
    "val_pass",
    "ensure_pass",
    "val_image",
    "val_batch",
    "backbone_names",
    "stratified",
]

log = logging.getLogger(__name__)


@dataclass
class ValPass:
    """One forward pass of a run's model over (a subset of) its validation split."""

    indices: np.ndarray  # positions in bundle.val, sorted
    labels: np.ndarray  # true label of each row
    feats: list[torch.Tensor]  # body output f_i(x) per backbone, N x d_i (float32, CPU)
    logits: torch.Tensor  # N x C of the full model
    names: list[str]  # one display name per backbone
    total: int  # len(bundle.val)

    @property
    def preds(self) -> np.ndarray:
        return self.logits.argmax(1).numpy()

    @property
    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=1)

    @property
    def acc(self) -> float:
        return float((self.preds == self.labels).mean()) if len(self.labels) else 0.0


def backbone_names(loaded: LoadedRun) -> list[str]:
    """Display names per backbone; a backbone used twice gets "#2", "#3"."""
    raw = [b.name for b in loaded.cfg.backbones]
    out = []
    for i, n in enumerate(raw):
        k = raw[:i].count(n)
        out.append(n if k == 0 and raw.count(n) == 1 else f"{n} #{k + 1}")
    return out


def stratified(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most ``limit`` positions, each class kept in proportion (at least one each), sorted."""
    n = len(labels)
    if limit >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    picked: list[np.ndarray] = []
    for c in classes:
        pos = np.flatnonzero(labels == c)
        take = max(1, int(round(limit * len(pos) / n)))
        picked.append(rng.choice(pos, size=min(take, len(pos)), replace=False))
    out = np.sort(np.concatenate(picked))
    if len(out) > limit:
        out = np.sort(rng.choice(out, size=limit, replace=False))
    return out


def val_batch(ds: Any, idx: Sequence[int]) -> torch.Tensor:
    """Float 3 x S x S images of the ImageDataset ``ds`` at ``idx`` (never augmented)."""
    if ds.images is not None:
        return images_to_float(ds.images[torch.as_tensor(list(idx), dtype=torch.long)])
    return torch.stack([images_to_float(ds.image(int(i))) for i in idx])


def val_image(bundle: DataBundle, index: int) -> np.ndarray:
    """Validation image ``index`` as uint8 H x W x 3 (for galleries and the embedding picker)."""
    x = bundle.val.image(int(index))
    if x.shape[0] == 1:
        x = x.repeat(3, 1, 1)
    return x.permute(1, 2, 0).contiguous().numpy()


def val_pass(
    loaded: LoadedRun, bundle: DataBundle, limit: int | None = None, seed: int = 0, batch_size: int = 128
) -> ValPass:
    """Body features and logits for the validation images (a stratified subset above ``limit``)."""
    ds = bundle.val
    if list(bundle.classes) != list(loaded.classes):
        raise DataError(_("the data now has classes {now}, but the run was trained on {then}").format(
            now=", ".join(map(str, bundle.classes)), then=", ".join(map(str, loaded.classes))))
    all_labels = ds.labels.long().numpy()
    idx = stratified(all_labels, limit, seed) if limit else np.arange(len(all_labels))
    model = loaded.model
    model.eval()
    feats: list[list[torch.Tensor]] = []
    logits: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            x = val_batch(ds, idx[start : start + batch_size])
            f = model.features(x)
            feats.append([t.float() for t in f])
            logits.append(model.forward_features(f).float())
    n_b = len(model.bodies) or 1
    return ValPass(
        indices=idx,
        labels=all_labels[idx],
        feats=[torch.cat([b[i] for b in feats]) if feats else torch.zeros(0) for i in range(n_b)],
        logits=torch.cat(logits) if logits else torch.zeros(0, len(loaded.classes)),
        names=backbone_names(loaded),
        total=len(all_labels),
    )


def ensure_pass(loaded: LoadedRun, bundle: DataBundle, vp: ValPass | None) -> ValPass:
    """``vp`` when a page already has it, else a fresh :func:`val_pass`."""
    return vp if vp is not None else val_pass(loaded, bundle)
