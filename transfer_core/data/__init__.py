"""Datasets for Transfer Lab: built-in, torchvision and folder/zip sources, splits, transforms.

The pipeline, one module per step: a source (:mod:`.builtin`, :mod:`.torchvision_sets`,
:mod:`.folders` with :mod:`.safe_zip`, found through :mod:`.locations`) yields a
:class:`~.pool.Pool` of uint8 images (decoded by :mod:`.images`); :mod:`.splits` selects
classes and splits them; :mod:`.bundle` wraps the result as :mod:`.datasets` resized by
:mod:`.preprocessing`, the recipe prediction reuses. Only the public names are re-exported.
"""
from __future__ import annotations

from ..errors import DataError
from .builtin import BUILTIN, SHAPES
from .bundle import DataBundle, build_data, dataset_classes, sample_grid
from .datasets import FileImageDataset, ImageDataset, InMemoryImageDataset
from .images import IMAGE_EXTENSIONS, load_image
from .locations import list_dataset_choices, resolve_dataset_path
from .preprocessing import MEMORY_BUDGET_BYTES, images_to_float, preprocess_image
from .safe_zip import ZIP_MARKER, ZIP_MAX_BYTES, ZIP_MAX_MEMBERS, safe_extract_zip
from .torchvision_sets import TORCHVISION

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
    "ImageDataset",
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
