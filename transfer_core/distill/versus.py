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

from ..runs import Run, RunStore

__all__ = ["student_vs_teachers", "versus_sentence", "teacher_runs"]


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
    from ..seeds import ONE_SEED, spread_text

    sa, ta = student.get("val_acc"), teacher.get("val_acc")
    if sa is None or not ta:
        return "The student or its teacher has no validation accuracy yet."
    n = int((spread or {}).get("n") or 1)
    if n >= 2 and spread and spread.get("mean") is not None:
        sa = float(spread["mean"])
        who = f"Over {n} seeds the student ({spread_text(spread)})"
        tail = ""
    else:
        who = "The student"
        tail = f" ({ONE_SEED})"
    share = sa / ta * 100
    params = f"1/{_ratio(teacher['params'], student['params'])} of its parameters" if student["params"] < teacher["params"] \
        else f"{_ratio(student['params'], teacher['params'])}× its parameters"
    speed = teacher["ms_per_image"] / student["ms_per_image"] if student["ms_per_image"] else float("nan")
    pace = f"{speed:.1f}× faster" if speed >= 1 else f"{1 / speed:.1f}× slower"
    return (f"{who} keeps {share:.0f} % of {teacher['name']}'s accuracy ({sa * 100:.1f} % vs {ta * 100:.1f} %) "
            f"at {params}, {pace} on {student['device']}{tail}.")


def student_vs_teachers(ref: str | Path | Run, runs_root: str | Path | None = None, refresh: bool = False) -> dict[str, Any]:
    """``{"rows": [student, teacher, ...], "sentence": str, "spread": seeds summary}`` of a distill run.

    Each row: role, run_id, name, method, backbones, val_acc (final epoch), params,
    export_mb, ms_per_image, device, batch. Measures what ``cost.json`` does not hold yet
    (everything, with ``refresh``).
    """
    from ..seeds import store_seed_index

    store = RunStore(runs_root)
    run = ref if isinstance(ref, Run) else store.get(str(ref))
    cfg = run.config_dict()
    if cfg.get("method") != "distill":
        raise ValueError(f"run {run.id} is a {cfg.get('method')} run, not a distillation")
    student = _row(store, run, "student", refresh)
    teachers = [_row(store, t, "teacher", refresh) for t in teacher_runs(store, run, cfg)]
    spread = store_seed_index(store).summary(run.id, cfg) if run.status().get("state") == "completed" else None
    best = max((t for t in teachers if t.get("val_acc") is not None), key=lambda t: t["val_acc"], default=None)
    sentence = versus_sentence(student, best, spread) if best else "Its teachers are no longer in the run store."
    return {"rows": [student, *teachers], "sentence": sentence, "spread": spread}
