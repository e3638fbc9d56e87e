"""The story of an experiment (a sweep): its headline, the grid point that carries it against its baseline,
the sweep's figure, and the paired differences over seeds."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..i18n import N_, _, gettext, ngettext
from ..runs import RunStore
from . import sentences as sx
from .method_slide import method_slide
from .slides import StoryData, data_slide, fails_slide, question_slide
from .story import Number, Slide
from .subject import Subject

__all__ = ["sweep_story"]

#: What the evidence slide's chart shows, per built-in experiment.
_EVIDENCE = {
    "labels": N_("The evidence: accuracy against labels per class"),
    "freeze": N_("The evidence: accuracy and training time against frozen groups"),
    "alpha": N_("The evidence: accuracy against a fixed α, and a learned one"),
    "parts": N_("The evidence: the fusion against its parts"),
    "compress": N_("The evidence: the student alone, distilled, and distilled with the unlabeled images, against its "
                   "teacher"),
}


def _experiment_kind(spec: Any) -> str | None:
    from ..sweeps import builtin

    try:
        match = builtin.experiment_of(spec)
    except Exception:  # noqa: BLE001
        match = None
    if match:
        return match[0]
    axes = set(spec.axes)
    for exp, need in (("labels", {builtin.BUDGET_AXIS, builtin.VARIANT_AXIS}), ("freeze", {builtin.FREEZE_AXIS}),
                      ("alpha", {builtin.ALPHA_AXIS}), ("parts", {builtin.PARTS_AXIS})):
        if axes == need:
            return exp
    return None


def sweep_story(subject: Subject, data: StoryData, images: bool) -> tuple[str, list[Slide], list[str]]:
    from ..sweeps import builtin
    from ..sweeps.folder import read_results
    from ..sweeps.headlines import NOTHING_YET, headline_for, value_text
    from ..sweeps.stats import as_number

    store = RunStore(subject.runs_root)
    res = read_results(subject.refs[0])
    spec = res.spec
    exp = _experiment_kind(spec)
    axes = spec.axis_labels()
    names = list(axes)
    base = dict(spec.base)
    if exp in builtin.EXPERIMENTS:  # the built-in experiments' texts: marked where they are defined
        question = gettext(builtin.EXPERIMENTS[exp].title)
        lead = gettext(builtin.EXPERIMENTS[exp].description)
    else:
        question = (_("How does validation accuracy change with {axes}?").format(axes=sx.join_words(names)) if names
                    else _("How does validation accuracy change with the settings?"))
        lead = spec.description or _("The sweep {name}.").format(name=spec.name)
    grid = " × ".join(f"{a} ∈ {{{', '.join(map(str, axes[a]))}}}" for a in names)
    s1 = question_slide(question, lead, _("Sweep {name} in {path}; state {state}; {done} of {total} trials done.").format(
        name=spec.name, path=res.path, state=res.state, done=res.n_done, total=res.n_total))
    extra = ""
    if "data.train_per_class" in axes:
        extra = _("Each trial trains on {budgets} labels per class").format(
            budgets=sx.list_words([str(b) for b in axes["data.train_per_class"]]))
    s2 = data_slide(base, data, images, extra)
    s3 = method_slide(base, store, title=_("The method: one setup, varied over a grid and seeds"))
    s3.bullets.insert(0, ngettext(
        "Every trial is this setup at one point of the grid ({grid}), with {n} seed each: {trials} trials.",
        "Every trial is this setup at one point of the grid ({grid}), with {n} seeds each: {trials} trials.",
        len(spec.seeds)).format(grid=grid or _("one point"), n=len(spec.seeds), trials=spec.n_trials))
    done = [r for r in res.summary if int(as_number(r.get("n")) or 0) > 0]
    ranked = sorted(done, key=lambda r: -(as_number(r.get("val_acc_mean")) or 0.0))
    sentence = headline_for(res, exp)
    s4 = Slide("answer", _("The answer"), lead=sentence)
    hero = base_row = None
    if exp == "labels":
        budgets = [b for b in axes.get(builtin.BUDGET_AXIS, [])
                   if any(str(r.get(builtin.BUDGET_AXIS)) == str(b) and r.get(builtin.VARIANT_AXIS) == "transfer"
                          for r in done)]
        if budgets:
            import math

            b = min(budgets, key=lambda v: (abs(math.log(max(float(v), 1e-9) / 10.0)), float(v)))
            at = [r for r in done if str(r.get(builtin.BUDGET_AXIS)) == str(b)]
            hero = next((r for r in at if r.get(builtin.VARIANT_AXIS) == "transfer"), None)
            base_row = next((r for r in at if r.get(builtin.VARIANT_AXIS) == "scratch"), None)
    if hero is None and ranked:
        hero = ranked[0]
        base_row = ranked[-1] if len(ranked) > 1 else None
    if hero is not None:
        s4.numbers.append(Number(_point(hero, names) or _("Best"), value_text(hero), _("validation accuracy"),
                                 "headline"))
        if base_row is not None:
            s4.numbers.append(Number(_point(base_row, names), value_text(base_row),
                                     _("the baseline") if exp == "labels" else _("the weakest point"), "baseline"))
        ns = sorted({int(as_number(r.get("n")) or 0) for r in done})
        s4.numbers.append(Number(_("Over seeds"), _("one seed") if ns == [1] else
                                 _("{n} seeds").format(n=ns[-1]) if len(ns) == 1
                                 else _("{low}–{high} seeds").format(low=ns[0], high=ns[-1]),
                                 _("± is the 95 % interval over seeds"), "spread"))
        if exp == "labels" and base_row is not None:
            s4.title = _("The answer: {best} with transfer, {base} from scratch").format(best=value_text(hero),
                                                                                        base=value_text(base_row))
        else:
            s4.title = _("The answer: {best} at best").format(best=value_text(hero))
    if sentence == NOTHING_YET or sentence == gettext(NOTHING_YET):
        s4.title = _("The answer: not yet")
    s4.notes = sx.then(_("Trials: {done} completed of {total}.").format(done=res.n_completed, total=res.n_total),
                       sx.semicolons([f"{_point(r, names)}: {value_text(r)} (n={r.get('n')})" for r in ranked[:12]]))

    s5 = Slide("evidence", gettext(_EVIDENCE[exp]) if exp in _EVIDENCE else _("The evidence: accuracy over the grid"))
    reference = None
    if exp == "compress":  # the teacher's accuracy, the dashed line of the figure
        from ..sweeps.builtin import teacher_reference

        reference = teacher_reference(spec, subject.runs_root)
    s5.figures.append({"kind": "sweep", "args": {"experiment": exp, "summary": res.summary, "trials": res.trials,
                                                  "axes": axes, "reference": reference},
                       "caption": _("Line or bar: the mean over seeds; band or whisker: its 95 % interval; dots: "
                                    "each seed")})
    s5.lead = _("{done} of {total} trials finished ({state}).").format(done=res.n_completed, total=res.n_total,
                                                                     state=res.state)
    best_run = None
    if hero is not None:
        at = [t for t in res.trials if t.get("state") == "completed" and t.get("run_id")
              and all(str(t.get(a)) == str(hero.get(a)) for a in names)]
        at.sort(key=lambda t: -(as_number(t.get("val_acc")) or 0.0))
        for t in at:
            try:
                best_run = store.get(str(t["run_id"]))
                break
            except ValueError:
                continue
    s6 = fails_slide(best_run, subject.runs_root, data, images, who=_("the best trial"))
    if best_run is None:
        s6.lead = _("The trials' runs are not in this runs folder: no confusion matrix to show.")
    takeaways = [sentence]
    pairs = [p for p in res.paired if int(as_number(p.get("n")) or 0) and as_number(p.get("mean_diff")) is not None]
    if exp == "labels":
        pairs = [p for p in pairs if p.get("axis") == builtin.VARIANT_AXIS] or pairs
    pairs.sort(key=lambda p: -abs(float(as_number(p.get("mean_diff")) or 0.0)))
    for p in pairs[:3]:
        n = int(as_number(p.get("n")) or 0)
        at = _point({a: p.get(a) for a in names if a != p.get("axis") and p.get(a) not in (None, "")},
                    [a for a in names if a != p.get("axis")])
        d = float(as_number(p.get("mean_diff")) or 0.0) * 100
        a, b, wins = p.get("a"), p.get("b"), int(as_number(p.get("wins")) or 0)
        if d < 0:  # said from the winner's side
            a, b, wins, d = b, a, int(as_number(p.get("losses")) or 0), -d
        takeaways.append(
            (_("{a} against {b} at {at}: {a} wins {wins} of {n} seeds, by {d} points on average.") if at else
             _("{a} against {b}: {a} wins {wins} of {n} seeds, by {d} points on average.")).format(
                a=builtin.label_text(a), b=builtin.label_text(b), at=at, wins=wins, n=n, d=f"{d:.1f}"))
    if res.n_done < res.n_total:
        takeaways.append(_("So far: {done} of {total} trials are done; the numbers can still move.").format(
            done=res.n_done, total=res.n_total))
    return question, [s1, s2, s3, s4, s5, s6], takeaways


def _point(row: Mapping[str, Any], names: Sequence[str]) -> str:
    """A grid point in words: "transfer, 10 labels per class"; other axes as "axis = value"."""
    from ..sweeps import builtin

    parts = []
    for a in names:
        v = row.get(a)
        if v in (None, ""):
            continue
        if a == "data.train_per_class":
            parts.append(_("{n} label per class").format(n=v) if str(v) == "1" else
                         _("{n} labels per class").format(n=v))
        elif a in ("variant", "model"):
            parts.insert(0, builtin.label_text(v))
        elif a == "backbones.0.freeze":
            parts.append(_("all groups frozen") if str(v) == "all" else _("{n} groups frozen").format(n=v))
        elif a == "alpha1":
            parts.append(_("learned α") if str(v) == "learned" else f"α₁ = {v}")
        else:
            parts.append(f"{a} = {v}")
    return sx.list_words(parts)
