"""How batches reach the model: DataLoaders over a split, whole-batch views, unaugmented passes.

Datasets follow the ImageDataset protocol of :mod:`transfer_core.data` (``labels``,
``images``, ``augment``, ``image(i)``). An in-memory uint8 split without augmentation is
fetched a whole batch per index list (:class:`_BatchView`), converted to float on the
device by :func:`to_model_input`; cached features (a ``TensorDataset``) likewise. Either
way the order is the one ``DataLoader(shuffle=True, generator=...)`` gives, so results do
not depend on the path taken.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler, TensorDataset

from ..data import images_to_float

if TYPE_CHECKING:  # only a type: the single-process path never imports torch.distributed
    from ..distributed import DistContext

__all__ = ["make_loader", "batch_view", "image_batches", "to_model_input"]

log = logging.getLogger(__name__)


class _BatchView(Dataset):
    """Index in-memory tensors (uint8 images and labels, or cached features and labels) by a
    whole batch of indices at once.

    Why: per-item ``__getitem__`` + collate costs Python time per item; one index tensor
    slices each tensor in one copy, and the float conversion of images then happens per
    batch on the device (see :func:`to_model_input`). Same order, same values.
    """

    def __init__(self, *tensors: torch.Tensor):
        self.tensors = tensors

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def __getitem__(self, idx: list[int]) -> tuple[torch.Tensor, ...]:
        i = torch.as_tensor(idx, dtype=torch.long, device=self.tensors[0].device)
        return tuple(t[i] for t in self.tensors)


def batch_view(ds: Any) -> _BatchView | None:
    """A whole-batch view of ``ds`` when it is uint8 in memory and not augmented, else None."""
    images = ds.images
    if images is not None and images.dtype == torch.uint8 and not ds.augment and len(images) == len(ds) == len(ds.labels):
        return _BatchView(images, ds.labels.long())
    return None


def make_loader(
    ds: Dataset,
    *,
    train: bool,
    epoch: int,
    batch_size: int,
    seed: int,
    num_workers: int,
    device: torch.device,
    dist: DistContext | None = None,
) -> DataLoader:
    """Batches of ``ds``: shuffled with a per-epoch seed for training, in order otherwise."""
    gen = torch.Generator().manual_seed(seed * 1000 + epoch)
    bs = batch_size if train else max(batch_size, 128)
    # A last batch of one breaks BatchNorm in train mode; drop it only then.
    drop_last = train and len(ds) > bs and len(ds) % bs == 1
    shard = dist.sampler(ds, train, seed, epoch) if dist is not None else None
    if shard is not None:  # DDP hook: this rank's share of the split and of each (global) batch
        bs = dist.local_batch(bs)
        drop_last = train and len(shard) > bs and len(shard) % bs == 1
    tensors = isinstance(ds, TensorDataset)
    on_device = tensors and ds.tensors[0].device.type != "cpu"
    workers = 0 if tensors else num_workers
    pin = device.type == "cuda" and not on_device
    batched: Dataset | None = _BatchView(*ds.tensors) if tensors else batch_view(ds)
    if batched is not None:
        sampler = shard if shard is not None else (RandomSampler(ds, generator=gen) if train else SequentialSampler(ds))
        return DataLoader(
            batched,
            batch_size=None,
            sampler=BatchSampler(sampler, bs, drop_last),
            generator=gen if train else None,
            num_workers=workers,
            pin_memory=pin,
        )
    return DataLoader(
        ds,
        batch_size=bs,
        shuffle=train and shard is None,
        sampler=shard,
        generator=gen if train else None,
        num_workers=workers,
        pin_memory=pin,
        drop_last=drop_last,
        persistent_workers=False,
    )


class _Unaugmented(Dataset):
    """Items of ``ds`` without its training augmentation: ``ds.image(i)`` (uint8) and the label."""

    def __init__(self, ds: Any):
        self.ds = ds
        self.labels = ds.labels.long()

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.ds.image(i), int(self.labels[i])


def image_batches(ds: Any, batch_size: int, num_workers: int = 0, pin_memory: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Unaugmented ``(images, labels)`` batches of a dataset, in order, each image read once.

    In-memory datasets are sliced as uint8 (converted to float by the caller, on the
    device); file datasets are decoded item by item through ``ds.image`` (no
    augmentation), in worker processes when ``num_workers`` > 0.
    """
    images = ds.images
    if images is not None:
        labels = ds.labels.long()
        for i in range(0, len(ds), batch_size):
            x, y = images[i : i + batch_size], labels[i : i + batch_size]
            yield (x.pin_memory() if pin_memory else x), y
        return
    loader = DataLoader(_Unaugmented(ds), batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin_memory)
    yield from loader


def to_model_input(x: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """A batch on its way to the model: to the device, uint8 -> float [0, 1] there, 1 -> 3 channels."""
    x = x.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        x = images_to_float(x)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
