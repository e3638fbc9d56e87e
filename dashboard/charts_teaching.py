"""Figures of the teaching pages: runs compared by kind, fusion contributions, ablation,
disagreement, embeddings and the learning-rate finder.

Plain data in, plotly figures out; re-exported by :mod:`dashboard.charts`, the one place
pages take their figures from. The run comparison figures (``compare_curves_figure``,
``kind_bar_figure``) live in :mod:`transfer_core.present.figures`, where the Present story
draws them too.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from transfer_core.i18n import _

# Shared with the Present story and its decks (transfer_core.present.figures): one figure, drawn everywhere.
from transfer_core.present.figures import KIND_COLORS, PALETTE, compare_curves_figure, kind_bar_figure

__all__ = [
    "KIND_COLORS",
    "PALETTE",
    "compare_curves_figure",
    "kind_bar_figure",
    "contributions_figure",
    "ablation_figure",
    "disagreement_figure",
    "embedding_figure",
    "lr_finder_figure",
]



def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def contributions_figure(names: Sequence[str], values: Sequence[float]) -> go.Figure:
    """Each backbone's share of the fused vector (αᵢ·‖Pᵢfᵢ(x)‖), as a percentage."""
    total = sum(values) or 1.0
    shares = [v / total for v in values]
    fig = go.Figure(go.Bar(
        x=shares, y=list(names), orientation="h", marker_color=[_color(i) for i in range(len(names))],
        text=[f"{s:.0%}" for s in shares], textposition="auto",
        customdata=list(values), hovertemplate="%{y}: %{x:.1%} (αᵢ·‖Pᵢfᵢ(x)‖ = %{customdata:.3g})<extra></extra>",
    ))
    fig.update_layout(height=max(140, 60 + 40 * len(names)), margin=dict(l=10, r=20, t=10, b=40),
                      xaxis=dict(range=[0, 1], tickformat=".0%", title=_("share of the fused features")),
                      yaxis=dict(type="category", autorange="reversed"), uirevision="contrib")
    return fig


def ablation_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Validation accuracy of the full fusion model and without each backbone."""
    labels = [_("all backbones") if r["removed"] is None else _("without {name}").format(name=r["removed"]) for r in rows]
    colors = ["#16a34a" if r["removed"] is None else ("#dc2626" if r["change"] < 0 else "#94a3b8") for r in rows]
    fig = go.Figure(go.Bar(
        x=labels, y=[r["val_acc"] for r in rows], marker_color=colors,
        text=[f"{r['val_acc']:.1%}" + ("" if r["removed"] is None else f" ({r['change']:+.1%})") for r in rows],
        textposition="auto", hovertemplate="%{x}: %{y:.1%}<extra></extra>",
    ))
    fig.update_layout(height=300, margin=dict(l=40, r=20, t=20, b=40), yaxis=dict(range=[0, 1.05], tickformat=".0%",
                      title=_("val accuracy")), xaxis=dict(type="category"), uirevision="ablation")
    return fig


def disagreement_figure(d: Mapping[str, Any]) -> go.Figure:
    """Heatmap: row i, column j = share of images where backbone i alone is right and j alone is wrong."""
    names = list(d["names"])
    z = d["matrix"]
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, text=[[f"{v:.0%}" for v in row] for row in z], texttemplate="%{text}",
        colorscale="Purples", zmin=0, zmax=max(0.01, max(max(r) for r in z) if z else 0.01), showscale=False,
        hovertemplate=_("%{y} right, %{x} wrong: %{text} of the images") + "<extra></extra>",
    ))
    fig.update_layout(height=140 + 60 * len(names), margin=dict(l=10, r=20, t=20, b=40),
                      xaxis=dict(title=_("… is wrong"), type="category"),
                      yaxis=dict(title=_("this one is right …"), type="category", autorange="reversed"),
                      uirevision="disagree")
    return fig


def embedding_figure(points: Any, labels: Sequence[int], indices: Sequence[int], classes: Sequence[str], title: str) -> go.Figure:
    """2-D embedding, one trace per class; hover shows class and validation index, customdata = index."""
    fig = go.Figure()
    labels = list(map(int, labels))
    for c, name in enumerate(classes):
        rows = [i for i, lab in enumerate(labels) if lab == c]
        if not rows:
            continue
        fig.add_trace(go.Scattergl(
            x=[float(points[i][0]) for i in rows], y=[float(points[i][1]) for i in rows], mode="markers",
            name=str(name), marker=dict(size=7, color=_color(c), line=dict(width=0.5, color="white")),
            customdata=[int(indices[i]) for i in rows],
            hovertemplate=_("class {name}").format(name=name) + "<br>" + _("image #%{customdata}") + "<extra></extra>",
        ))
    fig.update_layout(height=400, margin=dict(l=10, r=10, t=40, b=10), title=title, xaxis=dict(visible=False),
                      yaxis=dict(visible=False), legend=dict(title=_("class"), orientation="h", y=-0.02, yanchor="top"),
                      clickmode="event+select", uirevision=title)
    return fig


def lr_finder_figure(result: Mapping[str, Any]) -> go.Figure:
    """Smoothed loss over a log learning-rate axis, the suggestion marked."""
    fig = go.Figure(go.Scatter(x=result["lrs"], y=result["losses"], mode="lines", name=_("smoothed loss"),
                               line=dict(color="#2563eb"),
                               hovertemplate=_("lr %{x:.2e}: loss %{y:.3f}") + "<extra></extra>"))
    s = result.get("suggested")
    if s:
        fig.add_vline(x=s, line=dict(color="#16a34a", dash="dash"))
        # annotations on a log axis take log10 coordinates (shapes take data values)
        fig.add_annotation(x=math.log10(s), y=1, yref="paper", text=" " + _("suggested {lr:.1e}").format(lr=s), showarrow=False,
                           xanchor="left", yanchor="top", font=dict(color="#16a34a"))
    fig.update_layout(height=300, margin=dict(l=40, r=20, t=20, b=40), xaxis=dict(type="log", title=_("learning rate")),
                      yaxis=dict(title=_("training loss")), uirevision="lrf")
    return fig
