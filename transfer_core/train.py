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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler, TensorDataset

from . import features as _features
from .backbones import WeightsError
from .config import ConfigError, RunConfig, to_dict, validate
from .data import DataBundle, DataError, build_data
from .features import AUGMENT_NOTE, FeatureSet, to_model_input
from .interpret import confusion, per_class_metrics
from .models import FusionModel, build_model, param_groups
from .runs import Run, RunStore, atomic_link_or_write, atomic_write_bytes

if TYPE_CHECKING:  # only a type: the single-process path never imports torch.distributed
    from .distributed import DistContext

__all__ = [
    "StopTraining",
    "Diverged",
    "CheckpointError",
    "Trainer",
    "TrainResult",
    "select_device",
    "device_badge",
    "gpu_count",
    "prepare",
    "run_training",
    "load_checkpoint",
    "USER_ERRORS",
    "auto_workers",
]

log = logging.getLogger(__name__)

EVENTS = ("fit_start", "batch_end", "epoch_end", "fit_end", "exception", "extract")
# "extract" (batch, batches): progress of the one-off feature extraction of a cached run.

# Families whose bodies are mostly attention/linear layers: channels_last buys nothing there.
_NOT_CONVNETS = ("vit", "swin", "maxvit")

# A cross-entropy this large means logits off by ~a million: Adam at lr 1e6 gets there
# with every value still finite (BatchNorm keeps activations bounded), so NaN alone misses it.
DIVERGED_LOSS = 1e6

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


def gpu_count() -> int:
    """CUDA GPUs this process sees (0 without CUDA): how many torchrun ranks it could host."""
    return torch.cuda.device_count()


def device_badge() -> str:
    """A short human label of the device ``auto`` would use."""
    dev = select_device("auto")
    if dev.type == "cuda":
        n = gpu_count()
        return f"GPU: {torch.cuda.get_device_name(0)}" + (f" (x{n})" if n > 1 else "")
    if dev.type == "mps":
        return "Apple MPS"
    return f"CPU · {torch.get_num_threads()} threads"


def auto_workers(device: torch.device) -> int:
    """DataLoader workers for ``train.num_workers: -1``.

    On the CPU the data is in memory and batches are tensor slices: workers would only
    compete with torch for the cores, so 0. On CUDA, workers prepare (decode, slice,
    pin) the next batches while the GPU computes: ``min(8, CPUs - 1)``.
    """
    if device.type != "cuda":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


class _BatchView(Dataset):
    """Index a uint8 in-memory dataset by a whole batch of indices at once.

    Why: per-item ``__getitem__`` + collate costs Python time per image; slicing the
    uint8 tensor is one copy, and the float conversion then happens per batch on the
    device (see :func:`transfer_core.features.to_model_input`). Same order, same values.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.as_tensor(idx, dtype=torch.long)
        return self.images[i], self.labels[i]


def _batch_view(ds: Dataset) -> _BatchView | None:
    images = getattr(ds, "images", None)
    labels = getattr(ds, "labels", None)
    if (
        isinstance(images, torch.Tensor)
        and images.dtype == torch.uint8
        and isinstance(labels, torch.Tensor)
        and not getattr(ds, "augment", False)
        and len(images) == len(ds) == len(labels)
    ):
        return _BatchView(images, labels.long())
    return None


class _CompiledForward:
    """``torch.compile``d forward that falls back to eager (with a warning) if compiling fails."""

    def __init__(self, model: nn.Module, warnings: list[str]):
        self.model = model
        self.warnings = warnings
        self.fn: Callable[..., torch.Tensor] | None = torch.compile(model)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.fn is not None:
            try:
                return self.fn(x)
            except Exception as exc:
                if not type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
                    raise
                msg = f"train.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); training eagerly"
                log.warning("%s", msg)
                self.warnings.append(msg)
                self.fn = None
        return self.model(x)


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
        runs_root: str | Path | None = None,
        cache_root: str | Path | None = None,
        dist: DistContext | None = None,
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
        cuda = self.device.type == "cuda"
        self.model.to(self.device)
        # channels_last: the layout cuDNN's convolution kernels (tensor cores) run fastest in.
        bodies = list(getattr(model, "bodies", []))
        self.channels_last = cuda and bool(bodies) and all(b.spec.family not in _NOT_CONVNETS for b in bodies)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if cuda:
            torch.backends.cudnn.benchmark = True  # one input size per run: let cuDNN time its kernels once
        self.num_workers = t.num_workers if t.num_workers >= 0 else auto_workers(self.device)
        self.optimizer = self._make_optimizer()
        self.use_amp = bool(t.amp and cuda)
        self.amp_dtype = torch.bfloat16 if (self.use_amp and torch.cuda.is_bf16_supported()) else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        # Feature cache: with every body fully frozen, train on features extracted once.
        self.runs_root = runs_root
        self.cache_root = cache_root
        self.cached, self.cache_reason = _features.cache_decision(cfg, model)
        self.features: FeatureSet | None = None
        if self.cached and cfg.data.augment:
            self.warnings.append(AUGMENT_NOTE)
        # DDP hook (transfer_core.distributed; None without torchrun): training forwards go
        # through the DistributedDataParallel wrapper, which averages gradients over the ranks.
        self.dist = dist
        self._ddp: nn.Module | None = dist.wrap(self.model, features=self.cached) if dist is not None else None
        self._forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        self._ddp_forward: Callable[[Any], torch.Tensor] | None = self._ddp
        if t.compile and not self.cached:  # a cached run only trains small linear layers
            self._forward = self._compiled(self.model)
            if self._ddp is not None and self._forward is not self.model:
                # compile the DDP wrapper, not the model inside it: PyTorch's DDPOptimizer then
                # splits the graph at the gradient buckets, so all-reduce still overlaps backward
                self._ddp_forward = self._compiled(self._ddp)

    def _compiled(self, module: nn.Module) -> Callable[..., torch.Tensor]:
        """``module`` behind torch.compile, or ``module`` itself (with a warning) where compile is unavailable."""
        try:
            return _CompiledForward(module, self.warnings)
        except Exception as exc:  # e.g. torch.compile unsupported on this platform
            self.warnings.append(f"train.compile is not available here ({type(exc).__name__}); training eagerly")
            return module

    @property
    def compiled(self) -> list[str]:
        """Which forwards go through torch.compile ("train", "eval"): recorded in the run's status."""
        train = self._ddp_forward if self._ddp is not None else self._forward
        return [name for name, fn in (("train", train), ("eval", self._forward)) if isinstance(fn, _CompiledForward)]

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
        """Batches of ``ds``: shuffled with a per-epoch seed for training, in order otherwise.

        Datasets that index as tuples of tensors (cached features) or uint8 in-memory
        images are fetched a whole batch per index list; either way the order is the one
        ``DataLoader(shuffle=True, generator=...)`` gives, so results do not depend on it.
        """
        gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        bs = self.batch_size if train else max(self.batch_size, 128)
        # A last batch of one breaks BatchNorm in train mode; drop it only then.
        drop_last = train and len(ds) > bs and len(ds) % bs == 1
        shard = self.dist.sampler(ds, train, self.cfg.seed, epoch) if self.dist is not None else None
        if shard is not None:  # DDP hook: this rank's share of the split and of each (global) batch
            bs = self.dist.local_batch(bs)
            drop_last = train and len(shard) > bs and len(shard) % bs == 1
        on_device = isinstance(ds, TensorDataset) and ds.tensors[0].device.type != "cpu"
        workers = 0 if isinstance(ds, TensorDataset) else self.num_workers
        pin = self.device.type == "cuda" and not on_device
        batched: Dataset | None = ds if isinstance(ds, TensorDataset) else _batch_view(ds)
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

    def ensure_features(self) -> FeatureSet | None:
        """On a cached run, the features of both splits (from the cache or extracted now)."""
        if not self.cached or self.features is not None:
            return self.features
        cuda = self.device.type == "cuda"
        fs = _features.prepare_features(
            self.model,
            self.bundle,
            self.cfg,
            self.device,
            runs_root=self.runs_root,
            cache_root=self.cache_root,
            batch_size=max(self.batch_size, 256 if cuda else 128),
            amp_dtype=self.amp_dtype if self.use_amp else None,
            check_stop=self._check_stop,
            on_progress=lambda done, total: self.trigger("extract", batch=done, batches=total),
            num_workers=self.num_workers,
            channels_last=self.channels_last,
            dist=self.dist,
        )
        if cuda:  # small next to the bodies: keep them on the GPU, index batches there
            fs.train = [f.to(self.device) for f in fs.train]
            fs.val = [f.to(self.device) for f in fs.val]
            fs.train_labels, fs.val_labels = fs.train_labels.to(self.device), fs.val_labels.to(self.device)
        self.features = fs
        log.info(
            "features: %s loaded, %s extracted (%.2fs)",
            ", ".join(fs.loaded) or "none", ", ".join(fs.extracted) or "none", fs.seconds,
        )
        return fs

    def feature_info(self) -> dict[str, Any]:
        """What the feature cache did for this run (recorded in status.json)."""
        fs = self.features
        return {
            "used": bool(self.cached),
            "reason": self.cache_reason,
            "loaded": list(fs.loaded) if fs else [],
            "extracted": list(fs.extracted) if fs else [],
            "seconds": round(fs.seconds, 3) if fs else None,
        }

    def _feature_ds(self, split: str) -> TensorDataset:
        fs = self.ensure_features()
        assert fs is not None
        if split == "train":
            return TensorDataset(*fs.train, fs.train_labels)
        return TensorDataset(*fs.val, fs.val_labels)

    def _inputs(self, batch: Any, feats: bool) -> tuple[Any, torch.Tensor]:
        """Move one batch to the device: a list of feature tensors, or one image tensor."""
        *xs, y = batch
        y = y.to(self.device, non_blocking=True)
        if feats:
            return [x.to(self.device, non_blocking=True) for x in xs], y
        return to_model_input(xs[0], self.device, self.channels_last), y

    def _logits(self, inputs: Any, feats: bool) -> torch.Tensor:
        if self._ddp_forward is not None and torch.is_grad_enabled():  # DDP hook: a training forward
            return self._ddp_forward(inputs)
        return self.model.forward_features(inputs) if feats else self._forward(inputs)

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
        feats = ds is None and self.cached  # cached run: the cached validation features
        ds = self._feature_ds("val") if feats else (ds if ds is not None else self.bundle.val)
        self.model.eval()
        losses: list[torch.Tensor] = []
        ps: list[torch.Tensor] = []
        ys: list[torch.Tensor] = []
        with torch.no_grad():
            for batch in self._loader(ds, train=False):
                self._check_stop()
                x, y = self._inputs(batch, feats)
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                    logits = self._logits(x, feats)
                losses.append(F.cross_entropy(logits.float(), y, reduction="sum"))
                ps.append(logits.argmax(1))
                ys.append(y)
        # one device -> host transfer at the end, not one per batch
        preds = torch.cat(ps).cpu() if ps else torch.zeros(0, dtype=torch.long)
        targets = torch.cat(ys).cpu() if ys else torch.zeros(0, dtype=torch.long)
        n = int(targets.numel())
        total_loss = float(torch.stack(losses).cpu().double().sum()) if losses else 0.0
        if self.dist is not None:  # DDP hook: every rank gets the whole split's predictions, in order
            preds, targets, total_loss = self.dist.gather_eval(preds, targets, total_loss)
            n = int(targets.numel())
        return {
            "loss": total_loss / max(n, 1),
            "acc": int((preds == targets).sum()) / max(n, 1),
            "preds": preds.tolist(),
            "targets": targets.tolist(),
        }

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training split; ``epoch`` is 1-based."""
        self.model.train()
        feats = self.cached
        loader = self._loader(self._feature_ds("train") if feats else self.bundle.train, train=True, epoch=epoch)
        nb = len(loader)
        total_loss, correct, n = 0.0, 0, 0
        for b, batch in enumerate(loader, start=1):
            if self.dist is None:  # under DDP the ranks agree on stopping with the batch totals below
                self._check_stop()
            x, y = self._inputs(batch, feats)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                logits = self._logits(x, feats)
                loss = F.cross_entropy(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            # One host sync per batch (loss and hits together), taken after backward is
            # queued so the GPU keeps working; a non-finite loss still never reaches step().
            stats = torch.stack([loss.detach().float(), (logits.detach().argmax(1) == y).sum().float()])
            bs = y.numel()
            if self.dist is not None:  # DDP hook: totals over the ranks, and one stop decision for all of them
                stats, bs, stop = self.dist.batch_totals(stats, bs, self.stop_event.is_set())
                if stop:
                    raise StopTraining()
            lv, hits = stats.tolist()
            if not math.isfinite(lv) or lv > DIVERGED_LOSS:
                raise Diverged(
                    f"diverged at epoch {epoch}, batch {b}: the loss is {lv:.4g}; lower the learning rate "
                    f"(now {self.cfg.train.lr:g})"
                )
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total_loss += lv * bs
            correct += int(hits)
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
        threads_before: int | None = None
        try:
            self.trigger("fit_start", epochs=epochs, start_epoch=self.epoch)
            if self.epoch < epochs:
                self.ensure_features()  # cached runs: one pass over the data (or none, on a cache hit)
            if self.cached and self.device.type == "cpu" and torch.get_num_threads() > 1:
                # Only small linear layers train now. Their ops are too small to gain from
                # OpenMP, and on a busy machine every fork/join waits for a descheduled
                # thread: measured 20-30x slower epochs with 2 threads than with 1.
                threads_before = torch.get_num_threads()
                torch.set_num_threads(1)
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
        finally:
            if threads_before is not None:
                torch.set_num_threads(threads_before)


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


def _checkpoint_bytes(trainer: Trainer) -> bytes:
    buf = io.BytesIO()
    torch.save(trainer.state_dict(), buf)
    return buf.getvalue()


def _save_checkpoint(trainer: Trainer, path: Path, data: bytes | None = None) -> None:
    atomic_write_bytes(path, data if data is not None else _checkpoint_bytes(trainer))


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
        tr.add_callback("extract", self.extract)

    def fit_start(self, tr: Trainer, epochs: int, start_epoch: int) -> None:
        self._t0 = time.perf_counter()
        self._start_epoch = start_epoch
        self._publish({"epoch": start_epoch, "epochs": epochs, "batch": 0, "batches": 0, "eta_s": None, "phase": "starting"}, force=True)

    def extract(self, tr: Trainer, batch: int, batches: int) -> None:
        # Still "starting" for the pages; the extraction progress rides along.
        prog = {
            "epoch": tr.epoch,
            "epochs": tr.cfg.train.epochs,
            "batch": 0,
            "batches": 0,
            "eta_s": None,
            "phase": "starting",
            "features": {"batch": batch, "batches": batches},
        }
        if batch == batches:
            self._t0 = time.perf_counter()  # the ETA counts training batches, not the extraction
        self._publish(prog, force=batch == batches)

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
            data = _checkpoint_bytes(tr)
            _save_checkpoint(tr, self.run.checkpoint_path, data)
            if improved:  # best.pt is this same epoch's file: a hard link, not a second copy
                atomic_link_or_write(self.run.checkpoint_path, self.run.best_path, data)
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


def _attach_tensorboard(trainer: Trainer, run: Run) -> None:
    """Mirror the epoch metrics to ``<run>/tb`` event files; never fails the run (TensorBoard is optional)."""
    try:
        from .tensorboard_log import attach_tensorboard

        attach_tensorboard(trainer, run)
    except Exception as exc:  # noqa: BLE001 - a broken tensorboard install is a warning, not a failed run
        log.warning("no TensorBoard logs for run %s: %s", run.id, exc)


def run_training(
    cfg: RunConfig,
    runs_root: str | Path | None = None,
    run: Run | None = None,
    stop_event: threading.Event | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
    extra_callbacks: dict[str, list[Callback]] | None = None,
    dist: DistContext | None = None,
) -> TrainResult:
    """Run one training job end to end against the run store.

    Without ``run``, bad input raises one of :data:`USER_ERRORS` before any folder is
    made. With ``run`` (a queued job, or ``resume``), bad input marks that run failed
    with the one-line message and raises it as well. Stop and divergence never raise:
    they come back as the result's state. ``dist`` (under torchrun, see
    :mod:`transfer_core.distributed`): one DDP rank of the run; rank 0 owns the folder.
    """
    store = RunStore(runs_root)
    if dist is not None:  # DDP hook: rank 0 creates/claims the folder, the other ranks get a read-only handle
        bundle, model, run = dist.prepare_run(cfg, store, run, prepare, USER_ERRORS)
    elif run is None:
        bundle, model = prepare(cfg, store.root)
        run = store.create(cfg, state="running")
    else:
        run.mark_live(True)  # before the slow prepare, so in-process readers never see "interrupted"
        try:
            bundle, model = prepare(cfg, store.root)
        except USER_ERRORS as exc:
            run.set_status("failed", str(exc))
            run.mark_live(False)
            raise
        except Exception as exc:
            run.set_status("failed", f"{type(exc).__name__}: {exc}")
            run.mark_live(False)
            raise
    run.mark_live(True)
    try:
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        trainer = Trainer(
            cfg, model, bundle, device=dist.device if dist is not None else None,
            stop_event=stop_event, runs_root=store.root, dist=dist,
        )
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
            # how it runs now, so a resume from the dashboard can start it the same way
            compiled=trainer.compiled,
            world_size=dist.world_size if dist is not None else 1,
            dist_backend=dist.backend if dist is not None else None,
        )
        if dist is None or dist.is_main:  # DDP hook: rank 0 alone records (metrics once, one set of checkpoints)
            recorder = _Recorder(run, on_progress)
            recorder.attach(trainer)
            _attach_tensorboard(trainer, run)
            for event, fns in (extra_callbacks or {}).items():
                for fn in fns:
                    trainer.add_callback(event, fn)
        try:
            result = trainer.fit()
        except Exception as exc:  # an unexpected failure: keep the message, never lose the folder
            if isinstance(exc, CheckpointError):  # expected, one line: no traceback on the user's terminal
                log.error("run %s failed: %s", run.id, exc)
            else:
                log.exception("run %s failed", run.id)
            msg = str(exc) if isinstance(exc, CheckpointError) else f"{type(exc).__name__}: {exc}"
            run.set_status("failed", msg)
            return TrainResult("failed", msg, run, run.metrics())
        _write_results(run, trainer)
        run.set_status(
            result.state,
            result.message,
            best_val_acc=trainer.best_val_acc if trainer.epoch else None,
            warnings=trainer.warnings,
            feature_cache=trainer.feature_info(),
        )
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
    dist: DistContext | None = None,
) -> TrainResult:
    """Continue an interrupted or stopped run from its last checkpoint to its configured epochs."""
    store = RunStore(runs_root)

    def claim() -> Run:
        run = store.get(ref)
        st = run.status()
        if st.get("state") in ("running", "queued") and not run.handed_to_me():
            raise ConfigError("", f"run {run.id} is still {st.get('state')} in process {st.get('pid')}")
        if st.get("state") == "completed":
            raise ConfigError("", f"run {run.id} is already completed")
        run.config()  # readable, before claiming it
        run.set_status("running", "resuming")
        return run

    # DDP hook: rank 0 checks and claims the run, the other ranks follow its folder
    run = dist.follow_main(claim, USER_ERRORS) if dist is not None else claim()
    cfg = run.config()
    return run_training(cfg, store.root, run=run, stop_event=stop_event, on_progress=on_progress, resume=True, dist=dist)


__all__.append("resume_training")
