"""The fit loop: one model, one data bundle, epochs of training and validation, callbacks around them.

:class:`Trainer` trains from ``self.epoch`` to ``cfg.train.epochs`` and calls its
:class:`~transfer_core.training.callbacks.Callback` list at each step (fit start, feature
extraction, batch end, epoch end, exception, fit end). It owns the optimizer, mixed
precision, channels_last, torch.compile and the DDP hooks, and checks every loss it sees:
a non-finite or absurd training or validation loss ends the fit as "diverged". It writes
nothing itself; the run folder is the callbacks' job (see ``lifecycle``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..config import RunConfig
from ..data import DataBundle
from ..models import FusionModel, freeze_model
from ..recipe import resolve
from ..runs import Run
from .callbacks import Callback, Diverged, StopTraining
from .device import auto_workers, select_device, small_ops_threads
from .optimizer import CompiledForward, build_optimizer
from .feature_cache import AUGMENT_NOTE, FeatureSet, cache_decision, prepare_features
from .loaders import make_loader, to_model_input

if TYPE_CHECKING:  # only a type: the single-process path never imports torch.distributed
    from ..distributed import DistContext

__all__ = ["Trainer", "TrainResult", "DIVERGED_LOSS"]

log = logging.getLogger(__name__)

# Families whose bodies are mostly attention/linear layers: channels_last buys nothing there.
_NOT_CONVNETS = ("vit", "swin", "maxvit")

# A cross-entropy this large means logits off by ~a million: Adam at lr 1e6 gets there
# with every value still finite (BatchNorm keeps activations bounded), so NaN alone misses it.
DIVERGED_LOSS = 1e6


@dataclass
class TrainResult:
    state: str  # completed | failed | stopped
    message: str
    run: Run | None
    metrics: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Fit a model on a data bundle; calls its callbacks; checks the stop event every batch."""

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
        callbacks: Sequence[Callback] = (),
    ):
        bad = [cb for cb in callbacks if not isinstance(cb, Callback)]
        if bad:
            raise TypeError(f"callbacks must be Callback instances, got {bad[0]!r}")
        cfg = resolve(cfg)  # train.head_epochs / lr_decay left empty: the recipe for pretrained weights
        self.cfg = cfg
        self.model = model
        self.bundle = bundle
        self.device = device or select_device(cfg.train.device)
        self.stop_event = stop_event or threading.Event()
        self.callbacks: list[Callback] = list(callbacks)
        self.epoch = 0  # completed epochs
        self.best_val_acc = -1.0
        self.last_eval: dict[str, Any] | None = None
        self.result: TrainResult | None = None  # set by fit() before on_fit_end
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
        self.use_amp = bool(t.amp and cuda)
        self.amp_dtype = torch.bfloat16 if (self.use_amp and torch.cuda.is_bf16_supported()) else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.runs_root = runs_root
        self.cache_root = cache_root
        self.features: FeatureSet | None = None
        self.dist = dist
        # Head warm-up (train.head_epochs, see recipe): the first epochs train the new layers
        # on the frozen bodies, then the configured groups unfreeze. None: nothing to warm up.
        self._freeze = [b.freeze for b in cfg.backbones]
        bodies_frozen = bool(bodies) and all(b.fully_frozen for b in bodies)
        self.head_epochs = 0 if bodies_frozen else int(t.head_epochs or 0)
        if self.head_epochs >= t.epochs and self.head_epochs:
            self.warnings.append(f"train.head_epochs {self.head_epochs} >= train.epochs {t.epochs}: the body never unfreezes")
        self.warming: bool | None = None
        self.warm_up_features: dict[str, Any] | None = None
        self._enter_phase(warm=self.head_epochs > 0)
        if self.cached and cfg.data.augment:
            self.warnings.append(AUGMENT_NOTE)

    def _enter_phase(self, warm: bool) -> None:
        """Freeze for the head warm-up (every body group) or unfreeze to the configured groups,
        and build what depends on it: the optimizer, the feature-cache choice, DDP and compile."""
        if warm == self.warming:
            return
        if self.warming and self.features is not None:  # the warm-up trained on cached features: say so
            self.warm_up_features = self.feature_info()
        self.warming = warm
        cfg, model, t = self.cfg, self.model, self.cfg.train
        freeze_model(model, ["all"] * len(self._freeze) if warm else self._freeze, t.bn_train_frozen)
        self.optimizer = build_optimizer(cfg, model, t.lr)
        # Feature cache: with every body fully frozen, train on features extracted once.
        self.cached, self.cache_reason = cache_decision(cfg, model)
        if not self.cached:
            self.features = None
        # DDP hook (transfer_core.distributed; None without torchrun): training forwards go
        # through the DistributedDataParallel wrapper, which averages gradients over the ranks.
        dist = self.dist
        self._ddp: nn.Module | None = dist.wrap(self.model, features=self.cached) if dist is not None else None
        self._forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        self._ddp_forward: Callable[[Any], torch.Tensor] | None = self._ddp
        if t.compile and not self.cached:  # a cached run only trains small linear layers
            self._forward = self._compiled(self.model)
            if self._ddp is not None and self._forward is not self.model:
                # compile the DDP wrapper, not the model inside it: PyTorch's DDPOptimizer then
                # splits the graph at the gradient buckets, so all-reduce still overlaps backward
                self._ddp_forward = self._compiled(self._ddp)

    def enter_epoch(self, completed: int) -> None:
        """Put the model in the phase that follows ``completed`` epochs (a resume, or the loop)."""
        if self.head_epochs:
            was = self.warming
            self._enter_phase(warm=completed < self.head_epochs)
            if was and not self.warming:
                log.info("epoch %d: the body unfreezes after %d head epochs", completed + 1, self.head_epochs)

    def _compiled(self, module: nn.Module) -> Callable[..., torch.Tensor]:
        """``module`` behind torch.compile, or ``module`` itself (with a warning) where compile is unavailable."""
        try:
            return CompiledForward(module, self.warnings)
        except Exception as exc:  # e.g. torch.compile unsupported on this platform
            self.warnings.append(f"train.compile is not available here ({type(exc).__name__}); training eagerly")
            return module

    @property
    def compiled(self) -> list[str]:
        """Which forwards go through torch.compile ("train", "eval"): recorded in the run's status."""
        train = self._ddp_forward if self._ddp is not None else self._forward
        return [name for name, fn in (("train", train), ("eval", self._forward)) if isinstance(fn, CompiledForward)]

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # pieces ---------------------------------------------------------------------
    def _loader(self, ds: Dataset, train: bool, epoch: int = 0) -> DataLoader:
        return make_loader(ds, train=train, epoch=epoch, batch_size=self.batch_size, seed=self.cfg.seed,
                           num_workers=self.num_workers, device=self.device, dist=self.dist)

    def ensure_features(self) -> FeatureSet | None:
        """On a cached run, the features of both splits (from the cache or extracted now)."""
        if not self.cached or self.features is not None:
            return self.features
        cuda = self.device.type == "cuda"
        fs = prepare_features(
            self.model,
            self.bundle,
            self.cfg,
            self.device,
            runs_root=self.runs_root,
            cache_root=self.cache_root,
            batch_size=max(self.batch_size, 256 if cuda else 128),
            amp_dtype=self.amp_dtype if self.use_amp else None,
            check_stop=self._check_stop,
            on_extract=lambda done, total: self._call("on_extract", done, total),
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
        info = {
            "used": bool(self.cached),
            "reason": self.cache_reason,
            "loaded": list(fs.loaded) if fs else [],
            "extracted": list(fs.extracted) if fs else [],
            "seconds": round(fs.seconds, 3) if fs else None,
        }
        if self.warm_up_features is not None:
            info["head_warm_up"] = self.warm_up_features
        return info

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

    def _check_loss(self, value: float, epoch: int, what: str, batch: int | None = None) -> None:
        """Raise :class:`Diverged` for a NaN, infinite or absurdly large loss."""
        if not math.isfinite(value) or value > DIVERGED_LOSS:
            raise Diverged.at(epoch, what, value, self.cfg.train.lr, batch)

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
            self._check_loss(lv, epoch, "loss", batch=b)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total_loss += lv * bs
            correct += int(hits)
            n += bs
            self._call("on_batch_end", epoch, b, nb, lv)
        return {"train_loss": total_loss / max(n, 1), "train_acc": correct / max(n, 1)}

    def _epoch(self, rows: list[dict[str, Any]]) -> None:
        """Train and validate epoch ``self.epoch + 1``; its row goes to ``rows`` and to the callbacks."""
        e = self.epoch + 1
        t0 = time.perf_counter()
        row: dict[str, Any] = {"epoch": e}
        if self.head_epochs:  # where the body unfroze, in the run's record and on its curves
            row["phase"] = "head" if self.warming else "body"
        row.update(self._train_epoch(e))
        ev = self.evaluate()
        self._check_loss(ev["loss"], e, "validation loss")
        self.last_eval = ev
        row.update(val_loss=ev["loss"], val_acc=ev["acc"], lr=float(self.optimizer.param_groups[0]["lr"]),
                   seconds=time.perf_counter() - t0)
        alpha = self.alpha()
        if alpha is not None:
            row["alpha"] = alpha
        self.epoch = e
        self.best_val_acc = max(self.best_val_acc, ev["acc"])
        rows.append(row)
        self._call("on_epoch_end", e, row)

    # the loop -------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train from ``self.epoch`` to ``cfg.train.epochs``; never raises for stop, divergence or GPU OOM."""
        epochs = self.cfg.train.epochs
        rows: list[dict[str, Any]] = []
        self.result = None
        try:
            self.enter_epoch(self.epoch)
            self._call("on_fit_start")
            while self.epoch < epochs:
                self.enter_epoch(self.epoch)  # the head warm-up ends here
                self.ensure_features()  # cached runs: one pass over the data (or none, on a cache hit)
                with small_ops_threads(self.cached and self.device.type == "cpu"):
                    self._epoch(rows)
            self.result = TrainResult("completed", f"finished {epochs} epochs; best val_acc {self.best_val_acc:.3f}", None, rows)
        except StopTraining:
            msg = f"stopped by the user after {self.epoch} of {epochs} epochs" + (
                f"; checkpoint of epoch {self.epoch} kept" if self.epoch else ""
            )
            self.result = TrainResult("stopped", msg, None, rows)
        except (Diverged, torch.OutOfMemoryError) as exc:
            msg = str(exc)
            if isinstance(exc, torch.OutOfMemoryError):
                msg = f"out of GPU memory at batch size {self.batch_size}; try a smaller batch size or image size"
            self.result = TrainResult("failed", msg, None, rows)
            self._call("on_exception", exc)
        except Exception as exc:
            self._call("on_exception", exc)
            raise
        finally:
            self._call("on_fit_end")
        return self.result
