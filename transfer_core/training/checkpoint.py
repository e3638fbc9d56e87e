"""A run's checkpoints: what one holds, writing it each epoch (and the best.pt link), reading it back to resume.

A checkpoint is a plain dict of tensors and builtins (model and optimizer state, epoch,
best val_acc, config, classes, preprocessing, torch RNG), loadable with
``weights_only=True``. :class:`Checkpointer` writes ``checkpoint.pt`` atomically after
every epoch and points ``best.pt`` at it (a hard link) when val_acc improved; a failed
write raises :class:`CheckpointError` and leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import to_dict
from ..runs import Run, atomic_link_or_write, atomic_write_bytes
from .callbacks import Callback, CheckpointError

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["load_checkpoint", "trainer_state", "restore_trainer", "resume_state", "Checkpointer"]

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: tensors and builtins, no code)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """The checkpoint of ``trainer`` now: a plain dict of tensors and builtins."""
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "epoch": trainer.epoch,
        "best_val_acc": trainer.best_val_acc,
        "config": to_dict(trainer.cfg),
        "classes": list(trainer.bundle.classes),
        "preprocessing": dict(trainer.bundle.preprocessing),
        "torch_rng": torch.get_rng_state(),
    }


def restore_trainer(trainer: Trainer, ckpt: dict[str, Any]) -> None:
    """Put ``trainer`` back where ``ckpt`` was taken: weights, optimizer, epoch, best, RNG."""
    trainer.model.load_state_dict(ckpt["model"])
    trainer.optimizer.load_state_dict(ckpt["optimizer"])
    trainer.epoch = int(ckpt["epoch"])
    trainer.best_val_acc = float(ckpt.get("best_val_acc", -1.0))
    if isinstance(ckpt.get("torch_rng"), torch.Tensor):
        torch.set_rng_state(ckpt["torch_rng"])


def resume_state(trainer: Trainer, run: Run) -> None:
    """Resume ``run``: its last checkpoint into ``trainer``, metrics cut back to that epoch (or to none)."""
    if run.checkpoint_path.exists():
        restore_trainer(trainer, load_checkpoint(run.checkpoint_path))
        run.truncate_metrics(trainer.epoch)
    else:
        run.truncate_metrics(0)


class Checkpointer(Callback):
    """``checkpoint.pt`` after every epoch; ``best.pt`` linked to it when val_acc improved."""

    def __init__(self, run: Run):
        self.run = run
        self.best = -1.0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.best = trainer.best_val_acc  # a resumed run's best so far

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        improved = metrics["val_acc"] > self.best
        if improved:
            self.best = metrics["val_acc"]
        try:
            buf = io.BytesIO()
            torch.save(trainer_state(trainer), buf)
            data = buf.getvalue()
            atomic_write_bytes(self.run.checkpoint_path, data)
            if improved:  # best.pt is this same epoch's file: a hard link, not a second copy
                atomic_link_or_write(self.run.checkpoint_path, self.run.best_path, data)
        except OSError as exc:
            raise CheckpointError(
                f"could not write the checkpoint of epoch {epoch} ({exc.strerror or exc}); the previous checkpoint is intact"
            ) from None
