"""The one cache of a finished run's heavy objects: its model, its data and a pass over them.

Predict, Insights and the Results galleries all load a run's model from here
(``st.cache_resource``: read-only objects shared by every session), keyed by run and
checkpoint version, so a resumed run's new checkpoint is loaded afresh and no page keeps
a second copy of a model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from dashboard.state import run_store
from transfer_core import insights as ins
from transfer_core.data import build_data, sample_grid
from transfer_core.predict import load_run_model
from transfer_core.runs import Run

__all__ = ["MAX_IMAGES", "SAMPLES_PER_CLASS", "cached_model", "cached_bundle", "cached_pass", "checkpoint_mtime",
           "val_samples"]

MAX_IMAGES = 2000  # validation images per pass (stratified above this)
SAMPLES_PER_CLASS = 4


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_model(run_id: str, runs_root: str, mtime_ns: int):  # noqa: ANN201 - a LoadedRun, read-only use
    """One loaded model per (run, checkpoint version), in eval mode."""
    return load_run_model(run_id, runs_root)


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_bundle(run_id: str, runs_root: str):  # noqa: ANN201 - a DataBundle, read-only use
    cfg = run_store().get(run_id).config()
    return build_data(cfg.data, cfg.seed)


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_pass(run_id: str, runs_root: str, mtime_ns: int):  # noqa: ANN201 - a ValPass
    return ins.val_pass(cached_model(run_id, runs_root, mtime_ns), cached_bundle(run_id, runs_root), limit=MAX_IMAGES)


@st.cache_data(show_spinner=False, max_entries=4)
def val_samples(run_id: str, runs_root: str) -> dict[str, list[Any]]:
    """A few validation images per class of the run (its own split), as numpy thumbnails."""
    bundle = cached_bundle(run_id, runs_root)
    # sample_grid takes train images first: hand it the validation split as "train".
    return sample_grid(dataclasses.replace(bundle, train=bundle.val), per_class=SAMPLES_PER_CLASS)


def checkpoint_mtime(run: Run) -> int:
    """Cache key part: a new checkpoint (a resumed run) invalidates the cached model and pass."""
    try:
        return run.checkpoint_path.stat().st_mtime_ns
    except OSError:
        return -1
