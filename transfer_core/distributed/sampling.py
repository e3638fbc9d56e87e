"""How a torchrun job splits data between its ranks, without any collective.

Training batches come from a :class:`~torch.utils.data.DistributedSampler` seeded with
``cfg.seed`` and ``set_epoch(epoch)``; ``train.batch_size`` stays the *global* batch
(each rank takes ``ceil(batch_size / N)``). Evaluation and feature extraction shard by
stride with no padding (rank ``r`` takes items or batches ``r, r + N, ...``), and the
helpers here put the gathered shards back into the single-process order. The
collectives themselves are :class:`~transfer_core.distributed.context.DistContext`'s.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

__all__ = [
    "Strided",
    "Rows",
    "make_sampler",
    "local_batch",
    "batch_shard",
    "shard_rows",
    "interleave",
    "unshard_batches",
]


class Strided(Sampler[int]):
    """Indices ``rank, rank + N, ...``: every item exactly once over the ranks (no padding)."""

    def __init__(self, n: int, rank: int, world: int):
        self.idx = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.idx)

    def __len__(self) -> int:
        return len(self.idx)


class Rows(Dataset):
    """Rows ``idx`` of an ImageDataset, in that order, itself an ImageDataset (labels, images, image(i))."""

    def __init__(self, ds: Any, idx: Sequence[int]):
        self.ds, self.idx = ds, list(idx)
        t = torch.as_tensor(self.idx, dtype=torch.long)
        self.labels: torch.Tensor = ds.labels[t]
        self.images: torch.Tensor | None = ds.images[t] if ds.images is not None else None
        self.image_size: int = ds.image_size
        self.augment: bool = ds.augment

    def image(self, i: int) -> torch.Tensor:
        return self.ds.image(self.idx[i])

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> Any:
        return self.ds[self.idx[i]]


def make_sampler(ds: Dataset, train: bool, seed: int, epoch: int, rank: int, world: int) -> Sampler[int]:
    """Training: DistributedSampler (seeded, reshuffled per epoch, padded to equal shards). Else strided."""
    if not train:
        return Strided(len(ds), rank, world)  # type: ignore[arg-type]
    s = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False)
    s.set_epoch(epoch)
    return s


def local_batch(batch_size: int, world: int) -> int:
    """This rank's share of a global batch."""
    return max(1, math.ceil(batch_size / world))


def batch_shard(batches: int, rank: int, world: int) -> list[int]:
    """The batches (of the single-process pass) rank ``rank`` takes: every N-th, from its rank."""
    return list(range(rank, batches, world))


def shard_rows(n: int, batch_size: int, rank: int, world: int) -> list[int]:
    """The item indices of this rank's batches, in order."""
    batches = math.ceil(n / batch_size) if n else 0
    return [i for b in batch_shard(batches, rank, world) for i in range(b * batch_size, min((b + 1) * batch_size, n))]


def interleave(parts: Sequence[torch.Tensor], n: int) -> torch.Tensor:
    """Equal-length strided shards (padded at the end) -> the ``n`` items in their original order.

    Item i of rank r is index ``r + i * N``: stack the ranks, read column by column, drop the padding.
    """
    return torch.stack(list(parts)).t().reshape(-1)[:n]


def unshard_batches(
    shards: Sequence[tuple[list[torch.Tensor], torch.Tensor]],
    n: int,
    batch_size: int,
    like: tuple[list[torch.Tensor], torch.Tensor],
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every rank's ``(features per body, labels)`` of :func:`shard_rows` -> the single-process order.

    ``like`` is this rank's own result (gives the empty shapes when there is nothing).
    """
    world = len(shards)
    batches = math.ceil(n / batch_size) if n else 0
    feats, labels = like
    out: list[list[torch.Tensor]] = [[] for _ in feats]
    ys: list[torch.Tensor] = []
    for b in range(batches):
        r, k = b % world, b // world
        size = min(batch_size, n - b * batch_size)
        rows = slice(k * batch_size, k * batch_size + size)
        r_feats, r_labels = shards[r]
        for i in range(len(feats)):
            out[i].append(r_feats[i][rows])
        ys.append(r_labels[rows])
    got = [torch.cat(o) if o else f[:0] for o, f in zip(out, feats)]
    return got, (torch.cat(ys) if ys else labels[:0])
