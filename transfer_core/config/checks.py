"""Value checks of a run config: ranges and cross-field rules that need no data or model."""

from __future__ import annotations

import math

from ..errors import ConfigError
from ..i18n import _
from .schema import ACTIVATIONS, DEVICES, FUSION_MODES, METHODS, OPTIMIZERS, RunConfig

__all__ = ["validate"]


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def validate(cfg: RunConfig) -> RunConfig:
    """Check values and cross-field rules that need no data or model; raise ConfigError.

    Backbone names and freeze ranges are checked against the registry here too
    (imported lazily so that config stays cheap to import).
    """
    from ..backbones import get_backbone  # lazy: registry builds on first use

    if cfg.method not in METHODS:
        raise ConfigError("method", _("must be one of {choices}, got {value!r}").format(choices=", ".join(METHODS), value=cfg.method))
    d = cfg.data
    if not d.dataset.strip():
        raise ConfigError("data.dataset", _("must name a dataset"))
    if not (0.0 < d.val_fraction < 1.0) or not _finite(d.val_fraction):
        raise ConfigError("data.val_fraction", _("must be between 0 and 1 (exclusive), got {value}").format(value=d.val_fraction))
    if not (8 <= d.image_size <= 1024):
        raise ConfigError("data.image_size", _("must be between {low} and {high}, got {value}").format(low=8, high=1024, value=d.image_size))
    if d.train_per_class is not None and d.train_per_class < 1:
        raise ConfigError("data.train_per_class", _("must be at least {low}, got {value}").format(low=1, value=d.train_per_class))
    if d.classes is not None:
        if len(d.classes) < 2:
            raise ConfigError("data.classes", _("needs at least two classes"))
        if len(set(map(str, d.classes))) != len(d.classes):
            raise ConfigError("data.classes", _("lists a class twice"))
    if not (2 <= d.shapes_classes <= 8):
        raise ConfigError("data.shapes_classes", _("must be between {low} and {high}, got {value}").format(low=2, high=8, value=d.shapes_classes))
    if not (4 <= d.shapes_per_class <= 5000):
        raise ConfigError("data.shapes_per_class", _("must be between {low} and {high}, got {value}").format(low=4, high=5000, value=d.shapes_per_class))

    if not cfg.backbones:
        raise ConfigError("backbones", _("needs at least one backbone"))
    if cfg.method in ("transfer", "distill") and len(cfg.backbones) != 1:
        if cfg.method == "transfer":
            msg = _("transfer takes exactly one backbone, got {n}")
        else:
            msg = _("distill takes one student backbone: exactly one backbone, got {n}")
        raise ConfigError("backbones", msg.format(n=len(cfg.backbones)))
    if cfg.method == "fusion" and len(cfg.backbones) < 2:
        raise ConfigError("backbones", _("fusion needs at least two backbones, got {n}").format(n=len(cfg.backbones)))
    for i, b in enumerate(cfg.backbones):
        try:
            spec = get_backbone(b.name)
        except ValueError as exc:
            raise ConfigError(f"backbones.{i}.name", str(exc)) from None
        w = b.weights.strip()
        if not (w in ("imagenet", "none") or (w.startswith("file:") and len(w) > 5) or (w.startswith("run:") and len(w) > 4)):
            raise ConfigError(f"backbones.{i}.weights", _("must be imagenet, none, file:PATH or run:RUN, got {value!r}").format(value=b.weights))
        k = len(spec.groups)
        if isinstance(b.freeze, str):
            if b.freeze != "all":
                raise ConfigError(f"backbones.{i}.freeze", _("must be 'all' or a number 0..{k}, got {value!r}").format(k=k, value=b.freeze))
        elif not (0 <= b.freeze <= k):
            raise ConfigError(f"backbones.{i}.freeze", _("{name} has {k} layer groups: freeze must be 0..{k} or 'all', got {value}").format(
                name=b.name, k=k, value=b.freeze))

    f = cfg.fusion
    if f.mode not in FUSION_MODES:
        raise ConfigError("fusion.mode", _("must be one of {choices}, got {value!r}").format(choices=", ".join(FUSION_MODES), value=f.mode))
    if f.activation not in ACTIVATIONS:
        raise ConfigError("fusion.activation", _("must be one of {choices}, got {value!r}").format(
            choices=", ".join(ACTIVATIONS), value=f.activation))
    if not (1 <= f.shared_dim <= 8192):
        raise ConfigError("fusion.shared_dim", _("must be between {low} and {high}, got {value}").format(low=1, high=8192, value=f.shared_dim))
    if f.alpha is not None and cfg.method == "fusion":
        if len(f.alpha) != len(cfg.backbones):
            raise ConfigError("fusion.alpha", _("needs one value per backbone ({n}), got {got}").format(n=len(cfg.backbones), got=len(f.alpha)))
        if any(not _finite(a) for a in f.alpha):
            raise ConfigError("fusion.alpha", _("values must be finite numbers"))
        if any(a < 0 for a in f.alpha):
            raise ConfigError("fusion.alpha", _("values must not be negative"))
        if sum(f.alpha) <= 0:
            raise ConfigError("fusion.alpha", _("values must not all be zero"))

    if cfg.method == "distill":
        _check_distill(cfg)

    t = cfg.train
    if not (1 <= t.epochs <= 10000):
        raise ConfigError("train.epochs", _("must be between {low} and {high}, got {value}").format(low=1, high=10000, value=t.epochs))
    if not (1 <= t.batch_size <= 65536):
        raise ConfigError("train.batch_size", _("must be between {low} and {high}, got {value}").format(low=1, high=65536, value=t.batch_size))
    if not _finite(t.lr) or t.lr <= 0:
        raise ConfigError("train.lr", _("must be a positive number, got {value}").format(value=t.lr))
    if t.optimizer not in OPTIMIZERS:
        raise ConfigError("train.optimizer", _("must be one of {choices}, got {value!r}").format(
            choices=", ".join(OPTIMIZERS), value=t.optimizer))
    if not _finite(t.weight_decay) or t.weight_decay < 0:
        raise ConfigError("train.weight_decay", _("must be >= 0, got {value}").format(value=t.weight_decay))
    if t.lr_decay is not None and (not _finite(t.lr_decay) or not (0 < t.lr_decay <= 1)):
        raise ConfigError("train.lr_decay", _("must be in (0, 1], got {value}").format(value=t.lr_decay))
    if t.head_epochs is not None and not (0 <= t.head_epochs <= 10000):
        raise ConfigError("train.head_epochs", _("must be between {low} and {high}, got {value}").format(low=0, high=10000, value=t.head_epochs))
    if t.device not in DEVICES:
        raise ConfigError("train.device", _("must be one of {choices}, got {value!r}").format(choices=", ".join(DEVICES), value=t.device))
    if not (-1 <= t.num_workers <= 64):
        raise ConfigError("train.num_workers", _("must be -1 (auto) or between 0 and 64, got {value}").format(value=t.num_workers))
    if t.threads < 0:
        raise ConfigError("train.threads", _("must be >= 0, got {value}").format(value=t.threads))
    if not _finite(t.checkpoint_every_s) or t.checkpoint_every_s < 0:
        raise ConfigError("train.checkpoint_every_s", _("must be a number of seconds >= 0, got {value}").format(
            value=t.checkpoint_every_s))
    return cfg


def _check_distill(cfg: RunConfig) -> None:
    """The ``distill`` section's own values; the teachers themselves are checked against the
    run store when the run is prepared (:func:`transfer_core.distill.resolve_teachers`)."""
    d = cfg.distill
    if not d.teachers:
        raise ConfigError("distill.teachers", _("needs at least one teacher: a completed run on the same classes (run:NAME or run:ID)"))
    for i, ref in enumerate(d.teachers):
        r = ref.strip()
        if not (r.startswith("run:") and len(r) > 4):
            raise ConfigError(f"distill.teachers.{i}", _("must be run:NAME, run:ID or run:FOLDER, got {value!r}").format(value=ref))
    if len(set(t.strip() for t in d.teachers)) != len(d.teachers):
        raise ConfigError("distill.teachers", _("lists a teacher twice"))
    if not _finite(d.temperature) or not (0.1 <= d.temperature <= 100):
        raise ConfigError("distill.temperature", _("must be a number between 0.1 and 100, got {value}").format(value=d.temperature))
    if not _finite(d.weight) or not (0.0 <= d.weight <= 1.0):
        raise ConfigError("distill.weight", _("must be between 0 and 1 (the share of the teachers' loss), got {value}").format(
            value=d.weight))
    if d.teacher_weights is not None:
        w = d.teacher_weights
        if len(w) != len(d.teachers):
            raise ConfigError("distill.teacher_weights", _("needs one value per teacher ({n}), got {got}").format(
                n=len(d.teachers), got=len(w)))
        if any(not _finite(x) or x < 0 for x in w):
            raise ConfigError("distill.teacher_weights", _("values must be finite numbers >= 0"))
        if sum(w) <= 0:
            raise ConfigError("distill.teacher_weights", _("values must not all be zero"))
    if d.weight == 0.0 and (d.unlabeled and cfg.data.train_per_class is not None):
        raise ConfigError("distill.weight", _(
            "is 0, so the unlabeled images would teach nothing: raise it or set distill.unlabeled: false"))
