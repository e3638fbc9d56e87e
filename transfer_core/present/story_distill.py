"""The story of a distillation: the run's story, with its teachers drawn above the student, the best
teacher as the baseline, and the student against its teachers (accuracy, size, speed) as the evidence.

The rows and the sentence are :func:`transfer_core.distill.versus.student_vs_teachers`, the same the
Compare page shows; it skips teachers deleted since.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..distill.versus import student_vs_teachers
from ..i18n import N_, _, gettext
from ..runs import Run, RunStore
from ..seeds import one_seed_sentence
from ..sweeps.builtin import get_experiment
from . import sentences as sx
from .method_slide import backbone_block, method_slide
from .slides import StoryData, class_count, run_config
from .story import Number, Slide
from .story_run import run_story
from .subject import Subject

__all__ = ["distill_story", "student_vs_teachers_rows"]

log = logging.getLogger(__name__)


def student_vs_teachers_rows(run: Run, runs_root: Path) -> dict[str, Any]:
    """:func:`transfer_core.distill.versus.student_vs_teachers` of ``run``: ``{"rows", "sentence", "spread"}``."""
    return student_vs_teachers(run, runs_root)


def _teacher_blocks(store: RunStore, teachers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in teachers:
        try:
            tcfg = store.get(str(t.get("run_id"))).config_dict()
            block = backbone_block((tcfg.get("backbones") or [{}])[0], store)
        except Exception:  # noqa: BLE001
            block = {"name": t.get("name", "teacher"), "groups": []}
        out.append({**block, "name": t.get("backbones") or block.get("name") or t.get("name"),
                    "source": _("teacher · run {ref}").format(ref=str(t.get("run_id"))[-4:]), "acc": t.get("val_acc")})
    return out


COMPRESS_URL = "/experiments?exp=compress"
# one seed: the sentences point at the experiment that settles a distillation, not the labels one
DISTILL_ONE_SEED_TAKEAWAY = N_("This is one seed: another seed can move the accuracy by several points; the experiment "
                               "“{title}” over 3 seeds settles it.")


def distill_story(subject: Subject, data: StoryData, images: bool) -> tuple[str, list[Slide], list[str]]:
    title = get_experiment("compress").title  # in the current language (read now, never at import)
    question, slides, takeaways = run_story(subject, data, images, one_seed=(
        one_seed_sentence(title, COMPRESS_URL, seeds=3), gettext(DISTILL_ONE_SEED_TAKEAWAY).format(title=title)))
    store = RunStore(subject.runs_root)
    run = store.get(subject.refs[0])
    cfg = run_config(run)
    try:
        svt = student_vs_teachers(run, subject.runs_root)
        why = ""
    except Exception as exc:  # noqa: BLE001 - no final checkpoint yet (a running or failed student): say so
        log.warning("present: student_vs_teachers(%s) failed: %s", run.id, exc)
        svt = {"rows": [], "sentence": ""}
        why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    rows = list(svt.get("rows") or [])
    teachers = [r for r in rows if r.get("role") == "teacher"]
    student = next((r for r in rows if r.get("role") == "student"), None)
    by_id = {s.id: s for s in slides}
    by_id["method"] = method_slide(cfg, store, run.metrics(), class_count(cfg, run.confusion()),
                                   _teacher_blocks(store, teachers), title=_("The method: teachers and a student"))
    answer = by_id["answer"]
    scored = [t for t in teachers if t.get("val_acc") is not None]
    if scored and student and student.get("val_acc") is not None:
        top = max(scored, key=lambda t: t["val_acc"])
        answer.numbers = [answer.numbers[0],
                          Number(_("Best teacher: {name}").format(name=top.get("name")), sx.pct(top["val_acc"]),
                                 _("run {ref}").format(ref=str(top.get("run_id"))[-4:]), "baseline"),
                          *[n for n in answer.numbers if n.role == "spread"]]
        kept = student["val_acc"] / top["val_acc"] if top["val_acc"] else 0.0
        answer.title = _("The answer: the student keeps {kept} of the best teacher's accuracy").format(
            kept=f"{kept:.0%}")
    if svt.get("sentence"):
        answer.bullets.insert(0, svt["sentence"])
    ev = by_id["evidence"]
    if rows:
        ev.title = _("The evidence: student against teachers")
        ev.figures.insert(0, {"kind": "distill", "args": {"rows": rows},
                              "caption": _("Validation accuracy of the student and each teacher, with size and speed")})
        # alone, full width: beside the learning curves both were too narrow to read on a slide
        ev.figures = ev.figures[:1]
        dev = rows[0].get("device") or _("this machine")
        ev.lead = _("Each bar is a model's validation accuracy; inside it, its parameters, exported (TorchScript) size "
                    "and measured time per image on {device}.").format(device=dev)
        ev.notes = _("Rows: {rows}").format(rows="; ".join(json.dumps(r, default=str) for r in rows)) + "\n" + ev.notes
    else:
        ev.lead = sx.then(_("The student and its teachers are measured from their final checkpoints: {why}.").format(
            why=why), ev.lead)
    if svt.get("sentence"):
        takeaways.insert(1, svt["sentence"])
    unlabeled = ((run.status().get("feature_cache") or {}).get("teachers") or {}).get("unlabeled")
    if unlabeled:  # what the student saw beyond the labels
        by_id["data"].lead = sx.then(by_id["data"].lead, _(
            "The student also saw {n} unlabeled training images, through its teachers only.").format(n=f"{unlabeled:,}"))
    order = [s.id for s in slides]
    return question, [by_id[i] for i in order], takeaways
