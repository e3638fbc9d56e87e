"""The recipe that turns an image into exactly the tensor training saw: resizing (squash for
stored tensors, shorter side + centre crop for files), uint8 -> float, and the
``preprocessing`` dict saved with every run.

Prediction (:func:`preprocess_image`) and the folder loader share these helpers, so they
cannot drift apart. Normalisation (mean/std) is deliberately not applied: each backbone
applies its own inside the model, so fused backbones with different statistics can share
one batch. :data:`MEMORY_BUDGET_BYTES` decides whether decoded images are kept in RAM.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..errors import DataError
from ..i18n import _
from .images import normalise_image, open_image
from .text import one_line

__all__ = [
    "MEMORY_BUDGET_BYTES",
    "PREPROCESSING_VERSION",
    "fits_in_memory",
    "resize_uint8",
    "resize_chunked",
    "images_to_float",
    "file_to_uint8",
    "preprocess_image",
    "preprocessing_dict",
]

# Decoded, resized images are kept in RAM up to this many bytes; above it folder images
# are decoded lazily per item and in-memory sources are resized per item.
MEMORY_BUDGET_BYTES = 2 * 1024**3
PREPROCESSING_VERSION = 1


def fits_in_memory(nbytes: int) -> bool:
    """Whether ``nbytes`` of decoded images may be held in RAM (read at call time: settable)."""
    return nbytes <= MEMORY_BUDGET_BYTES


def _pil_to_uint8(img: Image.Image, source_mode: str, invert: bool) -> torch.Tensor:
    """RGB PIL image -> uint8 C x H x W, C = 1 for gray sources (same luma as PIL's convert('L'))."""
    if source_mode == "L":
        arr = np.array(img if img.mode == "L" else img.convert("L"), dtype=np.uint8)[None]
    else:
        arr = np.array(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
    if invert:
        arr = 255 - arr
    return torch.from_numpy(arr)  # a strided view; copied once where it is stored


def resize_uint8(x: torch.Tensor, size: int, mode: str = "square") -> torch.Tensor:
    """Squash uint8 (N x) C x H x W to size x size: the "square" mode of in-memory sources.

    Training resizes whole stored batches with it and prediction one image, so both get the
    same pixels: bilinear with antialias, rounded back to uint8.
    """
    if mode != "square":
        raise DataError(_("resize mode {mode!r} applies to image files, not stored tensors").format(mode=mode))
    single = x.dim() == 3
    if single:
        x = x.unsqueeze(0)
    if tuple(x.shape[-2:]) != (size, size):
        y = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        # Round in numpy: tiny torch element-wise ops can stall for milliseconds waking OpenMP
        # threads on a busy CPU (seen: 10 ms per image).
        x = torch.from_numpy(np.clip(np.rint(y.numpy()), 0, 255).astype(np.uint8))
    return x[0] if single else x.contiguous()


def _crop_resize_pil(img: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size`` (bilinear, antialiased), then the central size x size square.

    Done in PIL rather than torch: per image it is several times cheaper, releases the GIL,
    and never wakes torch's thread pool (a busy CPU made tiny torch ops cost milliseconds).
    """
    w, h = img.size
    if h <= w:
        th, tw = size, max(size, int(round(w * size / h)))
    else:
        th, tw = max(size, int(round(h * size / w))), size
    if (tw, th) != (w, h):
        img = img.resize((tw, th), Image.Resampling.BILINEAR)
    if (tw, th) != (size, size):
        left, top = int(round((tw - size) / 2.0)), int(round((th - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
    return img


def resize_chunked(x: torch.Tensor, size: int, mode: str = "square", chunk: int = 512) -> torch.Tensor:
    """:func:`resize_uint8` over a whole stored set, ``chunk`` images at a time."""
    if tuple(x.shape[-2:]) == (size, size) or len(x) == 0:
        return x.contiguous()
    out = torch.empty((len(x), x.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, len(x), chunk):
        out[i : i + chunk] = resize_uint8(x[i : i + chunk], size, mode)
    return out


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N x) C x H x W with C in {1, 3} -> float32 (N x) 3 x H x W in [0, 1].

    The fast path for batch code that reads ``dataset.images`` directly.
    """
    x = images.float().div_(255.0)
    c_dim = -3
    if x.shape[c_dim] == 1:
        reps = [1] * x.dim()
        reps[c_dim] = 3
        x = x.repeat(*reps)
    return x


def _check_preprocessing(prep: dict) -> tuple[int, str, str, bool]:
    try:
        size = int(prep["image_size"])
        mode = str(prep.get("resize", "square"))
        source_mode = str(prep.get("source_mode", "RGB"))
        invert = bool(prep.get("invert", False))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(_("preprocessing is incomplete or invalid: {error}").format(error=one_line(exc))) from None
    if source_mode not in ("L", "RGB"):
        raise DataError(_("preprocessing has an unknown source_mode {mode!r}").format(mode=source_mode))
    return size, mode, source_mode, invert


def _image_to_uint8(img: Image.Image, prep: dict) -> torch.Tensor:
    """Normalised RGB PIL image -> uint8 C x S x S exactly as training stores it."""
    size, mode, source_mode, invert = _check_preprocessing(prep)
    if mode == "shorter_side_center_crop":  # folders: decoded and resized file by file
        if source_mode == "L" and img.mode != "L":
            img = img.convert("L")
        if invert:
            img = ImageOps.invert(img)
        return _pil_to_uint8(_crop_resize_pil(img, size), source_mode, False)
    if mode == "square":  # in-memory sources: stored tensors resized in batches
        return resize_uint8(_pil_to_uint8(img, source_mode, invert), size, "square")
    raise DataError(_("unknown resize mode {mode!r} in preprocessing").format(mode=mode))


def file_to_uint8(src: Any, prep: dict) -> torch.Tensor:
    """An image file (path or bytes) -> uint8 C x S x S as training stores it."""
    size = int(prep["image_size"])
    return _image_to_uint8(open_image(src, draft_size=size if prep.get("jpeg_draft", True) else None), prep)


def preprocess_image(image: Image.Image | str | os.PathLike | bytes, preprocessing: dict) -> torch.Tensor:
    """Turn an image (PIL, path or bytes) into the float 3 x S x S tensor training would have seen."""
    if isinstance(image, Image.Image):
        t = _image_to_uint8(normalise_image(image), preprocessing)
    else:
        t = file_to_uint8(image, preprocessing)
    return images_to_float(t)


def preprocessing_dict(size: int, resize: str, source_mode: str) -> dict:
    """The ``preprocessing`` recipe saved with a run."""
    return {
        "image_size": int(size),
        "resize": resize,  # "square" (in-memory sources) | "shorter_side_center_crop" (folders)
        "grayscale_to_rgb": True,
        "source_mode": source_mode,  # "L": converted to gray first (luma), then repeated to 3 channels
        "invert": False,  # 255 - x before resizing (e.g. dark-on-light drawings for MNIST-like runs)
        "interpolation": "bilinear",
        "antialias": True,
        "jpeg_draft": True,  # JPEG decoded at a reduced DCT scale >= image_size
        "value_range": [0.0, 1.0],  # no mean/std: backbones normalise inside the model
        "version": PREPROCESSING_VERSION,
    }
