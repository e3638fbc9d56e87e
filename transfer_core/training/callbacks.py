"""The one callback shape of a fit, the exceptions that end one, and the run-folder writers.

Like Lightning's ``Callback``: subclass :class:`Callback` and override the hooks you need;
the trainer calls them in list order. ``on_fit_end`` always runs (in ``finally``), after
``on_exception`` when the fit failed. Stopping raises :class:`StopTraining` inside the loop,
caught once in :meth:`Trainer.fit`. :class:`MetricsWriter` (metrics.jsonl, confusion,
per-class, the final status) and :class:`ProgressPublisher` (progress.json, or any live
view that overrides :meth:`ProgressPublisher.publish`) write what a run does; the
checkpointer and TensorBoard live beside them (``checkpoint``, ``tensorboard``).
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from ..metrics import confusion, per_class_metrics
from ..runs import Run

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = [
    "Callback",
    "StopTraining",
    "Diverged",
    "CheckpointError",
    "MetricsWriter",
    "ProgressPublisher",
    "finite_or_none",
]

log = logging.getLogger(__name__)


class StopTraining(Exception):
    """Raised inside the loop when the stop event is set; caught once in ``fit``."""


class Diverged(RuntimeError):
    """The loss became NaN, infinite or absurdly large."""

    @classmethod
    def at(cls, epoch: int, what: str, value: float, lr: float, batch: int | None = None) -> Diverged:
        where = f", batch {batch}" if batch is not None else ""
        return cls(f"diverged at epoch {epoch}{where}: the {what} is {value:.4g}; lower the learning rate (now {lr:g})")


class CheckpointError(RuntimeError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


class Callback:
    """Hooks into :meth:`Trainer.fit`; every hook does nothing unless overridden."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch (``trainer.epoch`` is the epoch resumed from, 0 on a fresh run)."""

    def on_extract(self, trainer: Trainer, done: int, total: int) -> None:
        """After each batch of a cached run's one-off feature extraction."""

    def on_batch_end(self, trainer: Trainer, epoch: int, batch: int, batches: int, loss: float) -> None:
        """After each optimizer step; ``epoch`` and ``batch`` are 1-based."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        """After an epoch's validation; ``metrics`` is its metrics.jsonl row."""

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        """The fit failed (diverged, out of memory, or an unexpected error); ``on_fit_end`` follows."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Always, last; ``trainer.result`` is the outcome, None when the fit raised."""


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (in nested dicts and lists) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


class MetricsWriter(Callback):
    """metrics.jsonl (one row per epoch), then confusion.json, per_class.json and the final status."""

    def __init__(self, run: Run):
        self.run = run

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        # Metrics first, then the checkpoint (the next callback): after a crash between the
        # two, resume truncates metrics to the checkpoint's epoch and redoes that epoch.
        if finite_or_none(metrics) != metrics:  # NaN != NaN: any non-finite value differs
            bad = next(k for k, v in metrics.items() if finite_or_none(v) != v)
            value = metrics[bad] if isinstance(metrics[bad], float) else float("nan")
            raise Diverged.at(epoch, bad, value, trainer.cfg.train.lr)
        self.run.append_metrics(metrics)

    def on_fit_end(self, trainer: Trainer) -> None:
        result = trainer.result
        if result is None:  # the fit raised: the lifecycle records the failure
            return
        ev = trainer.last_eval
        if ev is not None:
            labels = list(trainer.bundle.classes)
            self.run.write_confusion(labels, confusion(ev["targets"], ev["preds"], len(labels)))
            self.run.write_per_class(per_class_metrics(ev["targets"], ev["preds"], labels))
        self.run.set_status(
            result.state,
            result.message,
            best_val_acc=trainer.best_val_acc if trainer.epoch else None,
            warnings=trainer.warnings,
            feature_cache=trainer.feature_info(),
        )


class ProgressPublisher(Callback):
    """Where a fit is now (phase, epoch, batch, loss, ETA), as one dict per event.

    :meth:`publish` writes it to ``progress.json`` at most every ``every_s`` seconds (and at
    every epoch's last batch); a live view overrides it (the job manager keeps it in
    memory, the CLI draws a progress bar).
    """

    def __init__(self, run: Run | None = None, every_s: float = 0.5):
        self.run = run
        self.every_s = every_s
        self._last_write = 0.0
        self._t0 = time.perf_counter()
        self._batches_done = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        self._t0 = time.perf_counter()
        self._emit({"epoch": trainer.epoch, "epochs": trainer.cfg.train.epochs, "batch": 0, "batches": 0,
                    "eta_s": None, "phase": "starting"}, force=True)

    def on_extract(self, trainer: Trainer, done: int, total: int) -> None:
        # Still "starting" for the pages; the extraction progress rides along.
        prog = {"epoch": trainer.epoch, "epochs": trainer.cfg.train.epochs, "batch": 0, "batches": 0,
                "eta_s": None, "phase": "starting", "features": {"batch": done, "batches": total}}
        if done == total:
            self._t0 = time.perf_counter()  # the ETA counts training batches, not the extraction
        self._emit(prog, force=done == total)

    def on_batch_end(self, trainer: Trainer, epoch: int, batch: int, batches: int, loss: float) -> None:
        self._batches_done += 1
        elapsed = time.perf_counter() - self._t0
        per_batch = elapsed / self._batches_done
        remaining = (batches - batch) + (trainer.cfg.train.epochs - epoch) * batches
        prog = {
            "epoch": epoch,
            "epochs": trainer.cfg.train.epochs,
            "batch": batch,
            "batches": batches,
            "loss": loss,
            "elapsed_s": elapsed,
            # validation takes roughly a fifth of a training pass: include it in the ETA
            "eta_s": per_batch * remaining * 1.2,
            "phase": "train",
        }
        self._emit(prog, force=batch == batches)

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        self._emit({"epoch": epoch, "epochs": trainer.cfg.train.epochs, "batch": 0, "batches": 0,
                    "elapsed_s": time.perf_counter() - self._t0, "eta_s": None, "phase": "epoch_end"}, force=True)

    def _emit(self, prog: dict[str, Any], force: bool) -> None:
        prog["updated"] = time.time()
        self.publish(finite_or_none(prog), force)

    def publish(self, progress: dict[str, Any], force: bool) -> None:
        """Write ``progress.json`` (throttled; ``force``: now). Override for another live view."""
        if self.run is None:
            return
        now = time.perf_counter()
        if force or now - self._last_write >= self.every_s:
            self._last_write = now
            try:
                self.run.write_progress(progress)
            except OSError:
                log.warning("could not write progress for %s", self.run.id)
