"""The one shape every project dataset has (:class:`ImageDataset`) and its two kinds:
images held in RAM (:class:`InMemoryImageDataset`) and images decoded from files per item
(:class:`FileImageDataset`, when the decoded set would not fit the memory budget).

Code outside this package reads ``ds.labels``, ``ds.images``, ``ds.augment`` and
``ds.image(i)`` directly: both kinds declare all of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import torch

from .preprocessing import file_to_uint8, images_to_float, resize_uint8

__all__ = ["ImageDataset", "InMemoryImageDataset", "FileImageDataset"]


@runtime_checkable
class ImageDataset(Protocol):
    """What training, features and insights may rely on in a dataset of this project."""

    labels: torch.Tensor  # int64, one label per item
    image_size: int  # S: items are S x S
    augment: bool  # whether __getitem__ applies random augmentation

    @property
    def images(self) -> torch.Tensor | None:
        """uint8 N x C x S x S (C = 1 or 3) when decoded in memory at final size, else None."""

    def image(self, i: int) -> torch.Tensor:
        """uint8 C x S x S of item ``i``, never augmented."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """(float32 3 x S x S in [0, 1], int label), augmented when ``augment``."""


def _make_augment() -> Any:
    from torchvision.transforms import v2  # lazy: torchvision import is slow

    # No flips: digits and many shapes are not mirror-symmetric classes.
    return v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))


class _LabelledImages(torch.utils.data.Dataset):
    """Labels, size and augmentation shared by both kinds; subclasses provide ``image(i)``."""

    def __init__(self, labels: torch.Tensor, image_size: int, augment: bool):
        self.labels = labels.long()
        self.image_size = int(image_size)
        self.augment = bool(augment)
        self._aug = _make_augment() if augment else None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def image(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.image(i)
        if self._aug is not None:
            x = self._aug(x)
        return images_to_float(x), int(self.labels[i])


class InMemoryImageDataset(_LabelledImages):
    """uint8 images held in RAM; items are float32 3 x S x S in [0, 1] and an int label.

    ``images`` is the uint8 N x C x S x S tensor (C = 1 or 3) when it is already at the final
    size, so batch code can slice it directly (see :func:`images_to_float`); it is None when
    the images were too big to resize up front and are resized per item instead.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, image_size: int, augment: bool = False):
        super().__init__(labels, image_size, augment)
        self._data = images
        self._needs_resize = tuple(images.shape[-2:]) != (self.image_size, self.image_size)

    @property
    def images(self) -> torch.Tensor | None:
        return None if self._needs_resize else self._data

    def image(self, i: int) -> torch.Tensor:
        """uint8 C x S x S of item ``i`` without augmentation."""
        x = self._data[i]
        return resize_uint8(x, self.image_size, "square") if self._needs_resize else x


class FileImageDataset(_LabelledImages):
    """Images decoded from files per item (when the decoded set would not fit the memory budget)."""

    images: torch.Tensor | None = None

    def __init__(self, paths: Sequence[Path], labels: torch.Tensor, preprocessing: dict, augment: bool = False):
        super().__init__(labels, int(preprocessing["image_size"]), augment)
        self.paths = list(paths)
        self.preprocessing = dict(preprocessing)

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> torch.Tensor:
        return file_to_uint8(self.paths[i], self.preprocessing)
