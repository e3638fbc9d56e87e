"""The story as one self-contained HTML deck: no network needed to open it, the arrow keys step through it.

plotly.js is inlined once (with the first chart), pictures are inline base64 PNGs, and the
charts are the very plotly figures the page shows, still interactive (hover for values).
Keys: ← → (also Page Up/Down, space) step, Home/End jump, N shows the speaker notes; the
slide number is in the address (``deck.html#3``), so a link opens that slide.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from ..i18n import _, language
from ..runs_io import atomic_write_text
from .figures import build
from .story import Slide, Story

__all__ = ["html_deck", "write_html_deck", "html_lang"]

_CSS = """
*{box-sizing:border-box}
html,body{margin:0;height:100%;background:#0f172a;color:#0f172a;
 font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,"Noto Sans CJK SC","PingFang SC",
 "Microsoft YaHei",sans-serif}
#deck{position:fixed;left:0;right:0;top:0;bottom:46px}
section.slide{display:none;position:absolute;inset:0;background:#fff;padding:3vh 4vw 2vh;flex-direction:column;overflow:hidden}
section.slide.active{display:flex}
.step{color:#2563eb;font-weight:700;letter-spacing:.06em;font-size:clamp(12px,1.3vw,18px);text-transform:uppercase}
h1{font-size:clamp(22px,3vw,46px);line-height:1.15;margin:.25em 0 .2em}
.lead{font-size:clamp(14px,1.55vw,24px);color:#475569;margin:0 0 1.2vh;line-height:1.35}
.content{flex:1;display:flex;gap:2vw;min-height:0}
.content>figure{flex:1;min-width:0;min-height:0;margin:0;display:flex;flex-direction:column}
.content>figure.wide{flex:1.35}
figure .plot{position:relative;flex:1;min-height:0}
figure .plot>div{position:absolute;inset:0}
figure img{flex:1;min-height:0;width:100%;object-fit:contain}
figcaption{font-size:clamp(11px,1vw,15px);color:#64748b;text-align:center;margin-top:.4vh}
ul.points{margin:.6vh 0 0;padding-left:1.2em;font-size:clamp(13px,1.35vw,21px);line-height:1.4}
ul.points li{margin:.3vh 0}
.cards{display:flex;gap:1.6vw;margin:1vh 0 2vh}
.card{flex:1;border:2px solid #e2e8f0;background:#f8fafc;border-radius:16px;padding:1.6vh 1.4vw}
.card.headline{flex:1.25;border-color:#2563eb;background:#eff6ff}
.card .label{font-size:clamp(11px,1.1vw,17px);font-weight:700;text-transform:uppercase;letter-spacing:.04em;color:#64748b}
.card .value{font-size:clamp(30px,5.2vw,88px);font-weight:800;line-height:1.1;margin:.6vh 0}
.card.headline .value{color:#2563eb}
.card:not(.headline) .value{font-size:clamp(24px,3.6vw,60px)}
.card .sub{font-size:clamp(11px,1vw,16px);color:#64748b}
section.q{background:linear-gradient(135deg,#1e3a8a,#2563eb);color:#fff;justify-content:center;padding:6vh 8vw}
section.q .step{color:#bfdbfe}
section.q h1{font-size:clamp(28px,4.4vw,68px)}
section.q .lead{color:#dbeafe}
section.q .foot{position:absolute;bottom:3vh;left:8vw;color:#bfdbfe;font-size:clamp(11px,1vw,15px)}
ul.take{font-size:clamp(16px,2vw,30px);line-height:1.4;padding-left:1.2em}
ul.take li{margin:1.2vh 0}
.mine{border-left:5px solid #2563eb;background:#eff6ff;padding:1.2vh 1.4vw;border-radius:8px;
 font-size:clamp(14px,1.5vw,22px);white-space:pre-wrap}
.mine b{display:block;font-size:.7em;color:#2563eb;text-transform:uppercase;letter-spacing:.05em}
aside.notes{display:none}
body.notes aside.notes{display:block;position:absolute;left:0;right:0;bottom:0;max-height:38%;overflow:auto;
 background:#0f172a;color:#e2e8f0;font-size:13px;padding:10px 16px;white-space:pre-wrap;opacity:.96}
nav{position:fixed;left:0;right:0;bottom:0;height:46px;display:flex;align-items:center;gap:14px;padding:0 16px;
 color:#cbd5e1;font-size:14px}
nav button{background:#1e293b;color:#fff;border:1px solid #334155;border-radius:8px;padding:6px 16px;font-size:15px;cursor:pointer}
nav button:disabled{opacity:.4;cursor:default}
nav .title{flex:1;text-align:right;opacity:.7;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
"""

_JS = """
(function () {
  var slides = Array.prototype.slice.call(document.querySelectorAll('section.slide'));
  var prev = document.getElementById('prev'), next = document.getElementById('next');
  var count = document.getElementById('count'), cur = -1;
  function fromHash() {
    var n = parseInt((location.hash || '').replace('#', ''), 10);
    return isNaN(n) ? 0 : n - 1;
  }
  function show(i) {
    i = Math.max(0, Math.min(slides.length - 1, i));
    if (i === cur) return;
    cur = i;
    slides.forEach(function (s, k) { s.classList.toggle('active', k === i); s.setAttribute('aria-hidden', k === i ? 'false' : 'true'); });
    count.textContent = (i + 1) + ' / ' + slides.length;
    prev.disabled = i === 0; next.disabled = i === slides.length - 1;
    document.body.setAttribute('data-slide', String(i + 1));
    if (fromHash() !== i) {
      try { history.replaceState(null, '', '#' + (i + 1)); } catch (e) { location.hash = '#' + (i + 1); }
    }
    if (window.Plotly) {
      slides[i].querySelectorAll('.js-plotly-plot').forEach(function (p) { window.Plotly.Plots.resize(p); });
    }
  }
  document.addEventListener('keydown', function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'ArrowRight' || e.key === 'PageDown' || e.key === ' ') { show(cur + 1); e.preventDefault(); }
    else if (e.key === 'ArrowLeft' || e.key === 'PageUp') { show(cur - 1); e.preventDefault(); }
    else if (e.key === 'Home') { show(0); e.preventDefault(); }
    else if (e.key === 'End') { show(slides.length - 1); e.preventDefault(); }
    else if (e.key === 'n' || e.key === 'N') { document.body.classList.toggle('notes'); }
  });
  prev.addEventListener('click', function () { show(cur - 1); });
  next.addEventListener('click', function () { show(cur + 1); });
  window.addEventListener('hashchange', function () { show(fromHash()); });
  window.addEventListener('resize', function () { var c = cur; cur = -1; show(c); });
  show(fromHash());
})();
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


class _Charts:
    """Chart HTML with plotly.js inlined exactly once (with the first chart)."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, spec: dict[str, Any], div_id: str) -> str:
        fig = build(spec, slide=True)
        if fig is None:
            return ""
        fig.update_layout(height=None, width=None, autosize=True)
        out = fig.to_html(full_html=False, include_plotlyjs=self.count == 0, div_id=div_id,
                          config={"displayModeBar": False, "responsive": True}, default_width="100%",
                          default_height="100%")
        self.count += 1
        return out


def _png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _slide_html(slide: Slide, index: int, total: int, story: Story, charts: _Charts) -> str:
    sid = f"slide-{index}"
    notes = f"<aside class='notes'>{_esc(slide.notes)}</aside>" if slide.notes else ""
    if slide.id == "question":
        return (f"<section class='slide q' id='{sid}' data-id='{slide.id}'><div class='step'>{_esc(slide.step)}</div>"
                f"<h1>{_esc(slide.title)}</h1><p class='lead'>{_esc(slide.lead)}</p>"
                f"<div class='foot'>{_esc(story.subtitle)}</div>{notes}</section>")
    out = [f"<section class='slide' id='{sid}' data-id='{slide.id}'>",
           f"<div class='step'>{index} / {total} · {_esc(slide.step)}</div><h1>{_esc(slide.title)}</h1>"]
    if slide.lead:
        out.append(f"<p class='lead'>{_esc(slide.lead)}</p>")
    if slide.numbers:
        out.append("<div class='cards'>" + "".join(
            f"<div class='card {n.role}'><div class='label'>{_esc(n.label)}</div><div class='value'>{_esc(n.value)}</div>"
            f"<div class='sub'>{_esc(n.sub)}</div></div>" for n in slide.numbers) + "</div>")
    if slide.id == "takeaways":
        if slide.bullets:
            out.append("<ul class='take'>" + "".join(f"<li>{_esc(b)}</li>" for b in slide.bullets) + "</ul>")
        if story.presenter_notes.strip():
            mine = _esc(_("Presenter's notes"))
            out.append(f"<div class='mine'><b>{mine}</b>{_esc(story.presenter_notes)}</div>")
        out.append(notes + "</section>")
        return "".join(out)
    items: list[str] = []
    pictures = [(p.caption, f"<img alt='{_esc(p.caption or p.kind)}' src='{_png(p.png)}'>", p.kind) for p in slide.pictures]
    figures = []
    for k, spec in enumerate(slide.figures):
        chart = charts.html(spec, f"{sid}-fig{k}")
        if chart:
            figures.append((spec.get("caption", ""), f"<div class='plot'>{chart}</div>", spec.get("kind", "")))
    ordered = pictures + figures if slide.id == "data" else figures + pictures
    shares = [spec.get("share") for spec in slide.figures]
    for k, (caption, body, kind) in enumerate(ordered):
        wide = " wide" if (slide.id == "fails" and kind == "top_losses") or (slide.id == "data" and kind == "samples") else ""
        share = shares[0] if k == 0 and shares and slide.id not in ("data",) and len(ordered) > 1 else None
        style = f" style='flex:{float(share) / (1 - float(share)):.2f}'" if share else ""
        items.append(f"<figure class='{kind}{wide}'{style}>{body}<figcaption>{_esc(caption)}</figcaption></figure>")
    if items:
        out.append("<div class='content'>" + "".join(items) + "</div>")
    if slide.bullets:
        out.append("<ul class='points'>" + "".join(f"<li>{_esc(b)}</li>" for b in slide.bullets) + "</ul>")
    out.append(notes + "</section>")
    return "".join(out)


def html_deck(story: Story) -> str:
    """The deck as one HTML string (open it in any browser, offline)."""
    charts = _Charts()
    total = len(story.slides)
    body = "\n".join(_slide_html(s, i + 1, total, story, charts) for i, s in enumerate(story.slides))
    back, back_tip = _esc(_("← Back")), _esc(_("Back (←)"))
    fwd, fwd_tip = _esc(_("Next →")), _esc(_("Next (→)"))
    keys = _esc(_("← → to step · N: speaker notes"))
    return (
        f"<!DOCTYPE html><html lang='{html_lang()}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_esc(story.title)}</title><link rel='icon' href='data:,'><style>{_CSS}</style></head>"
        f"<body data-slide='1'><main id='deck'>{body}</main>"
        f"<nav><button id='prev' title='{back_tip}'>{back}</button><span id='count'></span>"
        f"<button id='next' title='{fwd_tip}'>{fwd}</button>"
        f"<span class='title'>{_esc(story.subtitle)} · {keys}</span></nav>"
        f"<script>{_JS}</script></body></html>"
    )


def html_lang() -> str:
    """The ``lang`` of an HTML page in the current language (``zh-CN`` or ``en``)."""
    return "zh-CN" if language() == "zh" else "en"


def write_html_deck(story: Story, path: str | Path) -> Path:
    """Write the deck to ``path`` (atomically) and return it."""
    path = Path(path)
    atomic_write_text(path, html_deck(story))
    return path
