"""Figures of a sweep, drawn by the Experiments page and by an experiment's Present story: its
summary (mean and 95 % interval over seeds) with every finished trial as a faint dot, so the
spread is always in sight.

Plain rows in (``summary.csv`` and ``trials.csv`` as dicts), plotly figures out. The dots
are traces with ``meta="seed"`` (a browser test counts them as trials finish). One
figure per built-in experiment (``labels``, ``freeze``, ``alpha``, ``parts``) and a generic
one for any other sweep: the first numeric axis on x, else bars.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..i18n import _
from ..sweeps.builtin import label_text
from ..sweeps.headlines import value_text
from ..sweeps.stats import as_number as _num
from .figures import PALETTE

__all__ = ["sweep_figure", "labels_figure", "freeze_figure", "alpha_figure", "parts_figure", "generic_figure",
           "VARIANT_COLORS"]

Row = Mapping[str, Any]
VARIANT_COLORS = {"scratch": "#64748b", "transfer": "#2563eb", "probe": "#16a34a"}
BUDGET, VARIANT, FREEZE, ALPHA, MODEL = "data.train_per_class", "variant", "backbones.0.freeze", "alpha1", "model"
_LAYOUT = dict(margin=dict(l=50, r=20, t=50, b=50), legend=dict(orientation="h", y=1.0, x=1, xanchor="right",
                                                                yanchor="bottom"))


def _same(a: Any, b: Any) -> bool:
    return a == b or (a is not None and b is not None and str(a) == str(b))


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i: i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _done(trials: Sequence[Row]) -> list[Row]:
    return [t for t in trials if t.get("state") == "completed" and _num(t.get("val_acc")) is not None]


def _at(rows: Sequence[Row], **point: Any) -> list[Row]:
    return [r for r in rows if all(_same(r.get(k), v) for k, v in point.items())]


def _half(r: Row, m: str = "val_acc") -> float | None:
    hi, mean = _num(r.get(f"{m}_ci_high")), _num(r.get(f"{m}_mean"))
    return None if hi is None or mean is None else hi - mean


def _hover(r: Row, m: str = "val_acc") -> str:
    mean, half, n = _num(r.get(f"{m}_mean")), _half(r, m), int(_num(r.get("n")) or 0)
    if mean is None:
        return _("no finished trial")
    pct = m == "val_acc"
    val = f"{mean:.1%}" if pct else f"{mean:.1f} s"
    if n < 2 or half is None:
        return _("{value} (one seed)").format(value=val)
    return (_("{value} ± {half} (95 %, {n} seeds)").format(value=val, half=f"{half:.1%}", n=n) if pct else
            _("{value} ± {half} s ({n} seeds)").format(value=val, half=f"{half:.1f}", n=n))


def _line_with_band(fig: go.Figure, xs: list[Any], rows: list[Row], name: str, color: str, m: str = "val_acc",
                    row: int | None = None, col: int | None = None, legend: bool = True) -> None:
    """Mean line (None where no trial finished) and its 95 % band where there are two seeds or more."""
    kw = {"row": row, "col": col} if row else {}
    means = [_num(r.get(f"{m}_mean")) if r else None for r in rows]
    lo = [_num(r.get(f"{m}_ci_low")) if r else None for r in rows]
    hi = [_num(r.get(f"{m}_ci_high")) if r else None for r in rows]
    if m == "val_acc":  # an interval wider than accuracy can go (two seeds): drawn up to 0 and 100 %
        lo = [None if v is None else max(v, 0.0) for v in lo]
        hi = [None if v is None else min(v, 1.0) for v in hi]
    band = [i for i in range(len(xs)) if lo[i] is not None and hi[i] is not None]
    if band:
        bx = [xs[i] for i in band]
        fig.add_trace(go.Scatter(x=bx + bx[::-1], y=[hi[i] for i in band] + [lo[i] for i in band][::-1], fill="toself",
                                 mode="lines",  # no markers on the band's corners (plotly's default under 20 points)
                                 fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip", legendgroup=name,
                                 showlegend=False, name=f"{name} 95 %"), **kw)
    fig.add_trace(go.Scatter(x=xs, y=means, name=name, legendgroup=name, showlegend=legend, mode="lines+markers",
                             line=dict(color=color, width=2.5), marker=dict(size=8), connectgaps=True,
                             text=[_hover(r, m) if r else "" for r in rows],
                             hovertemplate=f"{name}<br>%{{x}}: %{{text}}<extra></extra>"), **kw)


def _dots(fig: go.Figure, xs: list[Any], ys: list[float], name: str, color: str, row: int | None = None,
          col: int | None = None, seeds: list[Any] | None = None, dodge: float = 1.0) -> None:
    """Each finished trial as a faint dot; ``dodge`` multiplies x (a log axis: the variants side by side)."""
    kw = {"row": row, "col": col} if row else {}
    shown = [x * dodge if dodge != 1.0 and _num(x) is not None else x for x in xs]
    fig.add_trace(go.Scatter(x=shown, y=ys, mode="markers", name=_("{name}: each seed").format(name=name),
                             legendgroup=name, showlegend=False,
                             marker=dict(color=_rgba(color, 0.5), size=6, line=dict(width=0)), meta="seed",
                             text=[_("{x}, seed {seed}").format(x=x, seed=s) for x, s in zip(xs, seeds or [""] * len(xs))],
                             hovertemplate=f"{name}, %{{text}}: %{{y:.1%}}<extra></extra>"), **kw)


def _acc_axis(fig: go.Figure, **kw: Any) -> None:
    fig.update_yaxes(title_text=_("validation accuracy"), tickformat=".0%", range=[0, 1.02], **kw)


def labels_figure(summary: Sequence[Row], trials: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> go.Figure:
    """Validation accuracy against labels per class (log x), a line and a 95 % band per variant."""
    budgets = [b for b in axes.get(BUDGET, []) if _num(b) is not None]
    fig = go.Figure()
    done = _done(trials)
    variants = list(axes.get(VARIANT, []))
    for i, v in enumerate(variants):
        color = VARIANT_COLORS.get(str(v), _color(i))
        rows = [next(iter(_at(summary, **{BUDGET: b, VARIANT: v})), None) for b in budgets]
        _line_with_band(fig, budgets, rows, label_text(v), color)
        pts = _at(done, **{VARIANT: v})
        _dots(fig, [p.get(BUDGET) for p in pts], [float(p["val_acc"]) for p in pts], label_text(v), color,
              seeds=[p.get("seed") for p in pts], dodge=math.exp(0.05 * (i - (len(variants) - 1) / 2)))
    fig.update_xaxes(type="log", title_text=_("labelled training images per class (log scale)"),
                     tickvals=budgets, ticktext=[str(b) for b in budgets])
    _acc_axis(fig)
    fig.update_layout(height=420, title=dict(text=_("Accuracy against labels per class (line: mean; band: 95 % "
                                                    "interval over seeds; dots: each seed)"), font=dict(size=14)),
                      uirevision="sweep-labels", **_LAYOUT)
    return fig


def _freeze_x(label: Any, k: int) -> float:
    return float(k) if _same(label, "all") else float(_num(label) or 0)


def freeze_figure(summary: Sequence[Row], trials: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> go.Figure:
    """Accuracy and training time against the number of frozen groups ("all" on the right)."""
    labels = list(axes.get(FREEZE, []))
    k = max([int(_num(lab) or 0) for lab in labels if not _same(lab, "all")] + [0]) + 1
    xs = [_freeze_x(lab, k) for lab in labels]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("Validation accuracy"), _("Training time per run (s)")),
                        horizontal_spacing=0.1)
    rows = [next(iter(_at(summary, **{FREEZE: lab})), None) for lab in labels]
    _line_with_band(fig, xs, rows, _("accuracy"), PALETTE[0], row=1, col=1)
    _line_with_band(fig, xs, rows, _("training time"), PALETTE[1], m="train_s", row=1, col=2)
    done = _done(trials)
    _dots(fig, [_freeze_x(t.get(FREEZE), k) for t in done], [float(t["val_acc"]) for t in done], _("accuracy"),
          PALETTE[0], row=1, col=1, seeds=[t.get("seed") for t in done])
    timed = [t for t in done if _num(t.get("train_s")) is not None]
    fig.add_trace(go.Scatter(x=[_freeze_x(t.get(FREEZE), k) for t in timed], y=[float(t["train_s"]) for t in timed],
                             mode="markers", marker=dict(color=_rgba(PALETTE[1], 0.45), size=6), showlegend=False,
                             hovertemplate="%{x}: %{y:.1f} s<extra>" + _("a seed") + "</extra>"), row=1, col=2)
    ticktext = [_("all") if _same(lab, "all") else str(lab) for lab in labels]
    fig.update_xaxes(title_text=_("frozen layer groups"), tickvals=xs, ticktext=ticktext)
    _acc_axis(fig, row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_layout(height=400, uirevision="sweep-freeze", showlegend=False, **_LAYOUT)  # the subplot titles say it
    return fig


def alpha_figure(summary: Sequence[Row], trials: Sequence[Row], axes: Mapping[str, Sequence[Any]],
                 learned: str = "learned") -> go.Figure:
    """Accuracy against a fixed α₁ (line and band), learned α as a horizontal band (its mean ± 95 %)."""
    fixed = [lab for lab in axes.get(ALPHA, []) if _num(lab) is not None]
    xs = [float(lab) for lab in fixed]
    fig = go.Figure()
    rows = [next(iter(_at(summary, **{ALPHA: lab})), None) for lab in fixed]
    fixed_name, learned_name = _("fixed α₁"), _("learned α")
    _line_with_band(fig, xs, rows, fixed_name, PALETTE[0])
    done = _done(trials)
    pts = [t for t in done if _num(t.get(ALPHA)) is not None]
    _dots(fig, [float(t[ALPHA]) for t in pts], [float(t["val_acc"]) for t in pts], fixed_name, PALETTE[0],
          seeds=[t.get("seed") for t in pts])
    lr = next(iter(_at(summary, **{ALPHA: learned})), None)
    mean = _num(lr.get("val_acc_mean")) if lr else None
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if mean is not None:
        half = _half(lr)
        if half is not None:
            fig.add_trace(go.Scatter(x=[x0, x1, x1, x0], y=[mean + half] * 2 + [mean - half] * 2, fill="toself",
                                     mode="lines",
                                     fillcolor=_rgba(PALETTE[3], 0.15), line=dict(width=0), hoverinfo="skip",
                                     legendgroup=learned_name, showlegend=False))
        fig.add_trace(go.Scatter(x=[x0, x1], y=[mean, mean], mode="lines", name=learned_name, legendgroup=learned_name,
                                 line=dict(color=PALETTE[3], dash="dash", width=2.5), text=[_hover(lr)] * 2,
                                 hovertemplate=learned_name + ": %{text}<extra></extra>"))
        lp = _at(done, **{ALPHA: learned})
        _dots(fig, [x1 + 0.04] * len(lp), [float(t["val_acc"]) for t in lp], learned_name, PALETTE[3],
              seeds=[t.get("seed") for t in lp])
    fig.update_xaxes(title_text=_("fixed α₁ (the weight of the first backbone; α₂ = 1 − α₁)"),
                     range=[x0 - 0.05, x1 + 0.08])
    _acc_axis(fig)
    fig.update_layout(height=420, title=dict(text=_("Accuracy against a fixed α₁; learned α as a band (mean ± 95 %)"),
                                             font=dict(size=14)), uirevision="sweep-alpha", **_LAYOUT)
    return fig


def _bars(summary: Sequence[Row], trials: Sequence[Row], axis: str, labels: Sequence[Any], title: str,
          uirevision: str) -> go.Figure:
    fig = go.Figure()
    names = [label_text(lab) for lab in labels]
    rows = [next(iter(_at(summary, **{axis: lab})), None) for lab in labels]
    means = [(_num(r.get("val_acc_mean")) if r else None) for r in rows]
    halves = [(_half(r) if r else None) for r in rows]
    fig.add_trace(go.Bar(x=names, y=means, marker_color=[_color(i) for i in range(len(names))], name=_("mean"),
                         error_y=dict(type="data", array=[h or 0 for h in halves], visible=True, thickness=1.5,
                                      width=8),
                         text=[value_text(r) if r and _num(r.get("val_acc_mean")) is not None else "" for r in rows],
                         textposition="inside", insidetextanchor="start", textfont=dict(size=13),
                         customdata=[_hover(r) if r else "" for r in rows],
                         hovertemplate="%{x}<br>%{customdata}<extra></extra>", showlegend=False))
    done = _done(trials)
    for i, lab in enumerate(labels):
        pts = _at(done, **{axis: lab})
        _dots(fig, [names[i]] * len(pts), [float(t["val_acc"]) for t in pts], names[i], "#111827",
              seeds=[t.get("seed") for t in pts])
    _acc_axis(fig)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=names)
    fig.update_layout(height=420, title=dict(text=title, font=dict(size=14)), uirevision=uirevision, **_LAYOUT)
    return fig


def parts_figure(summary: Sequence[Row], trials: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> go.Figure:
    """Each part and each fusion as a bar (mean) with its 95 % error bar and each seed as a dot."""
    return _bars(summary, trials, MODEL, list(axes.get(MODEL, [])),
                 _("Validation accuracy (bar: mean; whisker: 95 % interval; dots: each seed)"), "sweep-parts")


def generic_figure(summary: Sequence[Row], trials: Sequence[Row], axes: Mapping[str, Sequence[Any]]) -> go.Figure:
    """Any sweep: the first axis whose labels are all numbers on x (a line per combination of the
    other axes), else a bar per grid point."""
    names = list(axes)
    numeric = [a for a in names if axes[a] and all(_num(v) is not None for v in axes[a])]
    if not numeric:
        key = "point"
        rows = [{**r, key: ", ".join(f"{a}={r.get(a)}" for a in names)} for r in summary]
        tr = [{**t, key: ", ".join(f"{a}={t.get(a)}" for a in names)} for t in trials]
        return _bars(rows, tr, key, [r[key] for r in rows], _("Validation accuracy per grid point (95 % whiskers)"),
                     "sweep-generic")
    xa = numeric[0]
    others = [a for a in names if a != xa]
    xs = [float(v) for v in axes[xa]]
    groups = [dict()] if not others else [dict(zip(others, combo)) for combo in _product([axes[a] for a in others])]
    fig = go.Figure()
    done = _done(trials)
    for i, g in enumerate(groups[:10]):  # at most 10 lines: a readable chart
        name = ", ".join(f"{a}={v}" for a, v in g.items()) or _("mean")
        rows = [next(iter(_at(summary, **{xa: x}, **g)), None) for x in axes[xa]]
        _line_with_band(fig, xs, rows, name, _color(i))
        pts = _at(done, **g)
        _dots(fig, [float(p[xa]) for p in pts if _num(p.get(xa)) is not None],
              [float(p["val_acc"]) for p in pts if _num(p.get(xa)) is not None], name, _color(i))
    positive = all(x > 0 for x in xs)
    spread = positive and len(xs) > 2 and max(xs) / min(xs) >= 20
    fig.update_xaxes(title_text=_("{axis} (log scale)").format(axis=xa) if spread else xa,
                     type="log" if spread else "linear")
    _acc_axis(fig)
    fig.update_layout(height=420, title=dict(text=_("Accuracy against {axis} (band: 95 % interval over seeds)").format(
                                                 axis=xa), font=dict(size=14)), uirevision="sweep-generic", **_LAYOUT)
    return fig


def _product(lists: list[Sequence[Any]]) -> list[tuple[Any, ...]]:
    import itertools

    return list(itertools.product(*lists))


def sweep_figure(kind: str | None, summary: Sequence[Row], trials: Sequence[Row],
                 axes: Mapping[str, Sequence[Any]], reference: Mapping[str, Any] | None = None) -> go.Figure:
    """The figure of a built-in experiment (``kind``), else the generic one; ``reference``: compress's teacher."""
    if kind == "compress":
        from .figures_compress import compress_figure  # imports the sweeps' built-ins

        return compress_figure(summary, trials, axes, reference)
    figures = {"labels": labels_figure, "freeze": freeze_figure, "alpha": alpha_figure, "parts": parts_figure}
    draw = figures.get(kind or "")
    return (draw or generic_figure)(summary, trials, axes)
