"""Image galleries of a finished run: a confusion-matrix cell, and the top losses.

Shared by Results (reached by clicking a cell of its confusion matrix) and Insights.
The model, its validation data and the pass over them come from :mod:`dashboard.run_cache`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.formatting import thumb_caption
from transfer_core import insights as ins

__all__ = ["PER_ROW", "cell_gallery", "top_losses_gallery"]

PER_ROW = 6


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
