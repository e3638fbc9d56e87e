"""Plotly figures built from run-store data (plain lists/dicts in, figures out).

Figures have fixed layouts and cap their points so a fragment redrawing them every
second stays cheap (Streamlit issues #8834, #4852 on Plotly redraw growth).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from transfer_core.interpret import normalise_confusion

__all__ = ["curves_figure", "alpha_figure", "confusion_figure", "MAX_POINTS"]

MAX_POINTS = 500
_TRAIN, _VAL = "#2563eb", "#ea580c"


def _cap(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = list(rows)
    if len(rows) <= MAX_POINTS:
        return rows
    step = len(rows) / MAX_POINTS
    return [rows[int(i * step)] for i in range(MAX_POINTS - 1)] + [rows[-1]]


_CURVES: "OrderedDict[tuple, go.Figure]" = OrderedDict()
_CURVES_LOCK = threading.Lock()


def curves_figure(metrics: Sequence[dict[str, Any]], title: str = "", epochs: int | None = None) -> go.Figure:
    """Loss and accuracy per epoch, train and validation, side by side.

    ``epochs`` (the planned total) fixes the x range, so a live chart fills in from the
    left instead of rescaling at every new point.

    Memoised on its content (treat the figure as read-only): every watching session's
    live view asks for it every second, and building it (make_subplots) costs 50-200 ms
    of Python that the training thread of the same process then waits for (the GIL). With
    two sessions watching, an epoch took ~20x longer than unwatched before this.
    """
    rows = _cap(metrics)
    key = (title, epochs, tuple(tuple(r.get(k) for k in _CURVE_KEYS) for r in rows))
    with _CURVES_LOCK:
        fig = _CURVES.get(key)
        if fig is not None:
            _CURVES.move_to_end(key)
            return fig
    fig = _curves_figure(rows, title, epochs)
    with _CURVES_LOCK:
        _CURVES[key] = fig
        while len(_CURVES) > 32:
            _CURVES.popitem(last=False)
    return fig


_CURVE_KEYS = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")


def _curves_figure(rows: list[dict[str, Any]], title: str, epochs: int | None) -> go.Figure:
    ep = [r["epoch"] for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.1)
    for col, key in ((1, "loss"), (2, "acc")):
        fig.add_trace(go.Scatter(x=ep, y=[r.get(f"train_{key}") for r in rows], name=f"train {key}",
                                 mode="lines+markers", line=dict(color=_TRAIN)), row=1, col=col)
        fig.add_trace(go.Scatter(x=ep, y=[r.get(f"val_{key}") for r in rows], name=f"val {key}",
                                 mode="lines+markers", line=dict(color=_VAL, dash="dash")), row=1, col=col)
    span = max(epochs or 0, max(ep, default=0))
    fig.update_xaxes(title_text="epoch", rangemode="tozero", dtick=1 if span <= 12 else None)  # whole epochs
    if epochs and len(rows) < MAX_POINTS:
        fig.update_xaxes(range=[0, max(epochs, len(rows)) + 0.5])
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=340, margin=dict(l=40, r=20, t=50 if title else 30, b=40), title=title or None,
                      legend=dict(orientation="h", y=-0.25), uirevision="curves")
    return fig


def alpha_figure(metrics: Sequence[dict[str, Any]], names: Sequence[str]) -> go.Figure:
    """The fusion weights alpha_i per epoch."""
    rows = [r for r in _cap(metrics) if r.get("alpha")]
    fig = go.Figure()
    for i, name in enumerate(names):
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in rows], y=[r["alpha"][i] for r in rows],
                                 name=f"α{i + 1} {name}", mode="lines+markers"))
    fig.update_layout(height=280, margin=dict(l=40, r=20, t=30, b=40), yaxis=dict(range=[0, 1], title="α"),
                      xaxis=dict(title="epoch"), title="Fusion weights α", uirevision="alpha")
    return fig


def confusion_figure(conf: dict[str, Any], normalised: bool = False) -> go.Figure:
    """Heatmap, rows = true class, columns = predicted; counts or row-normalised."""
    labels = [str(l) for l in conf["labels"]]
    z = normalise_confusion(conf["matrix"]) if normalised else conf["matrix"]
    text = [[f"{v:.2f}" if normalised else str(v) for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, text=text, texttemplate="%{text}", colorscale="Blues",
        hovertemplate="true %{y} → predicted %{x}: %{text}<extra></extra>", showscale=False,
    ))
    n = len(labels)
    fig.update_layout(
        height=min(900, 140 + 42 * n), margin=dict(l=60, r=20, t=40, b=60),
        xaxis=dict(title="predicted", type="category", side="bottom"),
        yaxis=dict(title="true", type="category", autorange="reversed"),
        title="Confusion matrix" + (" (row-normalised)" if normalised else " (counts)"),
    )
    return fig
