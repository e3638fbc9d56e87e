"""Pictures of a story that are images, not charts: the sample grid and the top-loss gallery, as PNG bytes.

Drawn with Pillow (no browser needed), so the page, the HTML deck and the PowerPoint deck
embed the same PNG. Small images (digits are 8 px, MNIST 28 px) are enlarged with
nearest-neighbour, so a room sees pixels, not blur.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..i18n import language

__all__ = ["sample_grid_png", "gallery_png", "MAX_ROWS", "cjk_font_file"]

MAX_ROWS = 10  # classes shown in the sample grid
_BG, _INK, _MUTED, _OK, _BAD = (255, 255, 255), (15, 23, 42), (100, 116, 139), (22, 163, 74), (220, 38, 38)


@functools.lru_cache(maxsize=None)
def cjk_font_file() -> tuple[str, int] | None:
    """(file, face index) of a Simplified Chinese font (fontconfig's match for "Noto Sans CJK SC", kept only
    when fontconfig says it covers Chinese); None when there is none."""
    if not shutil.which("fc-match"):
        return None
    try:
        found = subprocess.run(["fc-match", "-f", "%{file}\t%{index}", "Noto Sans CJK SC"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        chinese = subprocess.run(["fc-list", ":lang=zh-cn", "file"], capture_output=True, text=True,
                                 timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path, _sep, index = found.partition("\t")
    files = {line.strip().rstrip(":") for line in chinese.splitlines() if line.strip()}
    if not path or path not in files:  # fontconfig fell back to a font without Chinese glyphs
        return None
    return path, int(index) if index.isdigit() else 0


def _font(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans; a CJK font when the language is Chinese (and one is installed)."""
    if language() == "zh":
        found = cjk_font_file()
        if found:
            try:
                return ImageFont.truetype(found[0], size, index=found[1])
            except OSError:
                pass
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "LiberationSans-Regular.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _tile(img: np.ndarray, side: int) -> Image.Image:
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    im = Image.fromarray(arr.astype(np.uint8))
    resample = Image.NEAREST if im.width < side else Image.BILINEAR
    return im.resize((side, side), resample)


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def sample_grid_png(grid: Mapping[str, Sequence[np.ndarray]], side: int = 72, per_row: int = 8) -> bytes:
    """One row per class (its name on the left), up to ``per_row`` images each, at most :data:`MAX_ROWS` rows."""
    rows = list(grid.items())[:MAX_ROWS]
    font = _font(max(16, side // 3))
    label_w = 40 + max([int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(str(k)[:18], font=font))
                        for k, _imgs in rows] + [40])
    gap = 8
    cols = max([min(per_row, len(v)) for _name, v in rows] + [1])
    w = label_w + cols * (side + gap) + gap
    h = max(1, len(rows)) * (side + gap) + gap
    im = Image.new("RGB", (w, h), _BG)
    draw = ImageDraw.Draw(im)
    for r, (name, imgs) in enumerate(rows):
        y = gap + r * (side + gap)
        draw.text((12, y + side // 2), _fit(draw, str(name), font, label_w - 20), fill=_INK, font=font, anchor="lm")
        for c, img in enumerate(list(imgs)[:per_row]):
            im.paste(_tile(img, side), (label_w + c * (side + gap), y))
    return _png(im)


def gallery_png(items: Sequence[tuple[np.ndarray, str, str, bool]], side: int = 140, per_row: int = 4) -> bytes:
    """Images with two caption lines each: ``(image, first line, second line, right?)``; the frame and
    the first line are green when right, red when wrong."""
    font = _font(18)
    small = _font(16)
    gap, cap = 16, 50
    n = max(1, len(items))
    cols = min(per_row, n)
    rows = (n + cols - 1) // cols
    w = cols * (side + gap) + gap
    h = rows * (side + cap + gap) + gap
    im = Image.new("RGB", (w, h), _BG)
    draw = ImageDraw.Draw(im)
    for i, (img, first, second, ok) in enumerate(items):
        x = gap + (i % cols) * (side + gap)
        y = gap + (i // cols) * (side + cap + gap)
        color = _OK if ok else _BAD
        draw.rectangle((x - 4, y - 4, x + side + 3, y + side + 3), fill=color)
        im.paste(_tile(img, side), (x, y))
        draw.text((x + side // 2, y + side + 8), _fit(draw, first, font, side + gap - 2), fill=color, font=font,
                  anchor="mt")
        draw.text((x + side // 2, y + side + 30), _fit(draw, second, small, side + gap - 2), fill=_MUTED,
                  font=small, anchor="mt")
    return _png(im)
