"""What every source yields before class selection and splitting: a :class:`Pool` of all its
images (uint8 in memory, or file paths to decode lazily), integer labels and class names.

Why one shape: class subsetting, the stratified split, few-shot sampling, resizing and
augmentation are then written once and behave the same whatever the source.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Pool"]


@dataclass
class Pool:
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
