"""Process-wide job manager and per-session UI state (selected run in the URL).

Why ``st.cache_resource``: every browser session must see the same queue and the same
running jobs, so there is one :class:`~transfer_core.jobs.JobManager` per server
process. Paths are read from the environment when the manager is first made (not at
import), so tests can point ``TRANSFER_LAB_RUNS`` at a temp folder.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from transfer_core.jobs import JobManager
from transfer_core.runs import Run, RunStore

__all__ = ["job_manager", "run_store", "selected_run_id", "select_run", "device_badge_text", "draft_config", "set_draft"]


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


def selected_run_id() -> str | None:
    """The run being watched: from the URL (survives reloads), else None."""
    rid = st.query_params.get("run")
    if rid and (run_store().root / rid / "config.yaml").is_file():
        return rid
    return None


def select_run(run_id: str | None) -> None:
    if run_id:
        st.query_params["run"] = run_id
    elif "run" in st.query_params:
        del st.query_params["run"]


@st.cache_resource(show_spinner=False)
def device_badge_text() -> str:
    from transfer_core.train import device_badge

    return device_badge()


def draft_config() -> dict[str, Any]:
    """The data settings chosen on the Data page, used as defaults on the Train page."""
    return st.session_state.setdefault("draft_data", {})


def set_draft(**values: Any) -> None:
    draft_config().update(values)


def _leave_pages_folder_mode() -> None:
    """Make every request go through app.py's ``st.navigation``, even the first one.

    Why: Streamlit decides per process whether the app is a legacy "pages/ folder" app
    from the mere existence of ``pages/`` next to app.py, and only ``st.navigation``
    clears that flag. So after a server (re)start, if the first request is a page URL
    (a reload of ``/results?run=...``), Streamlit runs that page file alone: no wide layout,
    no sidebar queue, the old file-name menu, for every session until someone opens
    ``/``. Every page imports this module, so clear the flag here and rerun once through
    app.py. (Renaming the folder would avoid this too.)
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # pragma: no cover - a Streamlit without these internals
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if get_script_run_ctx(suppress_warning=True) is not None:
            st.rerun()


_leave_pages_folder_mode()
