"""Where a run computes and with how many threads: the device choice, DataLoader workers, seeding.

``select_device`` turns ``train.device`` into a :class:`torch.device` (``auto``: CUDA, then
Apple MPS, then the CPU); ``gpu_count`` describes the machine to the
pages; ``auto_workers`` picks DataLoader workers; ``small_ops_threads`` is the thread policy
for epochs that only train small linear layers (cached features) on the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from typing import Iterator

import numpy as np
import torch

from ..errors import ConfigError
from ..i18n import _

__all__ = ["select_device", "gpu_count", "auto_workers", "seed_everything", "small_ops_threads"]

log = logging.getLogger(__name__)


def select_device(pref: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("train.device", _("cuda was asked for but no CUDA GPU is available"))
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if pref == "mps" or (pref == "auto" and mps is not None and mps.is_available()):
        if not (mps is not None and mps.is_available()):
            raise ConfigError("train.device", _("mps was asked for but Apple MPS is not available"))
        return torch.device("mps")
    return torch.device("cpu")


def gpu_count() -> int:
    """CUDA GPUs this process sees (0 without CUDA): how many torchrun ranks it could host."""
    return torch.cuda.device_count()


def auto_workers(device: torch.device) -> int:
    """DataLoader workers for ``train.num_workers: -1``.

    On the CPU the data is in memory and batches are tensor slices: workers would only
    compete with torch for the cores, so 0. On CUDA, workers prepare (decode, slice,
    pin) the next batches while the GPU computes: ``min(8, CPUs - 1)``.
    """
    if device.type != "cuda":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def small_ops_threads(active: bool) -> Iterator[None]:
    """One torch thread while ``active`` (restored after); a no-op otherwise.

    Why: when only small linear layers train on the CPU their ops are too small to gain
    from OpenMP, and on a busy machine every fork/join waits for a descheduled thread:
    measured 20-30x slower epochs with 2 threads than with 1.
    """
    before = torch.get_num_threads()
    if not active or before <= 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
