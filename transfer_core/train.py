"""The trainer and the run lifecycle around it.

:class:`Trainer` does fit / evaluate and emits events (``fit_start``, ``batch_end``,
``epoch_end``, ``fit_end``, ``exception``) to subscribed callbacks, like minGPT's
``trigger_callbacks``. Stopping raises :class:`StopTraining`, caught in exactly one
place (fastai's cancel pattern), so a stopped run still closes cleanly with its last
checkpoint. :func:`run_training` wires a trainer to the run store; the CLI and the
dashboard's job manager both call it, so a run behaves the same from either.
"""

from __future__ import annotations

import io
import logging
import math
import os
import random
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .backbones import WeightsError
from .config import ConfigError, RunConfig, to_dict, validate
from .data import DataBundle, DataError, build_data
from .interpret import confusion, per_class_metrics
from .models import FusionModel, build_model, param_groups
from .runs import Run, RunStore, atomic_write_bytes

__all__ = [
    "StopTraining",
    "Diverged",
    "CheckpointError",
    "Trainer",
    "TrainResult",
    "select_device",
    "device_badge",
    "prepare",
    "run_training",
    "load_checkpoint",
    "USER_ERRORS",
]

log = logging.getLogger(__name__)

EVENTS = ("fit_start", "batch_end", "epoch_end", "fit_end", "exception")

#: Errors that mean "the input is wrong": shown as one line, exit code 2, no traceback.
USER_ERRORS = (ConfigError, DataError, WeightsError)


class StopTraining(Exception):
    """Raised inside the loop when the stop event is set; caught once in ``fit``."""


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


def select_device(pref: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("train.device", "cuda was asked for but no CUDA GPU is available")
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if pref == "mps" or (pref == "auto" and mps is not None and mps.is_available()):
        if not (mps is not None and mps.is_available()):
            raise ConfigError("train.device", "mps was asked for but Apple MPS is not available")
        return torch.device("mps")
    return torch.device("cpu")


def device_badge() -> str:
    """A short human label of the device ``auto`` would use."""
    dev = select_device("auto")
    if dev.type == "cuda":
        n = torch.cuda.device_count()
        return f"GPU: {torch.cuda.get_device_name(0)}" + (f" (x{n})" if n > 1 else "")
    if dev.type == "mps":
        return "Apple MPS"
    return f"CPU · {torch.get_num_threads()} threads"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    state: str  # completed | failed | stopped
    message: str
    run: Run | None
    metrics: list[dict[str, Any]] = field(default_factory=list)


Callback = Callable[..., None]


class Trainer:
    """Fit a model on a data bundle; emits events; checks the stop event every batch."""

    def __init__(
        self,
        cfg: RunConfig,
        model: nn.Module,
        bundle: DataBundle,
        device: torch.device | None = None,
        stop_event: threading.Event | None = None,
    ):
        self.cfg = cfg
        self.model = model
        self.bundle = bundle
        self.device = device or select_device(cfg.train.device)
        self.stop_event = stop_event or threading.Event()
        self.callbacks: dict[str, list[Callback]] = {e: [] for e in EVENTS}
        self.epoch = 0  # completed epochs
        self.best_val_acc = -1.0
        self.last_eval: dict[str, Any] | None = None
        self.warnings: list[str] = list(bundle.info.get("warnings", []))
        t = cfg.train
        self.batch_size = t.batch_size
        n_train = len(bundle.train)
        if self.batch_size > n_train:
            self.warnings.append(f"batch size {t.batch_size} is larger than the {n_train} training images: using {n_train}")
            self.batch_size = n_train
        self.model.to(self.device)
        self.optimizer = self._make_optimizer()
        self.use_amp = bool(t.amp and self.device.type == "cuda")
        self.amp_dtype = torch.bfloat16 if (self.use_amp and torch.cuda.is_bf16_supported()) else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)

    # events ---------------------------------------------------------------------
    def add_callback(self, event: str, fn: Callback) -> None:
        if event not in self.callbacks:
            raise ValueError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
        self.callbacks[event].append(fn)

    def trigger(self, event: str, **info: Any) -> None:
        for fn in self.callbacks[event]:
            fn(self, **info)

    # pieces ---------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        t = self.cfg.train
        groups = param_groups(self.model, t.lr, t.lr_decay)
        if not groups:
            raise ConfigError("backbones", "nothing to train: every parameter is frozen")
        if t.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
        if t.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
        return torch.optim.Adam(groups, lr=t.lr, weight_decay=t.weight_decay)

    def _loader(self, ds: Dataset, train: bool, epoch: int = 0) -> DataLoader:
        t = self.cfg.train
        gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        bs = self.batch_size if train else max(self.batch_size, 128)
        # A last batch of one breaks BatchNorm in train mode; drop it only then.
        drop_last = train and len(ds) > bs and len(ds) % bs == 1
        return DataLoader(
            ds,
            batch_size=bs,
            shuffle=train,
            generator=gen if train else None,
            num_workers=t.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=drop_last,
            persistent_workers=False,
        )

    def _check_stop(self) -> None:
        if self.stop_event.is_set():
            raise StopTraining()

    def alpha(self) -> list[float] | None:
        m = self.model
        if isinstance(m, FusionModel) and m.mode == "sum":
            return m.alpha_list()
        return None

    def evaluate(self, ds: Dataset | None = None) -> dict[str, Any]:
        """Loss, accuracy, predictions and targets on ``ds`` (the validation split by default)."""
        ds = ds if ds is not None else self.bundle.val
        self.model.eval()
        total_loss, correct, n = 0.0, 0, 0
        preds: list[int] = []
        targets: list[int] = []
        with torch.no_grad():
            for x, y in self._loader(ds, train=False):
                self._check_stop()
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                    logits = self.model(x)
                loss = F.cross_entropy(logits.float(), y, reduction="sum")
                total_loss += float(loss)
                p = logits.argmax(1)
                correct += int((p == y).sum())
                n += y.numel()
                preds.extend(p.cpu().tolist())
                targets.extend(y.cpu().tolist())
        return {
            "loss": total_loss / max(n, 1),
            "acc": correct / max(n, 1),
            "preds": preds,
            "targets": targets,
        }

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training split; ``epoch`` is 1-based."""
        self.model.train()
        loader = self._loader(self.bundle.train, train=True, epoch=epoch)
        nb = len(loader)
        total_loss, correct, n = 0.0, 0, 0
        for b, (x, y) in enumerate(loader, start=1):
            self._check_stop()
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                logits = self.model(x)
                loss = F.cross_entropy(logits.float(), y)
            if not torch.isfinite(loss):
                raise Diverged(
                    f"diverged at epoch {epoch}, batch {b}: the loss is {float(loss)}; lower the learning rate "
                    f"(now {self.cfg.train.lr:g})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            bs = y.numel()
            lv = float(loss.detach())
            total_loss += lv * bs
            correct += int((logits.argmax(1) == y).sum())
            n += bs
            self.trigger("batch_end", epoch=epoch, batch=b, batches=nb, loss=lv)
        return {"train_loss": total_loss / max(n, 1), "train_acc": correct / max(n, 1)}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint: a plain dict of tensors and builtins (weights_only-loadable)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "best_val_acc": self.best_val_acc,
            "config": to_dict(self.cfg),
            "classes": list(self.bundle.classes),
            "preprocessing": dict(self.bundle.preprocessing),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch = int(ckpt["epoch"])
        self.best_val_acc = float(ckpt.get("best_val_acc", -1.0))
        if isinstance(ckpt.get("torch_rng"), torch.Tensor):
            torch.set_rng_state(ckpt["torch_rng"])

    # the loop -------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train from ``self.epoch`` to ``cfg.train.epochs``; never raises for stop or divergence."""
        epochs = self.cfg.train.epochs
        rows: list[dict[str, Any]] = []
        try:
            self.trigger("fit_start", epochs=epochs, start_epoch=self.epoch)
            while self.epoch < epochs:
                e = self.epoch + 1
                t0 = time.perf_counter()
                row: dict[str, Any] = {"epoch": e}
                row.update(self._train_epoch(e))
                ev = self.evaluate()
                self.last_eval = ev
                row.update(
                    val_loss=ev["loss"],
                    val_acc=ev["acc"],
                    lr=float(self.optimizer.param_groups[0]["lr"]),
                    seconds=time.perf_counter() - t0,
                )
                alpha = self.alpha()
                if alpha is not None:
                    row["alpha"] = alpha
                self.epoch = e
                improved = ev["acc"] > self.best_val_acc
                if improved:
                    self.best_val_acc = ev["acc"]
                rows.append(row)
                self.trigger("epoch_end", epoch=e, metrics=row, improved=improved)
            result = TrainResult("completed", f"finished {epochs} epochs; best val_acc {self.best_val_acc:.3f}", None, rows)
            self.trigger("fit_end", result=result)
            return result
        except StopTraining:
            msg = f"stopped by the user after {self.epoch} of {epochs} epochs" + (
                f"; checkpoint of epoch {self.epoch} kept" if self.epoch else ""
            )
            result = TrainResult("stopped", msg, None, rows)
            self.trigger("fit_end", result=result)
            return result
        except Diverged as exc:
            result = TrainResult("failed", str(exc), None, rows)
            self.trigger("exception", error=exc)
            self.trigger("fit_end", result=result)
            return result
        except torch.OutOfMemoryError:
            msg = f"out of GPU memory at batch size {self.batch_size}; try a smaller batch size or image size"
            result = TrainResult("failed", msg, None, rows)
            self.trigger("exception", error=RuntimeError(msg))
            self.trigger("fit_end", result=result)
            return result
        except Exception as exc:
            self.trigger("exception", error=exc)
            raise


# --------------------------------------------------------------------------- lifecycle


def prepare(cfg: RunConfig, runs_root: str | Path | None = None) -> tuple[DataBundle, nn.Module]:
    """Validate, build data and model. Raises USER_ERRORS for bad input, touching no run folder."""
    validate(cfg)
    seed_everything(cfg.seed)
    bundle = build_data(cfg.data, cfg.seed)
    seed_everything(cfg.seed)
    model = build_model(cfg, len(bundle.classes), runs_root)
    return bundle, model


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: tensors and builtins, no code)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _save_checkpoint(trainer: Trainer, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(trainer.state_dict(), buf)
    atomic_write_bytes(path, buf.getvalue())


class _Recorder:
    """Writes what the trainer does into the run folder (metrics, progress, checkpoints)."""

    def __init__(self, run: Run, on_progress: Callable[[dict[str, Any]], None] | None = None, every_s: float = 0.5):
        self.run = run
        self.on_progress = on_progress
        self.every_s = every_s
        self._last_write = 0.0
        self._t0 = time.perf_counter()
        self._batches_done = 0
        self._start_epoch = 0

    def attach(self, tr: Trainer) -> None:
        tr.add_callback("fit_start", self.fit_start)
        tr.add_callback("batch_end", self.batch_end)
        tr.add_callback("epoch_end", self.epoch_end)

    def fit_start(self, tr: Trainer, epochs: int, start_epoch: int) -> None:
        self._t0 = time.perf_counter()
        self._start_epoch = start_epoch
        self._publish({"epoch": start_epoch, "epochs": epochs, "batch": 0, "batches": 0, "eta_s": None, "phase": "starting"}, force=True)

    def batch_end(self, tr: Trainer, epoch: int, batch: int, batches: int, loss: float) -> None:
        self._batches_done += 1
        elapsed = time.perf_counter() - self._t0
        per_batch = elapsed / self._batches_done
        remaining = (batches - batch) + (tr.cfg.train.epochs - epoch) * batches
        prog = {
            "epoch": epoch,
            "epochs": tr.cfg.train.epochs,
            "batch": batch,
            "batches": batches,
            "loss": loss,
            "elapsed_s": elapsed,
            # validation takes roughly a fifth of a training pass: include it in the ETA
            "eta_s": per_batch * remaining * 1.2,
            "phase": "train",
        }
        self._publish(prog, force=batch == batches)

    def epoch_end(self, tr: Trainer, epoch: int, metrics: dict[str, Any], improved: bool) -> None:
        # Metrics first, then the checkpoint: after a crash between the two, resume
        # truncates metrics to the checkpoint's epoch and redoes that epoch.
        self.run.append_metrics(metrics)
        try:
            _save_checkpoint(tr, self.run.checkpoint_path)
            if improved:
                _save_checkpoint(tr, self.run.best_path)
        except OSError as exc:
            raise CheckpointError(
                f"could not write the checkpoint of epoch {epoch} ({exc.strerror or exc}); the previous checkpoint is intact"
            ) from None
        self._publish(
            {
                "epoch": epoch,
                "epochs": tr.cfg.train.epochs,
                "batch": 0,
                "batches": 0,
                "elapsed_s": time.perf_counter() - self._t0,
                "eta_s": None,
                "phase": "epoch_end",
            },
            force=True,
        )

    def _publish(self, prog: dict[str, Any], force: bool = False) -> None:
        prog["updated"] = time.time()
        if self.on_progress is not None:
            self.on_progress(prog)
        now = time.perf_counter()
        if force or now - self._last_write >= self.every_s:
            self._last_write = now
            try:
                self.run.write_progress(prog)
            except OSError:
                log.warning("could not write progress for %s", self.run.id)


def _write_results(run: Run, tr: Trainer) -> None:
    ev = tr.last_eval
    if ev is None:
        return
    labels = list(tr.bundle.classes)
    run.write_confusion(labels, confusion(ev["targets"], ev["preds"], len(labels)))
    run.write_per_class(per_class_metrics(ev["targets"], ev["preds"], labels))


def run_training(
    cfg: RunConfig,
    runs_root: str | Path | None = None,
    run: Run | None = None,
    stop_event: threading.Event | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
    extra_callbacks: dict[str, list[Callback]] | None = None,
) -> TrainResult:
    """Run one training job end to end against the run store.

    Without ``run``, bad input raises one of :data:`USER_ERRORS` before any folder is
    made. With ``run`` (a queued job, or ``resume``), bad input marks that run failed
    with the one-line message and raises it as well. Stop and divergence never raise:
    they come back as the result's state.
    """
    store = RunStore(runs_root)
    if run is None:
        bundle, model = prepare(cfg, store.root)
        run = store.create(cfg, state="running")
    else:
        try:
            bundle, model = prepare(cfg, store.root)
        except USER_ERRORS as exc:
            run.set_status("failed", str(exc))
            raise
        except Exception as exc:
            run.set_status("failed", f"{type(exc).__name__}: {exc}")
            raise
    run.mark_live(True)
    try:
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        trainer = Trainer(cfg, model, bundle, stop_event=stop_event)
        if resume and run.checkpoint_path.exists():
            trainer.load_state_dict(load_checkpoint(run.checkpoint_path))
            run.truncate_metrics(trainer.epoch)
        elif resume:
            run.truncate_metrics(0)
        run.write_json("data_info.json", {**bundle.info, "classes": bundle.classes, "preprocessing": bundle.preprocessing})
        run.set_status(
            "running",
            f"epoch {trainer.epoch + 1} of {cfg.train.epochs}" if resume else "",
            device=str(trainer.device),
            warnings=trainer.warnings,
        )
        recorder = _Recorder(run, on_progress)
        recorder.attach(trainer)
        for event, fns in (extra_callbacks or {}).items():
            for fn in fns:
                trainer.add_callback(event, fn)
        try:
            result = trainer.fit()
        except Exception as exc:  # an unexpected failure: keep the message, never lose the folder
            log.exception("run %s failed", run.id)
            msg = str(exc) if isinstance(exc, CheckpointError) else f"{type(exc).__name__}: {exc}"
            run.set_status("failed", msg)
            return TrainResult("failed", msg, run, run.metrics())
        _write_results(run, trainer)
        run.set_status(result.state, result.message, best_val_acc=trainer.best_val_acc if trainer.epoch else None)
        result.run = run
        result.metrics = run.metrics()
        return result
    finally:
        run.mark_live(False)


def resume_training(
    ref: str | Path,
    runs_root: str | Path | None = None,
    stop_event: threading.Event | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Continue an interrupted or stopped run from its last checkpoint to its configured epochs."""
    store = RunStore(runs_root)
    run = store.get(ref)
    st = run.status()
    if st.get("state") in ("running", "queued"):
        raise ConfigError("", f"run {run.id} is still {st.get('state')} in process {st.get('pid')}")
    if st.get("state") == "completed":
        raise ConfigError("", f"run {run.id} is already completed")
    cfg = run.config()
    run.set_status("running", "resuming")
    return run_training(cfg, store.root, run=run, stop_event=stop_event, on_progress=on_progress, resume=True)


__all__.append("resume_training")
