"""How long a sweep takes: the time model of a trial, a whole spec, and what is left of a running one.

Time model (:func:`trial_seconds`), measured on this 2-core CPU box (bench/bench_sweep.py,
the ``labels`` experiment at 15 epochs, trials.csv of 2026-12-03, idle box): a trial costs
~0.7 s outside its epochs (run folder, model, final checkpoint), and per epoch ~5.1 ms per
training image (resnet18, 32 px, batch 16, forward and backward) plus ~0.42 ms per
validation image; a fully frozen body trains its head on cached features (one forward
pass per image, then next to nothing per epoch). Other sizes scale with (image_size/32)²,
other backbones by a rough relative cost. A distillation with unlabeled images trains on
every training image of the pool (labeled or not) and first runs its teacher once over them. Once a sweep has finished trials,
:func:`remaining_s` scales the model by what they really took.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .builtin import load_builtin

__all__ = ["trial_seconds", "spec_seconds", "estimate_s", "remaining_s", "before_pending"]

OVERHEAD_S = 0.7  # a trial outside its epochs: run folder, model, data split, final checkpoint
TRAIN_S_PER_IMAGE = 5.1e-3  # resnet18 at 32 px, forward + backward, batch 16
EVAL_S_PER_IMAGE = 0.42e-3  # resnet18 at 32 px, forward only
CACHED_OVERHEAD_S = 0.6  # a trial on cached features (measured 0.55-0.75 s for the probe)
CACHED_S_PER_IMAGE_EPOCH = 2e-5  # a head on cached features
# rough cost of a backbone's forward pass at the same size, relative to resnet18
# (mobilenet_v3_small: 0.4-0.65 measured at 32 px, batch 64, one thread; its depthwise convolutions are slow on a CPU)
RELATIVE_COST = {"resnet18": 1.0, "resnet34": 2.0, "resnet50": 2.4, "mobilenet_v3_small": 0.5,
                 "mobilenet_v3_large": 0.7,
                 "mobilenet_v2": 0.7, "shufflenet_v2_x1_0": 0.4, "squeezenet1_1": 0.4, "regnet_y_400mf": 0.6,
                 "efficientnet_b0": 1.0, "densenet121": 3.0, "alexnet": 0.6, "convnext_tiny": 4.0, "vgg11": 5.0,
                 "vgg16": 8.0, "vit_b_16": 10.0}
# images per class of the built-in datasets (others: assume 500)
PER_CLASS = {"mnist5k": 500, "digits": 180}


def _images(data: Mapping[str, Any], unlabeled: bool = False) -> tuple[int, int]:
    """(training, validation) images of a data config, approximately; ``unlabeled``: every training
    image of the pool counts (a distillation learns from the ones beyond train_per_class too)."""
    ds = str(data.get("dataset") or "digits")
    if ds == "shapes":
        n_classes, per = int(data.get("shapes_classes") or 6), int(data.get("shapes_per_class") or 120)
    else:
        n_classes, per = 10, PER_CLASS.get(ds, 500)
    classes = data.get("classes")
    if classes:
        n_classes = len(classes)
    vf = float(data.get("val_fraction") if data.get("val_fraction") is not None else 0.2)
    n_val = round(per * vf)
    n_train = per - n_val
    if data.get("train_per_class") is not None and not unlabeled:
        n_train = min(n_train, int(data["train_per_class"]))
    return n_classes * n_train, n_classes * n_val


def trial_seconds(cfg: Mapping[str, Any]) -> float:
    """Estimated wall seconds of one run of config ``cfg`` (a mapping) on a 2-core CPU box."""
    data, train = cfg.get("data") or {}, cfg.get("train") or {}
    distill = cfg.get("method") == "distill"
    n_train, n_val = _images(data, unlabeled=distill and bool((cfg.get("distill") or {}).get("unlabeled", True)))
    epochs = int(train.get("epochs") or 5)
    scale = (int(data.get("image_size") or 32) / 32.0) ** 2
    bodies = cfg.get("backbones") or [{"name": "resnet18"}]
    cost = sum(RELATIVE_COST.get(str(b.get("name")), 1.0) for b in bodies) * scale
    cached = (train.get("feature_cache", True) and not data.get("augment")
              and all(str(b.get("freeze")) == "all" for b in bodies))
    if cached:
        # the features of a seed's split are extracted once and shared by the trials of that seed
        return CACHED_OVERHEAD_S + epochs * (n_train + n_val) * CACHED_S_PER_IMAGE_EPOCH
    # backward stops at the first trained group: freezing k of ~5 groups saves up to 40 % of a training step
    frozen = [5 if str(b.get("freeze")) == "all" else min(int(b.get("freeze") or 0), 5) for b in bodies]
    step = 1.0 - 0.4 * (sum(frozen) / (5.0 * len(bodies)))
    # a distillation first runs each teacher (taken as a resnet18) once over its training images
    teachers = len((cfg.get("distill") or {}).get("teachers") or []) if distill else 0
    first = teachers * scale * n_train * EVAL_S_PER_IMAGE
    return OVERHEAD_S + first + epochs * cost * (n_train * TRAIN_S_PER_IMAGE * step + n_val * EVAL_S_PER_IMAGE)


def _point_seconds(spec: Any) -> dict[str, float]:
    """Estimated seconds of one trial at each grid point (keyed by its JSON text)."""
    from ..config import to_dict

    return {json.dumps(p, sort_keys=True, default=str): trial_seconds(to_dict(spec.trial_config(p, spec.seeds[0])))
            for p in spec.points()}


def spec_seconds(spec: Any) -> float:
    """Estimated seconds of every trial of ``spec`` (before-runs not counted)."""
    per_point = _point_seconds(spec)
    n = spec.n_search if spec.is_search else 1
    return sum(per_point.values()) * len(spec.seeds) * n


def before_pending(spec: Any, runs_root: Any = None) -> list[dict[str, Any]]:
    """The ``before`` configs of ``spec`` with no completed run of the same config yet (they train first)."""
    from ..runs import RunStore
    from .engine import reusable_before

    return [raw for raw, run in zip(spec.before, reusable_before(spec, RunStore(runs_root))) if run is None]


def estimate_s(experiment: Any, size: str = "default", runs_root: Any = None, include_before: bool = True) -> float:
    """Estimated seconds to run an experiment (an id, or a :class:`~.spec.SweepSpec`) from nothing:
    its trials, plus the runs it needs first that are not trained yet (``include_before``)."""
    spec = load_builtin(experiment, size) if isinstance(experiment, str) else experiment
    total = spec_seconds(spec)
    if include_before:
        total += sum(trial_seconds(b) for b in before_pending(spec, runs_root))
    return total


def remaining_s(res: Any, runs_root: Any = None) -> float | None:
    """Seconds left of a sweep (a :class:`~.folder.SweepResults`): the model's estimate of the
    unfinished trials, scaled by what the finished ones really took (their wall_s, else train_s)."""
    spec = res.spec
    if spec.is_search:
        return None
    per_point = _point_seconds(spec)
    axes = list(spec.axes)
    done_model = done_real = left = 0.0
    rows = res.trials or [{**p, "state": "pending"} for p in spec.points() for _ in spec.seeds]
    for t in rows:
        key = json.dumps({a: t.get(a) for a in axes}, sort_keys=True, default=str)
        model = per_point.get(key, sum(per_point.values()) / max(len(per_point), 1))
        if t.get("state") in ("completed", "failed"):
            real = t.get("wall_s") if t.get("wall_s") is not None else (
                None if t.get("train_s") is None else float(t["train_s"]) + OVERHEAD_S)
            if real is not None:
                done_model += model
                done_real += float(real)
        else:
            left += model
    scale = done_real / done_model if done_model > 0 and done_real > 0 else 1.0
    before = sum(trial_seconds(b) for b in before_pending(spec, runs_root)) if not res.trials else 0.0
    return left * scale + before * scale
