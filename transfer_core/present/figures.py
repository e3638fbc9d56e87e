"""The figures a presentation shows, shared by the Present page, the decks and the HTML report.

Plain data in, plotly figures out, no Streamlit: the page draws ``build(spec)`` with
``st.plotly_chart``, the HTML deck and the report inline the same figure, the PowerPoint
deck holds a PNG of it (:mod:`.render`). A story (:mod:`.story`) names its figures as
:class:`dict` specs ``{"kind": ..., "args": {...}}`` so it stays plain, picklable data.

Also here, because the dashboard's pages draw them too (``dashboard.charts`` re-exports
them): the run comparison figures (``compare_curves_figure``, ``kind_bar_figure``) and the
class counts (``counts_figure``). The sweep figures live in :mod:`.figures_sweeps`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..i18n import _
from ..metrics import normalise_confusion
from .sentences import kind_word

__all__ = [
    "PALETTE", "KIND_COLORS", "BLUE", "ORANGE", "FROZEN", "SLIDE_FONT", "FONT_FAMILY",
    "curves_figure", "alpha_figure", "confusion_figure", "counts_figure", "compare_curves_figure",
    "kind_bar_figure", "method_figure", "distill_figure", "build", "slide_style", "cjk_font", "FIGURES",
]

KIND_COLORS = {"scratch": "#94a3b8", "transfer": "#2563eb", "fusion": "#9333ea", "distill": "#0891b2"}
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d")
BLUE, ORANGE, FROZEN = "#2563eb", "#ea580c", "#cbd5e1"
SLIDE_FONT = 17  # base font of a figure on a slide (the page in presenting mode and the decks)
#: plotly's own font stack, then CJK fonts (Debian's fonts-noto-cjk, macOS, Windows) for Chinese labels
FONT_FAMILY = '"Open Sans", verdana, arial, sans-serif, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei"'


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


# --------------------------------------------------------------------------- one run


def curves_figure(metrics: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Loss and accuracy per epoch, training and validation, side by side (said for people new to it)."""
    ep = [m.get("epoch") for m in metrics]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("Loss (lower is better)"), _("Accuracy (higher is better)")),
                        horizontal_spacing=0.1)
    for col, key in ((1, "loss"), (2, "acc")):
        fig.add_trace(go.Scatter(x=ep, y=[m.get(f"train_{key}") for m in metrics], name=_("training"),
                                 mode="lines+markers", line=dict(color=BLUE), showlegend=col == 1, legendgroup="t"),
                      row=1, col=col)
        fig.add_trace(go.Scatter(x=ep, y=[m.get(f"val_{key}") for m in metrics], name=_("validation (unseen images)"),
                                 mode="lines+markers", line=dict(color=ORANGE, dash="dash"), showlegend=col == 1,
                                 legendgroup="v"), row=1, col=col)
    fig.update_xaxes(title_text=_("epoch"), dtick=1 if len(ep) <= 20 else None)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_layout(height=340, margin=dict(l=50, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.22),
                      template="plotly_white")
    return fig


def _alpha_series(metrics: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, tuple[list[int], list[float]]]:
    from ..insights.fusion import alpha_trajectory  # torch: imported only when a fusion run is drawn

    return alpha_trajectory(metrics, names)


def alpha_figure(metrics: Sequence[Mapping[str, Any]], names: Sequence[str]) -> go.Figure | None:
    """The learned fusion weights α per epoch; None when the run learned none."""
    series = _alpha_series(metrics, names)
    if not series:
        return None
    fig = go.Figure()
    for label, (epochs, alpha) in series.items():
        fig.add_trace(go.Scatter(x=epochs, y=alpha, name=label, mode="lines+markers"))
    n = len(next(iter(series.values()))[0])
    fig.update_layout(height=280, margin=dict(l=50, r=20, t=20, b=40), yaxis=dict(range=[0, 1], title=_("weight α")),
                      xaxis=dict(title=_("epoch"), dtick=1 if n <= 20 else None), template="plotly_white",
                      legend=dict(orientation="h", y=-0.3))
    return fig


def confusion_figure(conf: Mapping[str, Any]) -> go.Figure:
    """Rows true class, columns predicted; colour = share of the row, text = image counts."""
    labels = [str(x) for x in conf["labels"]]
    counts = conf["matrix"]
    z = normalise_confusion(counts)
    text = [[f"{c}" for c in row] for row in counts]
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, text=text, texttemplate="%{text}", colorscale="Blues",
                               zmin=0, zmax=1, showscale=False,
                               hovertemplate=_("true %{y} → predicted %{x}: %{text} images") + "<extra></extra>"))
    n = len(labels)
    side = min(640, 160 + 44 * n)
    fig.update_layout(height=side, margin=dict(l=60, r=20, t=20, b=60), template="plotly_white",
                      xaxis=dict(title=_("predicted class"), type="category"),
                      yaxis=dict(title=_("true class"), type="category", autorange="reversed"))
    return fig


def counts_figure(train_counts: Mapping[str, int], val_counts: Mapping[str, int]) -> go.Figure:
    """Images per class, train and validation stacked."""
    names = list(train_counts)
    fig = go.Figure()
    fig.add_bar(x=names, y=[train_counts[n] for n in names], name=_("train"), marker_color=BLUE)
    fig.add_bar(x=names, y=[val_counts.get(n, 0) for n in names], name=_("validation"), marker_color=ORANGE)
    fig.update_layout(
        barmode="stack", height=260, margin=dict(l=40, r=10, t=10, b=40),
        xaxis=dict(type="category", title=None), yaxis=dict(title=_("images")),
        legend=dict(orientation="h", y=1.12, x=0, traceorder="normal"), uirevision="counts",
    )
    return fig


# --------------------------------------------------------------------------- several runs


def compare_curves_figure(series: Mapping[str, Sequence[Mapping[str, Any]]]) -> go.Figure:
    """Validation accuracy and loss per epoch, one colour per run (label -> metrics rows)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("Validation accuracy"), _("Validation loss")),
                        horizontal_spacing=0.1)
    hover = _("epoch %{x}: %{y:.3f}")
    for i, (label, rows) in enumerate(series.items()):
        ep = [r.get("epoch") for r in rows]
        for col, key in ((1, "val_acc"), (2, "val_loss")):
            fig.add_trace(go.Scatter(
                x=ep, y=[r.get(key) for r in rows], name=label, legendgroup=label, showlegend=col == 1,
                mode="lines+markers", line=dict(color=_color(i)),
                hovertemplate=f"{label}<br>{hover}<extra></extra>",
            ), row=1, col=col)
    last = max((r.get("epoch") or 0 for rows in series.values() for r in rows), default=0)
    fig.update_xaxes(title_text=_("epoch"), rangemode="tozero", dtick=1 if last <= 12 else None)  # whole epochs
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=1)
    fig.update_layout(height=360, margin=dict(l=40, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.22),
                      uirevision="compare")
    return fig


def kind_bar_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Final validation accuracy per run (horizontal bars), coloured and labelled by kind; where a row
    carries ``n`` ≥ 2 with ``mean``/``ci_low``/``ci_high`` (its settings over seeds), a diamond at the mean
    with the 95 % interval."""
    fig = go.Figure()
    for kind, color in KIND_COLORS.items():
        sub = [r for r in rows if r["kind"] == kind]
        if not sub:
            continue
        word = kind_word(kind)
        fig.add_bar(
            y=[r["label"] for r in sub], x=[r["val_acc"] if r["val_acc"] is not None else 0 for r in sub], name=word,
            orientation="h", marker_color=color,
            text=[f"{word} · {r['val_acc']:.1%}" if r["val_acc"] is not None else word for r in sub],
            textposition="auto", insidetextanchor="start", textangle=0,
            hovertemplate="%{y}<br>" + _("final val acc %{x:.1%}") + "<extra>" + word + "</extra>",
        )
    spread = [r for r in rows if (r.get("n") or 0) >= 2 and r.get("ci_low") is not None]
    if spread:  # the run's settings over seeds: mean and 95 % interval over the bar of this one run
        fig.add_scatter(
            y=[r["label"] for r in spread], x=[r["mean"] for r in spread], mode="markers", name=_("mean over seeds"),
            marker=dict(symbol="diamond", size=10, color="#111"),
            error_x=dict(type="data", symmetric=False, color="#111", thickness=2,
                         array=[r["ci_high"] - r["mean"] for r in spread], arrayminus=[r["mean"] - r["ci_low"] for r in spread]),
            customdata=[r["n"] for r in spread],
            hovertemplate="%{y}<br>" + _("mean over %{customdata} seeds %{x:.1%} (95 % interval)") + "<extra></extra>",
        )
    order = [r["label"] for r in rows]
    fig.update_layout(
        height=max(200, 110 + 40 * len(rows)), margin=dict(l=10, r=20, t=40, b=30), barmode="overlay",
        title=dict(text=_("Final val accuracy by kind"), font=dict(size=14)),
        xaxis=dict(range=[0, 1.02], tickformat=".0%"),
        yaxis=dict(type="category", categoryorder="array", categoryarray=order[::-1], automargin=True),
        legend=dict(orientation="h", y=1.0, x=1, xanchor="right", yanchor="bottom"), uirevision="kinds",
    )
    return fig


# --------------------------------------------------------------------------- the method as a picture


def _box(fig: go.Figure, x0: float, x1: float, y0: float, y1: float, fill: str, text: str = "",
         font_color: str = "#0f172a", line: str = "white", size: int = 13) -> None:
    fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, fillcolor=fill, line=dict(color=line, width=2),
                  layer="below")
    if text:
        fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=text, showarrow=False,
                           font=dict(color=font_color, size=size))


def _arrow(fig: go.Figure, x0: float, y0: float, x1: float, y1: float, color: str = "#64748b") -> None:
    fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
                       showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=1.6, arrowcolor=color)


def _short_group(name: str, width: float) -> str:
    """A group's name that fits its block: its last dotted part ("features.4-6" -> "4–6"), cut to
    about one character per unit of width (14 px type on a figure about 1000 px wide)."""
    name = name.rsplit(".", 1)[-1].replace("-", "–")
    room = max(1, int(width * 0.95))
    return name if len(name) <= room else (name[: max(1, room - 1)] + "…")


def _body_row(fig: go.Figure, y: float, bb: Mapping[str, Any], x0: float, x1: float, h: float = 0.34) -> None:
    """One backbone: its layer groups left to right, grey when frozen, blue when trained."""
    groups = list(bb.get("groups") or [])
    frozen = int(bb.get("frozen") or 0)
    if not groups:  # no spec: the body as one block
        groups = [(bb.get("name", "body"), 1)]
        frozen = 1 if bb.get("all_frozen") else 0
    n = len(groups)
    gap = 0.6
    width = (x1 - x0 - gap * (n - 1)) / n
    for i, (gname, _params) in enumerate(groups):
        gx0 = x0 + i * (width + gap)
        is_frozen = i < frozen
        _box(fig, gx0, gx0 + width, y - h, y + h, FROZEN if is_frozen else BLUE, _short_group(str(gname), width),
             font_color="#334155" if is_frozen else "white", size=15)
    fig.add_annotation(x=x0, y=y + h + 0.08, text=f"<b>{bb.get('name', '?')}</b> · {bb.get('source', '')}",
                       showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=16, color="#0f172a"))


def method_figure(spec: Mapping[str, Any]) -> go.Figure:
    """The method as blocks: each backbone's layer groups (grey = frozen, blue = trained), then the new
    head; for a fusion each body's projection and its weight α into the fused vector; for a
    distillation the teachers (frozen) above the student they teach.

    ``spec``: ``method`` (transfer | fusion | distill), ``backbones`` [{name, source, groups:
    [[name, params], ...], frozen}], ``classes`` (int), ``image_size``, and for a fusion ``fusion``
    {mode, shared_dim, alpha: [..] or None, learn_alpha}, for a distillation ``teachers`` [{name,
    source, acc}] (text only).
    """
    method = spec.get("method", "transfer")
    bbs = list(spec.get("backbones") or [])
    teachers = list(spec.get("teachers") or []) if method == "distill" else []
    n_classes = spec.get("classes") or "?"
    rows = len(bbs) + len(teachers)
    fig = go.Figure()
    ys_t = [rows - 1 - i for i in range(len(teachers))]
    ys_s = [len(bbs) - 1 - i for i in range(len(bbs))]
    body_x0, body_x1 = 12.0, 64.0
    # the input image
    mid = (rows - 1) / 2
    _box(fig, 0, 9, mid - 0.3, mid + 0.3, "#f1f5f9", _("image<br>{size} px").format(size=spec.get("image_size", "?")),
         line="#cbd5e1", size=15)
    for y in ys_t + ys_s:
        _arrow(fig, 9, mid, body_x0 - 0.4, y)
    for t, y in zip(teachers, ys_t):
        _body_row(fig, y, {**t, "groups": t.get("groups") or [(t.get("name") or _("teacher"), 1)],
                           "frozen": len(t.get("groups") or [1])}, body_x0, body_x1)
        acc = t.get("acc")
        label = _("teacher") + (f" · {acc:.1%}" if isinstance(acc, (int, float)) else "")
        _box(fig, 68, 82, y - 0.3, y + 0.3, "#e2e8f0", label, line="#cbd5e1", size=14)
        _arrow(fig, body_x1 + 0.3, y, 67.6, y)
    if method == "fusion" and len(bbs) > 1:
        fu = spec.get("fusion") or {}
        alpha = fu.get("alpha")
        for i, (bb, y) in enumerate(zip(bbs, ys_s)):
            _body_row(fig, y, bb, body_x0, body_x1)
            _box(fig, 65.5, 75, y - 0.28, y + 0.28, BLUE, _("proj → {dim}").format(dim=fu.get("shared_dim", "?")),
                 font_color="white", size=14)
            _arrow(fig, body_x1 + 0.3, y, 65.2, y)
            a = alpha[i] if isinstance(alpha, (list, tuple)) and i < len(alpha) else None
            a_text = f"α{i + 1}" + (f"<br>{a:.2f}" if isinstance(a, (int, float)) else "")  # narrow: between boxes
            if fu.get("mode") == "concat":
                a_text = _("concat")
            _arrow(fig, 75.3, y, 79.2, mid)
            fig.add_annotation(x=77.3, y=(y + mid) / 2 + (0.3 if y > mid else -0.3), text=a_text, showarrow=False,
                               font=dict(size=15, color="#9333ea"))
        node = _("concat<br>then φ") if fu.get("mode") == "concat" else _("α-sum<br>then φ")
        _box(fig, 79.5, 88, mid - 0.32, mid + 0.32, "#9333ea", node, font_color="white", size=14)
        _arrow(fig, 88.2, mid, 89.8, mid)
        _box(fig, 90, 100, mid - 0.32, mid + 0.32, BLUE, _("new head<br>→ {n} classes").format(n=n_classes),
             font_color="white", size=14)
    else:
        for bb, y in zip(bbs, ys_s):
            _body_row(fig, y, bb, body_x0, body_x1)
            _arrow(fig, body_x1 + 0.3, y, 67.6, y)
            head = (_("student head<br>→ {n} classes") if teachers else _("new head<br>→ {n} classes")).format(
                n=n_classes)
            _box(fig, 68, 82, y - 0.3, y + 0.3, BLUE, head, font_color="white", size=14)
        if teachers:
            sy = ys_s[0] if ys_s else 0
            _box(fig, 86, 100, sy + 0.55, sy + 1.15, "#0891b2", _("soft targets<br>(teachers' answers)"),
                 font_color="white", size=14)
            for y in ys_t:
                _arrow(fig, 82.3, y, 85.6, sy + 0.85)
            _arrow(fig, 93, sy + 0.5, 82.6, sy + 0.1)
    # the legend, as two swatches under the picture
    ly = -0.95
    _box(fig, body_x0, body_x0 + 3, ly - 0.13, ly + 0.13, FROZEN)
    fig.add_annotation(x=body_x0 + 3.6, y=ly, text=_("frozen (kept as it was)"), showarrow=False, xanchor="left",
                       font=dict(size=15, color="#334155"))
    _box(fig, body_x0 + 26, body_x0 + 29, ly - 0.13, ly + 0.13, BLUE)
    fig.add_annotation(x=body_x0 + 29.6, y=ly, text=_("trained on this task"), showarrow=False, xanchor="left",
                       font=dict(size=15, color="#334155"))
    fig.update_xaxes(visible=False, range=[-0.5, 100.5], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-1.25, rows - 0.25], fixedrange=True)
    fig.update_layout(height=max(260, 150 + 120 * rows), margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      template="plotly_white", plot_bgcolor="white", dragmode=False)
    return fig


# --------------------------------------------------------------------------- a distillation


def distill_figure(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Student against its teachers: validation accuracy (bars), with size and speed in the labels.

    ``rows``: ``{"role", "name", "val_acc", "params", "export_mb", "ms_per_image"}`` (the shape of
    ``transfer_core.distill.student_vs_teachers``'s rows; missing numbers are left out)."""
    labels, accs, colors, texts = [], [], [], []
    for r in rows:
        role = str(r.get("role", ""))
        shown = {"student": _("student"), "teacher": _("teacher")}.get(role, role)
        labels.append(f"{shown}: {r.get('name', '?')}")
        acc = r.get("val_acc")
        accs.append(acc if isinstance(acc, (int, float)) else 0.0)
        colors.append(KIND_COLORS["distill"] if role == "student" else "#94a3b8")
        bits = [f"{acc:.1%}" if isinstance(acc, (int, float)) else "—"]
        if isinstance(r.get("params"), (int, float)):
            bits.append(_("{n}M params").format(n=f"{r['params'] / 1e6:.1f}"))
        if isinstance(r.get("export_mb"), (int, float)):
            bits.append(f"{r['export_mb']:.1f} MB")
        if isinstance(r.get("ms_per_image"), (int, float)):
            bits.append(_("{ms} ms/image").format(ms=f"{r['ms_per_image']:.1f}"))
        texts.append(" · ".join(bits))
    fig = go.Figure(go.Bar(x=accs, y=labels, orientation="h", marker_color=colors, text=texts,
                           textposition="inside", insidetextanchor="start", textfont=dict(color="white"),
                           hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_layout(height=max(220, 110 + 60 * len(labels)), margin=dict(l=10, r=20, t=20, b=40),
                      xaxis=dict(range=[0, 1.02], tickformat=".0%", title=_("validation accuracy")),
                      yaxis=dict(type="category", autorange="reversed", automargin=True), template="plotly_white")
    return fig


# --------------------------------------------------------------------------- specs


def _sweep(args: Mapping[str, Any]) -> go.Figure:
    from .figures_sweeps import sweep_figure

    return sweep_figure(args.get("experiment"), args.get("summary") or [], args.get("trials") or [],
                        args.get("axes") or {}, args.get("reference"))


FIGURES: dict[str, Callable[[Mapping[str, Any]], go.Figure | None]] = {
    "curves": lambda a: curves_figure(a["metrics"]),
    "alpha": lambda a: alpha_figure(a["metrics"], a["names"]),
    "confusion": lambda a: confusion_figure(a["confusion"]),
    "counts": lambda a: counts_figure(a["train"], a["val"]),
    "compare_curves": lambda a: compare_curves_figure(a["series"]),
    "kind_bars": lambda a: kind_bar_figure(a["rows"]),
    "method": lambda a: method_figure(a),
    "distill": lambda a: distill_figure(a["rows"]),
    "sweep": _sweep,
}


def cjk_font(fig: go.Figure) -> go.Figure:
    """The figure's type in :data:`FONT_FAMILY`: Chinese labels find a CJK font (in a browser and in kaleido)."""
    fig.update_layout(font_family=FONT_FAMILY)
    return fig


def slide_style(fig: go.Figure, height: int | None = None) -> go.Figure:
    """Larger type for a room (the Present page and the decks); ``height`` in pixels when given."""
    fig.update_layout(font=dict(size=SLIDE_FONT, family=FONT_FAMILY), template="plotly_white", uirevision=None)
    title = fig.layout.title
    if title is not None and title.font is not None and title.font.size:
        fig.update_layout(title_font_size=max(int(title.font.size), SLIDE_FONT + 1))
    if height:
        fig.update_layout(height=height)
    return fig


def build(spec: Mapping[str, Any], slide: bool = True, height: int | None = None) -> go.Figure | None:
    """The figure a spec names (``{"kind", "args"}``), in slide style unless ``slide`` is False."""
    draw = FIGURES.get(str(spec.get("kind")))
    if draw is None:
        raise ValueError(_("unknown figure kind {kind}").format(kind=repr(spec.get("kind"))))
    fig = draw(spec.get("args") or {})
    if fig is not None:
        cjk_font(fig)
    if fig is not None and slide:
        slide_style(fig, height or spec.get("height"))
        if spec.get("kind") in ("curves", "compare_curves"):  # clear of the axis titles at slide type sizes
            fig.update_layout(legend=dict(y=-0.32), margin=dict(b=90))
        if spec.get("kind") == "kind_bars":  # a narrow slot: the run's number inside its bar, never clipped
            fig.update_traces(textposition="inside", selector=dict(type="bar"))
        if spec.get("caption"):  # the slide's caption says it, and a title would crowd the legend
            fig.update_layout(title=None, margin=dict(t=max(30, int(fig.layout.margin.t or 0) - 20)))
    return fig
