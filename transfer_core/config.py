"""Typed run configuration: dataclasses, strict YAML/dict loading, ``--set`` overrides.

Why strict: a misspelt key silently ignored is a run that did something other than
what the user asked for. Every unknown key, wrong type or out-of-range value raises
:class:`ConfigError` naming the dotted field, which the CLI prints as one line and the
UI shows next to the widget.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError
from .paths import data_roots, runs_dir

__all__ = [
    "ConfigError",
    "DataConfig",
    "BackboneConfig",
    "FusionConfig",
    "TrainConfig",
    "RunConfig",
    "from_dict",
    "to_dict",
    "load_yaml",
    "dump_yaml",
    "parse_yaml_text",
    "apply_overrides",
    "validate",
    "runs_dir",
    "data_roots",
    "METHODS",
    "FUSION_MODES",
    "ACTIVATIONS",
    "OPTIMIZERS",
    "DEVICES",
]

METHODS = ("transfer", "fusion")
FUSION_MODES = ("sum", "concat")
ACTIVATIONS = ("relu", "gelu", "tanh", "identity")
OPTIMIZERS = ("adam", "adamw", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class DataConfig:
    dataset: str = "digits"  # built-in (digits|mnist5k|shapes), torchvision name, or folder/zip under the data root
    classes: list[Union[int, str]] | None = None  # subset, by index or name, in this order; None = all
    train_per_class: int | None = None  # few-shot: at most this many training images per class
    val_fraction: float = 0.2  # share of each class held out for validation
    image_size: int = 32  # square side the images are resized to
    augment: bool = False  # light random affine on training images
    shapes_classes: int = 6  # number of classes of the synthetic "shapes" dataset
    shapes_per_class: int = 120  # images per class of the synthetic "shapes" dataset


@dataclass
class BackboneConfig:
    name: str = "resnet18"  # a registry name (python -m transfer_core backbones)
    weights: str = "none"  # imagenet | none | file:PATH | run:RUN
    freeze: Union[int, str] = 0  # "all", 0 (train everything) or the number of leading groups frozen


@dataclass
class FusionConfig:
    mode: str = "sum"  # sum (alpha-weighted) | concat
    shared_dim: int = 128  # width of the shared space every backbone is projected to
    alpha: list[float] | None = None  # one weight per backbone; None = uniform
    learn_alpha: bool = True  # learn alpha (softmax-normalised) instead of keeping it fixed
    activation: str = "relu"  # phi: relu | gelu | tanh | identity


@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw | sgd
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    lr_decay: float | None = None  # body group i of k trains at lr * lr_decay**(k - i); None = the recipe (transfer_core.recipe)
    head_epochs: int | None = None  # epochs training only the new head before the body unfreezes; None = the recipe
    device: str = "auto"  # auto picks cuda -> mps -> cpu
    amp: bool = True  # mixed precision, used on CUDA only
    bn_train_frozen: bool = False  # keep BatchNorm of frozen groups in train mode (off: the Keras pitfall)
    num_workers: int = -1  # DataLoader workers; -1 = auto (0 on CPU/MPS, min(8, CPUs - 1) on CUDA); 0 = in the training thread
    threads: int = 0  # torch CPU threads; 0 = leave torch's default
    feature_cache: bool = True  # fully frozen backbones: extract features once (cached on disk), train the head on them
    compile: bool = False  # torch.compile the model for training (first epoch slower; falls back to eager if it fails)
    checkpoint_every_s: float = 60.0  # checkpoint.pt at most this often, and always for a new best, the last epoch, Stop; 0 = every epoch
    checkpoint_best: bool = True  # also write checkpoint.pt + best.pt for every new best (a sweep's trials: off, their final model counts)


@dataclass
class RunConfig:
    seed: int = 0
    name: str = ""  # free label shown in run lists
    method: str = "transfer"  # transfer | fusion
    data: DataConfig = field(default_factory=DataConfig)
    backbones: list[BackboneConfig] = field(default_factory=lambda: [BackboneConfig()])
    fusion: FusionConfig = field(default_factory=FusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# --------------------------------------------------------------------------- loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert only lossless cases."""
    origin = get_origin(tp)
    if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(path, "must not be empty")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(path, f"has an invalid value {value!r} ({'; '.join(errors)})")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"must be a list, got {value!r}")
        (item_tp,) = get_args(tp)
        return [_coerce(v, item_tp, f"{path}.{i}") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _from_mapping(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(path, f"must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(path, f"must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(path, f"must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(path, f"must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, f"must be a string, got {value!r}")
    raise ConfigError(path, f"unsupported type {_type_name(tp)}")  # pragma: no cover


def _from_mapping(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, f"must be a mapping, got {data!r}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = unknown[0]
        where = f"{path}.{key}" if path else str(key)
        import difflib

        close = difflib.get_close_matches(str(key), names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(names)})"
        raise ConfigError(where, f"unknown key{hint}")
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{path}.{name}" if path else name)
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from plain data; unknown keys and bad types raise."""
    cfg = _from_mapping(RunConfig, data, "")
    return cfg


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain, YAML-safe dict of the full resolved config."""
    return dataclasses.asdict(cfg)


def parse_yaml_text(text: str, source: str = "config") -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"{source} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("", f"{source} must be a YAML mapping at the top level")
    return data


def load_yaml(path: str | os.PathLike, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config, apply ``key.path=value`` overrides, validate the types."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config {p}: {exc.strerror or exc}") from None
    data = parse_yaml_text(text, str(p))
    if overrides:
        data = apply_overrides(data, overrides)
    return from_dict(data)


def dump_yaml(cfg: RunConfig | dict[str, Any]) -> str:
    data = to_dict(cfg) if isinstance(cfg, RunConfig) else cfg
    return yaml.safe_dump(data, sort_keys=False)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.0.c=value`` overrides to a plain config dict (values parsed as YAML).

    A list index one past the end appends (so ``backbones.1.name=vgg11`` adds a
    backbone); missing mappings are created. The result is checked later by
    :func:`from_dict`, so a typo still fails loudly.
    """
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, "override must look like key.path=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() != "" else ""
        except yaml.YAMLError:
            value = raw
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(key, "override key is empty")
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_index = not last and parts[i + 1].isdigit()
            if isinstance(node, list):
                if not part.isdigit():
                    raise ConfigError(".".join(parts[: i + 1]), "expected a list index")
                idx = int(part)
                if idx > len(node):
                    raise ConfigError(".".join(parts[: i + 1]), f"index {idx} is past the end (list has {len(node)})")
                if idx == len(node):
                    node.append(None if last else ([] if nxt_is_index else {}))
                if last:
                    node[idx] = value
                else:
                    if node[idx] is None:
                        node[idx] = [] if nxt_is_index else {}
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = _default_container(parts[: i + 1], nxt_is_index)
                    node = node[part]
            else:
                raise ConfigError(".".join(parts[:i]), "is not a mapping or list")
    return out


def _default_container(parts: list[str], index_next: bool) -> Any:
    """When an override walks into a missing section, start from the dataclass defaults."""
    if parts == ["backbones"]:
        return [to_dict(RunConfig())["backbones"][0]]
    if index_next:
        return []
    return {}


# --------------------------------------------------------------------------- validation


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def validate(cfg: RunConfig) -> RunConfig:
    """Check values and cross-field rules that need no data or model; raise ConfigError.

    Backbone names and freeze ranges are checked against the registry here too
    (imported lazily so that config stays cheap to import).
    """
    from .backbones import get_backbone  # lazy: registry builds on first use

    if cfg.method not in METHODS:
        raise ConfigError("method", f"must be one of {', '.join(METHODS)}, got {cfg.method!r}")
    d = cfg.data
    if not d.dataset.strip():
        raise ConfigError("data.dataset", "must name a dataset")
    if not (0.0 < d.val_fraction < 1.0) or not _finite(d.val_fraction):
        raise ConfigError("data.val_fraction", f"must be between 0 and 1 (exclusive), got {d.val_fraction}")
    if not (8 <= d.image_size <= 1024):
        raise ConfigError("data.image_size", f"must be between 8 and 1024, got {d.image_size}")
    if d.train_per_class is not None and d.train_per_class < 1:
        raise ConfigError("data.train_per_class", f"must be at least 1, got {d.train_per_class}")
    if d.classes is not None:
        if len(d.classes) < 2:
            raise ConfigError("data.classes", "needs at least two classes")
        if len(set(map(str, d.classes))) != len(d.classes):
            raise ConfigError("data.classes", "lists a class twice")
    if not (2 <= d.shapes_classes <= 8):
        raise ConfigError("data.shapes_classes", f"must be between 2 and 8, got {d.shapes_classes}")
    if not (4 <= d.shapes_per_class <= 5000):
        raise ConfigError("data.shapes_per_class", f"must be between 4 and 5000, got {d.shapes_per_class}")

    if not cfg.backbones:
        raise ConfigError("backbones", "needs at least one backbone")
    if cfg.method == "transfer" and len(cfg.backbones) != 1:
        raise ConfigError("backbones", f"transfer takes exactly one backbone, got {len(cfg.backbones)}")
    if cfg.method == "fusion" and len(cfg.backbones) < 2:
        raise ConfigError("backbones", f"fusion needs at least two backbones, got {len(cfg.backbones)}")
    for i, b in enumerate(cfg.backbones):
        try:
            spec = get_backbone(b.name)
        except ValueError as exc:
            raise ConfigError(f"backbones.{i}.name", str(exc)) from None
        w = b.weights.strip()
        if not (w in ("imagenet", "none") or (w.startswith("file:") and len(w) > 5) or (w.startswith("run:") and len(w) > 4)):
            raise ConfigError(f"backbones.{i}.weights", f"must be imagenet, none, file:PATH or run:RUN, got {b.weights!r}")
        k = len(spec.groups)
        if isinstance(b.freeze, str):
            if b.freeze != "all":
                raise ConfigError(f"backbones.{i}.freeze", f"must be 'all' or a number 0..{k}, got {b.freeze!r}")
        elif not (0 <= b.freeze <= k):
            raise ConfigError(f"backbones.{i}.freeze", f"{b.name} has {k} layer groups: freeze must be 0..{k} or 'all', got {b.freeze}")

    f = cfg.fusion
    if f.mode not in FUSION_MODES:
        raise ConfigError("fusion.mode", f"must be one of {', '.join(FUSION_MODES)}, got {f.mode!r}")
    if f.activation not in ACTIVATIONS:
        raise ConfigError("fusion.activation", f"must be one of {', '.join(ACTIVATIONS)}, got {f.activation!r}")
    if not (1 <= f.shared_dim <= 8192):
        raise ConfigError("fusion.shared_dim", f"must be between 1 and 8192, got {f.shared_dim}")
    if f.alpha is not None and cfg.method == "fusion":
        if len(f.alpha) != len(cfg.backbones):
            raise ConfigError("fusion.alpha", f"needs one value per backbone ({len(cfg.backbones)}), got {len(f.alpha)}")
        if any(not _finite(a) for a in f.alpha):
            raise ConfigError("fusion.alpha", "values must be finite numbers")
        if any(a < 0 for a in f.alpha):
            raise ConfigError("fusion.alpha", "values must not be negative")
        if sum(f.alpha) <= 0:
            raise ConfigError("fusion.alpha", "values must not all be zero")

    t = cfg.train
    if not (1 <= t.epochs <= 10000):
        raise ConfigError("train.epochs", f"must be between 1 and 10000, got {t.epochs}")
    if not (1 <= t.batch_size <= 65536):
        raise ConfigError("train.batch_size", f"must be between 1 and 65536, got {t.batch_size}")
    if not _finite(t.lr) or t.lr <= 0:
        raise ConfigError("train.lr", f"must be a positive number, got {t.lr}")
    if t.optimizer not in OPTIMIZERS:
        raise ConfigError("train.optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {t.optimizer!r}")
    if not _finite(t.weight_decay) or t.weight_decay < 0:
        raise ConfigError("train.weight_decay", f"must be >= 0, got {t.weight_decay}")
    if t.lr_decay is not None and (not _finite(t.lr_decay) or not (0 < t.lr_decay <= 1)):
        raise ConfigError("train.lr_decay", f"must be in (0, 1], got {t.lr_decay}")
    if t.head_epochs is not None and not (0 <= t.head_epochs <= 10000):
        raise ConfigError("train.head_epochs", f"must be between 0 and 10000, got {t.head_epochs}")
    if t.device not in DEVICES:
        raise ConfigError("train.device", f"must be one of {', '.join(DEVICES)}, got {t.device!r}")
    if not (-1 <= t.num_workers <= 64):
        raise ConfigError("train.num_workers", f"must be -1 (auto) or between 0 and 64, got {t.num_workers}")
    if t.threads < 0:
        raise ConfigError("train.threads", f"must be >= 0, got {t.threads}")
    if not _finite(t.checkpoint_every_s) or t.checkpoint_every_s < 0:
        raise ConfigError("train.checkpoint_every_s", f"must be a number of seconds >= 0, got {t.checkpoint_every_s}")
    return cfg
