"""Grad-CAM per backbone: which layer to read, the maps, and the heat-map overlay.

:func:`cam_target` picks the layer of a body generically (the last spatial grid of at
least 2 x 2 for convnets, the last encoder block for ViT, the final norm for Swin);
:func:`gradcam_maps` runs pytorch-grad-cam through the whole (fused) model on a copy of
it, with the input carrying the gradient so frozen bodies explain too.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..i18n import _
from ..models import BackboneBody
from ..predict import LoadedRun

__all__ = ["CamTarget", "cam_target", "gradcam_maps", "cam_layers", "cam_overlay", "enlarge"]

log = logging.getLogger(__name__)


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
        raise ValueError(_("{backbone}: no layer with a spatial output to explain").format(backbone=body.name))
    grid = [(m, s) for m, s in once if s[-1] >= 2 and s[-2] >= 2]
    mod, _shape = (grid or once)[-1]
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
