"""The story of one run: its question, its number against a baseline (its scratch twin over seeds, else
guessing), its learning curves and where it fails."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from ..compare import run_kind
from ..i18n import N_, _, gettext
from ..runs import RunStore
from ..seeds import ONE_SEED_SENTENCE, one_seed_sentence, seed_note, spread_text, store_seed_index
from . import sentences as sx
from .method_slide import method_slide
from .sentences import duration_text
from .slides import (StoryData, class_count, data_slide, fails_slide, question_for_run, question_slide,
                     run_config)
from .story import Number, Slide
from .subject import Subject

__all__ = ["run_story", "ONE_SEED_TAKEAWAY", "one_seed_text"]

log = logging.getLogger(__name__)

ONE_SEED_TAKEAWAY = N_("This is one seed: another seed can move the accuracy by several points; an experiment "
                       "over 5 seeds settles it.")


def one_seed_text() -> str:
    """ "one seed", in the current language."""
    return _("one seed")


def run_story(subject: Subject, data: StoryData, images: bool,
              one_seed: tuple[str, str] | None = None) -> tuple[str, list[Slide], list[str]]:
    """``one_seed``: the (sentence, takeaway) said when the run is its settings' only seed (default: the
    labels experiment's, :func:`transfer_core.seeds.one_seed_sentence` and :data:`ONE_SEED_TAKEAWAY`)."""
    store = RunStore(subject.runs_root)
    run = store.get(subject.refs[0])
    cfg, summary, status, metrics = run_config(run), run.summary(), run.status(), run.metrics()
    conf, per_class = run.confusion(), run.per_class() or []
    kind = run_kind(cfg)
    n = class_count(cfg, conf)
    acc = summary.val_acc
    question = question_for_run(cfg, store)
    s1 = question_slide(question, _("{kind}: {backbones}.").format(kind=sx.kind_text(kind).capitalize(),
                                                                    backbones=sx.backbone_text(cfg)),
                        _("Run {run} ({state}); {done} of {epochs} epochs.").format(
                            run=run.id, state=summary.state, done=summary.epochs_done, epochs=summary.epochs))
    s2 = data_slide(cfg, data, images)
    s3 = method_slide(cfg, store, metrics, n)

    # the answer: the headline, its baseline and the spread over seeds
    s4 = Slide("answer", _("The answer: {acc} of unseen images right").format(acc=sx.pct(acc)))
    s4.numbers.append(Number(_("Validation accuracy"), sx.pct(acc), _("on images it never trained on"), "headline"))
    note = None
    index = None
    if summary.state == "completed":
        try:
            note = seed_note(store, run.id, cfg)
            index = store_seed_index(store)
        except Exception as exc:  # noqa: BLE001 - the story tells the run alone
            log.warning("present: no seed comparison for %s: %s", run.id, exc)
    twins = index.twins(run.id, cfg) if index is not None else []
    twin = twins[0] if twins else None
    twin_acc = None
    if twin is not None and acc is not None:
        tkind = run_kind(index.configs[twin])
        tword = sx.kind_word(tkind)
        tsum = index.summary(twin)
        twin_acc = tsum["mean"] if tsum["n"] >= 2 else index.acc.get(twin)
        s4.numbers.append(Number(_("The same task, {kind}").format(kind=tword), sx.pct(twin_acc),
                                 spread_text(tsum) if tsum["n"] >= 2 else
                                 _("{one_seed} · run {ref}").format(one_seed=one_seed_text(), ref=twin[-4:]),
                                 "baseline"))
        s4.title = _("The answer: {acc} against {other} {kind}").format(acc=sx.pct(acc), other=sx.pct(twin_acc),
                                                                      kind=tword)
        if kind == "transfer" and tkind == "scratch":  # the question asked whether pretraining helps
            pair = index.paired(run.id, twin, cfg)
            if pair["n"] >= 2 and pair.get("ci_low") is not None:
                lo, hi = pair["ci_low"], pair["ci_high"]
                word = _("yes") if lo > 0 else _("no") if hi < 0 else _("not settled yet")
            else:
                word = (_("on one seed, yes") if acc > twin_acc else _("on one seed, no"))
            s4.title = _("The answer: {word} — {acc} against {other} from scratch").format(
                word=word, acc=sx.pct(acc), other=sx.pct(twin_acc))
    elif n:
        s4.numbers.append(Number(_("Guessing"), sx.pct(1 / n), _("{n} classes").format(n=n), "baseline"))
        if acc is not None:
            s4.title = _("The answer: {acc} right, against {guess} by guessing").format(acc=sx.pct(acc),
                                                                                      guess=sx.pct(1 / n))
    card, sub, sentence = (note["card"], note["sub"], note["sentence"]) if note is not None else ("", "", "")
    if one_seed is not None and note is not None and sentence in (ONE_SEED_SENTENCE, one_seed_sentence()):
        sentence = one_seed[0]
    if note is not None:
        s4.numbers.append(Number(_("Over seeds"), card, sub, "spread"))
    else:
        s4.numbers.append(Number(_("Over seeds"), one_seed_text() if summary.state == "completed" else summary.state,
                                 _("a single run: the spread is not measured") if summary.state == "completed"
                                 else status.get("message", ""), "spread"))
    s4.lead = sx.verdict(acc, n, per_class, conf, lead=False)
    if summary.state != "completed":
        s4.lead = sx.then(_("This run is {state}: {message}.").format(state=summary.state, message=status["message"])
                          if status.get("message") else _("This run is {state}.").format(state=summary.state), s4.lead)
    if note is not None:
        s4.bullets.append(sentence)
    seeds = index.siblings(run.id, cfg) if index is not None else [run.id]
    s4.notes = _("Run {run}, seed {seed}. Runs with the same settings over seeds: {runs}.").format(
        run=run.id, seed=cfg.get("seed", 0),
        runs=sx.list_words([_("{run} (seed {seed})").format(run=r, seed=index.seed.get(r)) for r in seeds])
        if index is not None else run.id)
    if twin:
        s4.notes = sx.then(s4.notes, _("Baseline run {run}.").format(run=twin))

    s5 = Slide("evidence", _("The evidence: learning curves"))
    if metrics:
        s5.figures.append({"kind": "curves", "args": {"metrics": metrics}, "share": 0.62,
                           "caption": _("Training (blue) and validation (orange, images it never trains on) per epoch")})
        s5.lead = _curves_sentence(metrics)
        if kind == "fusion" and any(m.get("alpha") for m in metrics):
            names = [str(b.get("name", "?")) for b in cfg.get("backbones") or []]
            s5.figures.append({"kind": "alpha", "args": {"metrics": metrics, "names": names},
                               "caption": _("The fusion weights α it learned: a larger weight, a backbone that counts "
                                            "more")})
            last = [m["alpha"] for m in metrics if m.get("alpha")][-1]
            s5.title = _("The evidence: learning curves and α")
            s5.bullets.append(_("Learned α: {alphas}.").format(
                alphas=sx.list_words([f"{nm} {a:.2f}" for nm, a in zip(names, last)])))
    else:
        s5.lead = _("No epoch has finished yet.")
    s5.notes = _("Per epoch (train acc / val acc): {epochs}").format(epochs=sx.semicolons(
        [f"{m.get('epoch')}: {sx.pct(m.get('train_acc'))} / {sx.pct(m.get('val_acc'))}" for m in metrics[-12:]]))

    s6 = fails_slide(run, subject.runs_root, data, images)
    d_cfg = cfg.get("data") or {}
    on = sx.class_text(d_cfg.get("dataset", "?"), d_cfg.get("classes"))
    if acc is None:
        first = _("The run is {state}: no validation accuracy yet.").format(state=summary.state)
    elif n:
        first = _("{kind} on {classes}: {acc} of unseen images right, against {guess} by guessing.").format(
            kind=sx.kind_short(kind).capitalize(), classes=on, acc=sx.pct(acc), guess=sx.pct(1 / n))
    else:
        first = _("{kind} on {classes}: {acc} of unseen images right.").format(
            kind=sx.kind_short(kind).capitalize(), classes=on, acc=sx.pct(acc))
    takeaways = [first]
    if note is not None and note.get("twin"):
        takeaways.append(_("Paired by seed, {twin}.").format(twin=note["twin"]))
    elif twin_acc is not None and acc is not None:
        tkind = run_kind(index.configs[twin])
        d = (acc - twin_acc) * 100
        takeaways.append(_("Against {kind} on the same task: {diff} points ({acc} vs {other}).").format(
            kind=sx.kind_word(tkind), diff=f"{'+' if d >= 0 else '−'}{abs(d):.1f}", acc=sx.pct(acc),
            other=sx.pct(twin_acc)))
    if note is not None:
        takeaways.append(_("Over {n} seeds with the same settings it scores {card} (mean ± 95 % interval).").format(
            n=note["n"], card=card) if note["n"] >= 2 else one_seed[1] if one_seed else gettext(ONE_SEED_TAKEAWAY))
    weak = sx.weakest(per_class, conf)
    if weak and weak["recall"] < 1.0:
        recall = f"{weak['recall']:.0%}"
        takeaways.append(
            _("Weakest class: {name} (recognised {recall} of the time, most often taken for {other}).").format(
                name=weak["name"], recall=recall, other=weak["confused_with"]) if weak["confused_with"] else
            _("Weakest class: {name} (recognised {recall} of the time).").format(name=weak["name"], recall=recall))
    took = duration_text(status)
    if took:
        takeaways.append(_("Training took {took} for {epochs} epochs on {device}.").format(
            took=took, epochs=summary.epochs_done, device=status.get("device") or _("the CPU")))
    return question, [s1, s2, s3, s4, s5, s6], takeaways


def _curves_sentence(metrics: Sequence[Mapping[str, Any]]) -> str:
    vals = [m for m in metrics if m.get("val_acc") is not None]
    if not vals:
        return ""
    first, last = vals[0], vals[-1]
    args = dict(first=sx.pct(first["val_acc"]), first_epoch=first.get("epoch"), last=sx.pct(last["val_acc"]),
                last_epoch=last.get("epoch"))
    tr = last.get("train_acc")
    if tr is None:
        return _("Validation accuracy went from {first} after epoch {first_epoch} to {last} after epoch "
                 "{last_epoch}.").format(**args)
    gap = (float(tr) - float(last["val_acc"])) * 100
    if gap >= 10:
        return _("Validation accuracy went from {first} after epoch {first_epoch} to {last} after epoch {last_epoch}; "
                 "training accuracy ends {gap} points higher, so part of what it learned is memorised.").format(
            gap=f"{gap:.0f}", **args)
    return _("Validation accuracy went from {first} after epoch {first_epoch} to {last} after epoch {last_epoch}; "
             "training and validation end close together, so what it learned carries over.").format(**args)
