"""The top of the data pipeline: :func:`build_data` turns ``cfg.data`` and a seed into a
:class:`DataBundle` (train and validation datasets, class names, the preprocessing recipe and
an ``info`` dict of counts, skipped files, warnings and a fingerprint); also the class names
of a dataset without loading it, and a per-class sample grid for the Data page.

Every source becomes a :class:`~.pool.Pool` first; images are resized once at build time
(not per item) so training spends its time in the model, not in PIL.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import ConfigError, DataError
from ..i18n import _
from .builtin import BUILTIN, DIGIT_NAMES, SHAPES, builtin_pool
from .datasets import FileImageDataset, ImageDataset, InMemoryImageDataset
from .folders import class_names, folder_pool, zip_class_names, zip_dest, zip_folder
from .locations import RootsArg, resolve_dataset_path, roots_list
from .pool import Pool
from .preprocessing import fits_in_memory, preprocessing_dict, resize_chunked
from .safe_zip import read_marker, zip_stamp
from .splits import select_classes, split, unlabeled_rest
from .text import human_size
from .torchvision_sets import TORCHVISION, TV_CLASSES, torchvision_pool

__all__ = ["DataBundle", "build_data", "dataset_classes", "sample_grid"]

log = logging.getLogger(__name__)


@dataclass
class DataBundle:
    """Everything training and the UI need about the data of one run."""

    train: ImageDataset  # items: (float32 3xSxS in [0,1], int label)
    val: ImageDataset
    classes: list[str]  # selected class names in label order
    preprocessing: dict  # recipe to rebuild the tensor from an image file (see preprocess_image)
    info: dict = field(default_factory=dict)  # source, counts, skipped, warnings, ...
    unlabeled: ImageDataset | None = None  # training images beyond train_per_class, labels -1 (build_data(unlabeled=True))


def _pool_for(cfg: DataConfig, roots: list[Path]) -> Pool:
    name = (cfg.dataset or "").strip()
    if name in BUILTIN:
        return builtin_pool(cfg)
    if name.lower() in TORCHVISION:
        return torchvision_pool(name.lower(), roots)
    path = resolve_dataset_path(name, roots)
    if path.is_file() and path.suffix.lower() == ".zip":
        return folder_pool(zip_folder(path), cfg, roots, f"zip:{path}", name)
    if path.is_dir():
        return folder_pool(path, cfg, roots, f"folder:{path}", name)
    raise DataError(_("{name} is neither a folder of class folders nor a .zip file").format(name=name))


def _check_cfg(cfg: DataConfig) -> None:
    if not (0.0 < float(cfg.val_fraction) < 1.0):
        raise ConfigError("data.val_fraction", _("must be between 0 and 1 (exclusive), got {value}").format(value=cfg.val_fraction))
    if int(cfg.image_size) < 1:
        raise ConfigError("data.image_size", _("must be positive, got {value}").format(value=cfg.image_size))
    if cfg.train_per_class is not None and cfg.train_per_class < 1:
        raise ConfigError("data.train_per_class", _("must be at least {low}, got {value}").format(low=1, value=cfg.train_per_class))


def _datasets(
    pool: Pool, tr_idx: np.ndarray, tr_lab: np.ndarray, va_idx: np.ndarray, va_lab: np.ndarray,
    size: int, prep: dict, augment: bool,
) -> tuple[ImageDataset, ImageDataset]:
    """The train and validation datasets of a split: in memory when the pool is, else from files."""
    if pool.images is None:
        assert pool.paths is not None
        train = FileImageDataset([pool.paths[i] for i in tr_idx], torch.from_numpy(tr_lab), prep, augment)
        return train, FileImageDataset([pool.paths[i] for i in va_idx], torch.from_numpy(va_lab), prep, False)
    imgs = pool.images
    tr_imgs = imgs[torch.as_tensor(tr_idx, dtype=torch.long)]
    va_imgs = imgs[torch.as_tensor(va_idx, dtype=torch.long)]
    needed = (len(tr_idx) + len(va_idx)) * imgs.shape[1] * size * size
    if fits_in_memory(needed):
        tr_imgs, va_imgs = resize_chunked(tr_imgs, size), resize_chunked(va_imgs, size)
    else:
        log.info("resized images would need %s: resizing per item instead", human_size(needed))
    train_ds = InMemoryImageDataset(tr_imgs, torch.from_numpy(tr_lab), size, augment)
    return train_ds, InMemoryImageDataset(va_imgs, torch.from_numpy(va_lab), size, False)


def _unlabeled(pool: Pool, idx: np.ndarray, size: int, prep: dict) -> ImageDataset:
    """The images at pool indices ``idx`` with every label -1: the pool's labels are not copied."""
    none = torch.full((len(idx),), -1, dtype=torch.long)
    if pool.images is None:
        assert pool.paths is not None
        return FileImageDataset([pool.paths[i] for i in idx], none, prep, False)
    imgs = pool.images[torch.as_tensor(idx, dtype=torch.long)]
    if fits_in_memory(len(idx) * imgs.shape[1] * size * size):
        imgs = resize_chunked(imgs, size)
    return InMemoryImageDataset(imgs, none, size, False)


def build_data(cfg: DataConfig, seed: int, roots: RootsArg = None, unlabeled: bool = False) -> DataBundle:
    """Load the source named by ``cfg.dataset``, select classes, split and wrap as datasets.

    ``unlabeled``: also ``bundle.unlabeled``, the training images of the selected classes
    beyond ``train_per_class`` (never validation images), without their labels.

    Deterministic for a seed: the validation split of each class depends only on
    (seed, class name, the class's images), never on ``train_per_class`` or on the other
    selected classes, so scratch/transfer twins and few-shot variants share one val set.
    """
    t0 = time.perf_counter()
    _check_cfg(cfg)
    pool = _pool_for(cfg, roots_list(roots))
    is_folder = pool.source.startswith(("folder:", "zip:"))
    # Folders select classes before decoding; the other sources select here.
    order = list(range(len(pool.classes))) if is_folder else select_classes(cfg.classes, pool.classes, cfg.dataset)
    names = [pool.classes[i] for i in order]
    tr_idx, tr_lab, va_idx, va_lab, split_warnings = split(
        pool.labels, order, pool.classes, seed, float(cfg.val_fraction), cfg.train_per_class
    )
    warnings = pool.warnings + split_warnings
    size = int(cfg.image_size)
    prep = preprocessing_dict(size, pool.resize, pool.source_mode)
    train, val = _datasets(pool, tr_idx, tr_lab, va_idx, va_lab, size, prep, cfg.augment)

    for w in split_warnings:
        log.warning("%s", w)
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
        "in_memory": pool.images is not None,
        "load_seconds": round(time.perf_counter() - t0, 3),
        "fingerprint": fingerprint,
    }
    rest_ds = None
    if unlabeled:
        rest = unlabeled_rest(pool.labels, order, pool.classes, seed, float(cfg.val_fraction), cfg.train_per_class)
        rest_ds = _unlabeled(pool, rest, size, prep)
        info["num_unlabeled"] = int(len(rest))
        info["unlabeled_fingerprint"] = hashlib.sha256(
            (fingerprint + ":" + hashlib.sha256(rest.astype(np.int64).tobytes()).hexdigest()).encode()
        ).hexdigest()[:16]
    log.info(
        "data %s: %d classes, %d train / %d val, %d skipped, %.2fs",
        pool.source, len(names), len(tr_idx), len(va_idx), pool.skipped, info["load_seconds"],
    )
    return DataBundle(train=train, val=val, classes=names, preprocessing=prep, info=info, unlabeled=rest_ds)


def dataset_classes(dataset: str, cfg: DataConfig | None = None, roots: RootsArg = None) -> list[str]:
    """All class names of a dataset, without loading images (a zip is listed, not extracted)."""
    cfg = cfg or DataConfig()
    name = (dataset or "").strip()
    if name in ("digits", "mnist5k"):
        return list(DIGIT_NAMES)
    if name == "shapes":
        return list(SHAPES[: max(0, min(int(cfg.shapes_classes), len(SHAPES)))])
    if name.lower() in TORCHVISION:
        return list(TV_CLASSES[name.lower()])
    path = resolve_dataset_path(name, roots_list(roots))
    if path.is_file() and path.suffix.lower() == ".zip":
        dest = zip_dest(path)
        if dest.is_dir() and read_marker(dest) == zip_stamp(path):
            return class_names(dest)
        return zip_class_names(path)
    if path.is_dir():
        return class_names(path)
    raise DataError(_("{name} is neither a folder of class folders nor a .zip file").format(name=name))


def sample_grid(bundle: DataBundle, per_class: int = 8) -> dict[str, list[np.ndarray]]:
    """Up to ``per_class`` un-augmented H x W x 3 uint8 images per class (train first, then val)."""
    out: dict[str, list[np.ndarray]] = {}
    for k, name in enumerate(bundle.classes):
        imgs: list[np.ndarray] = []
        for ds in (bundle.train, bundle.val):
            if len(imgs) >= per_class:
                break
            for i in torch.nonzero(ds.labels == k).flatten().tolist()[: per_class - len(imgs)]:
                try:
                    x = ds.image(i)
                except DataError as exc:  # a lazily read file vanished
                    log.warning("%s", exc)
                    continue
                if x.shape[0] == 1:
                    x = x.repeat(3, 1, 1)
                imgs.append(x.permute(1, 2, 0).contiguous().numpy())
        out[name] = imgs
    return out
