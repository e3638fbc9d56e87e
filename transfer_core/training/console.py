"""What a terminal shows of a fit: a progress bar and one line per epoch, on stderr (the CLI's callbacks)."""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from .callbacks import Callback, ProgressPublisher

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["ProgressBar", "EpochPrinter"]

log = logging.getLogger(__name__)


class ProgressBar(ProgressPublisher):
    """One self-rewriting line on stderr (a plain line per update, every 5 s, when not a TTY)."""

    def __init__(self, stream: IO[str] | None = None):
        super().__init__(None)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._shown = 0.0

    def publish(self, progress: dict[str, Any], force: bool) -> None:
        p = progress
        if p.get("phase") != "train":
            return
        now = time.monotonic()
        done = p["batch"] == p["batches"]
        if not done and now - self._shown < (0.2 if self.tty else 5.0):
            return
        self._shown = now
        frac = p["batch"] / max(p["batches"], 1)
        bar = "#" * int(frac * 20)
        eta = p.get("eta_s")
        eta_s = f" eta {eta:.0f}s" if eta is not None else ""
        line = f"epoch {p['epoch']}/{p['epochs']} [{bar:<20}] batch {p['batch']}/{p['batches']} loss {p['loss']:.4f}{eta_s}"
        if self.tty:
            self.stream.write("\r" + line.ljust(79))
            if done:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class EpochPrinter(Callback):
    """``epoch N: train_loss=… train_acc=… val_loss=… val_acc=… (Ts)`` on stderr after each epoch."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        alpha = metrics.get("alpha")
        extra = f" alpha={[round(a, 3) for a in alpha]}" if alpha else ""
        print(
            f"epoch {epoch}: train_loss={metrics['train_loss']:.4f} train_acc={metrics['train_acc']:.3f} "
            f"val_loss={metrics['val_loss']:.4f} val_acc={metrics['val_acc']:.3f} ({metrics['seconds']:.1f}s){extra}",
            file=sys.stderr,
            flush=True,
        )
