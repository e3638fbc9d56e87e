"""The story of one run: its question, its number against a baseline (its scratch twin over seeds, else
guessing), its learning curves and where it fails."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from ..compare import run_kind
from ..runs import RunStore
from ..seeds import ONE_SEED, seed_note, spread_text, store_seed_index
from . import sentences as sx
from .method_slide import method_slide
from .sentences import duration_text
from .slides import (StoryData, class_count, data_slide, fails_slide, question_for_run, question_slide,
                     run_config)
from .story import Number, Slide
from .subject import Subject

__all__ = ["run_story"]

log = logging.getLogger(__name__)



ONE_SEED_TAKEAWAY = (f"This is {ONE_SEED}: another seed can move the accuracy by several points; an experiment "
                     "over 5 seeds settles it.")

def run_story(subject: Subject, data: StoryData, images: bool) -> tuple[str, list[Slide], list[str]]:
    store = RunStore(subject.runs_root)
    run = store.get(subject.refs[0])
    cfg, summary, status, metrics = run_config(run), run.summary(), run.status(), run.metrics()
    conf, per_class = run.confusion(), run.per_class() or []
    kind = run_kind(cfg)
    n = class_count(cfg, conf)
    acc = summary.val_acc
    question = question_for_run(cfg, store)
    s1 = question_slide(question, f"{sx.KIND_TEXT.get(kind, kind).capitalize()}: {sx.backbone_text(cfg)}.",
                         f"Run {run.id} ({summary.state}); {summary.epochs_done} of {summary.epochs} epochs.")
    s2 = data_slide(cfg, data, images)
    s3 = method_slide(cfg, store, metrics, n)

    # the answer: the headline, its baseline and the spread over seeds
    s4 = Slide("answer", f"The answer: {sx.pct(acc)} of unseen images right")
    s4.numbers.append(Number("Validation accuracy", sx.pct(acc), "on images it never trained on", "headline"))
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
        tsum = index.summary(twin)
        twin_acc = tsum["mean"] if tsum["n"] >= 2 else index.acc.get(twin)
        s4.numbers.append(Number(f"The same task, {tkind}", sx.pct(twin_acc),
                                 spread_text(tsum) if tsum["n"] >= 2 else f"{ONE_SEED} · run {twin[-4:]}", "baseline"))
        s4.title = f"The answer: {sx.pct(acc)} against {sx.pct(twin_acc)} {tkind}"
        if kind == "transfer" and tkind == "scratch":  # the question asked whether pretraining helps
            pair = index.paired(run.id, twin, cfg)
            if pair["n"] >= 2 and pair.get("ci_low") is not None:
                lo, hi = pair["ci_low"], pair["ci_high"]
                word = "yes" if lo > 0 else "no" if hi < 0 else "not settled yet"
            else:
                word = f"on {ONE_SEED}, {'yes' if acc > twin_acc else 'no'}"
            s4.title = f"The answer: {word} — {sx.pct(acc)} against {sx.pct(twin_acc)} from scratch"
    elif n:
        s4.numbers.append(Number("Guessing", sx.pct(1 / n), f"{n} classes", "baseline"))
        if acc is not None:
            s4.title = f"The answer: {sx.pct(acc)} right, against {sx.pct(1 / n)} by guessing"
    if note is not None:
        s4.numbers.append(Number("Over seeds", note["card"], note["sub"], "spread"))
    else:
        s4.numbers.append(Number("Over seeds", ONE_SEED if summary.state == "completed" else summary.state,
                                 "a single run: the spread is not measured" if summary.state == "completed"
                                 else status.get("message", ""), "spread"))
    s4.lead = sx.verdict(acc, n, per_class, conf, lead=False)
    if summary.state != "completed":
        s4.lead = f"This run is {summary.state}{': ' + status['message'] if status.get('message') else ''}. " + s4.lead
    if note is not None:
        s4.bullets.append(note["sentence"])
    seeds = index.siblings(run.id, cfg) if index is not None else [run.id]
    s4.notes = (f"Run {run.id}, seed {cfg.get('seed', 0)}. Runs with the same settings over seeds: "
                f"{', '.join(f'{r} (seed {index.seed.get(r)})' for r in seeds) if index is not None else run.id}."
                + (f" Baseline run {twin}." if twin else ""))

    s5 = Slide("evidence", "The evidence: learning curves")
    if metrics:
        s5.figures.append({"kind": "curves", "args": {"metrics": metrics}, "share": 0.62,
                           "caption": "Training (blue) and validation (orange, images it never trains on) per epoch"})
        s5.lead = _curves_sentence(metrics)
        if kind == "fusion" and any(m.get("alpha") for m in metrics):
            names = [str(b.get("name", "?")) for b in cfg.get("backbones") or []]
            s5.figures.append({"kind": "alpha", "args": {"metrics": metrics, "names": names},
                               "caption": "The fusion weights α it learned: a larger weight, a backbone that counts more"})
            last = [m["alpha"] for m in metrics if m.get("alpha")][-1]
            s5.title = "The evidence: learning curves and α"
            s5.bullets.append("Learned α: " + ", ".join(f"{nm} {a:.2f}" for nm, a in zip(names, last)) + ".")
    else:
        s5.lead = "No epoch has finished yet."
    s5.notes = "Per epoch (train acc / val acc): " + "; ".join(
        f"{m.get('epoch')}: {sx.pct(m.get('train_acc'))} / {sx.pct(m.get('val_acc'))}" for m in metrics[-12:])

    s6 = fails_slide(run, subject.runs_root, data, images)
    takeaways = [
        (f"{sx.KIND_TEXT.get(kind, kind).split(' (')[0].capitalize()} on {sx.class_text((cfg.get('data') or {}).get('dataset', '?'), (cfg.get('data') or {}).get('classes'))}: "
         f"{sx.pct(acc)} of unseen images right" + (f", against {sx.pct(1 / n)} by guessing." if n else "."))
        if acc is not None else f"The run is {summary.state}: no validation accuracy yet.",
    ]
    if note is not None and note.get("twin"):
        takeaways.append(f"Paired by seed, {note['twin']}.")
    elif twin_acc is not None and acc is not None:
        tkind = run_kind(index.configs[twin])
        d = (acc - twin_acc) * 100
        takeaways.append(f"Against {tkind} on the same task: {'+' if d >= 0 else '−'}{abs(d):.1f} points "
                         f"({sx.pct(acc)} vs {sx.pct(twin_acc)}).")
    if note is not None:
        takeaways.append(f"Over {note['n']} seeds with the same settings it scores {note['card']} (mean ± 95 % "
                         "interval)." if note["n"] >= 2 else
                         ONE_SEED_TAKEAWAY)
    weak = sx.weakest(per_class, conf)
    if weak and weak["recall"] < 1.0:
        takeaways.append(f"Weakest class: {weak['name']} (recognised {weak['recall']:.0%} of the time"
                         + (f", most often taken for {weak['confused_with']}" if weak["confused_with"] else "") + ").")
    took = duration_text(status)
    if took:
        takeaways.append(f"Training took {took} for {summary.epochs_done} epochs on {status.get('device') or 'the CPU'}.")
    return question, [s1, s2, s3, s4, s5, s6], takeaways


def _curves_sentence(metrics: Sequence[Mapping[str, Any]]) -> str:
    vals = [m for m in metrics if m.get("val_acc") is not None]
    if not vals:
        return ""
    first, last = vals[0], vals[-1]
    text = (f"Validation accuracy went from {sx.pct(first['val_acc'])} after epoch {first.get('epoch')} to "
            f"{sx.pct(last['val_acc'])} after epoch {last.get('epoch')}")
    tr = last.get("train_acc")
    if tr is not None:
        gap = (float(tr) - float(last["val_acc"])) * 100
        text += (f"; training accuracy ends {gap:.0f} points higher, so part of what it learned is memorised"
                 if gap >= 10 else "; training and validation end close together, so what it learned carries over")
    return text + "."
