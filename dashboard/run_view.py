"""One run's live state as every page shows it: :func:`run_view` and the notice it implies.

A run's state is what its ``status.json`` says, corrected by this process's job manager
(a run our worker is still preparing reads "interrupted" on disk but is running), plus its
metrics, planned epochs, progress and config. The Train live view, Results, the guided
demo and the sidebar read it from here, so they never disagree about a run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.state import job_manager, run_store
from transfer_core.i18n import _
from transfer_core.run_messages import status_text
from transfer_core.runs import Run, RunSummary

__all__ = ["RunView", "run_view", "epoch_fraction", "show_notice", "run_file", "ACTIVE_STATES"]

ACTIVE_STATES = ("running", "queued")
_EXPORTS = {"torchscript": "model.ts", "onnx": "model.onnx"}  # what transfer_core.export writes


@dataclass
class RunView:
    """What a page needs to draw one run; built by :func:`run_view`, read-only for pages."""

    id: str
    run: Run
    status: dict[str, Any]
    state: str
    active: bool
    stopping: bool
    metrics: list[dict[str, Any]]
    config: dict[str, Any]
    config_error: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        """Planned epochs (the progress record first: a resumed run may plan more)."""
        return int(self.progress.get("epochs") or 0) or int((self.config.get("train") or {}).get("epochs") or 0)

    @property
    def epochs_done(self) -> int:
        return len(self.metrics)

    @property
    def message(self) -> str:
        """The run's stored message (English on disk) in the session's language where it is one of the project's own."""
        return status_text(self.status.get("message") or "")

    @functools.cached_property
    def summary(self) -> RunSummary:
        s = self.run.summary()
        s.state = self.state
        return s

    def notice(self) -> tuple[str, str] | None:
        """(level, text) of the message an ended or waiting run deserves; None for completed and running.
        The text is in the session's language, the run's stored message too where it is one of the
        project's own (:func:`transfer_core.run_messages.status_text`); others are shown as recorded."""
        if self.state == "failed":
            return "error", _("**Failed:** {message}").format(message=self.message or _("no message recorded"))
        if self.state == "interrupted":
            return "warning", _("**Interrupted:** {message}").format(message=self.message)
        if self.state == "stopped":
            return "warning", _("**Stopped:** {message}").format(message=self.message)
        if self.state == "queued":
            return "info", _("This run is queued: it starts when the run in front of it has finished.")
        if self.state == "running":
            return "info", _("This run is running.")
        return None


def run_view(run_id: str) -> RunView:
    """The live state of run ``run_id`` (ValueError if the store has no such run)."""
    run = run_store().get(run_id)
    jm = job_manager()
    status = run.status()
    live = jm.is_active(run.id)
    state = str(status.get("state") or "interrupted")
    if state == "interrupted" and live:
        state = status["state"] = "running"  # our worker is preparing data and model
    try:
        cfg, err = run.config_dict(), None
    except Exception as exc:  # a damaged config still shows the rest  # noqa: BLE001
        cfg, err = {}, str(exc)
    stopping = live and any(j["run_id"] == run.id and j.get("stopping") for j in jm.jobs())
    progress = jm.progress(run.id) or run.progress() or {}
    return RunView(id=run.id, run=run, status=status, state=state, active=live or state in ACTIVE_STATES,
                   stopping=stopping, metrics=run.metrics(), config=cfg, config_error=err, progress=progress)


def epoch_fraction(progress: dict[str, Any]) -> tuple[float, int, int, int, int]:
    """(share done, epoch, epochs, batch, batches) of a progress record, the share in [0, 1]."""
    epochs = max(int(progress.get("epochs") or 1), 1)
    epoch = int(progress.get("epoch") or 0)
    batch, batches = int(progress.get("batch") or 0), int(progress.get("batches") or 0)
    done = (epoch - 1 + batch / batches) if batches else float(epoch)
    return min(max(done / epochs, 0.0), 1.0), epoch, epochs, batch, batches


def show_notice(view: RunView, skip: tuple[str, ...] = ()) -> None:
    """Draw the view's notice (error, warning or info box) unless its state is in ``skip``."""
    note = view.notice()
    if note is None or view.state in skip:
        return
    level, text = note
    icons = {"error": ":material/error:", "warning": ":material/pause_circle:", "info": ":material/play_circle:"}
    getattr(st, level)(text, icon=icons[level])


def run_file(run: Run, kind: str) -> Path:
    """Where an export of ``run`` lives: ``kind`` is "torchscript", "onnx" or "report"."""
    if kind == "report":
        from transfer_core.report import REPORT_NAME

        return run.dir / REPORT_NAME
    return run.dir / _EXPORTS[kind]
