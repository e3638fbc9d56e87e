"""Image galleries of a finished run: a confusion-matrix cell, and the top losses.

Shared by Results (reached by clicking a cell of its confusion matrix) and Insights.
The model, its validation data and the pass over them come from :mod:`dashboard.run_cache`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.formatting import thumb_caption
from transfer_core import insights as ins
from transfer_core.i18n import _, ngettext

__all__ = ["PER_ROW", "cell_gallery", "top_losses_gallery"]

PER_ROW = 6


def cell_gallery(loaded: Any, bundle: Any, vp: Any, true_idx: int, pred_idx: int, limit: int = 12,
                 key: str = "gallery") -> int:
    """Validation images of one confusion cell with their top predicted probabilities; returns how many."""
    classes = loaded.classes
    count = int(((vp.labels == int(true_idx)) & (vp.preds == int(pred_idx))).sum())
    imgs = ins.confusion_cell_images(loaded, bundle, true_idx, pred_idx, limit=limit, vp=vp)
    if true_idx == pred_idx:
        head = ngettext("**{n} image** of **{true}** predicted as **{pred}** (correct)",
                        "**{n} images** of **{true}** predicted as **{pred}** (correct)", count)
    else:
        head = ngettext("**{n} image** of **{true}** predicted as **{pred}** (mistakes)",
                        "**{n} images** of **{true}** predicted as **{pred}** (mistakes)", count)
    head = head.format(n=count, true=classes[true_idx], pred=classes[pred_idx])
    if count > len(imgs):
        head = _("{head}, the {shown} most confident shown").format(head=head, shown=len(imgs))
    with st.container(key=key):
        st.markdown(_("{head} — captions: the top predicted probabilities").format(head=head))
        if not imgs:
            st.caption(_("No validation image in this cell."))
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
            col.caption(_("said **{pred}** ({prob:.0%})  \ntrue {true} · loss {loss:.2f}").format(
                pred=pred, prob=prob, true=true, loss=loss))
    return len(tl)
