"""The figure of the "Compress the model" experiment: the student's variants against its teacher.

Shared by the Experiments page, the experiment's Present story and its decks (no Streamlit).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from ..i18n import _
from ..sweeps.builtin import COMPRESS_VARIANTS, VARIANT_AXIS, label_text
from ..sweeps.headlines import value_text
from ..sweeps.stats import as_number as _num
from .figures import KIND_COLORS

__all__ = ["compress_figure", "COMPRESS_COLORS", "TEACHER_COLOR"]

Row = Mapping[str, Any]
# the student alone in grey (a from-scratch run), distilled in the distill colour, lighter without unlabeled images
COMPRESS_COLORS = dict(zip(COMPRESS_VARIANTS, ("#94a3b8", "#67c1d6", KIND_COLORS["distill"])))
TEACHER_COLOR = "#9333ea"


def _same(a: Any, b: Any) -> bool:
    return a == b or (a is not None and b is not None and str(a) == str(b))


def _row(summary: Sequence[Row], label: str) -> Row | None:
    return next((r for r in summary if _same(r.get(VARIANT_AXIS), label)), None)


def compress_figure(summary: Sequence[Row], trials: Sequence[Row], axes: Mapping[str, Sequence[Any]],
                    reference: Mapping[str, Any] | None = None) -> go.Figure:
    """A bar per variant (mean over seeds) with its 95 % whisker, each seed as a dot, and the teacher's
    accuracy (``reference``, see :func:`transfer_core.sweeps.builtin.teacher_reference`) as a dashed line."""
    labels = [str(v) for v in axes.get(VARIANT_AXIS, COMPRESS_VARIANTS)]
    shown = [label_text(lab) for lab in labels]
    rows = [_row(summary, lab) for lab in labels]
    means = [_num(r.get("val_acc_mean")) if r else None for r in rows]
    halves = []
    for r, m in zip(rows, means):
        hi = _num(r.get("val_acc_ci_high")) if r else None
        halves.append(None if hi is None or m is None else hi - m)
    fig = go.Figure(go.Bar(
        x=shown, y=means, name=_("mean over seeds"), showlegend=False,
        marker_color=[COMPRESS_COLORS.get(lab, "#64748b") for lab in labels],
        error_y=dict(type="data", array=[h or 0 for h in halves], visible=True, thickness=1.5, width=10,
                     color="#111827"),
        text=[value_text(r) if r and m is not None else "" for r, m in zip(rows, means)],
        textposition="inside", insidetextanchor="start", textfont=dict(size=13, color="white"),
        hovertemplate="%{x}<br>%{text}<extra></extra>",
    ))
    done = [t for t in trials if t.get("state") == "completed" and _num(t.get("val_acc")) is not None]
    for lab, name in zip(labels, shown):
        pts = [t for t in done if _same(t.get(VARIANT_AXIS), lab)]
        if pts:
            fig.add_trace(go.Scatter(
                x=[name] * len(pts), y=[float(t["val_acc"]) for t in pts], mode="markers", showlegend=False,
                name=_("{name}: each seed").format(name=name), meta="seed",
                marker=dict(color="rgba(17,24,39,0.5)", size=7),
                text=[_("seed {seed}").format(seed=t.get("seed")) for t in pts],
                hovertemplate=f"{name}, %{{text}}: %{{y:.1%}}<extra></extra>"))
    acc = _num((reference or {}).get("val_acc"))
    if acc is not None:
        who = "+".join(reference.get("backbones") or []) or _("teacher")
        fig.add_hline(y=acc, line=dict(color=TEACHER_COLOR, dash="dash", width=2))
        fig.add_annotation(x=1, xref="paper", xanchor="right", y=acc, yanchor="bottom", showarrow=False,
                           text=_("teacher ({who}): {acc}").format(who=who, acc=f"{acc:.1%}"),
                           font=dict(color=TEACHER_COLOR, size=12))
    fig.update_yaxes(title_text=_("validation accuracy"), tickformat=".0%", range=[0, 1.02])
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=shown)
    fig.update_layout(height=420, margin=dict(l=50, r=20, t=50, b=50), uirevision="sweep-compress",
                      title=dict(text=_("The student's validation accuracy (bar: mean; whisker: 95 % interval; "
                                        "dots: each seed; dashed: its teacher)"), font=dict(size=14)))
    return fig
