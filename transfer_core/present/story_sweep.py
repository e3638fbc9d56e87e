"""The story of an experiment (a sweep): its headline, the grid point that carries it against its baseline,
the sweep's figure, and the paired differences over seeds."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..runs import RunStore
from ..seeds import ONE_SEED
from . import sentences as sx
from .method_slide import method_slide
from .slides import StoryData, data_slide, fails_slide, question_slide
from .story import Number, Slide
from .subject import Subject

__all__ = ["sweep_story"]


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
    if exp in builtin.EXPERIMENTS:
        question = builtin.EXPERIMENTS[exp].title
        lead = builtin.EXPERIMENTS[exp].description
    else:
        question = f"How does validation accuracy change with {sx.join_words(names) or 'the settings'}?"
        lead = spec.description or f"The sweep {spec.name}."
    grid = " × ".join(f"{a} ∈ {{{', '.join(map(str, axes[a]))}}}" for a in names)
    s1 = question_slide(question, lead, f"Sweep {spec.name} in {res.path}; state {res.state}; "
                                         f"{res.n_done} of {res.n_total} trials done.")
    extra = ""
    if "data.train_per_class" in axes:
        extra = f"Each trial trains on {', '.join(map(str, axes['data.train_per_class']))} labels per class"
    s2 = data_slide(base, data, images, extra)
    s3 = method_slide(base, store, title="The method: one setup, varied over a grid and seeds")
    s3.bullets.insert(0, f"Every trial is this setup at one point of the grid ({grid or 'one point'}), with "
                         f"{len(spec.seeds)} seed{'s' if len(spec.seeds) != 1 else ''} each: {spec.n_trials} trials.")
    done = [r for r in res.summary if int(as_number(r.get("n")) or 0) > 0]
    ranked = sorted(done, key=lambda r: -(as_number(r.get("val_acc_mean")) or 0.0))
    sentence = headline_for(res, exp)
    s4 = Slide("answer", "The answer", lead=sentence)
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
        s4.numbers.append(Number(_point(hero, names) or "Best", value_text(hero), "validation accuracy", "headline"))
        if base_row is not None:
            s4.numbers.append(Number(_point(base_row, names), value_text(base_row),
                                     "the baseline" if exp == "labels" else "the weakest point", "baseline"))
        ns = sorted({int(as_number(r.get("n")) or 0) for r in done})
        s4.numbers.append(Number("Over seeds", ONE_SEED if ns == [1] else f"{ns[-1]} seeds" if len(ns) == 1
                                 else f"{ns[0]}–{ns[-1]} seeds", "± is the 95 % interval over seeds", "spread"))
        if exp == "labels" and base_row is not None:
            s4.title = f"The answer: {value_text(hero)} with transfer, {value_text(base_row)} from scratch"
        else:
            s4.title = f"The answer: {value_text(hero)} at best"
    if sentence == NOTHING_YET:
        s4.title = "The answer: not yet"
    s4.notes = f"Trials: {res.n_completed} completed of {res.n_total}. " + "; ".join(
        f"{_point(r, names)}: {value_text(r)} (n={r.get('n')})" for r in ranked[:12])

    s5 = Slide("evidence", "The evidence: " + {
        "labels": "accuracy against labels per class", "freeze": "accuracy and training time against frozen groups",
        "alpha": "accuracy against a fixed α, and a learned one", "parts": "the fusion against its parts",
        "compress": "the student alone, distilled, and distilled with the unlabeled images, against its teacher",
    }.get(exp or "", "accuracy over the grid"))
    reference = None
    if exp == "compress":  # the teacher's accuracy, the dashed line of the figure
        from ..sweeps.builtin import teacher_reference

        reference = teacher_reference(spec, subject.runs_root)
    s5.figures.append({"kind": "sweep", "args": {"experiment": exp, "summary": res.summary, "trials": res.trials,
                                                  "axes": axes, "reference": reference},
                       "caption": "Line or bar: the mean over seeds; band or whisker: its 95 % interval; dots: each seed"})
    s5.lead = f"{res.n_completed} of {res.n_total} trials finished ({res.state})."
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
    s6 = fails_slide(best_run, subject.runs_root, data, images, who="the best trial")
    if best_run is None:
        s6.lead = "The trials' runs are not in this runs folder: no confusion matrix to show."
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
        takeaways.append(f"{a} against {b}{' at ' + at if at else ''}: {a} wins {wins} of {n} seeds, "
                         f"by {d:.1f} points on average.")
    if res.n_done < res.n_total:
        takeaways.append(f"So far: {res.n_done} of {res.n_total} trials are done; the numbers can still move.")
    return question, [s1, s2, s3, s4, s5, s6], takeaways


def _point(row: Mapping[str, Any], names: Sequence[str]) -> str:
    """A grid point in words: "transfer, 10 labels per class"; other axes as "axis = value"."""
    parts = []
    for a in names:
        v = row.get(a)
        if v in (None, ""):
            continue
        if a == "data.train_per_class":
            parts.append(f"{v} label{'s' if str(v) != '1' else ''} per class")
        elif a in ("variant", "model"):
            parts.insert(0, str(v))
        elif a == "backbones.0.freeze":
            parts.append("all groups frozen" if str(v) == "all" else f"{v} groups frozen")
        elif a == "alpha1":
            parts.append("learned α" if str(v) == "learned" else f"α₁ = {v}")
        else:
            parts.append(f"{a} = {v}")
    return ", ".join(parts)
