"""A student against its teachers: accuracy, parameters, exported size, time per image, and the sentence.

The teachers are the runs the student was trained with (recorded in its status when it
ran; the ``distill.teachers`` references are a fallback, since ``run:NAME`` means the
newest run of that name, which may have changed since). The sentence compares the
student with its most accurate teacher and says how many seeds stand behind the
student's number (:mod:`transfer_core.seeds`): one run is called one seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..i18n import _
from ..runs import Run, RunStore

__all__ = ["student_vs_teachers", "versus_sentence", "rows_sentence", "teacher_runs"]


def teacher_runs(store: RunStore, run: Run, cfg: dict[str, Any]) -> list[Run]:
    """The runs that taught ``run``: recorded in its status when it trained, else its ``distill.teachers``
    (a deleted teacher is left out)."""
    recorded = ((run.status().get("feature_cache") or {}).get("teachers") or {}).get("runs") or []
    refs = recorded or [str(r) for r in (cfg.get("distill") or {}).get("teachers") or []]
    out = []
    for ref in refs:
        try:
            out.append(store.get(ref))
        except ValueError:
            continue  # a deleted teacher: the student still stands on its own
    return out


def _row(store: RunStore, run: Run, role: str, refresh: bool = False) -> dict[str, Any]:
    from ..model_cost import model_cost

    s = run.summary()
    cost = model_cost(run, store.root, refresh=refresh)
    return {"role": role, "run_id": run.id, "name": s.name or run.id, "method": s.method,
            "backbones": "+".join(s.backbones), "val_acc": s.val_acc, **cost}


def _ratio(a: float, b: float) -> str:
    r = a / b if b else float("inf")
    return f"{r:.0f}" if r >= 10 else f"{r:.1f}"


def versus_sentence(student: dict[str, Any], teacher: dict[str, Any], spread: dict[str, Any] | None = None) -> str:
    """ "keeps 96 % of <teacher>'s accuracy (80.1 % vs 83.4 %) at 1/12 of its parameters, 6× faster on cpu (one seed)"."""
    from ..seeds import spread_text

    sa, ta = student.get("val_acc"), teacher.get("val_acc")
    if sa is None or not ta:
        return _("The student or its teacher has no validation accuracy yet.")
    n = int((spread or {}).get("n") or 1)
    over = n >= 2 and spread and spread.get("mean") is not None
    if over:
        sa = float(spread["mean"])
    share = sa / ta * 100
    params = (_("1/{ratio} of its parameters").format(ratio=_ratio(teacher["params"], student["params"]))
              if student["params"] < teacher["params"]
              else _("{ratio}× its parameters").format(ratio=_ratio(student["params"], teacher["params"])))
    speed = teacher["ms_per_image"] / student["ms_per_image"] if student["ms_per_image"] else float("nan")
    pace = _("{speed:.1f}× faster").format(speed=speed) if speed >= 1 else _("{speed:.1f}× slower").format(speed=1 / speed)
    values = {"share": share, "teacher": teacher["name"], "student_acc": sa * 100, "teacher_acc": ta * 100,
              "params": params, "pace": pace, "device": student["device"]}
    if over:
        return _("Over {n} seeds the student ({spread}) keeps {share:.0f} % of {teacher}'s accuracy "
                 "({student_acc:.1f} % vs {teacher_acc:.1f} %) at {params}, {pace} on {device}."
                 ).format(n=n, spread=spread_text(spread), **values)
    return _("The student keeps {share:.0f} % of {teacher}'s accuracy ({student_acc:.1f} % vs {teacher_acc:.1f} %) "
             "at {params}, {pace} on {device} (one seed).").format(**values)


def rows_sentence(rows: list[dict[str, Any]], spread: dict[str, Any] | None = None) -> str:
    """The sentence of :func:`student_vs_teachers`'s ``rows`` (student first) and ``spread``, in the current
    language: a page that caches the measurement says it anew in each session's language."""
    teachers = [r for r in rows[1:] if r.get("val_acc") is not None]
    best = max(teachers, key=lambda t: t["val_acc"], default=None)
    return versus_sentence(rows[0], best, spread) if rows and best else _("Its teachers are no longer in the run store.")


def student_vs_teachers(ref: str | Path | Run, runs_root: str | Path | None = None, refresh: bool = False) -> dict[str, Any]:
    """``{"rows": [student, teacher, ...], "sentence": str, "spread": seeds summary}`` of a distill run.

    Each row: role, run_id, name, method, backbones, val_acc (final epoch), params,
    export_mb, ms_per_image, device, batch. Measures what ``cost.json`` does not hold yet
    (everything, with ``refresh``). The sentence is in the current language (:func:`rows_sentence`).
    """
    from ..seeds import store_seed_index

    store = RunStore(runs_root)
    run = ref if isinstance(ref, Run) else store.get(str(ref))
    cfg = run.config_dict()
    if cfg.get("method") != "distill":
        raise ValueError(_("run {run_id} is a {method} run, not a distillation").format(
            run_id=run.id, method=cfg.get("method")))
    student = _row(store, run, "student", refresh)
    teachers = [_row(store, t, "teacher", refresh) for t in teacher_runs(store, run, cfg)]
    spread = store_seed_index(store).summary(run.id, cfg) if run.status().get("state") == "completed" else None
    rows = [student, *teachers]
    return {"rows": rows, "sentence": rows_sentence(rows, spread), "spread": spread}
