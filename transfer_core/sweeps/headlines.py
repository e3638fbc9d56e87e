"""One headline sentence per experiment, computed from a sweep's summary and paired rows.

"With 10 labels per class, transfer reaches 80 ± 3 % and scratch 57 ± 4 % (5 seeds;
transfer wins 5 of 5)": ± is the half-width of the 95 % Student-t interval over seeds. A
value measured on one seed never stands alone: the sentence says "one seed" plainly. With
no completed trial it says that nothing is finished yet. No Streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .builtin import ALPHA_AXIS, BUDGET_AXIS, COMPRESS_VARIANTS, FREEZE_AXIS, LEARNED, PARTS_AXIS, VARIANT_AXIS
from .stats import as_number as _num

__all__ = ["NOTHING_YET", "headline", "headline_for", "value_text", "point_text"]

NOTHING_YET = "No trial has finished yet: the numbers appear here as trials complete."

Row = Mapping[str, Any]


def _n(row: Row | None) -> int:
    return int(_num(row.get("n")) or 0) if row else 0


def _half(row: Row, metric: str = "val_acc") -> float | None:
    hi, mean = _num(row.get(f"{metric}_ci_high")), _num(row.get(f"{metric}_mean"))
    return None if hi is None or mean is None else hi - mean


def value_text(row: Row, alone: bool = False) -> str:
    """ "80 ± 3 %" (± the 95 % half-width; one decimal when it is under a point), or "57 %" with
    ``(one seed)`` added when ``alone`` (the sentence does not say "one seed" for it)."""
    mean, half = _num(row.get("val_acc_mean")), _half(row)
    if mean is None:
        return "no result"
    if _n(row) < 2 or half is None:
        return f"{mean * 100:.0f} %" + (" (one seed)" if alone else "")
    if half * 100 < 0.95:
        return f"{mean * 100:.1f} ± {half * 100:.1f} %"
    return f"{mean * 100:.0f} ± {half * 100:.0f} %"


def _seconds(row: Row) -> str:
    t = _num(row.get("train_s_mean"))
    if t is None:
        return "? s"
    return "under 0.1 s" if t < 0.05 else f"{t:.1f} s" if t < 60 else f"{t / 60:.1f} min"


def _seeds(rows: Sequence[Row]) -> str:
    ns = sorted({_n(r) for r in rows})
    if ns == [1]:
        return "one seed"
    if len(ns) == 1:
        return f"{ns[0]} seeds"
    return f"{ns[0]}–{ns[-1]} seeds"


def _values(rows: Sequence[Row]) -> list[str]:
    """Each row's value; a one-seed value among several-seed ones says so itself."""
    mixed = len({_n(r) for r in rows}) > 1
    return [value_text(r, alone=mixed) for r in rows]


def _same(a: Any, b: Any) -> bool:
    return a == b or (a is not None and b is not None and str(a) == str(b))


def _find(summary: Sequence[Row], **point: Any) -> Row | None:
    for r in summary:
        if all(_same(r.get(k), v) for k, v in point.items()) and _n(r) > 0:
            return r
    return None


def _pair(paired: Sequence[Row], axis: str, x: Any, y: Any, **at: Any) -> dict[str, int] | None:
    """Wins, ties and losses of label ``x`` against ``y`` on ``axis`` (at the other axes' labels ``at``)."""
    for r in paired:
        if not _same(r.get("axis"), axis) or not all(_same(r.get(k), v) for k, v in at.items()):
            continue
        n = int(_num(r.get("n")) or 0)
        w, t, lo = (int(_num(r.get(k)) or 0) for k in ("wins", "ties", "losses"))
        if _same(r.get("a"), x) and _same(r.get("b"), y):
            return {"n": n, "wins": w, "ties": t, "losses": lo}
        if _same(r.get("a"), y) and _same(r.get("b"), x):
            return {"n": n, "wins": lo, "ties": t, "losses": w}
    return None


def _score(who: str, p: dict[str, int] | None, against: str = "") -> str:
    if not p or not p["n"]:
        return ""
    text = f"{who} wins {p['wins']} of {p['n']}" + (f" against {against}" if against else "")
    return text + (f", ties {p['ties']}" if p["ties"] else "")


def _tail(rows: Sequence[Row], score: str = "") -> str:
    return f" ({_seeds(rows)}" + (f"; {score}" if score else "") + ")"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- the experiments


def _labels(summary: Sequence[Row], paired: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> str | None:
    budgets = [b for b in axes.get(BUDGET_AXIS, [])
               if _find(summary, **{BUDGET_AXIS: b, VARIANT_AXIS: "transfer"})
               and _find(summary, **{BUDGET_AXIS: b, VARIANT_AXIS: "scratch"})]
    if not budgets:
        return None
    b = min(budgets, key=lambda v: (abs(math.log(max(float(v), 1e-9) / 10.0)), float(v)))  # 10 labels, else nearest
    rows = {v: _find(summary, **{BUDGET_AXIS: b, VARIANT_AXIS: v}) for v in ("transfer", "scratch", "probe")}
    shown = [r for r in rows.values() if r]
    vals = dict(zip([v for v, r in rows.items() if r], _values(shown)))
    parts = [f"transfer reaches {vals['transfer']}", f"scratch {vals['scratch']}"]
    if "probe" in vals:
        parts.insert(1, f"the linear probe {vals['probe']}")
    p = _pair(paired, VARIANT_AXIS, "transfer", "scratch", **{BUDGET_AXIS: b})
    label = "label" if _same(b, 1) else "labels"
    return f"With {b} {label} per class, {_join(parts)}" + _tail(shown, _score("transfer", p))


def _freeze_name(label: Any) -> str:
    if _same(label, "all"):
        return "freezing all (linear probe)"
    return "training every group" if _same(label, 0) else f"freezing the first {label} groups"


def _freeze(summary: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> str | None:
    rows = [(lab, _find(summary, **{FREEZE_AXIS: lab})) for lab in axes.get(FREEZE_AXIS, [])]
    rows = [(lab, r) for lab, r in rows if r]
    if not rows:
        return None
    best = max(rows, key=lambda lr: _num(lr[1].get("val_acc_mean")) or 0.0)
    shown = [best] + [lr for lr in rows if not _same(lr[0], best[0]) and (_same(lr[0], 0) or _same(lr[0], "all"))]
    vals = _values([r for _, r in shown])
    name = _freeze_name(best[0])
    text = f"{name[0].upper()}{name[1:]} is best: {vals[0]} in {_seconds(best[1])} of training per run"
    text += "".join(f"; {_freeze_name(lab)}: {v} in {_seconds(r)}" for (lab, r), v in zip(shown[1:], vals[1:]))
    return text + _tail([r for _, r in shown])


def _alpha(summary: Sequence[Row], paired: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> str | None:
    labels = list(axes.get(ALPHA_AXIS, []))
    fixed = [(lab, _find(summary, **{ALPHA_AXIS: lab})) for lab in labels if not _same(lab, LEARNED)]
    fixed = [(lab, r) for lab, r in fixed if r]
    learned = _find(summary, **{ALPHA_AXIS: LEARNED})
    if not fixed and not learned:
        return None
    if not fixed:
        return f"Learned α reaches {value_text(learned)}" + _tail([learned])
    best_lab, best = max(fixed, key=lambda lr: _num(lr[1].get("val_acc_mean")) or 0.0)
    shown = [best] + ([learned] if learned else [])
    vals = _values(shown)
    text = f"The best fixed α₁ = {best_lab} reaches {vals[0]}"
    if not learned:
        return text + _tail(shown)
    p = _pair(paired, ALPHA_AXIS, LEARNED, best_lab)
    return f"{text}; learned α reaches {vals[1]}" + _tail(shown, _score("learned α", p, f"α₁ = {best_lab}"))


def _parts(summary: Sequence[Row], paired: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> str | None:
    rows = [(lab, _find(summary, **{PARTS_AXIS: lab})) for lab in axes.get(PARTS_AXIS, [])]
    rows = sorted([(lab, r) for lab, r in rows if r], key=lambda lr: -(_num(lr[1].get("val_acc_mean")) or 0.0))
    if not rows:
        return None
    vals = _values([r for _, r in rows])
    items = [f"{lab} {v}" for (lab, _), v in zip(rows, vals)]
    text = f"Best: {rows[0][0]} at {vals[0]}" + (", then " + _join(items[1:]) if items[1:] else "")
    singles = [lr for lr in rows if str(lr[0]).endswith(" alone")]
    fusions = [lr for lr in rows if not str(lr[0]).endswith(" alone")]
    score = ""
    if singles and fusions:
        f, s = fusions[0][0], singles[0][0]
        score = _score(str(f), _pair(paired, PARTS_AXIS, f, s), str(s))
    return text + _tail([r for _, r in rows], score)


def _ratio(a: float, b: float) -> str:
    r = a / b
    return f"{r:.0f}" if r >= 10 else f"{r:.1f}".rstrip("0").rstrip(".")


def _compress(summary: Sequence[Row], paired: Sequence[Row], reference: Mapping[str, Any] | None) -> str | None:
    """ "Distilled with the unlabeled images, the student reaches 78 ± 4 %; without them 60 ± 5 %; alone
    45 ± 6 % (3 seeds; distilled with unlabeled wins 3 of 3 against alone). Its teacher: 80 % (one run),
    with 7.4× the student's parameters" """
    alone, without, with_ = COMPRESS_VARIANTS
    rows = {v: _find(summary, **{VARIANT_AXIS: v}) for v in (with_, without, alone)}
    shown = [r for r in rows.values() if r]
    if not shown:
        return None
    vals = dict(zip([v for v, r in rows.items() if r], _values(shown)))
    words = {with_: "distilled with the unlabeled images, the student reaches {}",
             without: "without them {}" if with_ in vals else "distilled without the unlabeled images, it reaches {}",
             alone: "alone {}" if len(vals) > 1 else "the student alone reaches {}"}
    parts = [words[v].format(val) for v, val in vals.items()]
    text = "; ".join(parts)
    text = text[0].upper() + text[1:]
    p = _pair(paired, VARIANT_AXIS, with_, alone)
    text += _tail(shown, _score("distilled with unlabeled", p, "alone"))
    acc = _num((reference or {}).get("val_acc"))
    if acc is not None:
        text += f". Its teacher: {acc * 100:.0f} % (one run)"
        tp, sp = _num(reference.get("params")), _num(reference.get("student_params"))
        if tp and sp:
            text += f", with {_ratio(tp, sp)}× the student's parameters" if tp > sp else \
                f", with 1/{_ratio(sp, tp)} of the student's parameters"
    return text


def point_text(row: Row, axes: Sequence[str]) -> str:
    return ", ".join(f"{a} = {row.get(a)}" for a in axes)


def _generic(summary: Sequence[Row], paired: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> str | None:
    names = list(axes)
    rows = sorted([r for r in summary if _n(r) > 0], key=lambda r: -(_num(r.get("val_acc_mean")) or 0.0))
    if not rows:
        return None
    if len(rows) == 1:
        return f"{point_text(rows[0], names) or 'The sweep'}: {value_text(rows[0])}" + _tail(rows[:1])
    best, worst = rows[0], rows[-1]
    vals = _values([best, worst])
    score = ""
    if len(names) == 1:
        a = names[0]
        score = _score("the best", _pair(paired, a, best.get(a), worst.get(a)), "the worst")
    return (f"Best: {point_text(best, names)} at {vals[0]}; worst: {point_text(worst, names)} at {vals[1]}"
            + _tail([best, worst], score))


def headline(experiment: str | None, summary: Sequence[Row], paired: Sequence[Row],
             axes: Mapping[str, Sequence[Any]], partial: bool = False, reference: Mapping[str, Any] | None = None) -> str:
    """The sentence for a built-in ``experiment`` (labels | freeze | alpha | parts | compress; None or
    another id: a generic best/worst sentence) from ``summary.csv`` and ``paired.csv`` rows; ``partial``
    (trials still to come) prefixes "So far: ". ``reference``: compress's teacher
    (:func:`~.builtin.teacher_reference`), said after the student's numbers."""
    text = None
    if experiment == "labels":
        text = _labels(summary, paired, axes)
    elif experiment == "freeze":
        text = _freeze(summary, axes)
    elif experiment == "alpha":
        text = _alpha(summary, paired, axes)
    elif experiment == "parts":
        text = _parts(summary, paired, axes)
    elif experiment == "compress":
        text = _compress(summary, paired, reference)
    if text is None:
        text = _generic(summary, paired, axes)
    if text is None:
        return NOTHING_YET
    return ("So far: " if partial else "") + text + "."


def headline_for(res: Any, experiment: str | None = None, reference: Mapping[str, Any] | None = None) -> str:
    """:func:`headline` of a :class:`~.folder.SweepResults` (partial while trials are left)."""
    return headline(experiment, res.summary, res.paired, res.spec.axis_labels(),
                    partial=res.n_done < res.n_total, reference=reference)
