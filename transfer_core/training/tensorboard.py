"""Optional TensorBoard logging: a callback mirroring each epoch's scalars into ``<run>/tb/``.

Why a callback and not code in the trainer: TensorBoard is optional (the run store's
``metrics.jsonl`` stays the source of truth the dashboard reads); this only mirrors
each epoch row so ``tensorboard --logdir <runs>`` can compare runs with the usual tool.

Scalars: ``loss/train``, ``loss/val``, ``acc/train``, ``acc/val``, ``lr`` and, for sum
fusion, ``alpha/<i>_<backbone>``; the x axis is the epoch. The event files are written by
:mod:`.tb_events` (TensorBoard's own messages, without importing ``torch.utils.tensorboard``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runs import Run
from .callbacks import Callback

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["TB_DIR", "TensorBoardLogger", "tensorboard_available", "tensorboard_callback"]

log = logging.getLogger(__name__)

TB_DIR = "tb"
_SCALARS = (("train_loss", "loss/train"), ("val_loss", "loss/val"), ("train_acc", "acc/train"),
            ("val_acc", "acc/val"), ("lr", "lr"))


def tensorboard_available() -> bool:
    """Whether TensorBoard's protocol buffers are importable (found without importing them)."""
    import importlib.util

    try:
        return importlib.util.find_spec("tensorboard.compat.proto.event_pb2") is not None
    except (ImportError, ValueError):
        return False


class TensorBoardLogger(Callback):
    """One set of scalars per finished epoch; never fails the run (TensorBoard is a mirror)."""

    def __init__(self, run: Run, names: list[str]):
        self.run = run
        self.names = names
        self.writer: Any = None

    @property
    def log_dir(self) -> Path:
        return self.run.dir / TB_DIR

    def on_fit_start(self, trainer: Trainer) -> None:
        try:
            from .tb_events import EventFile

            # On resume, drop any events logged after the checkpoint's epoch (they are redone).
            start = trainer.epoch
            self.writer = EventFile(self.log_dir, purge_step=start + 1 if start else None)
        except Exception as exc:  # noqa: BLE001 - an unwritable folder or odd install must not fail the run
            log.warning("TensorBoard logging of %s disabled: %s", self.run.id, exc)
            self.writer = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        if self.writer is None:
            return
        try:
            for key, tag in _SCALARS:
                value = metrics.get(key)
                if isinstance(value, (int, float)):
                    self.writer.scalar(tag, float(value), epoch)
            for i, a in enumerate(metrics.get("alpha") or []):
                name = self.names[i] if i < len(self.names) else str(i)
                self.writer.scalar(f"alpha/{i + 1}_{name}", float(a), epoch)
            self.writer.flush()
        except Exception as exc:  # noqa: BLE001  # a full disk must not fail the run
            log.warning("TensorBoard logging of %s failed: %s", self.run.id, exc)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def tensorboard_callback(run: Run, names: list[str]) -> TensorBoardLogger | None:
    """TensorBoard logging of ``run`` (``names``: its backbones); None (and a log line) if unavailable."""
    if not tensorboard_available():
        log.info("tensorboard is not installed: no TensorBoard logs for run %s", run.id)
        return None
    return TensorBoardLogger(run, names)
