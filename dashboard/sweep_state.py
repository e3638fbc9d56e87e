"""The process-wide sweep runner of the Experiments page (one sweep at a time, in a background thread).

``st.cache_resource``: every browser session sees the same running sweep. The runs folder
is read when the runner is first made (not at import), so tests can point
``TRANSFER_LAB_RUNS`` at a temp folder; a release (cache cleared, source edited) stops the
sweep's thread, which keeps its finished trials (Resume runs only what is missing).
"""

from __future__ import annotations

import streamlit as st

from transfer_core.paths import runs_dir
from transfer_core.sweeps.jobs import SweepJobs

__all__ = ["sweep_jobs"]


def _release(jobs: SweepJobs) -> None:
    jobs.shutdown(timeout=10)


@st.cache_resource(show_spinner=False, on_release=_release)
def _jobs(runs_root: str) -> SweepJobs:
    return SweepJobs(runs_root)


def sweep_jobs() -> SweepJobs:
    """The one sweep runner of this server process (per runs folder)."""
    return _jobs(str(runs_dir().resolve()))
