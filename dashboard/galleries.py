"""Image galleries of a finished run: a confusion-matrix cell, and the top losses.

Shared by Results (reached by clicking a cell of its confusion matrix) and Insights.
The model, its validation data and one forward pass over them are cached per run and
checkpoint version (``st.cache_resource``: read-only objects, shared by sessions).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.state import run_store
from transfer_core import insights as ins
from transfer_core.data import build_data
from transfer_core.predict import load_run_model

__all__ = ["MAX_IMAGES", "cached_model", "cached_bundle", "cached_pass", "checkpoint_mtime", "thumb_caption",
           "cell_gallery", "top_losses_gallery"]

MAX_IMAGES = 2000  # validation images per pass (stratified above this)
PER_ROW = 6


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_model(run_id: str, runs_root: str, mtime_ns: int):  # noqa: ANN201 - a LoadedRun, read-only use
    return load_run_model(run_id, runs_root)


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_bundle(run_id: str, runs_root: str):  # noqa: ANN201 - a DataBundle, read-only use
    cfg = run_store().get(run_id).config()
    return build_data(cfg.data, cfg.seed)


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_pass(run_id: str, runs_root: str, mtime_ns: int):  # noqa: ANN201 - a ValPass
    return ins.val_pass(cached_model(run_id, runs_root, mtime_ns), cached_bundle(run_id, runs_root), limit=MAX_IMAGES)


def checkpoint_mtime(run: Any) -> int:
    """Cache key part: a new checkpoint (a resumed run) invalidates the cached model and pass."""
    try:
        return run.checkpoint_path.stat().st_mtime_ns
    except OSError:
        return -1


def thumb_caption(probs: list[tuple[str, float]]) -> str:
    """Top-2 predicted probabilities, e.g. "7: 91% · 1: 6%" (no line break inside a pair)."""
    return " · ".join(f"{c}:\u00a0{p:.0%}" for c, p in probs[:2])


def cell_gallery(loaded: Any, bundle: Any, vp: Any, true_idx: int, pred_idx: int, limit: int = 12,
                 key: str = "gallery") -> int:
    """Validation images of one confusion cell with their top predicted probabilities; returns how many."""
    classes = loaded.classes
    count = int(((vp.labels == int(true_idx)) & (vp.preds == int(pred_idx))).sum())
    imgs = ins.confusion_cell_images(loaded, bundle, true_idx, pred_idx, limit=limit, vp=vp)
    what = "correct" if true_idx == pred_idx else "mistakes"
    with st.container(key=key):
        st.markdown(f"**{count} image{'s' if count != 1 else ''}** of **{classes[true_idx]}** predicted as "
                    f"**{classes[pred_idx]}** ({what})"
                    + (f", the {len(imgs)} most confident shown" if count > len(imgs) else "")
                    + " — captions: the top predicted probabilities")
        if not imgs:
            st.caption("No validation image in this cell.")
        for row in range(0, len(imgs), PER_ROW):
            cols = st.columns(PER_ROW)
            for col, (img, probs) in zip(cols, imgs[row:row + PER_ROW]):
                col.image(img, width="stretch", caption=thumb_caption(probs))
    return len(imgs)


def top_losses_gallery(loaded: Any, bundle: Any, vp: Any, k: int = 8, key: str = "top_losses") -> int:
    """The ``k`` validation images with the highest loss: what it said, with which probability, and the truth."""
    tl = ins.top_losses(loaded, bundle, k=k, vp=vp)
    with st.container(key=key):
        cols = st.columns(k)
        for col, (img, true, pred, loss, prob) in zip(cols, tl):
            col.image(img, width="stretch")
            col.caption(f"said **{pred}** ({prob:.0%})  \ntrue {true} · loss {loss:.2f}")
    return len(tl)
