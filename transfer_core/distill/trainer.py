"""The fit loop of a distillation: the :class:`~transfer_core.training.Trainer`'s, with the
teachers' soft targets in every batch and the labeled and unlabeled images together.

Everything else (validation, callbacks, checkpoints, Stop, divergence, resume, the head
warm-up of a pretrained student) is the Trainer's. Before the first epoch the teachers'
outputs are read from their cache or computed in one pass (reported like a feature
extraction); the epochs never run a teacher. Each metrics row adds the loss parts
``train_ce``, ``train_kd`` (and ``train_feat``); ``train_acc`` counts labeled images only.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from ..backbones import get_backbone
from ..training.callbacks import StopTraining
from ..training.feature_key import data_key
from ..training.loaders import to_model_input
from ..training.trainer import Trainer
from .loss import distill_loss
from .student import StudentModel
from .targets import TeacherOutputs, soft_targets, teacher_outputs
from .teachers import Teacher, resolve_teachers, split_warnings

__all__ = ["DistillTrainer", "teacher_dim"]

log = logging.getLogger(__name__)

NO_UNLABELED = (
    "distill.unlabeled: every training image has its label (data.train_per_class is not set), "
    "so there are no unlabeled images to add"
)


def teacher_dim(teacher: Teacher) -> int:
    """Width of what a teacher's final layer reads: its body's features, or a fusion's shared space."""
    cfg = teacher.config
    if cfg.get("method") == "fusion":
        fusion = cfg.get("fusion") or {}
        n = len(cfg.get("backbones") or [])
        return int(fusion.get("shared_dim", 128)) * (n if fusion.get("mode") == "concat" else 1)
    return int(get_backbone(cfg["backbones"][0]["name"]).feature_dim)


class _Items(Dataset):
    """Labeled then unlabeled items as (image, label or -1, row index), augmented per item."""

    images = None  # per item: the loaders' whole-batch path does not apply

    def __init__(self, parts: list[Any]):
        self.parts = parts
        self.augment = any(p.augment for p in parts)
        self.labels = torch.cat([p.labels for p in parts])
        self._starts = [0]
        for p in parts:
            self._starts.append(self._starts[-1] + len(p))

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        k = next(j for j in range(len(self.parts)) if i < self._starts[j + 1])
        x, _ = self.parts[k][i - self._starts[k]]
        return x, int(self.labels[i]), i


class DistillTrainer(Trainer):
    """Train a student (``cfg.backbones[0]``) on its labels and its teachers' softened outputs."""

    def __init__(self, cfg: Any, model: nn.Module, bundle: Any, *args: Any, **kwargs: Any):
        runs_root = kwargs.get("runs_root")
        self.teachers = resolve_teachers(cfg, bundle.classes, runs_root)
        d = cfg.distill
        if d.features and isinstance(model, StudentModel) and not len(model.feature_proj):
            model.feature_proj = nn.ModuleList(nn.Linear(model.backbone.feature_dim, teacher_dim(t)) for t in self.teachers)
        if d.features and kwargs.get("dist") is not None:
            from ..errors import ConfigError

            raise ConfigError("distill.features", "is not available under torchrun; set it to false")
        super().__init__(cfg, model, bundle, *args, **kwargs)
        self.warnings += split_warnings(self.cfg, self.teachers)
        self.unlabeled = bundle.unlabeled if d.unlabeled else None
        if d.unlabeled and (self.unlabeled is None or len(self.unlabeled) == 0):
            self.warnings.append(NO_UNLABELED)
            self.unlabeled = None
        self.outputs: TeacherOutputs | None = None
        self._targets: torch.Tensor | None = None
        self._tfeats: list[torch.Tensor] = []
        self._train_set: Dataset | None = None

    # the teachers' outputs, once ------------------------------------------------
    def ensure_features(self) -> None:  # type: ignore[override]
        """Before the first epoch: the teachers' outputs for every training image (cached or computed)."""
        if self.outputs is not None:
            return None
        parts = [self.bundle.train] + ([self.unlabeled] if self.unlabeled is not None else [])
        key = {**data_key(self.cfg, self.bundle), "unlabeled": self.bundle.info.get("unlabeled_fingerprint") if self.unlabeled is not None else None}
        out = teacher_outputs(
            self.teachers, parts, key, self.device, runs_root=self.runs_root, cache_root=self.cache_root,
            batch_size=max(self.batch_size, 128), check_stop=self._check_stop,
            on_progress=lambda done, total: self._call("on_extract", done, total),
        )
        d = self.cfg.distill
        weights = [t.weight for t in self.teachers]
        self._targets = soft_targets(out, weights, d.temperature).to(self.device)
        if d.features:  # standardised per dimension: the MSE then weighs every feature alike, whatever its scale
            self._tfeats = [((f - f.mean(0)) / (f.std(0) + 1e-6)).to(self.device) for f in out.features]
        self._train_set = self._dataset(parts)
        self.outputs = out
        log.info("teachers: %s loaded, %s computed (%.2fs)", ", ".join(out.loaded) or "none",
                 ", ".join(out.computed) or "none", out.seconds)
        return None

    def _dataset(self, parts: list[Any]) -> Dataset:
        labels = torch.cat([p.labels.long() for p in parts])
        rows = torch.arange(len(labels))
        images = [p.images for p in parts]
        if not any(p.augment for p in parts) and all(im is not None and im.dtype == torch.uint8 for im in images):
            # in memory, unaugmented: whole batches sliced at once (the loaders' fast path)
            shapes = {tuple(im.shape[1:]) for im in images}
            if len(shapes) == 1:
                return TensorDataset(torch.cat(images), labels, rows)
        return _Items(parts)

    def feature_info(self) -> dict[str, Any]:
        info = super().feature_info()
        out = self.outputs
        info["teachers"] = {
            "runs": [t.id for t in self.teachers],
            "weights": [round(t.weight, 6) for t in self.teachers],
            "loaded": list(out.loaded) if out else [],
            "computed": list(out.computed) if out else [],
            "seconds": round(out.seconds, 3) if out else None,
            "images": len(self._train_set) if self._train_set is not None else None,
            "unlabeled": len(self.unlabeled) if self.unlabeled is not None else 0,
        }
        return info

    # one epoch ------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.ensure_features()
        assert self._train_set is not None and self._targets is not None
        self.model.train()
        d = self.cfg.distill
        loader = self._loader(self._train_set, train=True, epoch=epoch)
        nb = len(loader)
        sums = {"loss": 0.0, "ce": 0.0, "kd": 0.0, "feat": 0.0}
        correct, n, n_labeled = 0, 0, 0
        use_feats = bool(d.features and isinstance(self.model, StudentModel) and len(self.model.feature_proj))
        for b, (x, y, rows) in enumerate(loader, start=1):
            if self.dist is None:
                self._check_stop()
            x = to_model_input(x, self.device, self.channels_last)
            y = torch.as_tensor(y).to(self.device, non_blocking=True)
            rows = torch.as_tensor(rows).to(self._targets.device)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                pairs = []
                if use_feats:
                    s = self.model.backbone(x)
                    logits = self.model.head(s)
                    pairs = [(proj(s), tf[rows], t.weight)
                             for proj, tf, t in zip(self.model.feature_proj, self._tfeats, self.teachers)]
                else:
                    logits = self._logits(x, False)
                loss, parts = distill_loss(logits, y, self._targets[rows], d.temperature, d.weight, pairs)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            labeled = y >= 0
            stats = torch.stack([loss.detach().float(), parts["ce"].float(), parts["kd"].float(),
                                 parts.get("feat", torch.zeros((), device=loss.device)).float(),
                                 (logits.detach().argmax(1)[labeled] == y[labeled]).sum().float(),
                                 labeled.sum().float()])
            bs = y.numel()
            if self.dist is not None:
                stats, bs, stop = self.dist.batch_totals(stats, bs, self.stop_event.is_set())
                if stop:
                    raise StopTraining()
            lv, ce, kd, feat, hits, nl = stats.tolist()
            self._check_loss(lv, epoch, "loss", batch=b)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            for k, v in (("loss", lv), ("ce", ce), ("kd", kd), ("feat", feat)):
                sums[k] += v * bs
            correct += int(hits)
            n_labeled += int(nl)
            n += bs
            self._call("on_batch_end", epoch, b, nb, lv)
        row = {"train_loss": sums["loss"] / max(n, 1), "train_acc": correct / max(n_labeled, 1),
               "train_ce": sums["ce"] / max(n, 1), "train_kd": sums["kd"] / max(n, 1)}
        if use_feats:
            row["train_feat"] = sums["feat"] / max(n, 1)
        return row
