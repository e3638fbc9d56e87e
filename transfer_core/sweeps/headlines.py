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

from ..i18n import N_, _, ngettext
from .builtin import (ALPHA_AXIS, BUDGET_AXIS, COMPRESS_VARIANTS, FREEZE_AXIS, LEARNED, PARTS_AXIS, VARIANT_AXIS,
                      label_text)
from .stats import as_number as _num

__all__ = ["NOTHING_YET", "headline", "headline_for", "value_text", "point_text"]

# English msgid: headline() returns it translated (compare with _(NOTHING_YET))
NOTHING_YET = N_("No trial has finished yet: the numbers appear here as trials complete.")

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
        return _("no result")
    if _n(row) < 2 or half is None:
        value = f"{mean * 100:.0f} %"
        return _("{value} (one seed)").format(value=value) if alone else value
    if half * 100 < 0.95:
        return f"{mean * 100:.1f} ± {half * 100:.1f} %"
    return f"{mean * 100:.0f} ± {half * 100:.0f} %"


def _seconds(row: Row) -> str:
    t = _num(row.get("train_s_mean"))
    if t is None:
        return "? s"
    if t < 0.05:
        return _("under 0.1 s")
    return f"{t:.1f} s" if t < 60 else _("{minutes:.1f} min").format(minutes=t / 60)


def _seeds(rows: Sequence[Row]) -> str:
    ns = sorted({_n(r) for r in rows})
    if ns == [1]:
        return _("one seed")
    if len(ns) == 1:
        return ngettext("{n} seed", "{n} seeds", ns[0]).format(n=ns[0])
    return _("{low}–{high} seeds").format(low=ns[0], high=ns[-1])


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
    """ "transfer wins 5 of 5" (against ..., ties ...): ``who`` and ``against`` as shown (translated)."""
    if not p or not p["n"]:
        return ""
    values = {"who": who, "wins": p["wins"], "n": p["n"], "against": against, "ties": p["ties"]}
    if against:
        text = _("{who} wins {wins} of {n} against {against}, ties {ties}") if p["ties"] else \
            _("{who} wins {wins} of {n} against {against}")
    else:
        text = _("{who} wins {wins} of {n}, ties {ties}") if p["ties"] else _("{who} wins {wins} of {n}")
    return text.format(**values)


def _tail(rows: Sequence[Row], score: str = "") -> str:
    if score:
        return _(" ({seeds}; {score})").format(seeds=_seeds(rows), score=score)
    return _(" ({seeds})").format(seeds=_seeds(rows))


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return _("{items} and {last}").format(items=_(", ").join(items[:-1]), last=items[-1])


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


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
    count = 1 if _same(b, 1) else 2
    if "probe" in vals:
        text = ngettext("With {n} label per class, transfer reaches {transfer}, the linear probe {probe} and scratch "
                        "{scratch}", "With {n} labels per class, transfer reaches {transfer}, the linear probe {probe} "
                        "and scratch {scratch}", count)
    else:
        text = ngettext("With {n} label per class, transfer reaches {transfer} and scratch {scratch}",
                        "With {n} labels per class, transfer reaches {transfer} and scratch {scratch}", count)
    text = text.format(n=b, transfer=vals["transfer"], scratch=vals["scratch"], probe=vals.get("probe", ""))
    p = _pair(paired, VARIANT_AXIS, "transfer", "scratch", **{BUDGET_AXIS: b})
    return text + _tail(shown, _score(_("transfer"), p))


def _freeze_name(label: Any) -> str:
    if _same(label, "all"):
        return _("freezing all (linear probe)")
    return _("training every group") if _same(label, 0) else _("freezing the first {n} groups").format(n=label)


def _freeze(summary: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> str | None:
    rows = [(lab, _find(summary, **{FREEZE_AXIS: lab})) for lab in axes.get(FREEZE_AXIS, [])]
    rows = [(lab, r) for lab, r in rows if r]
    if not rows:
        return None
    best = max(rows, key=lambda lr: _num(lr[1].get("val_acc_mean")) or 0.0)
    shown = [best] + [lr for lr in rows if not _same(lr[0], best[0]) and (_same(lr[0], 0) or _same(lr[0], "all"))]
    vals = _values([r for _lab, r in shown])
    text = _upper_first(_("{name} is best: {value} in {time} of training per run").format(
        name=_freeze_name(best[0]), value=vals[0], time=_seconds(best[1])))
    text += "".join(_("; {name}: {value} in {time}").format(name=_freeze_name(lab), value=v, time=_seconds(r))
                    for (lab, r), v in zip(shown[1:], vals[1:]))
    return text + _tail([r for _lab, r in shown])


def _alpha(summary: Sequence[Row], paired: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> str | None:
    labels = list(axes.get(ALPHA_AXIS, []))
    fixed = [(lab, _find(summary, **{ALPHA_AXIS: lab})) for lab in labels if not _same(lab, LEARNED)]
    fixed = [(lab, r) for lab, r in fixed if r]
    learned = _find(summary, **{ALPHA_AXIS: LEARNED})
    if not fixed and not learned:
        return None
    if not fixed:
        return _("Learned α reaches {value}").format(value=value_text(learned)) + _tail([learned])
    best_lab, best = max(fixed, key=lambda lr: _num(lr[1].get("val_acc_mean")) or 0.0)
    shown = [best] + ([learned] if learned else [])
    vals = _values(shown)
    if not learned:
        return _("The best fixed α₁ = {label} reaches {value}").format(label=best_lab, value=vals[0]) + _tail(shown)
    p = _pair(paired, ALPHA_AXIS, LEARNED, best_lab)
    text = _("The best fixed α₁ = {label} reaches {value}; learned α reaches {learned}").format(
        label=best_lab, value=vals[0], learned=vals[1])
    return text + _tail(shown, _score(_("learned α"), p, f"α₁ = {best_lab}"))


def _parts(summary: Sequence[Row], paired: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> str | None:
    rows = [(lab, _find(summary, **{PARTS_AXIS: lab})) for lab in axes.get(PARTS_AXIS, [])]
    rows = sorted([(lab, r) for lab, r in rows if r], key=lambda lr: -(_num(lr[1].get("val_acc_mean")) or 0.0))
    if not rows:
        return None
    vals = _values([r for _lab, r in rows])
    items = [f"{label_text(lab)} {v}" for (lab, _r), v in zip(rows, vals)]
    if items[1:]:
        text = _("Best: {label} at {value}, then {others}").format(
            label=label_text(rows[0][0]), value=vals[0], others=_join(items[1:]))
    else:
        text = _("Best: {label} at {value}").format(label=label_text(rows[0][0]), value=vals[0])
    singles = [lr for lr in rows if str(lr[0]).endswith(" alone")]
    fusions = [lr for lr in rows if not str(lr[0]).endswith(" alone")]
    score = ""
    if singles and fusions:
        f, s = fusions[0][0], singles[0][0]
        score = _score(label_text(f), _pair(paired, PARTS_AXIS, f, s), label_text(s))
    return text + _tail([r for _lab, r in rows], score)


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
    words = {with_: _("distilled with the unlabeled images, the student reaches {value}"),
             without: _("without them {value}") if with_ in vals
             else _("distilled without the unlabeled images, it reaches {value}"),
             alone: _("alone {value}") if len(vals) > 1 else _("the student alone reaches {value}")}
    parts = [words[v].format(value=val) for v, val in vals.items()]
    text = _upper_first(_("; ").join(parts))
    p = _pair(paired, VARIANT_AXIS, with_, alone)
    text += _tail(shown, _score(label_text(with_), p, _("alone")))
    acc = _num((reference or {}).get("val_acc"))
    if acc is not None:
        tp, sp = _num(reference.get("params")), _num(reference.get("student_params"))
        if tp and sp and tp > sp:
            text += _(". Its teacher: {acc:.0f} % (one run), with {ratio}× the student's parameters").format(
                acc=acc * 100, ratio=_ratio(tp, sp))
        elif tp and sp:
            text += _(". Its teacher: {acc:.0f} % (one run), with 1/{ratio} of the student's parameters").format(
                acc=acc * 100, ratio=_ratio(sp, tp))
        else:
            text += _(". Its teacher: {acc:.0f} % (one run)").format(acc=acc * 100)
    return text


def point_text(row: Row, axes: Sequence[str]) -> str:
    return ", ".join(f"{a} = {row.get(a)}" for a in axes)


def _generic(summary: Sequence[Row], paired: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> str | None:
    names = list(axes)
    rows = sorted([r for r in summary if _n(r) > 0], key=lambda r: -(_num(r.get("val_acc_mean")) or 0.0))
    if not rows:
        return None
    if len(rows) == 1:
        return _("{point}: {value}").format(point=point_text(rows[0], names) or _("The sweep"),
                                            value=value_text(rows[0])) + _tail(rows[:1])
    best, worst = rows[0], rows[-1]
    vals = _values([best, worst])
    score = ""
    if len(names) == 1:
        a = names[0]
        score = _score(_("the best"), _pair(paired, a, best.get(a), worst.get(a)), _("the worst"))
    return (_("Best: {best} at {best_value}; worst: {worst} at {worst_value}").format(
        best=point_text(best, names), best_value=vals[0], worst=point_text(worst, names), worst_value=vals[1])
            + _tail([best, worst], score))


def headline(experiment: str | None, summary: Sequence[Row], paired: Sequence[Row],
             axes: Mapping[str, Sequence[Any]], partial: bool = False, reference: Mapping[str, Any] | None = None) -> str:
    """The sentence for a built-in ``experiment`` (labels | freeze | alpha | parts | compress; None or
    another id: a generic best/worst sentence) from ``summary.csv`` and ``paired.csv`` rows; ``partial``
    (trials still to come) prefixes "So far: ". ``reference``: compress's teacher
    (:func:`~.builtin.teacher_reference`), said after the student's numbers. In the current language."""
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
        return _(NOTHING_YET)
    return (_("So far: {text}.") if partial else _("{text}.")).format(text=text)


def headline_for(res: Any, experiment: str | None = None, reference: Mapping[str, Any] | None = None) -> str:
    """:func:`headline` of a :class:`~.folder.SweepResults` (partial while trials are left)."""
    return headline(experiment, res.summary, res.paired, res.spec.axis_labels(),
                    partial=res.n_done < res.n_total, reference=reference)
