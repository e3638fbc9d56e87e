"""The built-in experiments: five questions a class or a stakeholder asks, each a sweep spec.

* ``labels`` — How many labels does transfer save? The guided demo's target task
  (``examples/target_mnist_5-9_transfer.yaml``: mnist5k digits 5–9, 32 px, resnet18 from
  ``run:source-mnist-0-4``) over label budgets, from scratch, transferred (freeze 3) and as
  a linear probe (freeze all).
* ``freeze`` — How deep to freeze? The same transfer at 10 labels per class, 0…4 of
  resnet18's 5 layer groups frozen, and all of them.
* ``alpha`` — Which α? Fusion (α-sum) of two frozen pretrained bodies (the resnet18 source
  and a shufflenet_v2_x1_0 trained on the same source task), fixed α₁ from 0 to 1 against
  learned α. (Not mobilenet_v3_small: its BatchNorm momentum of 0.01 leaves the running
  statistics of a short source run unsettled, and at 32 px its eval-mode features were
  constant — 20 % validation accuracy, chance, on 5 classes.)
* ``parts`` — Fusion against its parts: each body alone (linear probe), concatenation, and
  the α-sum with learned α.
* ``compress`` — Compress the model: the demo's transfer run (resnet18 from the source, 10
  labels per class, ``examples/target_mnist_5-9_transfer.yaml``, a ``before`` run after the
  source) teaches a ``mobilenet_v3_small`` student from random weights on the same 50
  labels: the student alone, distilled without the unlabeled images, distilled with them.
  The trials name their teacher ``run:<its name>``, as the transfer variants name the source.

Each has a ``default`` size (5 seeds; ``compress`` 3) and a ``quick`` one (3 seeds, fewer
points and epochs: a live class). :func:`spec_mapping` gives the sweep as a plain mapping (inline
``base`` and ``before`` configs, so nothing depends on the working folder), and
:func:`transfer_core.sweeps.timing.estimate_s` its time on a 2-core CPU box. ``TRANSFER_LAB_EXPERIMENT`` (read at
call time) shrinks every experiment for tests, like ``TRANSFER_LAB_DEMO``:
``TRANSFER_LAB_EXPERIMENT="dataset=digits,epochs=1,source_epochs=1,image_size=16,seeds=2,budgets=2 5"``
(keys: the fields of :class:`Shrink`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import ConfigError
from ..i18n import N_, _

__all__ = ["EXPERIMENT_ENV", "SIZES", "Experiment", "EXPERIMENTS", "Shrink", "shrink", "get_experiment",
           "spec_mapping", "spec_yaml", "load_builtin", "experiment_of", "COMPRESS_VARIANTS", "teacher_reference",
           "label_text"]

EXPERIMENT_ENV = "TRANSFER_LAB_EXPERIMENT"
SIZES = ("default", "quick")


@dataclass(frozen=True)
class Experiment:
    id: str
    title_msgid: str  # the question, in English (N_-marked; written into the sweep spec as is)
    description_msgid: str  # one line, in English
    chart: str  # which figure answers it: labels | freeze | alpha | parts | compress

    @property
    def title(self) -> str:
        """The question in the current language."""
        return _(self.title_msgid)

    @property
    def description(self) -> str:
        """The one-line description in the current language."""
        return _(self.description_msgid)


EXPERIMENTS: dict[str, Experiment] = {e.id: e for e in (
    Experiment("labels", N_("How many labels does transfer save?"),
               N_("Digits 5–9 with 1 to 50 labels per class: from scratch, transferred from a source trained on "
                  "digits 0–4 (3 groups frozen), and as a linear probe (all frozen)."), "labels"),
    Experiment("freeze", N_("How deep to freeze?"),
               N_("The transfer at 10 labels per class with 0 to 5 of resnet18's layer groups frozen: accuracy "
                  "and training time."), "freeze"),
    Experiment("alpha", N_("Which α?"),
               N_("Fusion of two frozen pretrained bodies (resnet18 and shufflenet_v2_x1_0, both trained on "
                  "digits 0–4), α-sum with a fixed α₁ from 0 to 1 against a learned α."), "alpha"),
    Experiment("parts", N_("Fusion against its parts"),
               N_("Each pretrained body alone (linear probe), their concatenation, and the α-sum with learned α, "
                  "at 10 labels per class."), "parts"),
    Experiment("compress", N_("Compress the model"),
               N_("A small mobilenet_v3_small from random weights on digits 5–9 with 10 labels per class: alone, "
                  "distilled from the transfer run (resnet18, 7× the student's parameters) without the unlabeled "
                  "images and with them."), "compress"),
)}


@dataclass(frozen=True)
class Shrink:
    """Overrides of every experiment's sizes (tests, slow machines); None keeps the experiment's own."""

    dataset: str | None = None  # built-in dataset the tasks are cut from (default mnist5k)
    image_size: int | None = None
    epochs: int | None = None  # the trials' epochs
    source_epochs: int | None = None  # the source runs' epochs
    source_per_class: int | None = None  # cap the source runs' training images per class
    seeds: int | list[int] | None = None  # a count (0..n-1) or a list
    budgets: list[int] | None = None  # labels: the labels-per-class axis
    per_class: int | None = None  # freeze, alpha, parts: labels per class
    val_fraction: float | None = None


def shrink(spec: str | None = None) -> Shrink:
    """:class:`Shrink` from ``key=value`` pairs (comma separated, values as YAML, lists space separated);
    ``spec`` defaults to ``$TRANSFER_LAB_EXPERIMENT``, read at call time."""
    spec = os.environ.get(EXPERIMENT_ENV, "") if spec is None else spec
    fields = {f.name for f in dataclasses.fields(Shrink)}
    values: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in spec.replace(";", ",").split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ConfigError(EXPERIMENT_ENV, _("{item}: use key=value with a key among {keys}").format(
                item=repr(item), keys=", ".join(sorted(fields))))
        if key == "budgets" or (key == "seeds" and len(raw.split()) > 1):
            values[key] = [int(v) for v in raw.replace("[", " ").replace("]", " ").split()]
        else:
            values[key] = yaml.safe_load(raw)
    return Shrink(**values)


def get_experiment(exp_id: str) -> Experiment:
    if exp_id not in EXPERIMENTS:
        raise ConfigError("experiment", _("unknown experiment {name} (one of {choices})").format(
            name=repr(exp_id), choices=", ".join(EXPERIMENTS)))
    return EXPERIMENTS[exp_id]


# --------------------------------------------------------------------------- the configs

TARGET = [5, 6, 7, 8, 9]
SOURCE = [0, 1, 2, 3, 4]
# (default, quick) of each experiment: its points, seeds and trial epochs
SIZE_TABLE: dict[str, dict[str, dict[str, Any]]] = {
    "labels": {"default": {"budgets": [1, 2, 5, 10, 20, 50], "seeds": 5, "epochs": 12},
               "quick": {"budgets": [2, 10, 50], "seeds": 3, "epochs": 8}},
    "freeze": {"default": {"freeze": [0, 1, 2, 3, 4, "all"], "seeds": 5, "epochs": 12},
               "quick": {"freeze": [0, 2, 4, "all"], "seeds": 3, "epochs": 8}},
    "alpha": {"default": {"alphas": [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0], "seeds": 5, "epochs": 20},
              "quick": {"alphas": [0.0, 0.5, 1.0], "seeds": 3, "epochs": 10}},
    "parts": {"default": {"seeds": 5, "epochs": 20}, "quick": {"seeds": 3, "epochs": 10}},
    # epochs: with the unlabeled images (~2,000 a pass, batch 64); labeled_epochs: the 50-image variants
    # (batch 16), which need more passes for as many steps (bench/distill_demo.py's settings)
    "compress": {"default": {"seeds": 3, "epochs": 10, "labeled_epochs": 40},
                 "quick": {"seeds": 3, "epochs": 5, "labeled_epochs": 20}},
}
# Axis labels are data (the sweep spec, trials.csv, comparisons): English, N_-marked, shown with label_text().
# the compress experiment's variants, in the order of the chart (what the student learns from grows)
COMPRESS_VARIANTS = (N_("student alone"), N_("distilled without unlabeled"), N_("distilled with unlabeled"))
STUDENT_BACKBONE = "mobilenet_v3_small"
TEACHER_NAME = "target-mnist-5-9-transfer"  # examples/target_mnist_5-9_transfer.yaml
LEARNED = N_("learned")  # the alpha axis's label for learned α
PARTS = (N_("resnet18 alone"), N_("shufflenet_v2_x1_0 alone"), N_("concat"), N_("α-sum (learned α)"))
LABELS_VARIANTS = (N_("scratch"), N_("transfer"), N_("probe"))  # the labels experiment's variants
ALPHA_AXIS, PARTS_AXIS, VARIANT_AXIS = "alpha1", "model", "variant"
BUDGET_AXIS, FREEZE_AXIS = "data.train_per_class", "backbones.0.freeze"


def _data(s: Shrink, classes: list[int], per_class: int | None) -> dict[str, Any]:
    d: dict[str, Any] = {"dataset": s.dataset or "mnist5k", "classes": list(classes)}
    if per_class is not None:
        d["train_per_class"] = per_class
    d["image_size"] = s.image_size or 32
    if s.val_fraction is not None:
        d["val_fraction"] = s.val_fraction
    return d


def _source(s: Shrink, backbone: str, default_name: str) -> dict[str, Any]:
    """A source run from scratch on digits 0–4 (examples/source_mnist_0-4.yaml for resnet18)."""
    cfg = {"name": default_name, "seed": 0, "method": "transfer",
           "data": _data(s, SOURCE, s.source_per_class),
           "backbones": [{"name": backbone, "weights": "none", "freeze": 0}],
           "train": {"epochs": s.source_epochs or 4, "batch_size": 64, "lr": 0.001}}
    return _own_name(s, cfg, default_name)


def _own_name(s: Shrink, cfg: dict[str, Any], default_name: str) -> dict[str, Any]:
    """A ``before`` run other than the default one gets its own name, so `run:<name>` finds it."""
    if s != Shrink():
        digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:6]
        cfg["name"] = f"{default_name}-{digest}"
    return cfg


def _teacher(s: Shrink, source_ref: str) -> dict[str, Any]:
    """The compress experiment's teacher: the demo's transfer run (examples/target_mnist_5-9_transfer.yaml),
    trained after its source; at the default size exactly that file's config, so a run of it is reused."""
    cfg = _target(s, s.per_class or 10, 15, [{"name": "resnet18", "weights": source_ref, "freeze": 3}], TEACHER_NAME)
    return _own_name(s, cfg, TEACHER_NAME)


def _target(s: Shrink, per_class: int, epochs: int, backbones: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The demo's target task (examples/target_mnist_5-9_transfer.yaml) with the given backbones."""
    return {"name": name, "seed": 0, "method": "transfer",
            "data": _data(s, TARGET, per_class),
            "backbones": backbones,
            "train": {"epochs": s.epochs or epochs, "batch_size": 16, "lr": 0.001}}


def _seeds(s: Shrink, n: int) -> list[int]:
    if isinstance(s.seeds, list):
        return list(s.seeds)
    return list(range(int(s.seeds if s.seeds is not None else n)))


def spec_mapping(experiment: str, size: str = "default") -> dict[str, Any]:
    """The sweep spec of a built-in experiment at a size, as a mapping for :func:`~.spec.load_sweep`."""
    exp = get_experiment(experiment)
    if size not in SIZES:
        raise ConfigError("size", _("unknown size {size} (one of {choices})").format(
            size=repr(size), choices=", ".join(SIZES)))
    s, z = shrink(), SIZE_TABLE[exp.id][size]
    src = _source(s, "resnet18", "source-mnist-0-4")
    ref = f"run:{src['name']}"
    per = s.per_class or 10
    name = {"labels": "how-many-labels", "freeze": "how-deep-to-freeze", "alpha": "which-alpha",
            "parts": "fusion-vs-parts", "compress": "compress-the-model"}[exp.id] + ("-quick" if size == "quick" else "")
    # written to disk: English whatever the reader's language
    out: dict[str, Any] = {"name": name, "description": f"{exp.title_msgid} — {exp.description_msgid}"}
    if exp.id == "compress":
        teacher = _teacher(s, ref)
        base = _target(s, per, z["epochs"], [{"name": STUDENT_BACKBONE, "weights": "none", "freeze": 0}],
                       "compress-mnist-5-9")
        base["method"] = "distill"
        base["train"]["batch_size"] = 64  # the unlabeled images make ~2,000 per epoch
        base["distill"] = {"teachers": [f"run:{teacher['name']}"], "temperature": 4.0, "weight": 0.9,
                           "unlabeled": True}
        out.update(base=base, before=[src, teacher], seeds=_seeds(s, z["seeds"]))
        labeled = {"train.epochs": s.epochs or z["labeled_epochs"], "train.batch_size": 16}
        out["axes"] = {VARIANT_AXIS: {
            COMPRESS_VARIANTS[0]: {"method": "transfer", **labeled},
            COMPRESS_VARIANTS[1]: {"distill.unlabeled": False, **labeled},
            COMPRESS_VARIANTS[2]: {"distill.unlabeled": True},
        }}
        return out
    if exp.id in ("labels", "freeze"):
        out["base"] = _target(s, per, z["epochs"], [{"name": "resnet18", "weights": ref, "freeze": 3}],
                              "target-mnist-5-9-transfer")
        out["before"] = [src]
        out["seeds"] = _seeds(s, z["seeds"])
        if exp.id == "labels":
            out["axes"] = {BUDGET_AXIS: list(s.budgets or z["budgets"]), VARIANT_AXIS: {
                LABELS_VARIANTS[0]: {"backbones.0.weights": "none", "backbones.0.freeze": 0},
                LABELS_VARIANTS[1]: {"backbones.0.weights": ref, "backbones.0.freeze": 3},
                LABELS_VARIANTS[2]: {"backbones.0.weights": ref, "backbones.0.freeze": "all"},
            }}
        else:
            out["axes"] = {FREEZE_AXIS: list(z["freeze"])}
        return out
    mob = _source(s, "shufflenet_v2_x1_0", "source-mnist-0-4-shufflenet")
    bodies = [{"name": "resnet18", "weights": ref, "freeze": "all"},
              {"name": "shufflenet_v2_x1_0", "weights": f"run:{mob['name']}", "freeze": "all"}]
    base = _target(s, per, z["epochs"], bodies, "fusion-mnist-5-9")
    base["method"] = "fusion"
    base["fusion"] = {"mode": "sum", "shared_dim": 128, "learn_alpha": True, "activation": "relu"}
    out.update(base=base, before=[src, mob], seeds=_seeds(s, z["seeds"]))
    if exp.id == "alpha":
        axis: dict[str, Any] = {f"{a:g}": {"fusion.alpha": [a, round(1.0 - a, 6)], "fusion.learn_alpha": False}
                                for a in z["alphas"]}
        axis[LEARNED] = {"fusion.learn_alpha": True}
        out["axes"] = {ALPHA_AXIS: axis}
    else:
        out["axes"] = {PARTS_AXIS: {
            PARTS[0]: {"method": "transfer", "backbones": [dict(bodies[0])]},
            PARTS[1]: {"method": "transfer", "backbones": [dict(bodies[1])]},
            PARTS[2]: {"fusion.mode": "concat"},
            PARTS[3]: {"fusion.mode": "sum", "fusion.learn_alpha": True},
        }}
    return out


_SHOWN_LABELS = frozenset((*COMPRESS_VARIANTS, *PARTS, *LABELS_VARIANTS, LEARNED))


def label_text(label: Any) -> str:
    """An axis label of a built-in experiment as shown (translated); any other label as it is."""
    text = str(label)
    return _(text) if text in _SHOWN_LABELS else text


def teacher_reference(spec: Any, runs_root: Any = None) -> dict[str, Any] | None:
    """The teacher of a distillation sweep (its base's first ``distill.teachers`` entry, when that is
    one of its ``before`` runs and has completed): ``{"name", "run_id", "val_acc", "backbones",
    "params", "student_params"}``, parameters from the backbone registry (bodies only); else None."""
    base = spec.base
    if base.get("method") != "distill":
        return None
    refs = (base.get("distill") or {}).get("teachers") or []
    name = str(refs[0])[4:] if refs and str(refs[0]).startswith("run:") else None
    if name is None or not any(b.get("name") == name for b in spec.before):
        return None
    from ..runs import RunStore

    try:
        run = RunStore(runs_root).get(name)
    except ValueError:
        return None
    if run.status().get("state") != "completed":
        return None
    s = run.summary()
    out: dict[str, Any] = {"name": name, "run_id": run.id, "val_acc": s.val_acc, "backbones": list(s.backbones),
                           "params": None, "student_params": None}
    try:
        from ..backbones import get_backbone

        out["params"] = sum(get_backbone(b).num_params for b in s.backbones)
        out["student_params"] = sum(get_backbone(str(b.get("name"))).num_params for b in base.get("backbones") or [])
    except Exception:  # noqa: BLE001 - a backbone gone from the registry: the accuracy still stands
        pass
    return out


class _Dumper(yaml.SafeDumper):
    """Block style for the outline, flow style for short leaves (``classes: [5, 6, 7, 8, 9]``), no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _flow_leaf(node: Any) -> bool:
    if isinstance(node, list):
        return all(not isinstance(v, (list, dict)) for v in node)
    return isinstance(node, dict) and all(not isinstance(v, (list, dict)) or _flow_leaf(v) for v in node.values()) \
        and len(json.dumps(node, default=str)) < 100


def _represent_list(dumper: yaml.SafeDumper, data: list) -> Any:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_flow_leaf(data))


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> Any:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=_flow_leaf(data))


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)


def spec_yaml(experiment: str, size: str = "default") -> str:
    """The experiment as sweep YAML text (the page's editor starts from it)."""
    return yaml.dump(spec_mapping(experiment, size), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def load_builtin(experiment: str, size: str = "default"):
    """The checked :class:`~.spec.SweepSpec` of a built-in experiment."""
    from .spec import load_sweep

    return load_sweep(spec_mapping(experiment, size))


def experiment_of(spec: Any) -> tuple[str, str] | None:
    """(experiment, size) when ``spec`` is a built-in experiment as :func:`spec_mapping` makes it now."""
    for exp in EXPERIMENTS:
        for size in SIZES:
            try:
                if load_builtin(exp, size).fingerprint() == spec.fingerprint():
                    return exp, size
            except ConfigError:
                continue
    return None
