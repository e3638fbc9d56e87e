"""Teaching insights on a finished run: Grad-CAM, fusion contributions, embeddings,
drop-one ablation, backbone disagreement, error galleries and run comparison helpers.

Everything here works on a :class:`~transfer_core.predict.LoadedRun` (the run's own
model, classes and preprocessing) and the run's :class:`~transfer_core.data.DataBundle`
(its own validation split), so what a page shows is what the run saw. Nothing here
writes to the run store.

Most functions need one pass of the model over the validation images. :func:`val_pass`
does that pass once (body features per backbone + logits); every function takes an
optional ``vp=`` to reuse it, so a page computes it once and draws many views from it.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import DataBundle, DataError, images_to_float
from .models import BackboneBody, FusionModel
from .predict import LoadedRun

__all__ = [
    "ValPass",
    "val_pass",
    "val_image",
    "backbone_names",
    "CamTarget",
    "cam_target",
    "gradcam_maps",
    "cam_overlay",
    "contributions",
    "embeddings",
    "EMBED_METHODS",
    "ablation",
    "disagreement",
    "confusion_from_pass",
    "confusion_cell_images",
    "top_losses",
    "run_kind",
    "flatten_config",
    "config_diff",
    "class_signature",
    "not_comparable",
]

log = logging.getLogger(__name__)

EMBED_METHODS = ("pca", "tsne")


# --------------------------------------------------------------------------- validation pass


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


def _labels(ds: Any) -> np.ndarray:
    labels = getattr(ds, "labels", None)
    if isinstance(labels, torch.Tensor):
        return labels.long().numpy()
    return np.asarray([int(ds[i][1]) for i in range(len(ds))], dtype=np.int64)


def _stratified(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
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


def _batch(ds: Any, idx: Sequence[int]) -> torch.Tensor:
    """Float 3 x S x S images of ``ds`` at ``idx`` (never augmented)."""
    images = getattr(ds, "images", None)
    if isinstance(images, torch.Tensor):
        return images_to_float(images[torch.as_tensor(list(idx), dtype=torch.long)])
    if hasattr(ds, "image"):
        return torch.stack([images_to_float(ds.image(int(i))) for i in idx])
    return torch.stack([ds[int(i)][0] for i in idx])


def val_image(bundle: DataBundle, index: int) -> np.ndarray:
    """Validation image ``index`` as uint8 H x W x 3 (for galleries and the embedding picker)."""
    ds = bundle.val
    if hasattr(ds, "image"):
        x = ds.image(int(index))
        if x.shape[0] == 1:
            x = x.repeat(3, 1, 1)
        return x.permute(1, 2, 0).contiguous().numpy()
    x = ds[int(index)][0]
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def val_pass(
    loaded: LoadedRun, bundle: DataBundle, limit: int | None = None, seed: int = 0, batch_size: int = 128
) -> ValPass:
    """Body features and logits for the validation images (a stratified subset above ``limit``)."""
    ds = bundle.val
    if list(bundle.classes) != list(loaded.classes):
        raise DataError(
            f"the data now has classes {', '.join(map(str, bundle.classes))}, but the run was trained on "
            f"{', '.join(map(str, loaded.classes))}"
        )
    all_labels = _labels(ds)
    idx = _stratified(all_labels, limit, seed) if limit else np.arange(len(all_labels))
    model = loaded.model
    model.eval()
    feats: list[list[torch.Tensor]] = []
    logits: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            x = _batch(ds, idx[start : start + batch_size])
            f = model.features(x)
            feats.append([t.float() for t in f])
            logits.append(model.forward_features(f).float())
    n_b = len(getattr(model, "bodies", [])) or 1
    return ValPass(
        indices=idx,
        labels=all_labels[idx],
        feats=[torch.cat([b[i] for b in feats]) if feats else torch.zeros(0) for i in range(n_b)],
        logits=torch.cat(logits) if logits else torch.zeros(0, len(loaded.classes)),
        names=backbone_names(loaded),
        total=len(all_labels),
    )


def _vp(loaded: LoadedRun, bundle: DataBundle, vp: ValPass | None) -> ValPass:
    return vp if vp is not None else val_pass(loaded, bundle)


# --------------------------------------------------------------------------- Grad-CAM


@dataclass
class CamTarget:
    """Which module of a body Grad-CAM reads, and how to turn its output into B x C x H x W."""

    module: nn.Module
    name: str  # dotted path inside the body, shown in the UI
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None


def _vit_reshape(t: torch.Tensor) -> torch.Tensor:
    """ViT tokens B x (1 + h*w) x C -> B x C x h x w (the class token dropped)."""
    tokens = t[:, 1:, :]
    side = int(math.isqrt(tokens.shape[1]))
    return tokens.reshape(t.shape[0], side, side, t.shape[2]).permute(0, 3, 1, 2)


def _nhwc_to_nchw(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 3, 1, 2)


_ADAPTIVE_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def cam_target(body: BackboneBody, x: torch.Tensor) -> CamTarget:
    """The Grad-CAM layer of a body, chosen generically.

    Convnets: the last module (run once per forward) whose output is still a spatial
    grid of at least 2 x 2, found by one probing forward at the run's input size.
    Why not simply the last convolution: at small inputs (32 px) the last stage is
    1 x 1, and a 1 x 1 map cannot say where the model looked. ViT: the last encoder
    block's first LayerNorm, tokens reshaped to their patch grid. Swin: the final norm
    (channels-last) permuted to channels-first.
    """
    family = body.spec.family
    inner = body.body
    if family == "vit":
        block = inner.encoder.layers[-1]
        return CamTarget(block.ln_1, f"encoder.layers.{len(inner.encoder.layers) - 1}.ln_1", _vit_reshape)
    if family == "swin":
        return CamTarget(inner.norm, "norm", _nhwc_to_nchw)

    names = {m: n for n, m in inner.named_modules() if n}
    calls: dict[nn.Module, int] = {}
    order: list[tuple[nn.Module, tuple[int, ...]]] = []

    def hook(mod: nn.Module, _inp: Any, out: Any) -> None:
        calls[mod] = calls.get(mod, 0) + 1
        # Adaptive pools (VGG's, AlexNet's 7 x 7) only resample the grid before the head.
        if isinstance(out, torch.Tensor) and out.dim() == 4 and not isinstance(mod, _ADAPTIVE_POOLS):
            order.append((mod, tuple(out.shape)))

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        with torch.no_grad():
            body(x[:1])
    finally:
        for h in handles:
            h.remove()
    once = [(m, s) for m, s in order if calls.get(m) == 1]
    if not once:
        raise ValueError(f"{body.name}: no layer with a spatial output to explain")
    grid = [(m, s) for m, s in once if s[-1] >= 2 and s[-2] >= 2]
    mod, _ = (grid or once)[-1]
    return CamTarget(mod, names[mod])


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    return x.unsqueeze(0) if x.dim() == 3 else x


def gradcam_maps(loaded: LoadedRun, x: torch.Tensor, target: int | None = None) -> list[np.ndarray]:
    """One Grad-CAM map per backbone for image ``x`` (3 x S x S or 1 x 3 x S x S in [0, 1]).

    Each map is H x W (the run's image size), float32 in [0, 1] (pytorch-grad-cam scales
    it per image). ``target`` is the class to explain (default: the predicted class). For
    a fusion model every map is taken through the whole fused model, so it shows where
    each backbone looked *for the fused decision*. The model is copied first: the hooks
    never touch the (shared, cached) model of the run.
    """
    from pytorch_grad_cam import GradCAM  # lazy: pulls in OpenCV
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = _as_batch(x).float()[:1]
    model = copy.deepcopy(loaded.model).eval()
    with torch.no_grad():
        cls = int(model(x).argmax(1)) if target is None else int(target)
    maps: list[np.ndarray] = []
    for body in model.bodies:
        tgt = cam_target(body, x)
        with GradCAM(model=model, target_layers=[tgt.module], reshape_transform=tgt.reshape) as cam:
            # Gradients must reach a frozen body's layers too: make the input require them.
            cam.compute_input_gradient = True
            grayscale = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(cls)])
        maps.append(np.nan_to_num(np.asarray(grayscale[0], dtype=np.float32)).clip(0.0, 1.0))
    return maps


def cam_layers(loaded: LoadedRun, x: torch.Tensor) -> list[str]:
    """The layer each backbone's Grad-CAM map reads (for a caption)."""
    x = _as_batch(x).float()[:1]
    return [cam_target(b, x).name for b in loaded.model.bodies]


__all__.append("cam_layers")


def cam_overlay(image: np.ndarray, cam: np.ndarray, weight: float = 0.5, min_size: int = 0) -> np.ndarray:
    """Grad-CAM heat map over the image: uint8 H x W x 3 (image float [0, 1] or uint8).

    ``min_size``: enlarge small results (nearest neighbour, whole pixels) so a 32 px
    image shows crisp instead of blurred by the browser.
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    img = np.asarray(image)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        img = np.transpose(img, (1, 2, 0))
    out = show_cam_on_image(img.astype(np.float32).clip(0, 1), cam.astype(np.float32), use_rgb=True, image_weight=1 - weight)
    return enlarge(out, min_size)


def enlarge(image: np.ndarray, min_size: int) -> np.ndarray:
    """Repeat whole pixels until the image is at least ``min_size`` high (float [0, 1] -> uint8)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (img.astype(np.float32).clip(0, 1) * 255).round().astype(np.uint8)
    if min_size and 0 < img.shape[0] < min_size:
        k = -(-min_size // img.shape[0])
        img = np.repeat(np.repeat(img, k, axis=0), k, axis=1)
    return img


__all__.append("enlarge")


# --------------------------------------------------------------------------- fusion contributions


def _projected(model: FusionModel, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [p(f) for p, f in zip(model.projections, feats)]


def contributions(loaded: LoadedRun, x: torch.Tensor) -> list[float]:
    """Each backbone's share of the fused vector for image(s) ``x``: alpha_i * ||P_i f_i(x)||.

    Concat fusion has no alpha: its contributions are ||P_i f_i(x)||. A transfer run has
    one backbone: [||f(x)||]. With a batch, the mean over the images.
    """
    model = loaded.model
    x = _as_batch(x).float()
    with torch.no_grad():
        feats = model.features(x)
        if not isinstance(model, FusionModel):
            return [float(feats[0].norm(dim=1).mean())]
        proj = _projected(model, feats)
        alpha = model.alpha_list() if model.mode == "sum" else [1.0] * len(proj)
        return [float(a * p.norm(dim=1).mean()) for a, p in zip(alpha, proj)]


def mean_contributions(loaded: LoadedRun, vp: ValPass) -> list[float]:
    """:func:`contributions` averaged over the images of a validation pass (no new forward)."""
    model = loaded.model
    with torch.no_grad():
        if not isinstance(model, FusionModel):
            return [float(vp.feats[0].norm(dim=1).mean())]
        proj = _projected(model, vp.feats)
        alpha = model.alpha_list() if model.mode == "sum" else [1.0] * len(proj)
        return [float(a * p.norm(dim=1).mean()) for a, p in zip(alpha, proj)]


__all__.append("mean_contributions")


# --------------------------------------------------------------------------- embeddings


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
        raise ValueError(f"unknown embedding method {method!r}: use {' or '.join(EMBED_METHODS)}")
    vp = _vp(loaded, bundle, vp)
    rows = _stratified(vp.labels, max_points, seed)
    feats = [f[rows] for f in vp.feats]
    named: list[tuple[str, torch.Tensor]] = list(zip(vp.names, feats))
    model = loaded.model
    if isinstance(model, FusionModel):
        with torch.no_grad():
            named.append(("fused", model.fuse(feats)))
    labels, indices = vp.labels[rows], vp.indices[rows]
    return {name: (_project_2d(t.numpy(), method, seed), labels, indices) for name, t in named}


# --------------------------------------------------------------------------- fusion ablation / disagreement


def _fuse_keep(model: FusionModel, feats: Sequence[torch.Tensor], keep: set[int]) -> torch.Tensor:
    """Like ``model.fuse`` but with every backbone outside ``keep`` removed (its P_i f_i zeroed).

    ``_fuse_keep(m, f, all but {i})`` equals ``m.fuse(f, drop=i)`` (checked by the tests).
    """
    projected = _projected(model, feats)
    projected = [p if i in keep else torch.zeros_like(p) for i, p in enumerate(projected)]
    if model.mode == "concat":
        z = torch.cat(projected, dim=1)
    else:
        a = model.alpha().to(projected[0].dtype)
        z = sum(a[i] * projected[i] for i in range(len(projected)))
    return model.phi(z)


def _require_fusion(loaded: LoadedRun) -> FusionModel:
    if not isinstance(loaded.model, FusionModel):
        raise ValueError(f"run {loaded.run.id} is a {loaded.cfg.method} run: this needs a fusion run")
    return loaded.model


def ablation(loaded: LoadedRun, bundle: DataBundle, vp: ValPass | None = None) -> list[dict[str, Any]]:
    """Validation accuracy of the fusion model with each backbone's contribution removed.

    Rows: the full model first (``removed`` = None), then one per backbone with
    ``val_acc`` and ``change`` (accuracy minus the full model's: negative = it helped).
    """
    model = _require_fusion(loaded)
    vp = _vp(loaded, bundle, vp)
    full = vp.acc
    rows: list[dict[str, Any]] = [{"removed": None, "val_acc": full, "change": 0.0}]
    with torch.no_grad():
        for i, name in enumerate(vp.names):
            preds = model.classifier(model.fuse(vp.feats, drop=i)).argmax(1).numpy()
            acc = float((preds == vp.labels).mean()) if len(preds) else 0.0
            rows.append({"removed": name, "val_acc": acc, "change": acc - full})
    return rows


def disagreement(loaded: LoadedRun, bundle: DataBundle, vp: ValPass | None = None) -> dict[str, Any]:
    """Which backbone is right where another is wrong.

    Backbone i alone = the fusion model with every OTHER backbone dropped.
    ``matrix[i][j]`` = fraction of validation images where i alone is right and j alone
    is wrong (the diagonal is 0). Also ``solo_acc`` (accuracy of each backbone alone) and
    ``both_wrong`` (fraction where all of them are wrong).
    """
    model = _require_fusion(loaded)
    vp = _vp(loaded, bundle, vp)
    n = len(vp.names)
    right = []
    with torch.no_grad():
        for i in range(n):
            preds = model.classifier(_fuse_keep(model, vp.feats, {i})).argmax(1).numpy()
            right.append(preds == vp.labels)
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


# --------------------------------------------------------------------------- galleries


def confusion_from_pass(vp: ValPass, classes: Sequence[str]) -> dict[str, Any]:
    """{"labels", "matrix"} of the pass (rows true, columns predicted), like confusion.json."""
    from .interpret import confusion

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
    vp = _vp(loaded, bundle, vp)
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
    vp = _vp(loaded, bundle, vp)
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


# --------------------------------------------------------------------------- comparing runs (no torch)


def run_kind(cfg: Mapping[str, Any]) -> str:
    """"fusion" (method fusion), "scratch" (every backbone weights none and freeze 0), else "transfer"."""
    if cfg.get("method") == "fusion":
        return "fusion"
    bbs = [b for b in (cfg.get("backbones") or []) if isinstance(b, Mapping)]
    if bbs and all(str(b.get("weights", "")).strip() == "none" and b.get("freeze", 0) in (0, "0") for b in bbs):
        return "scratch"
    return "transfer"


def flatten_config(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"train.lr": 0.001, "backbones.0.name": "resnet18", ...}; lists are indexed, empty ones kept."""
    out: dict[str, Any] = {}
    if isinstance(d, Mapping) and d:
        for k, v in d.items():
            out.update(flatten_config(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, (list, tuple)) and d and any(isinstance(v, (Mapping, list, tuple)) for v in d):
        for i, v in enumerate(d):
            out.update(flatten_config(v, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix] = list(d) if isinstance(d, tuple) else d
    return out


_MISSING = "—"


def config_diff(configs: Mapping[str, Mapping[str, Any]], ignore: Sequence[str] = ("name",)) -> dict[str, dict[str, Any]]:
    """Only the dotted keys whose values differ between the configs: key -> {run: value}.

    A key a config lacks shows as "—". Keys are in first-seen order.
    """
    flat = {rid: flatten_config(cfg) for rid, cfg in configs.items()}
    keys: list[str] = []
    for f in flat.values():
        keys.extend(k for k in f if k not in keys)
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        if key in ignore:
            continue
        values = {rid: f.get(key, _MISSING) for rid, f in flat.items()}
        if len({repr(v) for v in values.values()}) > 1:
            out[key] = values
    return out


def class_signature(cfg: Mapping[str, Any]) -> tuple[str, Any]:
    """What must match for two runs' accuracies to be comparable: dataset and class selection."""
    data = cfg.get("data") or {}
    dataset = str(data.get("dataset", "?"))
    classes = data.get("classes")
    classes_key: Any = "all" if classes is None else tuple(str(c) for c in classes)
    if dataset == "shapes" and classes is None:
        classes_key = f"all of {data.get('shapes_classes', 6)}"
    return dataset, classes_key


def not_comparable(configs: Mapping[str, Mapping[str, Any]]) -> tuple[tuple[str, Any] | None, list[str]]:
    """(reference signature, runs that do not share it).

    The reference is the signature most runs share (ties: the first run's), so one odd
    run out is the one flagged.
    """
    sigs = {rid: class_signature(cfg) for rid, cfg in configs.items()}
    if not sigs:
        return None, []
    counts: dict[tuple[str, Any], int] = {}
    for s in sigs.values():
        counts[s] = counts.get(s, 0) + 1
    first = next(iter(sigs.values()))
    ref = max(counts, key=lambda s: (counts[s], s == first))
    return ref, [rid for rid, s in sigs.items() if s != ref]
