"""A run's checkpoints: what one holds, when it is written (and the best.pt link), reading it back to resume.

A checkpoint is a plain dict of tensors and builtins (model and optimizer state, epoch,
best val_acc, config, classes, preprocessing, torch RNG), loadable with
``weights_only=True``. :class:`Checkpointer` writes ``checkpoint.pt`` atomically for a
new best val_acc (and points ``best.pt`` at it, a hard link), for the last epoch, and
otherwise at most every ``train.checkpoint_every_s`` seconds (like Lightning's
``train_time_interval``); an epoch not written then is held in memory and written when
the fit ends (Stop, failure), so only a killed process loses it. The tensors the fit
never changes (a frozen body) go once to a part file (:mod:`transfer_core.checkpoint_files`).
A failed write raises :class:`CheckpointError` and leaves the previous checkpoint intact.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..checkpoint_files import part_name, parts_of, read_checkpoint, to_bytes, unused_parts
from ..config import to_dict
from ..runs import Run, atomic_link_or_write, atomic_write_bytes
from .callbacks import Callback, CheckpointError

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["load_checkpoint", "trainer_state", "restore_trainer", "resume_state", "Checkpointer", "MIN_PART_BYTES"]

log = logging.getLogger(__name__)

MIN_PART_BYTES = 1 << 20  # frozen tensors smaller than this stay in checkpoint.pt: a part file would not pay


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``), its part files merged back into ``model``."""
    return read_checkpoint(path)


def trainer_state(trainer: Trainer, model: dict[str, torch.Tensor] | None = None, parts: list[str] | None = None) -> dict[str, Any]:
    """The checkpoint of ``trainer`` now: a plain dict of tensors and builtins.

    ``model`` replaces the whole state_dict by the tensors not in ``parts`` (the part files
    holding the rest)."""
    state = {
        "model": trainer.model.state_dict() if model is None else model,
        "epoch": trainer.epoch,
        "best_val_acc": trainer.best_val_acc,
        "config": to_dict(trainer.cfg),
        "classes": list(trainer.bundle.classes),
        "preprocessing": dict(trainer.bundle.preprocessing),
        "torch_rng": torch.get_rng_state(),
    }
    if trainer.epoch < trainer.cfg.train.epochs:  # after the last epoch nothing is left to resume: 2/3 of an Adam checkpoint saved
        state["optimizer"] = trainer.optimizer.state_dict()
    if parts:
        state["model_parts"] = list(parts)
    return state


def restore_trainer(trainer: Trainer, ckpt: dict[str, Any]) -> None:
    """Put ``trainer`` back where ``ckpt`` was taken: weights, optimizer, epoch, best, RNG.

    The trainer first enters the phase that epoch was in (head warm-up or not): the
    optimizer's parameter groups are that phase's."""
    trainer.enter_epoch(int(ckpt["epoch"]))
    trainer.model.load_state_dict(ckpt["model"])
    if "optimizer" in ckpt:  # absent from a final epoch's checkpoint (nothing left to train)
        trainer.optimizer.load_state_dict(ckpt["optimizer"])
    trainer.epoch = int(ckpt["epoch"])
    trainer.best_val_acc = float(ckpt.get("best_val_acc", -1.0))
    if isinstance(ckpt.get("torch_rng"), torch.Tensor):
        torch.set_rng_state(ckpt["torch_rng"])


def resume_state(trainer: Trainer, run: Run) -> int:
    """Resume ``run``: its last checkpoint into ``trainer``, metrics cut back to that epoch (or to none).

    Returns how many recorded epochs were lost (finished after the last checkpoint, so
    trained again), after adding a warning saying so to ``trainer.warnings``."""
    recorded = max((int(r.get("epoch", 0)) for r in run.metrics()), default=0)
    if run.checkpoint_path.exists():
        restore_trainer(trainer, load_checkpoint(run.checkpoint_path))
    run.truncate_metrics(trainer.epoch)
    lost = max(recorded - trainer.epoch, 0)
    if lost:
        span, were = (f"epoch {trainer.epoch + 1}", "was") if lost == 1 else (f"epochs {trainer.epoch + 1}–{recorded}", "were")
        msg = (f"resumed from the checkpoint of epoch {trainer.epoch}: {span} finished after it but {were} not saved "
               f"(checkpoints are written at most every train.checkpoint_every_s seconds) and "
               f"{'is' if lost == 1 else 'are'} trained again")
        trainer.warnings.append(msg)
        log.warning("%s", msg)
    return lost


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class Checkpointer(Callback):
    """``checkpoint.pt`` for a new best, the last epoch, at most every ``train.checkpoint_every_s``
    seconds otherwise (0: every epoch), and at the end of the fit; ``best.pt`` linked to it when
    val_acc improved; frozen tensors once."""

    def __init__(self, run: Run):
        self.run = run
        self.best = -1.0
        self._pending: dict[str, Any] | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.best = trainer.best_val_acc  # a resumed run's best so far
        self._interval = float(trainer.cfg.train.checkpoint_every_s)
        self._start_epoch = trainer.epoch
        self._at_start = self._versions(trainer)
        self._part: tuple[str, dict[str, tuple[int, int]]] | None = None
        self._pending = None
        self._pruned = False
        self._best_parts: list[str] | None = None  # what best.pt needs, once known
        self._last = time.monotonic()

    @staticmethod
    def _versions(trainer: Trainer) -> dict[str, tuple[int, int]]:
        """Frozen parameters: where each lives and how often it was changed in place.

        Only parameters that do not train: buffers are small and some kernels (BatchNorm's
        running statistics) update them without counting, so they are always written."""
        # named_parameters, not state_dict(): the same keys for parameters, without walking every
        # buffer and hook (state_dict() cost ~6 ms a call on resnet18, twice an epoch)
        return {k: (t.data_ptr(), t._version) for k, t in trainer.model.named_parameters(remove_duplicate=False)
                if not t.requires_grad}

    def _split(self, trainer: Trainer) -> tuple[dict[str, torch.Tensor], list[str]]:
        """The model tensors to write now, and the part files holding the rest (the first call writes its part).

        A tensor of the part that trains now (unfrozen) or was changed in place since is
        written with the checkpoint too, which then holds its newer value."""
        sd = trainer.model.state_dict(keep_vars=True)
        now = self._versions(trainer)
        if self._part is None:
            static = [k for k, v in now.items() if v == self._at_start.get(k)]
            if sum(_nbytes(sd[k]) for k in static) < MIN_PART_BYTES:
                self._part = ("", {})
            else:
                name = part_name(self._start_epoch)
                data = to_bytes({k: sd[k].detach() for k in static})
                self._write(self.run.dir / name, data, f"the frozen part of epoch {trainer.epoch}")
                self._part = (name, {k: now[k] for k in static})
        name, kept = self._part
        changing = {k: t.detach() for k, t in sd.items() if k not in kept or now.get(k) != kept[k]}
        return changing, [name] if name else []

    def _write(self, path: Path, data: bytes, what: str) -> None:
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise CheckpointError(
                f"could not write {what} ({exc.strerror or exc}); the previous checkpoint is intact"
            ) from None

    def _save(self, state: dict[str, Any], epoch: int, best: bool) -> None:
        data = to_bytes(state)
        self._write(self.run.checkpoint_path, data, f"the checkpoint of epoch {epoch}")
        if best:  # best.pt is this same epoch's file: a hard link, not a second copy
            try:
                atomic_link_or_write(self.run.checkpoint_path, self.run.best_path, data)
            except OSError as exc:
                raise CheckpointError(f"could not write best.pt of epoch {epoch} ({exc.strerror or exc})") from None
        self._last = time.monotonic()
        parts = list(state.get("model_parts") or [])
        best_parts = parts if best else self._best_parts
        if not self._pruned or best_parts != self._best_parts:  # a part may have become unused
            keep = set(parts) | set(parts_of(self.run.best_path) if best_parts is None else best_parts)
            for old in unused_parts(self.run.dir, keep):
                old.unlink(missing_ok=True)
            self._pruned = True
        self._best_parts = best_parts

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        improved = metrics["val_acc"] > self.best and trainer.cfg.train.checkpoint_best
        if improved:
            self.best = metrics["val_acc"]
        model, parts = self._split(trainer)
        state = trainer_state(trainer, model, parts)
        due = (improved or epoch >= trainer.cfg.train.epochs or self._interval <= 0
               or time.monotonic() - self._last >= self._interval)
        if due:
            self._pending = None
            self._save(state, epoch, improved)
        else:  # held (a copy: training goes on changing the tensors) until due or the fit ends
            self._pending = {"state": copy.deepcopy(state), "epoch": epoch}

    def on_fit_end(self, trainer: Trainer) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._save(pending["state"], pending["epoch"], False)
