"""Comparing runs from their configs alone: kind, flattened settings, what differs, comparability.

Pure data over config dicts and run summaries: no torch, no model, nothing read from
disk here, so the Compare page and the report can call it on any number of runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .i18n import N_, _

if TYPE_CHECKING:
    from .runs import RunSummary

__all__ = [
    "run_kind",
    "KIND_LABELS",
    "kind_label",
    "classes_label",
    "flatten_config",
    "config_diff",
    "class_signature",
    "not_comparable",
    "comparison_rows",
    "best_and_spread",
    "diff_table",
]


def run_kind(cfg: Mapping[str, Any]) -> str:
    """"fusion" or "distill" (those methods: a student from random weights is still taught), "scratch"
    (every backbone weights none and freeze 0), else "transfer"."""
    if cfg.get("method") in ("fusion", "distill"):
        return str(cfg["method"])
    bbs = [b for b in (cfg.get("backbones") or []) if isinstance(b, Mapping)]
    if bbs and all(str(b.get("weights", "")).strip() == "none" and b.get("freeze", 0) in (0, "0") for b in bbs):
        return "scratch"
    return "transfer"


#: A run kind (:func:`run_kind`) in one word, as tables, legends and sentences show it.
KIND_LABELS = {"transfer": N_("transfer"), "scratch": N_("scratch"), "fusion": N_("fusion"), "distill": N_("distill")}


def kind_label(kind: str) -> str:
    """:data:`KIND_LABELS` of ``kind`` in the current language (an unknown kind as given)."""
    return _(KIND_LABELS[kind]) if kind in KIND_LABELS else str(kind)


def flatten_config(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"train.lr": 0.001, "backbones.0.name": "resnet18", ...}; lists are indexed, empty ones kept."""
    out: dict[str, Any] = {}
    if isinstance(d, Mapping) and d:
        for k, v in d.items():
            out.update(flatten_config(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, (list, tuple)) and d and any(isinstance(v, (Mapping, list, tuple)) for v in d):
        for i, v in enumerate(d):
            out.update(flatten_config(v, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix] = list(d) if isinstance(d, tuple) else d
    return out


_MISSING = "—"


def config_diff(configs: Mapping[str, Mapping[str, Any]], ignore: Sequence[str] = ("name",)) -> dict[str, dict[str, Any]]:
    """Only the dotted keys whose values differ between the configs: key -> {run: value}.

    A key a config lacks shows as "—". Keys are in first-seen order.
    """
    flat = {rid: flatten_config(cfg) for rid, cfg in configs.items()}
    keys: list[str] = []
    for f in flat.values():
        keys.extend(k for k in f if k not in keys)
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        if key in ignore:
            continue
        values = {rid: f.get(key, _MISSING) for rid, f in flat.items()}
        if len({repr(v) for v in values.values()}) > 1:
            out[key] = values
    return out


def class_signature(cfg: Mapping[str, Any]) -> tuple[str, Any]:
    """What must match for two runs' accuracies to be comparable: dataset and class selection."""
    data = cfg.get("data") or {}
    dataset = str(data.get("dataset", "?"))
    classes = data.get("classes")
    classes_key: Any = "all" if classes is None else tuple(str(c) for c in classes)
    if dataset == "shapes" and classes is None:
        classes_key = f"all of {data.get('shapes_classes', 6)}"
    return dataset, classes_key


def classes_label(classes_key: Any) -> str:
    """The class part of a :func:`class_signature` in words: "all classes", "all of 6", "0, 1, 2"."""
    if classes_key == "all":
        return _("all classes")
    if isinstance(classes_key, str) and classes_key.startswith("all of "):
        return _("all of {n}").format(n=classes_key[len("all of "):])
    return classes_key if isinstance(classes_key, str) else ", ".join(map(str, classes_key))


def not_comparable(configs: Mapping[str, Mapping[str, Any]]) -> tuple[tuple[str, Any] | None, list[str]]:
    """(reference signature, runs that do not share it).

    The reference is the signature most runs share (ties: the first run's), so one odd
    run out is the one flagged.
    """
    sigs = {rid: class_signature(cfg) for rid, cfg in configs.items()}
    if not sigs:
        return None, []
    counts: dict[tuple[str, Any], int] = {}
    for s in sigs.values():
        counts[s] = counts.get(s, 0) + 1
    first = next(iter(sigs.values()))
    ref = max(counts, key=lambda s: (counts[s], s == first))
    return ref, [rid for rid, s in sigs.items() if s != ref]


def comparison_rows(
    summaries: Sequence["RunSummary"], configs: Mapping[str, Mapping[str, Any]], odd: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """One row per run for the comparison table: kind, method, backbones, weights, epochs,
    final and best val accuracy, and whether it is comparable (not in ``odd``, see
    :func:`not_comparable`). ``id`` is the run id (a page labels rows its own way)."""
    return [
        {
            "kind": run_kind(configs.get(s.id, {})),
            "method": s.method,
            "backbones": " + ".join(s.backbones),
            "weights": ", ".join(s.weights),
            "epochs": f"{s.epochs_done} / {s.epochs}",
            "final val acc": s.val_acc,
            "best val acc": s.best_val_acc,
            "comparable": s.id not in odd,
            "id": s.id,
        }
        for s in summaries
    ]


def best_and_spread(rows: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any] | None, float | None]:
    """(the comparable row with the best final val accuracy, best - worst over the comparable
    rows); (None, None) when no comparable row has an accuracy, spread None for a single one."""
    fair = [r for r in rows if r["comparable"] and r["final val acc"] is not None]
    if not fair:
        return None, None
    best = max(fair, key=lambda r: r["final val acc"])
    worst = min(fair, key=lambda r: r["final val acc"])
    return best, (best["final val acc"] - worst["final val acc"] if len(fair) > 1 else None)


def diff_table(diff: Mapping[str, Mapping[str, Any]], runs: Sequence[str]) -> dict[str, list[str]]:
    """:func:`config_diff`'s output as columns of text: run -> one cell per differing key ("—" for None)."""
    return {rid: [_MISSING if diff[k][rid] is None else str(diff[k][rid]) for k in diff] for rid in runs}
