"""Optional TensorBoard logging: per-epoch scalars of a run into ``<run>/tb/``.

Why a callback and not code in the trainer: TensorBoard is optional (the run store's
``metrics.jsonl`` stays the source of truth the dashboard reads); this only mirrors
each epoch row so ``tensorboard --logdir <runs>`` can compare runs with the usual tool.

Scalars: ``loss/train``, ``loss/val``, ``acc/train``, ``acc/val``, ``lr`` and, for sum
fusion, ``alpha/<i>_<backbone>``; the x axis is the epoch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .runs import Run

__all__ = ["TB_DIR", "attach_tensorboard", "TensorBoardLogger", "tensorboard_available"]

log = logging.getLogger(__name__)

TB_DIR = "tb"
_SCALARS = (("train_loss", "loss/train"), ("val_loss", "loss/val"), ("train_acc", "acc/train"),
            ("val_acc", "acc/val"), ("lr", "lr"))


def tensorboard_available() -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception:  # ImportError, or a tensorboard too old for this torch
        return False
    return True


class TensorBoardLogger:
    """Trainer callbacks writing one set of scalars per finished epoch."""

    def __init__(self, run: Run, names: list[str]):
        self.run = run
        self.names = names
        self.writer: Any = None

    @property
    def log_dir(self) -> Path:
        return self.run.dir / TB_DIR

    def fit_start(self, tr: Any, epochs: int, start_epoch: int, **_: Any) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter

            # On resume, drop any events logged after the checkpoint's epoch (they are redone).
            self.writer = SummaryWriter(str(self.log_dir), purge_step=start_epoch + 1 if start_epoch else None)
        except Exception as exc:  # noqa: BLE001 - a mirror: an unwritable folder or odd install must not fail the run
            log.warning("TensorBoard logging of %s disabled: %s", self.run.id, exc)
            self.writer = None

    def epoch_end(self, tr: Any, epoch: int, metrics: dict[str, Any], improved: bool) -> None:
        if self.writer is None:
            return
        try:
            for key, tag in _SCALARS:
                value = metrics.get(key)
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(tag, float(value), epoch)
            for i, a in enumerate(metrics.get("alpha") or []):
                name = self.names[i] if i < len(self.names) else str(i)
                self.writer.add_scalar(f"alpha/{i + 1}_{name}", float(a), epoch)
            self.writer.flush()
        except Exception as exc:  # noqa: BLE001  # a full disk must not fail the run: TensorBoard is a mirror
            log.warning("TensorBoard logging of %s failed: %s", self.run.id, exc)

    def fit_end(self, tr: Any, result: Any = None, **_: Any) -> None:
        """Close the writer (also on ``exception``: an unexpected error skips ``fit_end``)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def attach_tensorboard(trainer: Any, run: Run) -> TensorBoardLogger | None:
    """Subscribe TensorBoard logging to ``trainer``'s events; None (and a log line) if unavailable."""
    if not tensorboard_available():
        log.info("tensorboard is not installed: no TensorBoard logs for run %s", run.id)
        return None
    names = [b.name for b in trainer.cfg.backbones]
    tb = TensorBoardLogger(run, names)
    trainer.add_callback("fit_start", tb.fit_start)
    trainer.add_callback("epoch_end", tb.epoch_end)
    trainer.add_callback("fit_end", tb.fit_end)
    trainer.add_callback("exception", tb.fit_end)
    return tb
