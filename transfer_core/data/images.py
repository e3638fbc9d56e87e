"""Opening one image: decode a file or bytes fully, EXIF-rotate it and normalise any PIL
mode (16-bit, float, palette, alpha, CMYK, ...) to 8-bit RGB; which file names are images.

Anything unreadable (corrupt, empty, truncated) is a one-line DataError: PIL's
``ImageFile.LOAD_TRUNCATED_IMAGES`` stays False, so a truncated file is refused rather than
padded with grey.
"""
from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError
from ..i18n import _
from .text import one_line

__all__ = ["IMAGE_EXTENSIONS", "hidden", "is_image_name", "normalise_image", "open_image", "load_image"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)


def hidden(name: str) -> bool:
    """Dot files and macOS ``__MACOSX`` folders: never data."""
    return name.startswith(".") or name.startswith("__MACOSX")


def is_image_name(name: str) -> bool:
    return not hidden(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _to_uint8_gray(arr: np.ndarray, mode: str) -> np.ndarray:
    """Map a 16-bit / 32-bit / float gray image to 0..255 by its value range, never by clipping."""
    if mode.startswith("I;16"):
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    a = arr.astype(np.float64)
    a[~np.isfinite(a)] = 0.0
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode == "F" and lo >= 0.0 and hi <= 1.0:
        a = a * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        pass
    elif mode == "I" and lo >= 0.0 and hi <= 65535.0:  # 16-bit data widened to int32 by PIL
        a = a * (255.0 / 65535.0)
    else:  # arbitrary range: stretch, the only mapping that keeps the content visible
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _composite_on_white(im: Image.Image) -> Image.Image:
    """Transparent pixels become white: the usual look of a transparent icon or scan."""
    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    bg.alpha_composite(rgba)
    return bg.convert("RGB")


def normalise_image(im: Image.Image) -> Image.Image:
    """EXIF-rotate and convert any PIL mode to 8-bit RGB with sensible values."""
    try:
        im = ImageOps.exif_transpose(im)
    except Exception as exc:  # broken EXIF must not make a good image unreadable
        log.debug("ignoring unusable EXIF: %s", exc)
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("1", "L"):
        return im.convert("L").convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        gray = _to_uint8_gray(np.asarray(im), mode)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode in ("P", "PA", "LA", "La", "RGBA", "RGBa"):
        return _composite_on_white(im)
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...


def open_image(src: Any, draft_size: int | None = None) -> Image.Image:
    """Decode ``src`` (path or bytes) fully into an RGB image; DataError on anything unreadable.

    ``draft_size`` lets JPEG decode at a reduced DCT scale that is still at least that size:
    big photos decode many times faster.
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        fp: Any = io.BytesIO(bytes(src))
        name = _("image data")
    else:
        fp = Path(src)
        name = str(src)
    try:
        with Image.open(fp) as im:
            if draft_size and im.format == "JPEG":
                im.draft(None, (draft_size, draft_size))
            im.load()
            out = normalise_image(im)
            out.load()
            return out
    except DataError:
        raise
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        err = DataError(_("cannot read image {name}: {error}").format(name=name, error=one_line(exc)))
        err.reason = one_line(exc)  # the decoder's reason alone: what a list of skipped files shows
        raise err from None


def load_image(path_or_bytes: str | os.PathLike | bytes) -> Image.Image:
    """Open an image file or bytes as an EXIF-transposed RGB ``PIL.Image``; DataError if unreadable."""
    return open_image(path_or_bytes)
