"""The torchvision datasets (CIFAR-10/100, MNIST, Fashion-MNIST, SVHN, STL-10): their official
train split read from ``<first data root>/torchvision/<name>`` (downloaded there when absent),
and their class lists, kept here so listing classes needs no download.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..i18n import _
from .builtin import DIGIT_NAMES
from .pool import Pool
from .text import one_line

__all__ = ["TORCHVISION", "TV_CLASSES", "torchvision_pool"]

log = logging.getLogger(__name__)

TORCHVISION = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "stl10")

# torchvision class lists, so dataset_classes() needs no download (CIFAR-100: fine labels, sorted).
TV_CLASSES: dict[str, list[str]] = {
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
    "mnist": list(DIGIT_NAMES),
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "svhn": list(DIGIT_NAMES),
    "stl10": ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"],
}
assert len(TV_CLASSES["cifar100"]) == 100
# name -> (torchvision class, split kwargs, source mode)
_TV_SPECS: dict[str, tuple[str, dict[str, Any], str]] = {
    "cifar10": ("CIFAR10", {"train": True}, "RGB"),
    "cifar100": ("CIFAR100", {"train": True}, "RGB"),
    "mnist": ("MNIST", {"train": True}, "L"),
    "fashion_mnist": ("FashionMNIST", {"train": True}, "L"),
    "svhn": ("SVHN", {"split": "train"}, "RGB"),
    "stl10": ("STL10", {"split": "train"}, "RGB"),
}


def torchvision_pool(name: str, roots: list[Path]) -> Pool:
    """Official train split of a torchvision dataset, from ``<root>/torchvision/<name>`` (downloaded if absent)."""
    from torchvision import datasets  # lazy

    if not roots:
        raise DataError(_("no data folder is configured (TRANSFER_LAB_DATA is empty)"))
    folder = roots[0] / "torchvision" / name
    cls_name, kwargs, mode = _TV_SPECS[name]
    cls = getattr(datasets, cls_name)
    try:
        ds = cls(str(folder), download=False, **kwargs)
    except Exception:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            log.info("downloading %s into %s", name, folder)
            ds = cls(str(folder), download=True, **kwargs)
        except Exception as exc:
            raise DataError(_("{name} is not in {folder} and could not be downloaded (no network?): {error}").format(
                name=name, folder=folder, error=one_line(exc))) from None
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
        raise DataError(_("{name} in {folder} has an unexpected layout: {error}").format(
            name=name, folder=folder, error=one_line(exc))) from None
    classes = list(getattr(ds, "classes", None) or TV_CLASSES[name])
    if name in ("mnist", "svhn"):
        classes = list(DIGIT_NAMES)  # torchvision says "0 - zero"; keep names consistent with digits
    if len(labels) != len(data) or (len(labels) and (labels.min() < 0 or labels.max() >= len(classes))):
        raise DataError(_("{name} in {folder} has labels that do not match its {n} classes").format(
            name=name, folder=folder, n=len(classes)))
    return Pool(classes, labels, mode, "square", f"torchvision:{name}", images=data, location=str(folder))

