"""Process-wide job manager, the run store, and per-session UI state (selected run in the URL).

Why ``st.cache_resource`` for the job manager: every browser session must see the same
queue and the same running jobs, so there is one :class:`~transfer_core.jobs.JobManager`
per server process. Paths are read from the environment when the manager is first made
(not at import), so tests can point ``TRANSFER_LAB_RUNS`` at a temp folder. Run lists are
never cached: a run finished by another session or the CLI must show up on the next draw.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.formatting import device_label
from transfer_core.jobs import JobManager
from transfer_core.i18n import _
from transfer_core.runs import Run, RunStore

__all__ = [
    "job_manager", "run_store", "run_exists", "selected_run_id", "select_run", "device_badge_text", "draft_config", "set_draft",
    "finished_runs_or_stop", "selection_changed",
]


def _release(jm: JobManager) -> None:
    jm.shutdown(timeout=5)


@st.cache_resource(show_spinner=False, on_release=_release)
def _manager(runs_root: str) -> JobManager:
    return JobManager(runs_root)


def run_store() -> RunStore:
    return RunStore(None)


def job_manager() -> JobManager:
    """The one job manager of this server process (per runs folder)."""
    return _manager(str(run_store().root.resolve()))


def run_exists(run_id: str | None) -> bool:
    """Whether ``run_id`` names a run folder of the store (ids from URLs cannot leave the store)."""
    if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", ".."):
        return False
    return Run(run_store().root / run_id).exists()


def selected_run_id() -> str | None:
    """The run being watched: from the URL (survives reloads), else None."""
    rid = st.query_params.get("run")
    return rid if run_exists(rid) else None


def select_run(run_id: str | None) -> None:
    if run_id:
        st.query_params["run"] = run_id
    elif "run" in st.query_params:
        del st.query_params["run"]


def finished_runs_or_stop(pick_key: str) -> dict[str, Any]:
    """Completed runs by id, newest first (read from the store at every draw); the page stops
    with a hint when there is none.

    ``st.session_state[pick_key]`` (the page's run picker) defaults to the watched run
    when it is finished, else the newest one.
    """
    finished = {s.id: s for s in run_store().finished()}
    if not finished:
        st.info(_("No completed run yet. Train one on the Train page, then come back here."), icon=":material/info:")
        st.stop()
    watched = selected_run_id()
    if st.session_state.get(pick_key) not in finished:
        st.session_state[pick_key] = watched if watched in finished else next(iter(finished))
    return finished


def selection_changed(key: str, value: Any) -> bool:
    """True once when a chart's selection changes (a sticky selection must not override later choices)."""
    prev_key = f"{key}__prev"
    if st.session_state.get(prev_key) != value:
        st.session_state[prev_key] = value
        return value is not None
    return False


def device_badge_text() -> str:
    """The device ``auto`` would use, for the sidebar (formatted by :func:`dashboard.formatting.device_label`)."""
    import torch

    from transfer_core.training import gpu_count, select_device

    kind = select_device("auto").type
    name = torch.cuda.get_device_name(0) if kind == "cuda" else ""
    return device_label(kind, name, gpu_count(), torch.get_num_threads())


def draft_config() -> dict[str, Any]:
    """The data settings chosen on the Data page, used as defaults on the Train page."""
    return st.session_state.setdefault("draft_data", {})


def set_draft(**values: Any) -> None:
    draft_config().update(values)
