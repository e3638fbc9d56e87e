"""The live view's charts while a run trains: small SVG line charts, drawn on the server.

Every tab watching a run loads and redraws its charts. A plotly chart makes a tab load
plotly.js (about 1 s of browser CPU per tab, measured with chromium on the 2-core box),
and on the machine that trains, that CPU is taken from training. These SVGs cost the
browser next to nothing; the interactive plotly figures (:mod:`dashboard.charts`) return
as soon as the run has ended. Hovering a point shows its value (an SVG ``<title>``).

Plain data in, an SVG string out; text takes the page's colour and font (``currentColor``,
inherited font family), so the light and dark themes and Chinese text both work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Any, Sequence

from dashboard.charts import CURVE_NAMES, LOSS_PARTS, PALETTE, TRAIN_COLOR, VAL_COLOR, cap_rows
from transfer_core.i18n import _

__all__ = ["Panel", "Series", "line_panels_svg", "live_curves_svg", "live_loss_parts_svg", "live_alpha_svg"]

_W, _PANEL_H = 560, 270  # viewBox units; the SVG scales to its column's width
_L, _R, _T, _B = 40, 10, 30, 40  # plot margins inside a panel


@dataclass
class Series:
    name: str
    color: str
    points: list[tuple[float, float]]  # (epoch, value); None values are left out by the builders
    dash: bool = False


@dataclass
class Panel:
    title: str
    series: list[Series]
    x_max: float  # the planned epochs: the chart fills in from the left instead of rescaling
    y_range: tuple[float, float] | None = None  # None: from 0 (or the data's minimum) to a nice top
    log: bool = False
    marks: list[tuple[float, str]] = field(default_factory=list)  # vertical dotted lines: (x, label)


def _nice_step(span: float, n: int = 4) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``n`` intervals."""
    raw = span / n if span > 0 and math.isfinite(span) else 0.25
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _ticks(lo: float, hi: float) -> list[float]:
    step = _nice_step(hi - lo)
    return [lo + i * step for i in range(int(round((hi - lo) / step)) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) > 1e-12 else "0"


def _panel(p: Panel, x0: float, w: float, h: float) -> list[str]:
    vals = [y for s in p.series for _x, y in s.points]
    if p.log:
        pos = [v for v in vals if v > 0] or [1.0]
        lo, hi = math.floor(math.log10(min(pos))), math.ceil(math.log10(max(pos)))
        hi = hi if hi > lo else lo + 1
        to_y = lambda v: math.log10(max(v, 10.0 ** lo))  # noqa: E731
        ticks = [float(e) for e in range(lo, hi + 1)]
        labels = [_fmt(10.0 ** e) for e in range(lo, hi + 1)]
    else:
        if p.y_range:
            lo, hi = p.y_range
        else:
            lo = min(0.0, min(vals, default=0.0))
            step = _nice_step(max(vals, default=1.0) - lo)
            hi = lo + step * max(1, math.ceil((max(vals, default=1.0) - lo) / step - 1e-9))
        to_y = lambda v: v  # noqa: E731
        ticks = _ticks(lo, hi)
        labels = [_fmt(t) for t in ticks]
    left, top, pw, ph = x0 + _L, _T, w - _L - _R, h - _T - _B
    xm = max(p.x_max, max((x for s in p.series for x, _y in s.points), default=1.0), 1.0) + 0.5

    def sx(x: float) -> float:
        return left + pw * x / xm

    def sy(v: float) -> float:
        return top + ph * (1 - (to_y(v) - lo) / ((hi - lo) or 1.0))

    out = [f'<text x="{left + pw / 2:.1f}" y="{top - 12}" text-anchor="middle" font-size="14" '
           f'fill-opacity="0.75">{escape(p.title)}</text>']
    for t, label in zip(ticks, labels):
        y = top + ph * (1 - (t - lo) / ((hi - lo) or 1.0))
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="currentColor" '
                   f'stroke-opacity="0.12"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill-opacity="0.6">{label}</text>')
    step = max(1, math.ceil(xm / 12))
    for e in range(0, int(xm) + 1, step):
        out.append(f'<text x="{sx(e):.1f}" y="{top + ph + 15}" text-anchor="middle" font-size="11" '
                   f'fill-opacity="0.6">{e}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph + 32}" text-anchor="middle" font-size="12" '
               f'fill-opacity="0.7">{escape(_("epoch"))}</text>')
    for x, label in p.marks:
        out.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{top + ph}" stroke="currentColor" '
                   f'stroke-opacity="0.45" stroke-dasharray="2 3"/>')
        if label:
            out.append(f'<text x="{sx(x) + 4:.1f}" y="{top + 12}" font-size="11" fill-opacity="0.6">{escape(label)}</text>')
    for s in p.series:
        pts = [(sx(x), sy(y)) for x, y in s.points]
        if len(pts) > 1:
            dash = ' stroke-dasharray="6 4"' if s.dash else ""
            out.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="2"{dash} points="'
                       + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        if len(pts) <= 60:  # markers, each with its value on hover
            for (a, b), (x, y) in zip(pts, s.points):
                out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{s.color}"><title>'
                           f'{escape(s.name)} · {escape(_("epoch"))} {x:g}: {y:.4g}</title></circle>')
    return out


def _text_width(text: str) -> float:
    """About how wide ``text`` is at 12 px: a CJK character is about twice a Latin one."""
    return sum(12.0 if ord(c) >= 0x2E80 else 6.5 for c in text)


def line_panels_svg(panels: Sequence[Panel], label: str) -> str:
    """Panels side by side with one shared legend below them; ``label`` is the image's accessible name.

    ``data-epochs`` lists the epochs the first series plots (what the browser tests read).
    """
    n = max(len(panels), 1)
    w = _W / n
    body: list[str] = []
    for i, p in enumerate(panels):
        body += _panel(p, i * w, w, _PANEL_H)
    legend: dict[str, Series] = {}
    for p in panels:
        for s in p.series:
            legend.setdefault(s.name, s)
    x, y = 20.0, _PANEL_H + 14
    for s in legend.values():
        width = 40 + _text_width(s.name)
        if x > 20 and x + width > _W:  # wrap the legend onto a new row
            x, y = 20.0, y + 18
        dash = ' stroke-dasharray="6 4"' if s.dash else ""
        body.append(f'<line x1="{x}" x2="{x + 24}" y1="{y}" y2="{y}" stroke="{s.color}" stroke-width="2"{dash}/>'
                    f'<text x="{x + 30}" y="{y + 4}" font-size="12" fill-opacity="0.8">{escape(s.name)}</text>')
        x += width
    height = y + 14
    first = panels[0].series[0].points if panels and panels[0].series else []
    epochs = ",".join(f"{x:g}" for x, _y in first)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height}" width="100%" role="img" '
            f'data-epochs="{epochs}" '
            f'aria-label="{escape(label)}" style="max-width:{_W * 1.25:.0f}px;color:inherit;font-family:inherit" '
            f'fill="currentColor">' + "".join(body) + "</svg>")


def _points(rows: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    return [(float(r["epoch"]), float(r[key])) for r in rows if r.get(key) is not None and math.isfinite(float(r[key]))]


def live_curves_svg(metrics: Sequence[dict[str, Any]], epochs: int | None = None) -> str:
    """Loss and accuracy per epoch, train and validation: the live form of ``charts.curves_figure``."""
    rows = cap_rows(metrics)
    planned = float(epochs or 0)
    head = [r["epoch"] for r in rows if r.get("phase") == "head"]
    marks = [(max(head) + 0.5, _("body unfreezes"))] if head and any(r.get("phase") == "body" for r in rows) else []
    panels = []
    for key, title, y_range in (("loss", _("Loss"), None), ("acc", _("Accuracy"), (0.0, 1.0))):
        train_name, val_name = (_(n) for n in CURVE_NAMES[key])
        panels.append(Panel(title, [
            Series(train_name, TRAIN_COLOR, _points(rows, f"train_{key}")),
            Series(val_name, VAL_COLOR, _points(rows, f"val_{key}"), dash=True),
        ], planned, y_range, marks=marks))
        marks = [(x, "") for x, _label in marks]  # the label once, top right of the line on the loss panel (clear of
        # a falling loss); accuracy climbs to the top, so its panel gets the line alone
    return line_panels_svg(panels, _("Loss and accuracy per epoch"))


def live_loss_parts_svg(metrics: Sequence[dict[str, Any]], epochs: int | None = None, weight: float | None = None) -> str:
    """A distillation's loss parts per epoch (log scale when they differ by more than 10×)."""
    rows = cap_rows(metrics)
    series = [Series(_(name), color, _points(rows, key)) for key, name, color in LOSS_PARTS]
    series = [s for s in series if s.points]
    vals = [y for s in series for _x, y in s.points]
    log = bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 10
    title = (_("Loss parts · loss = {ce:.2g}·CE + {kd:.2g}·KD").format(ce=1 - weight, kd=weight)
             if weight is not None else _("Loss parts"))
    return line_panels_svg([Panel(title, series, float(epochs or 0), log=log)], title)


def live_alpha_svg(metrics: Sequence[dict[str, Any]], names: Sequence[str], epochs: int | None = None) -> str:
    """The fusion weights α per epoch."""
    rows = [r for r in cap_rows(metrics) if r.get("alpha")]
    series = [Series(f"α{i + 1} {name}", PALETTE[i % len(PALETTE)],
                     [(float(r["epoch"]), float(r["alpha"][i])) for r in rows if i < len(r["alpha"])])
              for i, name in enumerate(names)]
    return line_panels_svg([Panel(_("Fusion weights α"), series, float(epochs or 0), (0.0, 1.0))], _("Fusion weights α"))
