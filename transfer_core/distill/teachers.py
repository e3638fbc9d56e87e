"""Which runs teach a distillation, checked before anything trains, and loading them.

A teacher is a completed run (transfer, fusion or distill) on the same classes as the
student's data. Its classes may come in another order: ``order`` maps each student class
to the teacher's output column, so its logits can be read in the student's order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ConfigError
from ..i18n import _
from ..run_messages import TEACHER_SPLIT, state_label

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..runs import Run, RunStore, RunSummary

__all__ = ["Teacher", "resolve_teachers", "teacher_classes", "candidate_teachers", "split_warnings"]

log = logging.getLogger(__name__)


@dataclass
class Teacher:
    """One resolved teacher: its run, its share of the soft targets, its class order."""

    ref: str  # as written in distill.teachers
    run: Run
    weight: float  # normalised: the teachers' weights sum to one
    order: list[int]  # student class k is the teacher's output column order[k]
    method: str
    name: str
    config: dict[str, Any]

    @property
    def id(self) -> str:
        return self.run.id


def teacher_classes(run: Run) -> list[str] | None:
    """The class names a run was trained on, in its label order (None when it never recorded them)."""
    info = run.read_json("data_info.json")
    if isinstance(info, dict) and isinstance(info.get("classes"), list):
        return [str(c) for c in info["classes"]]
    return None


def _weights(cfg: RunConfig) -> list[float]:
    w = cfg.distill.teacher_weights or [1.0] * len(cfg.distill.teachers)
    total = float(sum(w))
    return [float(x) / total for x in w]


def resolve_teachers(cfg: RunConfig, classes: Sequence[str], runs_root: str | Path | None = None) -> list[Teacher]:
    """The teachers of a distill config, or a :class:`ConfigError` naming ``distill.teachers.<i>``.

    Each must exist, be completed, and have been trained on exactly the student's classes
    (any order). Nothing is loaded here beyond the run's small JSON/YAML files.
    """
    from ..runs import RunStore

    store = RunStore(runs_root)
    out: list[Teacher] = []
    seen: set[str] = set()
    for i, (ref, weight) in enumerate(zip(cfg.distill.teachers, _weights(cfg))):
        where = f"distill.teachers.{i}"
        try:
            run = store.get(ref.strip())
        except ValueError as exc:
            raise ConfigError(where, f"{ref}: {exc}") from None
        if run.id in seen:
            raise ConfigError(where, _("{ref} is run {run_id}, already a teacher").format(ref=ref, run_id=run.id))
        seen.add(run.id)
        state = run.status().get("state")
        if state != "completed":
            raise ConfigError(where, _("{ref}: run {run_id} is {state}; only a completed run can teach").format(
                ref=ref, run_id=run.id, state=state_label(state)))
        if not run.checkpoint_path.exists():
            raise ConfigError(where, _("{ref}: run {run_id} has no checkpoint.pt").format(ref=ref, run_id=run.id))
        theirs = teacher_classes(run)
        if theirs is None:
            raise ConfigError(where, _("{ref}: run {run_id} does not record its classes (data_info.json)").format(
                ref=ref, run_id=run.id))
        if sorted(theirs) != sorted(classes):
            raise ConfigError(
                where,
                _("{ref}: run {run_id} was trained on classes {theirs}; this run has {mine}").format(
                    ref=ref, run_id=run.id, theirs=", ".join(theirs), mine=", ".join(classes)),
            )
        tcfg = run.config_dict()
        out.append(Teacher(ref=ref, run=run, weight=weight, order=[theirs.index(c) for c in classes],
                           method=str(tcfg.get("method", "?")), name=str(tcfg.get("name") or run.id), config=tcfg))
    return out


def split_warnings(cfg: RunConfig, teachers: Sequence[Teacher]) -> list[str]:
    """Where a teacher's training split may hold this run's validation images (a flattering score).

    Stored with the run's warnings, so in English (:data:`~transfer_core.run_messages.TEACHER_SPLIT`):
    a page shows them through :func:`~transfer_core.run_messages.status_text`."""
    out = []
    mine = cfg.data
    for t in teachers:
        d = t.config.get("data") or {}
        same = (d.get("dataset") == mine.dataset and int(t.config.get("seed", -1)) == cfg.seed
                and float(d.get("val_fraction", 0.2)) == float(mine.val_fraction))
        if not same:
            out.append(TEACHER_SPLIT.format(name=t.name))
    return out


def candidate_teachers(store: RunStore, classes: Sequence[str]) -> list[RunSummary]:
    """Completed runs trained on exactly ``classes`` (any order), newest first: the Train page's picker."""
    want = sorted(map(str, classes))
    out = []
    for s in store.finished():
        theirs = teacher_classes(store.get(s.id))
        if theirs is not None and sorted(theirs) == want:
            out.append(s)
    return out
