"""The story of a comparison: which run recognises the task best, against which baseline, paired by seed
where the runs have siblings."""

from __future__ import annotations

from ..compare import config_diff, not_comparable, run_kind
from ..runs import RunStore
from ..seeds import ONE_SEED, paired_text, spread_text, store_seed_index
from . import sentences as sx
from .method_slide import method_slide
from .slides import StoryData, data_slide, fails_slide, question_slide, run_config, run_label
from .story import Number, Slide
from .subject import Subject

__all__ = ["compare_story"]


def compare_story(subject: Subject, data: StoryData, images: bool) -> tuple[str, list[Slide], list[str]]:
    store = RunStore(subject.runs_root)
    runs = subject.runs()
    summaries = {r.id: r.summary() for r in runs}
    configs = {r.id: run_config(r) for r in runs}
    kinds = {rid: run_kind(c) for rid, c in configs.items()}
    labels = {rid: run_label(summaries[rid], kinds[rid]) for rid in configs}
    ref, odd = not_comparable(configs)
    fair = [rid for rid in configs if rid not in odd and summaries[rid].val_acc is not None]
    ranked = sorted(fair, key=lambda r: -(summaries[r].val_acc or 0.0))
    best = ranked[0] if ranked else next(iter(configs))
    bcfg = configs[best]
    d = bcfg.get("data") or {}
    target = sx.class_text(d.get("dataset", "?"), d.get("classes"))
    kind_list = list(dict.fromkeys(kinds.values()))
    if odd:
        question = f"How do these {len(runs)} runs compare?"
    elif len(kind_list) > 1:
        question = (f"Which recognises {target} best {sx.labels_text(d.get('train_per_class'))}: "
                    f"{', '.join(kind_list[:-1])} or {kind_list[-1]}?")
    else:
        question = f"Which of these {len(runs)} {kind_list[0]} runs recognises {target} best?"
    s1 = question_slide(question, f"{len(runs)} runs compared: " + "; ".join(labels[r] for r in configs) + ".",
                         "Runs: " + ", ".join(configs) + ".")
    extra = ""
    if odd:
        extra = (f"{sx.join_words([labels[r] for r in odd])} {'was' if len(odd) == 1 else 'were'} trained on other "
                 "classes: their accuracies answer another question")
    s2 = data_slide(bcfg, data, images, extra)
    s3 = method_slide(bcfg, store, store.get(best).metrics(), title=f"The method: {len(runs)} setups, the best one drawn")
    diff = config_diff(configs)
    for key, values in list(diff.items())[:6]:
        s3.bullets.append(f"{key}: " + "; ".join(f"{labels[r]} {values[r]}" for r in configs))
    s3.lead = f"The best, {labels[best]}: " + s3.lead
    s3.notes += "\n\nWhat differs: " + "; ".join(f"{k}: " + ", ".join(f"{r}={v}" for r, v in vals.items())
                                                 for k, vals in diff.items())

    index = store_seed_index(store)
    over = {rid: index.summary(rid, configs[rid]) for rid in configs}
    s4 = Slide("answer", f"The answer: {labels[best]}")
    bacc = summaries[best].val_acc
    s4.numbers.append(Number(f"Best: {kinds[best]}", sx.pct(bacc), labels[best], "headline"))
    base = None
    if len(ranked) > 1:
        scratch = [r for r in ranked if kinds[r] == "scratch" and r != best]
        base = scratch[0] if scratch and kinds[best] != "scratch" else ranked[1]
        s4.numbers.append(Number(f"{'Baseline' if kinds[base] == 'scratch' else 'Next best'}: {kinds[base]}",
                                 sx.pct(summaries[base].val_acc), labels[base], "baseline"))
        gap = ((bacc or 0) - (summaries[base].val_acc or 0)) * 100
        who = kinds[best] if kinds[best] != kinds[base] else labels[best]
        s4.title = (f"The answer: a tie at {sx.pct(bacc)}" if round(gap, 1) == 0
                    else f"The answer: {who} leads by {gap:.1f} points")
        s4.lead = (f"{labels[best]} reaches {sx.pct(bacc)} of unseen images, {labels[base]} "
                   f"{sx.pct(summaries[base].val_acc)}.")
    ob = over[best]
    if ob["n"] >= 2 and ob.get("ci_high") is not None:
        s4.numbers.append(Number("Over seeds", f"{ob['mean'] * 100:.1f} ± {(ob['ci_high'] - ob['mean']) * 100:.1f} %",
                                 f"the best run's settings over {ob['n']} seeds, mean ± 95 % interval", "spread"))
    else:
        s4.numbers.append(Number("Over seeds", ONE_SEED, "a single run: the spread is not measured", "spread"))
    paired = []
    if base is not None and over[best]["n"] >= 2 and over[base]["n"] >= 2:
        p = index.paired(best, base, configs[best], configs[base])
        la, lb = (kinds[best], kinds[base]) if kinds[best] != kinds[base] else (labels[best], labels[base])
        paired.append(f"Paired by seed, {paired_text(p, la, lb)}.")
        s4.bullets.extend(paired)
    singles = [labels[r] for r in configs if over[r]["n"] < 2]
    if singles:
        s4.bullets.append(f"{ONE_SEED.capitalize()} for {sx.join_words(singles)}: another seed can move an accuracy "
                          "by several points.")
    s4.notes = "Runs and seeds: " + "; ".join(
        f"{r}: {sx.pct(summaries[r].val_acc)}, seed {configs[r].get('seed', 0)}, over seeds {spread_text(over[r])}"
        for r in configs) + "."

    s5 = Slide("evidence", "The evidence: accuracy per run and per epoch")
    rows = [{"label": labels[r] + ("" if r not in odd else " (other classes)"), "val_acc": summaries[r].val_acc,
             "kind": kinds[r], **{k: over[r][k] for k in ("n", "mean", "ci_low", "ci_high")}} for r in configs]
    s5.figures.append({"kind": "kind_bars", "args": {"rows": rows}, "share": 0.46,
                       "caption": "Final validation accuracy per run; a diamond is the mean over seeds with its 95 % interval"})
    s5.figures.append({"kind": "compare_curves", "args": {"series": {labels[r]: store.get(r).metrics() for r in configs}},
                       "caption": "Validation accuracy and loss per epoch, one colour per run"})
    s5.lead = "; ".join(f"{labels[r]} {sx.pct(summaries[r].val_acc)}" for r in ranked) + "." if ranked else ""

    s6 = fails_slide(store.get(best), subject.runs_root, data, images, who="the best run")
    takeaways = []
    if ranked:
        takeaways.append(f"Best: {labels[best]} ({kinds[best]}) at {sx.pct(bacc)} of unseen images.")
    if base is not None:
        gap = ((bacc or 0) - (summaries[base].val_acc or 0)) * 100
        takeaways.append(f"It ties with {labels[base]} ({kinds[base]})." if round(gap, 1) == 0 else
                         f"It leads {labels[base]} ({kinds[base]}) by {gap:.1f} points.")
    takeaways.extend(paired)
    if singles:
        takeaways.append(f"{ONE_SEED.capitalize()} for {sx.join_words(singles)}: repeat over seeds before deciding.")
    if odd:
        takeaways.append(extra + ".")
    return question, [s1, s2, s3, s4, s5, s6], takeaways
