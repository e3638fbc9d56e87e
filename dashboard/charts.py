"""Every figure the dashboard draws (plain lists/dicts in, plotly figures out).

Run figures (curves, fusion weights, confusion matrix and its clickable cells), data and
model figures (class counts, layer groups, top-k), and, re-exported from
:mod:`dashboard.charts_teaching`, the teaching pages' figures. Figures have fixed layouts
and cap their points so a fragment redrawing them every second stays cheap (Streamlit
issues #8834, #4852 on Plotly redraw growth).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts_teaching import (
    KIND_COLORS,
    PALETTE,
    ablation_figure,
    compare_curves_figure,
    contributions_figure,
    disagreement_figure,
    embedding_figure,
    kind_bar_figure,
    lr_finder_figure,
)
from dashboard.formatting import human_count
from transfer_core.i18n import N_, _, language
from transfer_core.metrics import normalise_confusion
from transfer_core.present.figures import counts_figure  # the Present story's data slide draws it too

__all__ = [
    "MAX_POINTS", "cap_rows", "TRAIN_COLOR", "VAL_COLOR", "CURVE_NAMES", "LOSS_PARTS",
    "curves_figure", "alpha_figure", "loss_parts_figure", "has_loss_parts", "confusion_figure",
    "clickable_confusion",
    "counts_figure", "groups_figure", "topk_figure",
    "KIND_COLORS", "PALETTE", "compare_curves_figure", "kind_bar_figure", "contributions_figure", "ablation_figure",
    "disagreement_figure", "embedding_figure", "lr_finder_figure",
]

MAX_POINTS = 500
TRAIN_COLOR, VAL_COLOR, _FROZEN = "#2563eb", "#ea580c", "#cbd5e1"


def cap_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_POINTS rows, evenly spread, the last one kept."""
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
    two sessions watching, an epoch took ~20x longer than unwatched before this. The key holds
    the language: sessions in another language get their own figure.
    """
    rows = cap_rows(metrics)
    key = (language(), title, epochs, tuple(tuple(r.get(k) for k in _CURVE_KEYS) for r in rows))
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


_CURVE_KEYS = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc", "phase")
CURVE_NAMES = {"loss": (N_("train loss"), N_("val loss")), "acc": (N_("train acc"), N_("val acc"))}


def _curves_figure(rows: list[dict[str, Any]], title: str, epochs: int | None) -> go.Figure:
    ep = [r["epoch"] for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("Loss"), _("Accuracy")), horizontal_spacing=0.1)
    for col, key in ((1, "loss"), (2, "acc")):
        train_name, val_name = (_(n) for n in CURVE_NAMES[key])
        fig.add_trace(go.Scatter(x=ep, y=[r.get(f"train_{key}") for r in rows], name=train_name,
                                 mode="lines+markers", line=dict(color=TRAIN_COLOR)), row=1, col=col)
        fig.add_trace(go.Scatter(x=ep, y=[r.get(f"val_{key}") for r in rows], name=val_name,
                                 mode="lines+markers", line=dict(color=VAL_COLOR, dash="dash")), row=1, col=col)
    head = [r["epoch"] for r in rows if r.get("phase") == "head"]
    if head and any(r.get("phase") == "body" for r in rows):  # the head warm-up ended: mark where the body unfroze
        fig.add_vline(x=max(head) + 0.5, line=dict(color="#888", dash="dot", width=1), row="all", col="all")
        fig.add_annotation(x=max(head) + 0.5, y=0.98, yref="paper", xref="x", text=" " + _("body unfreezes"), showarrow=False,
                           xanchor="left", yanchor="top", font=dict(size=11, color="#666"))  # inside: clear of the title
    span = max(epochs or 0, max(ep, default=0))
    fig.update_xaxes(title_text=_("epoch"), rangemode="tozero", dtick=1 if span <= 12 else None)  # whole epochs
    if epochs and len(rows) < MAX_POINTS:
        fig.update_xaxes(range=[0, max(epochs, len(rows)) + 0.5])
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=340, margin=dict(l=40, r=20, t=50 if title else 30, b=40), title=title or None,
                      legend=dict(orientation="h", y=-0.25), uirevision="curves")
    return fig


def alpha_figure(metrics: Sequence[dict[str, Any]], names: Sequence[str]) -> go.Figure:
    """The fusion weights alpha_i per epoch."""
    rows = [r for r in cap_rows(metrics) if r.get("alpha")]
    fig = go.Figure()
    for i, name in enumerate(names):
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in rows], y=[r["alpha"][i] for r in rows],
                                 name=f"α{i + 1} {name}", mode="lines+markers"))
    fig.update_layout(height=280, margin=dict(l=40, r=20, t=30, b=40), yaxis=dict(range=[0, 1], title="α"),
                      xaxis=dict(title=_("epoch")), title=_("Fusion weights α"), uirevision="alpha")
    return fig


LOSS_PARTS = (  # a distillation's metrics rows: key, legend name (translated where drawn), colour
    ("train_ce", N_("CE with the labels"), TRAIN_COLOR),
    ("train_kd", N_("KD from the teachers (T²·KL)"), "#0891b2"),
    ("train_feat", N_("feature matching (MSE)"), "#9333ea"),
)


def has_loss_parts(metrics: Sequence[dict[str, Any]]) -> bool:
    """Whether the rows carry a distillation's loss parts (train_ce, train_kd)."""
    return any(r.get("train_kd") is not None for r in metrics)


def loss_parts_figure(metrics: Sequence[dict[str, Any]], epochs: int | None = None, weight: float | None = None) -> go.Figure:
    """A distillation's loss parts per epoch: CE on the labeled images, KD from the teachers (and the
    feature term), unweighted. A log axis when they differ by more than 10× (CE and KD often do)."""
    rows = cap_rows(metrics)
    ep = [r["epoch"] for r in rows]
    fig = go.Figure()
    values: list[float] = []
    for key, name, color in LOSS_PARTS:
        ys = [r.get(key) for r in rows]
        if not any(y is not None for y in ys):
            continue
        values += [float(y) for y in ys if y is not None]
        name = _(name)
        fig.add_trace(go.Scatter(x=ep, y=ys, name=name, mode="lines+markers", line=dict(color=color),
                                 hovertemplate=name + "<br>" + _("epoch %{x}: %{y:.4g}") + "<extra></extra>"))
    positive = [v for v in values if v > 0]
    log = bool(positive) and len(positive) == len(values) and max(positive) / min(positive) > 10
    title = (_("Loss parts · loss = {ce:.2g}·CE + {kd:.2g}·KD").format(ce=1 - weight, kd=weight)
             if weight is not None else _("Loss parts"))
    fig.update_yaxes(type="log" if log else "linear", title_text=_("loss (log scale)") if log else _("loss"),
                     rangemode="tozero" if not log else None, dtick=1 if log else None)  # log: decades only
    span = max(epochs or 0, max(ep, default=0))
    fig.update_xaxes(title_text=_("epoch"), rangemode="tozero", dtick=1 if span <= 12 else None)
    if epochs and len(rows) < MAX_POINTS:
        fig.update_xaxes(range=[0, max(epochs, len(rows)) + 0.5])
    fig.update_layout(height=280, margin=dict(l=40, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.3),
                      title=dict(text=title, x=0.5, xanchor="center", font=dict(size=14, color="#6b7280")),
                      uirevision="loss-parts")
    return fig


def confusion_figure(conf: dict[str, Any], normalised: bool = False) -> go.Figure:
    """Heatmap, rows = true class, columns = predicted; counts or row-normalised."""
    labels = [str(l) for l in conf["labels"]]
    z = normalise_confusion(conf["matrix"]) if normalised else conf["matrix"]
    text = [[f"{v:.2f}" if normalised else str(v) for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, text=text, texttemplate="%{text}", colorscale="Blues",
        hovertemplate=_("true %{y} → predicted %{x}: %{text}") + "<extra></extra>", showscale=False,
    ))
    n = len(labels)
    fig.update_layout(
        height=min(900, 140 + 42 * n), margin=dict(l=60, r=20, t=40, b=60),
        xaxis=dict(title=_("predicted"), type="category", side="bottom"),
        yaxis=dict(title=_("true"), type="category", autorange="reversed"),
        title=_("Confusion matrix (row-normalised)") if normalised else _("Confusion matrix (counts)"),
    )
    return fig


def clickable_confusion(fig: go.Figure, conf: Mapping[str, Any]) -> go.Figure:
    """Make a confusion heatmap's cells clickable with ``on_select``.

    Why: Plotly heatmaps emit no selection events, so ``st.plotly_chart(on_select=...)``
    never reports a clicked cell. A transparent square marker on every cell does (and
    shows which cell is selected); its hover text repeats the heatmap's.
    """
    labels = [str(x) for x in conf["labels"]]
    matrix = conf["matrix"]
    xs = [p for _row in labels for p in labels]
    ys = [t for t in labels for _col in labels]
    counts = [matrix[i][j] for i in range(len(labels)) for j in range(len(labels))]
    n = max(1, len(labels))
    size = max(12, min(60, int((float(fig.layout.height or 400) - 120) / n * 0.9)))
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers", customdata=counts, showlegend=False, name="cells",
        marker=dict(symbol="square", size=size, color="rgba(0,0,0,0)", line=dict(width=0)),
        selected=dict(marker=dict(color="rgba(234,88,12,0.35)")), unselected=dict(marker=dict(opacity=0)),
        hovertemplate=_("true %{y} → predicted %{x}: %{customdata}") + "<extra></extra>",
    ))
    # hoverdistance -1: a click anywhere picks the nearest cell centre, i.e. the cell under the mouse
    fig.update_layout(clickmode="event+select", dragmode=False, hovermode="closest", hoverdistance=-1)
    # the markers must not widen the axes around the heatmap
    fig.update_xaxes(range=[-0.5, n - 0.5], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[n - 0.5, -0.5], autorange=False, showgrid=False, zeroline=False)
    return fig


def groups_figure(groups: Sequence[tuple[str, int]], frozen: int) -> go.Figure:
    """One horizontal stacked bar: each layer group's parameters, grey when frozen."""
    fig = go.Figure()
    total = sum(n for _name, n in groups) or 1
    for i, (name, n) in enumerate(groups):
        is_frozen = i < frozen
        fig.add_bar(
            y=[_("body")], x=[n], orientation="h", name=name,
            marker=dict(color=_FROZEN if is_frozen else TRAIN_COLOR, line=dict(color="white", width=2)),
            text=name if n / total > 0.06 else "", textposition="inside", insidetextanchor="middle",
            hovertemplate=(_("{name}: {n} params (frozen)") if is_frozen else _("{name}: {n} params (trainable)"))
            .format(name=name, n=human_count(n)) + "<extra></extra>",
        )
    fig.update_layout(
        barmode="stack", height=110, showlegend=False, margin=dict(l=10, r=10, t=10, b=30),
        xaxis=dict(title=_("parameters (grey = frozen, blue = trainable)")), yaxis=dict(visible=False),
        uirevision="groups",
    )
    return fig


def topk_figure(preds: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Top-k classes as horizontal bars, most likely on top."""
    rows = list(reversed(list(preds)))
    fig = go.Figure(go.Bar(
        x=[r["prob"] for r in rows], y=[str(r["class"]) for r in rows], orientation="h",
        marker_color=[TRAIN_COLOR if i == len(rows) - 1 else "#93c5fd" for i in range(len(rows))],
        text=[f"{r['prob']:.1%}" for r in rows],
        textposition=["inside" if r["prob"] > 0.2 else "outside" for r in rows], cliponaxis=False,
        hovertemplate="%{y}: %{x:.2%}<extra></extra>",
    ))
    fig.update_layout(
        height=max(160, 60 + 38 * len(rows)), margin=dict(l=10, r=20, t=10, b=40),
        xaxis=dict(range=[0, 1], tickformat=".0%", title=_("probability")), yaxis=dict(type="category"),
        uirevision="topk",
    )
    return fig
