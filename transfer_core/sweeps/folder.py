"""The sweep folder: where a sweep's record lives, and the tables a reader (the page, a test) loads.

``<runs>/_sweeps/<name>-<fingerprint>/``: ``sweep.yaml`` (the resolved spec),
``state.json`` (running / completed / stopped / failed, with the process that runs it),
``trials.csv``, ``summary.csv``, ``paired.csv`` and, with the default storage, the Optuna
journal ``optuna.journal``. The same spec always maps to the same folder, so running the
same command again resumes it. Reading never imports torch or Optuna.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..paths import runs_dir
from ..runs import _pid_alive, _proc_start_time, _slug
from ..runs_io import atomic_write_json, atomic_write_text, read_json
from . import stats
from .spec import SweepSpec, load_sweep

__all__ = ["SWEEPS", "sweep_dir", "init_folder", "write_state", "read_state", "write_tables", "read_results",
           "SweepResults", "TRIAL_COLUMNS", "sweep_folders"]

SWEEPS = "_sweeps"
TRIAL_COLUMNS = ("seed", "run_id", "state", "val_acc", "best_val_acc", "train_s", "wall_s")
METRICS = ("val_acc", "train_s", "wall_s")  # summarised per grid point


def sweep_dir(spec: SweepSpec, runs_root: str | os.PathLike | None = None) -> Path:
    return runs_dir(runs_root) / SWEEPS / f"{_slug(spec.name)}-{spec.fingerprint()}"


def sweep_folders(runs_root: str | os.PathLike | None = None) -> list[Path]:
    """Every sweep folder under the runs folder, newest first."""
    root = runs_dir(runs_root) / SWEEPS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if (p / "sweep.yaml").is_file()]
    return sorted(found, key=lambda p: (p / "sweep.yaml").stat().st_mtime, reverse=True)


def init_folder(spec: SweepSpec, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "sweep.yaml").is_file():
        atomic_write_text(path / "sweep.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False, allow_unicode=True))
    return path


def write_state(path: Path, state: str, message: str = "", **extra: Any) -> None:
    atomic_write_json(path / "state.json", {
        "state": state, "message": message, "updated": time.time(),
        "host": socket.gethostname(), "pid": os.getpid(), "pid_start": _proc_start_time(os.getpid()), **extra,
    })


def read_state(path: Path) -> dict[str, Any]:
    """The sweep's state; "running" by a process of this machine that is gone reads as "stopped"."""
    try:
        st = read_json(path / "state.json") or {}
    except Exception:  # noqa: BLE001 - a damaged file reads as no state
        st = {}
    if not st:
        return {"state": "pending", "message": ""}
    if (st.get("state") == "running" and st.get("host") == socket.gethostname()
            and not _pid_alive(int(st.get("pid") or 0), st.get("pid_start"))):
        st = {**st, "state": "stopped", "message": "interrupted: the process running it ended"}
    return st


def _columns(spec: SweepSpec) -> list[str]:
    return ["trial", *spec.axes, *spec.search, *TRIAL_COLUMNS]


def write_tables(path: Path, spec: SweepSpec, rows: list[dict[str, Any]]) -> None:
    """trials.csv, then summary.csv and paired.csv computed from it (each written atomically)."""
    rows = sorted(rows, key=lambda r: (r["trial"], r["seed"]))
    stats.write_csv(path / "trials.csv", rows, _columns(spec))
    axes = _summary_axes(spec, rows)
    summary = stats.summarize(rows, axes, metrics=METRICS)
    stats.write_csv(path / "summary.csv", summary, [*axes, *_metric_columns()])
    stats.write_csv(path / "paired.csv", stats.paired(rows, axes) if not spec.is_search else [], _paired_columns(axes))


def _summary_axes(spec: SweepSpec, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The grid's axes; a search adds each sampled parameter (its values as they came)."""
    axes = spec.axis_labels()
    for p in spec.search:
        axes[p] = sorted({r[p] for r in rows if r.get(p) is not None}, key=float)
    return axes


def _metric_columns() -> list[str]:
    return ["n"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std", "ci_low", "ci_high")]


def _paired_columns(axes: dict[str, list[Any]]) -> list[str]:
    return ["axis", "a", "b", "at", "n", "mean_diff", "ci_low", "ci_high", "wins", "ties", "losses", *axes]


@dataclass
class SweepResults:
    path: Path
    spec: SweepSpec
    trials: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)
    state: str = "pending"
    message: str = ""

    @property
    def n_total(self) -> int:
        return self.spec.n_trials

    @property
    def n_done(self) -> int:
        return sum(1 for t in self.trials if t.get("state") in ("completed", "failed"))

    @property
    def n_completed(self) -> int:
        return sum(1 for t in self.trials if t.get("state") == "completed")


def _relabel(rows: list[dict[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """Axis columns back to the spec's own labels (CSV reads "0.25" back as 0.25, a named label is text)."""
    by_text = {a: {str(lab): lab for lab in labels} for a, labels in spec.axis_labels().items()}
    for r in rows:
        for a, m in by_text.items():
            if a in r and r[a] is not None:
                r[a] = m.get(str(r[a]), r[a])
    return rows


def read_results(path: str | os.PathLike) -> SweepResults:
    """Everything a page or a test shows about a sweep, from its folder alone."""
    path = Path(path)
    spec = load_sweep(yaml.safe_load((path / "sweep.yaml").read_text(encoding="utf-8")))
    st = read_state(path)
    res = SweepResults(path, spec, state=str(st.get("state", "pending")), message=str(st.get("message", "")))
    for name, attr in (("trials.csv", "trials"), ("summary.csv", "summary"), ("paired.csv", "paired")):
        if (path / name).is_file():
            setattr(res, attr, _relabel(stats.read_csv(path / name), spec))
    for r in res.paired:
        for k in ("a", "b"):
            labels = spec.axis_labels().get(str(r.get("axis")), [])
            r[k] = {str(lab): lab for lab in labels}.get(str(r[k]), r[k])
    return res
