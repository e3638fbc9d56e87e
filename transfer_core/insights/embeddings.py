"""2-D maps of a run's validation features (PCA or t-SNE), one per backbone and the fused vector.

scikit-learn does the projection, imported on first use; at most ``max_points`` images
(stratified) so t-SNE stays interactive.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..data import DataBundle
from ..i18n import _
from ..models import FusionModel
from ..predict import LoadedRun
from .val_pass import ValPass, ensure_pass, stratified

__all__ = ["EMBED_METHODS", "embeddings"]

log = logging.getLogger(__name__)

EMBED_METHODS = ("pca", "tsne")


def _project_2d(x: np.ndarray, method: str, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    if n < 3 or x.shape[1] < 2:
        out = np.zeros((n, 2), dtype=np.float32)
        out[:, : min(2, x.shape[1])] = x[:, :2]
        return out
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float32)
    from sklearn.manifold import TSNE

    if x.shape[1] > 50 and n > 50:  # the usual t-SNE speed-up: denoise with PCA first
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=750)
    # One thread: with a few hundred points OpenMP's threads mostly wait on each other,
    # and on a busy machine they made t-SNE ~30x slower (measured: 600 points 4 s vs 113 s).
    with threadpool_limits(limits=1):
        return tsne.fit_transform(x).astype(np.float32)


def embeddings(
    loaded: LoadedRun,
    bundle: DataBundle,
    method: str = "pca",
    max_points: int = 600,
    seed: int = 0,
    vp: ValPass | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """2-D maps of the validation features: name -> (N x 2, labels, val indices).

    One map per backbone (its body output f_i) and, for fusion, one of the fused vector
    (what the classifier sees). At most ``max_points`` images (stratified), so t-SNE
    stays interactive.
    """
    if method not in EMBED_METHODS:
        raise ValueError(_("unknown embedding method {method}: use {first} or {second}").format(
            method=repr(method), first=EMBED_METHODS[0], second=EMBED_METHODS[1]))
    vp = ensure_pass(loaded, bundle, vp)
    rows = stratified(vp.labels, max_points, seed)
    feats = [f[rows] for f in vp.feats]
    named: list[tuple[str, torch.Tensor]] = list(zip(vp.names, feats))
    model = loaded.model
    if isinstance(model, FusionModel):
        with torch.no_grad():
            named.append(("fused", model.fuse(feats)))
    labels, indices = vp.labels[rows], vp.indices[rows]
    return {name: (_project_2d(t.numpy(), method, seed), labels, indices) for name, t in named}
