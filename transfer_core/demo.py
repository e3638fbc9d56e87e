"""The guided transfer demo: pretrain a source, transfer from it, and train the from-scratch twin.

The three runs are ``examples/source_mnist_0-4.yaml``, ``target_mnist_5-9_transfer.yaml``
and ``target_mnist_5-9_scratch.yaml`` (a test keeps them in sync). They are queued at
once: the job manager runs the jobs of one device one at a time in submission order and
``submit`` creates the source's folder immediately, so the transfer run can name its
weights ``run:<source id>``; they are resolved only when that job starts, after the
source has finished. If the source fails, the transfer run fails with "only a completed
run can be a source" and the scratch twin still runs.

Sizes come from :class:`DemoSizes`; ``TRANSFER_LAB_DEMO="dataset=digits,source_epochs=1"``
overrides them (tests and slow machines shrink the demo this way).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import yaml

from .config import ConfigError, RunConfig, from_dict, validate
from .i18n import _

__all__ = ["DemoSizes", "DEMO_ENV", "demo_sizes", "source_config", "target_configs", "queue_demo", "ROLES"]

DEMO_ENV = "TRANSFER_LAB_DEMO"
ROLES = ("source", "transfer", "scratch")


@dataclass(frozen=True)
class DemoSizes:
    dataset: str = "mnist5k"  # built-in dataset both tasks are cut from
    image_size: int = 32
    source_classes: tuple[int, ...] = (0, 1, 2, 3, 4)
    target_classes: tuple[int, ...] = (5, 6, 7, 8, 9)
    source_per_class: int | None = None  # None: every training image of the source classes
    target_per_class: int = 10  # the "few labels" of the target task
    source_epochs: int = 4
    target_epochs: int = 15
    source_batch_size: int = 64
    target_batch_size: int = 16
    lr: float = 1e-3
    backbone: str = "resnet18"
    freeze: int | str = 3  # layer groups of the source body kept fixed in the transfer run
    seed: int = 0
    device: str = "auto"


def demo_sizes(spec: str | None = None) -> DemoSizes:
    """The default sizes with ``key=value`` overrides (comma separated; values parsed as YAML).

    ``spec`` defaults to the ``TRANSFER_LAB_DEMO`` environment variable, read at call time.
    """
    spec = os.environ.get(DEMO_ENV, "") if spec is None else spec
    fields = {f.name: f for f in dataclasses.fields(DemoSizes)}
    values: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in spec.replace(";", ",").split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ConfigError(DEMO_ENV, _("{item}: use key=value with a key among {keys}").format(
                item=repr(item), keys=", ".join(fields)))
        value = yaml.safe_load(raw)
        if key.endswith("_classes"):  # "0-4" (a range) or "0 2 4"
            a, dash, b = str(raw).strip().partition("-")
            value = tuple(range(int(a), int(b) + 1)) if dash else tuple(int(v) for v in str(raw).split())
        values[key] = value
    return dataclasses.replace(DemoSizes(), **values)


def _classes_text(classes: tuple[int, ...]) -> str:
    c = list(classes)
    return f"{c[0]}-{c[-1]}" if c == list(range(c[0], c[0] + len(c))) else "_".join(map(str, c))


def _config(s: DemoSizes, role: str, weights: str) -> RunConfig:
    source = role == "source"
    classes = s.source_classes if source else s.target_classes
    return from_dict({
        "name": f"demo-{role}-{_classes_text(classes)}",
        "seed": s.seed,
        "method": "transfer",
        "data": {"dataset": s.dataset, "classes": list(classes), "image_size": s.image_size,
                 "train_per_class": s.source_per_class if source else s.target_per_class},
        "backbones": [{"name": s.backbone, "weights": weights, "freeze": s.freeze if role == "transfer" else 0}],
        "train": {"epochs": s.source_epochs if source else s.target_epochs,
                  "batch_size": s.source_batch_size if source else s.target_batch_size,
                  "lr": s.lr, "device": s.device},
    })


def source_config(sizes: DemoSizes | None = None) -> RunConfig:
    """Step 1: the source task from scratch (random init, every layer trains)."""
    return _config(sizes or demo_sizes(), "source", "none")


def target_configs(source_ref: str, sizes: DemoSizes | None = None) -> tuple[RunConfig, RunConfig]:
    """Steps 2 and 3: transfer from ``run:<source_ref>`` and its from-scratch twin (same split and seed)."""
    s = sizes or demo_sizes()
    return _config(s, "transfer", f"run:{source_ref}"), _config(s, "scratch", "none")


def queue_demo(manager: Any, sizes: DemoSizes | None = None) -> dict[str, str]:
    """Validate the three configs, then queue them in order on ``manager``; returns role -> run id.

    Nothing is queued if any config is invalid (ConfigError).
    """
    s = sizes or demo_sizes()
    src = source_config(s)
    for cfg in (src, *target_configs("pending", s)):
        validate(cfg)
    source_id = manager.submit(src)
    transfer, scratch = target_configs(source_id, s)
    return {"source": source_id, "transfer": manager.submit(transfer), "scratch": manager.submit(scratch)}
