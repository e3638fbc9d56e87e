"""The story of a comparison: which run recognises the task best, against which baseline, paired by seed
where the runs have siblings."""

from __future__ import annotations

from ..compare import config_diff, not_comparable, run_kind
from ..i18n import _, ngettext
from ..runs import RunStore
from ..seeds import paired_text, spread_text, store_seed_index
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
    words = [sx.kind_word(k) for k in kind_list]
    if odd:
        question = _("How do these {n} runs compare?").format(n=len(runs))
    elif len(kind_list) > 1:
        question = _("Which recognises {target} best {each}: {kinds} or {last}?").format(
            target=target, each=sx.labels_text(d.get("train_per_class")), kinds=sx.list_words(words[:-1]),
            last=words[-1])
    else:
        question = _("Which of these {n} {kind} runs recognises {target} best?").format(n=len(runs), kind=words[0],
                                                                                       target=target)
    s1 = question_slide(question, _("{n} runs compared: {runs}.").format(
                            n=len(runs), runs=sx.semicolons([labels[r] for r in configs])),
                        _("Runs: {runs}.").format(runs=sx.list_words(list(configs))))
    extra = ""
    if odd:
        extra = ngettext("{runs} was trained on other classes: their accuracies answer another question",
                         "{runs} were trained on other classes: their accuracies answer another question",
                         len(odd)).format(runs=sx.join_words([labels[r] for r in odd]))
    s2 = data_slide(bcfg, data, images, extra)
    s3 = method_slide(bcfg, store, store.get(best).metrics(),
                      title=_("The method: {n} setups, the best one drawn").format(n=len(runs)))
    diff = config_diff(configs)
    for key, values in list(diff.items())[:6]:
        s3.bullets.append(_("{key}: {values}").format(
            key=key, values=sx.semicolons([f"{labels[r]} {values[r]}" for r in configs])))
    s3.lead = _("The best, {run}: {lead}").format(run=labels[best], lead=s3.lead)
    s3.notes += "\n\n" + _("What differs: {diff}").format(diff=sx.semicolons(
        [_("{key}: {values}").format(key=k, values=sx.list_words([f"{r}={v}" for r, v in vals.items()]))
         for k, vals in diff.items()]))

    index = store_seed_index(store)
    over = {rid: index.summary(rid, configs[rid]) for rid in configs}
    s4 = Slide("answer", _("The answer: {run}").format(run=labels[best]))
    bacc = summaries[best].val_acc
    s4.numbers.append(Number(_("Best: {kind}").format(kind=sx.kind_word(kinds[best])), sx.pct(bacc), labels[best],
                             "headline"))
    base = None
    if len(ranked) > 1:
        scratch = [r for r in ranked if kinds[r] == "scratch" and r != best]
        base = scratch[0] if scratch and kinds[best] != "scratch" else ranked[1]
        s4.numbers.append(Number((_("Baseline: {kind}") if kinds[base] == "scratch" else _("Next best: {kind}")).format(
            kind=sx.kind_word(kinds[base])), sx.pct(summaries[base].val_acc), labels[base], "baseline"))
        gap = ((bacc or 0) - (summaries[base].val_acc or 0)) * 100
        who = sx.kind_word(kinds[best]) if kinds[best] != kinds[base] else labels[best]
        s4.title = (_("The answer: a tie at {acc}").format(acc=sx.pct(bacc)) if round(gap, 1) == 0
                    else _("The answer: {who} leads by {gap} points").format(who=who, gap=f"{gap:.1f}"))
        s4.lead = _("{best} reaches {acc} of unseen images, {base} {base_acc}.").format(
            best=labels[best], acc=sx.pct(bacc), base=labels[base], base_acc=sx.pct(summaries[base].val_acc))
    ob = over[best]
    if ob["n"] >= 2 and ob.get("ci_high") is not None:
        s4.numbers.append(Number(_("Over seeds"), f"{ob['mean'] * 100:.1f} ± {(ob['ci_high'] - ob['mean']) * 100:.1f} %",
                                 _("the best run's settings over {n} seeds, mean ± 95 % interval").format(n=ob["n"]),
                                 "spread"))
    else:
        s4.numbers.append(Number(_("Over seeds"), _("one seed"), _("a single run: the spread is not measured"),
                                 "spread"))
    paired = []
    if base is not None and over[best]["n"] >= 2 and over[base]["n"] >= 2:
        p = index.paired(best, base, configs[best], configs[base])
        la, lb = ((sx.kind_word(kinds[best]), sx.kind_word(kinds[base])) if kinds[best] != kinds[base]
                  else (labels[best], labels[base]))
        paired.append(_("Paired by seed, {paired}.").format(paired=paired_text(p, la, lb)))
        s4.bullets.extend(paired)
    singles = [labels[r] for r in configs if over[r]["n"] < 2]
    if singles:
        s4.bullets.append(_("One seed for {runs}: another seed can move an accuracy by several points.").format(
            runs=sx.join_words(singles)))
    s4.notes = _("Runs and seeds: {runs}.").format(runs=sx.semicolons([
        _("{run}: {acc}, seed {seed}, over seeds {spread}").format(
            run=r, acc=sx.pct(summaries[r].val_acc), seed=configs[r].get("seed", 0), spread=spread_text(over[r]))
        for r in configs]))

    s5 = Slide("evidence", _("The evidence: accuracy per run and per epoch"))
    rows = [{"label": labels[r] if r not in odd else _("{run} (other classes)").format(run=labels[r]),
             "val_acc": summaries[r].val_acc,
             "kind": kinds[r], **{k: over[r][k] for k in ("n", "mean", "ci_low", "ci_high")}} for r in configs]
    s5.figures.append({"kind": "kind_bars", "args": {"rows": rows}, "share": 0.46,
                       "caption": _("Final validation accuracy per run; a diamond is the mean over seeds with its 95 % "
                                    "interval")})
    s5.figures.append({"kind": "compare_curves", "args": {"series": {labels[r]: store.get(r).metrics() for r in configs}},
                       "caption": _("Validation accuracy and loss per epoch, one colour per run")})
    s5.lead = _("{runs}.").format(runs=sx.semicolons([f"{labels[r]} {sx.pct(summaries[r].val_acc)}" for r in ranked])) \
        if ranked else ""

    s6 = fails_slide(store.get(best), subject.runs_root, data, images, who=_("the best run"))
    takeaways = []
    if ranked:
        takeaways.append(_("Best: {run} ({kind}) at {acc} of unseen images.").format(
            run=labels[best], kind=sx.kind_word(kinds[best]), acc=sx.pct(bacc)))
    if base is not None:
        gap = ((bacc or 0) - (summaries[base].val_acc or 0)) * 100
        takeaways.append(
            _("It ties with {run} ({kind}).").format(run=labels[base], kind=sx.kind_word(kinds[base]))
            if round(gap, 1) == 0 else
            _("It leads {run} ({kind}) by {gap} points.").format(run=labels[base], kind=sx.kind_word(kinds[base]),
                                                                  gap=f"{gap:.1f}"))
    takeaways.extend(paired)
    if singles:
        takeaways.append(_("One seed for {runs}: repeat over seeds before deciding.").format(runs=sx.join_words(singles)))
    if odd:
        takeaways.append(_("{sentence}.").format(sentence=extra))
    return question, [s1, s2, s3, s4, s5, s6], takeaways
