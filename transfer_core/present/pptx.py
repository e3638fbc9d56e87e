"""The story as a PowerPoint deck (python-pptx): one 16:9 slide per step.

Numbers and sentences are real text (a presenter can still edit them in PowerPoint),
charts are PNGs of the very plotly figures the page shows (:mod:`.render`), the sample
grid and the top-loss gallery are the story's own PNGs, and each slide's speaker notes
carry the details: config, seeds, run ids.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path
from typing import Any, Callable, Sequence

from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.shapes import MSO_SHAPE
from pptx.enum.text import MSO_ANCHOR, PP_ALIGN
from pptx.util import Emu, Inches, Pt

from ..i18n import _
from ..runs_io import atomic_write_bytes
from .figures import build
from .render import render_pngs
from .story import Slide, Story

__all__ = ["pptx_bytes", "write_pptx", "SLIDE_W_IN", "SLIDE_H_IN", "PX_PER_IN"]

SLIDE_W_IN, SLIDE_H_IN = 13.333, 7.5
PX_PER_IN = 80  # charts are drawn at this many CSS pixels per inch of slide (x2 for sharpness): 17 px type is 15 pt
MARGIN = 0.6
INK, MUTED, ACCENT, LIGHT = RGBColor(0x0F, 0x17, 0x2A), RGBColor(0x47, 0x55, 0x69), RGBColor(0x25, 0x63, 0xEB), \
    RGBColor(0xEF, 0xF6, 0xFF)
FONT = "Calibri"
EA_FONT = "Microsoft YaHei"  # East-Asian text (PowerPoint's a:ea); LibreOffice substitutes a CJK font it has
CONTENT_TOP = 2.45
CONTENT_BOTTOM = 6.95

Renderer = Callable[[Sequence[Any], Sequence[tuple[int, int]]], list[bytes]]


# --------------------------------------------------------------------------- text helpers


def _ea(run: Any) -> None:
    """Name the East-Asian font of a run (``<a:ea typeface=...>``, after ``<a:latin>``), so PowerPoint sets
    Chinese in a CJK font; the Latin font stays as it is."""
    from pptx.oxml.ns import qn

    rpr = run._r.get_or_add_rPr()
    ea = rpr.find(qn("a:ea"))
    if ea is None:
        ea = rpr.makeelement(qn("a:ea"), {})
        latin = rpr.find(qn("a:latin"))
        if latin is not None:
            latin.addnext(ea)
        else:  # before the elements the schema puts after it
            later = [rpr.find(qn(t)) for t in ("a:cs", "a:sym", "a:hlinkClick", "a:hlinkMouseOver", "a:rtl", "a:extLst")]
            later = [e for e in later if e is not None]
            if later:
                later[0].addprevious(ea)
            else:
                rpr.append(ea)
    ea.set("typeface", EA_FONT)


def _ea_frame(tf: Any) -> None:
    """:func:`_ea` on every run of a text frame (the speaker notes)."""
    for p in tf.paragraphs:
        for run in p.runs:
            _ea(run)


def _cjk_lines(p: Any, text: str, size: float) -> None:
    """Chinese text: lines 1.2 times the type size apart (a CJK font's own line height, about 1.45 em, would
    push a slide's text out of its box); Latin text keeps the font's spacing."""
    if any(_wide(c) for c in text):
        p.line_spacing = Pt(size * 1.2)


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _ems(text: str, narrow: float) -> float:
    """The width of ``text`` in em: ``narrow`` per Latin character, 1 per Chinese (full-width) one."""
    wide = sum(1 for c in text if _wide(c))
    return narrow * (len(text) - wide) + wide


def _chars(text: str) -> float:
    """``len(text)`` with a Chinese character counted as the 1.7 Latin ones it is as wide as (for the budgets)."""
    wide = sum(1 for c in text if _wide(c))
    return len(text) + 0.7 * wide


def _text(slide: Any, x: float, y: float, w: float, h: float, text: str, size: int, bold: bool = False,
          color: RGBColor = INK, align: Any = PP_ALIGN.LEFT, anchor: Any = MSO_ANCHOR.TOP) -> Any:
    box = slide.shapes.add_textbox(Inches(x), Inches(y), Inches(w), Inches(h))
    tf = box.text_frame
    tf.word_wrap = True
    tf.vertical_anchor = anchor
    tf.margin_left = tf.margin_right = Inches(0.05)
    p = tf.paragraphs[0]
    p.alignment = align
    _cjk_lines(p, text, size)
    run = p.add_run()
    run.text = text
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.name = FONT
    run.font.color.rgb = color
    _ea(run)
    return box


def _size_for(text: str, sizes: Sequence[tuple[int, int]]) -> int:
    """The first font size whose length budget (characters) the text fits: [(max chars, pt), ...]."""
    n = _chars(text)
    for limit, pt in sizes:
        if n <= limit:
            return pt
    return sizes[-1][1]


def _title_pt(title: str, width_in: float = SLIDE_W_IN - 2 * MARGIN) -> int:
    """A title size that keeps it on one line where it can (20 pt at least, then two lines fit the box).

    Sized for a wide font (DejaVu Sans Bold, what LibreOffice shows where Calibri is missing: about
    0.7 em per character), so it fits in PowerPoint's narrower Calibri too."""
    return max(20, min(32, int(width_in * 72 / max(0.7, _ems(title, 0.7)))))  # bold: wider than 0.6 em


def _fit_pt(text: str, width_in: float, largest: int, smallest: int, bold: bool = False) -> int:
    """The largest size from ``largest`` down to ``smallest`` at which ``text`` fits one line of
    ``width_in`` inches (0.6 em per character, 0.66 bold: DejaVu Sans's width, wider than Calibri)."""
    em = 0.66 if bold else 0.6
    return max(smallest, min(largest, int(width_in * 72 / max(em, _ems(text, em)))))


def _bullets(slide: Any, x: float, y: float, w: float, h: float, items: Sequence[str], size: int) -> None:
    box = slide.shapes.add_textbox(Inches(x), Inches(y), Inches(w), Inches(h))
    tf = box.text_frame
    tf.word_wrap = True
    for i, item in enumerate(items):
        p = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
        p.space_after = Pt(size * 0.6)
        _cjk_lines(p, item, size)
        dot = p.add_run()
        dot.text = "•  "
        dot.font.size, dot.font.color.rgb, dot.font.name = Pt(size), ACCENT, FONT
        _ea(dot)
        r = p.add_run()
        r.text = item
        r.font.size, r.font.color.rgb, r.font.name = Pt(size), INK, FONT
        _ea(r)


def _picture(slide: Any, png: bytes, x: float, y: float, w: float, h: float) -> Any:
    """The PNG fitted inside the box (aspect kept), centred."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        pw, ph = im.size
    scale = min(w / pw, h / ph)
    dw, dh = pw * scale, ph * scale
    return slide.shapes.add_picture(io.BytesIO(png), Inches(x + (w - dw) / 2), Inches(y + (h - dh) / 2),
                                    Emu(int(Inches(dw))), Emu(int(Inches(dh))))


# --------------------------------------------------------------------------- layout


def _slots(slide: Slide) -> list[tuple[str, Any, tuple[float, float, float, float]]]:
    """Where each figure and picture of a slide goes: (kind, item, (x, y, w, h) in inches)."""
    top = CONTENT_TOP
    height = CONTENT_BOTTOM - top - (0.55 if slide.bullets and slide.id != "answer" else 0.0)
    full = SLIDE_W_IN - 2 * MARGIN
    items: list[tuple[str, Any]] = [("figure", f) for f in slide.figures] + [("picture", p) for p in slide.pictures]
    if slide.id == "data" and slide.pictures:  # the sample grid left, the counts right
        items = [("picture", p) for p in slide.pictures] + [("figure", f) for f in slide.figures]
    if not items:
        return []
    if len(items) == 1:
        return [(items[0][0], items[0][1], (MARGIN, top, full, height))]
    gap = 0.35
    first = {"fails": 0.42, "data": 0.42, "evidence": 0.62}.get(slide.id, 0.5)
    if items[0][0] == "figure" and items[0][1].get("share"):  # a figure that says how much room it wants
        first = float(items[0][1]["share"])
    w1 = (full - gap) * first
    w2 = full - gap - w1
    out = [(items[0][0], items[0][1], (MARGIN, top, w1, height)),
           (items[1][0], items[1][1], (MARGIN + w1 + gap, top, w2, height))]
    return out


def _chrome(s: Any, slide: Slide, index: int, total: int, story: Story) -> None:
    """Step label, title and lead; the footer."""
    _text(s, MARGIN, 0.28, 8.0, 0.35, f"{index} / {total} · {slide.step.upper()}", 12, bold=True, color=ACCENT)
    title = slide.title
    _text(s, MARGIN, 0.6, SLIDE_W_IN - 2 * MARGIN, 1.05, title, _title_pt(title), bold=True)
    if slide.lead:
        _text(s, MARGIN, 1.62, SLIDE_W_IN - 2 * MARGIN, 0.8, slide.lead,
              _size_for(slide.lead, [(95, 18), (180, 16), (220, 14), (10**6, 12)]), color=MUTED)
    _text(s, MARGIN, 7.05, 9.0, 0.3, story.subtitle, 10, color=MUTED)
    _text(s, SLIDE_W_IN - MARGIN - 1.5, 7.05, 1.5, 0.3, f"{index} / {total}", 10, color=MUTED, align=PP_ALIGN.RIGHT)


def _question(s: Any, slide: Slide, story: Story) -> None:
    band = s.shapes.add_shape(MSO_SHAPE.RECTANGLE, 0, 0, Inches(SLIDE_W_IN), Inches(SLIDE_H_IN))
    band.fill.solid()
    band.fill.fore_color.rgb = RGBColor(0x1E, 0x3A, 0x8A)
    band.line.fill.background()
    white = RGBColor(0xFF, 0xFF, 0xFF)
    _text(s, MARGIN + 0.2, 0.9, 10.0, 0.4, _("The question").upper(), 14, bold=True, color=RGBColor(0xBF, 0xDB, 0xFE))
    _text(s, MARGIN + 0.2, 1.5, SLIDE_W_IN - 2 * MARGIN - 0.4, 3.2, slide.title,
          _size_for(slide.title, [(60, 44), (100, 38), (150, 32), (10**6, 26)]), bold=True, color=white,
          anchor=MSO_ANCHOR.MIDDLE)
    if slide.lead:
        _text(s, MARGIN + 0.2, 4.9, SLIDE_W_IN - 2 * MARGIN - 0.4, 1.3, slide.lead,
              _size_for(slide.lead, [(140, 18), (240, 15), (10**6, 13)]), color=RGBColor(0xDB, 0xEA, 0xFE))
    _text(s, MARGIN + 0.2, 6.7, 12.0, 0.4, story.subtitle, 12, color=RGBColor(0xBF, 0xDB, 0xFE))


def _numbers(s: Any, slide: Slide) -> float:
    """The answer's numbers as cards: the headline large, its baseline and the spread beside it."""
    nums = slide.numbers[:3]
    if not nums:
        return CONTENT_TOP
    gap = 0.3
    full = SLIDE_W_IN - 2 * MARGIN
    weights = [1.25 if n.role == "headline" else 1.0 for n in nums]
    unit = (full - gap * (len(nums) - 1)) / sum(weights)
    x = MARGIN
    top, h = CONTENT_TOP + 0.1, 2.3
    for n, wt in zip(nums, weights):
        w = unit * wt
        card = s.shapes.add_shape(MSO_SHAPE.ROUNDED_RECTANGLE, Inches(x), Inches(top), Inches(w), Inches(h))
        card.adjustments[0] = 0.08
        card.fill.solid()
        card.fill.fore_color.rgb = LIGHT if n.role == "headline" else RGBColor(0xF8, 0xFA, 0xFC)
        card.line.color.rgb = ACCENT if n.role == "headline" else RGBColor(0xE2, 0xE8, 0xF0)
        inner = w - 0.4
        label = n.label.upper()
        _text(s, x + 0.2, top + 0.1, inner, 0.55, label, _fit_pt(label, inner, 13, 10, bold=True), bold=True,
              color=MUTED)
        size = _fit_pt(n.value, inner, 60 if n.role == "headline" else 40, 20, bold=True)
        _text(s, x + 0.2, top + 0.62, inner, 1.05, n.value, size, bold=True,
              color=ACCENT if n.role == "headline" else INK, anchor=MSO_ANCHOR.MIDDLE)
        if n.sub:
            _text(s, x + 0.2, top + 1.72, inner, 0.5, n.sub, _fit_pt(n.sub, inner * 2, 12, 9), color=MUTED)
        x += w + gap
    return top + h + 0.25


def _notes_text(slide: Slide, story: Story) -> str:
    parts = [slide.lead] if slide.lead else []
    parts += [_("{label}: {value} ({sub})").format(label=n.label, value=n.value, sub=n.sub) if n.sub else
              _("{label}: {value}").format(label=n.label, value=n.value) for n in slide.numbers]
    parts += [f"• {b}" for b in slide.bullets]
    parts += [f["caption"] for f in slide.figures if f.get("caption")]
    parts += [p.caption for p in slide.pictures if p.caption]
    if slide.notes:
        parts.append(slide.notes)
    if slide.id == "takeaways":
        parts.append(_("Subject: {subject}. Computed takeaways: {takeaways}").format(
            subject=story.subject, takeaways=" | ".join(story.computed_takeaways)))
    return "\n\n".join(parts)


def _figure_jobs(story: Story) -> tuple[list[Any], list[tuple[int, int]], dict[tuple[int, int], int]]:
    """Every chart of the deck with its size in pixels, in one list for one renderer call."""
    figs, sizes, where = [], [], {}
    for si, slide in enumerate(story.slides):
        for kind, item, (x, y, w, h) in _slots(slide):
            if kind != "figure":
                continue
            px = (int(w * PX_PER_IN), int(h * PX_PER_IN))
            fig = build(item, slide=True, height=px[1])
            if fig is None:
                continue
            fig.update_layout(width=px[0], height=px[1])
            where[(si, id(item))] = len(figs)
            figs.append(fig)
            sizes.append(px)
    return figs, sizes, where


def pptx_bytes(story: Story, render: Renderer | None = None) -> bytes:
    """The deck as .pptx bytes. ``render`` draws the charts (default: :func:`.render.render_pngs`);
    it raises :class:`~.render.RenderError` with one line when that fails."""
    figs, sizes, where = _figure_jobs(story)
    pngs = (render or render_pngs)(figs, sizes) if figs else []
    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(SLIDE_W_IN), Inches(SLIDE_H_IN)
    blank = prs.slide_layouts[6]
    total = len(story.slides)
    for si, slide in enumerate(story.slides):
        s = prs.slides.add_slide(blank)
        s.name = slide.id
        if slide.id == "question":
            _question(s, slide, story)
        else:
            _chrome(s, slide, si + 1, total, story)
        y_after = CONTENT_TOP
        if slide.id == "answer":
            y_after = _numbers(s, slide)
        for kind, item, (x, y, w, h) in _slots(slide):
            if kind == "figure":
                k = where.get((si, id(item)))
                if k is not None:
                    _picture(s, pngs[k], x, y, w, h)
            else:
                _picture(s, item.png, x, y, w, h)
        if slide.bullets:
            if slide.id == "takeaways":
                has_notes = bool(story.presenter_notes.strip())
                _bullets(s, MARGIN, CONTENT_TOP - 0.3, SLIDE_W_IN - 2 * MARGIN, 3.0 if has_notes else 4.4,
                         slide.bullets, 20 if sum(map(_chars, slide.bullets)) < 500 else 16)
                if has_notes:
                    _text(s, MARGIN, 5.2, 6.0, 0.35, _("Presenter's notes").upper(), 12, bold=True, color=ACCENT)
                    _text(s, MARGIN, 5.55, SLIDE_W_IN - 2 * MARGIN, 1.4, story.presenter_notes,
                          _size_for(story.presenter_notes, [(200, 16), (400, 14), (10**6, 12)]), color=INK)
            elif slide.id == "answer":
                _bullets(s, MARGIN, y_after, SLIDE_W_IN - 2 * MARGIN, CONTENT_BOTTOM - y_after, slide.bullets,
                         16 if sum(map(_chars, slide.bullets)) < 300 else 13)
            else:
                _bullets(s, MARGIN, CONTENT_BOTTOM - 0.5, SLIDE_W_IN - 2 * MARGIN, 0.55, slide.bullets[:2],
                         13 if sum(map(_chars, slide.bullets[:2])) < 160 else 11)
        elif slide.id == "takeaways" and story.presenter_notes.strip():
            _text(s, MARGIN, CONTENT_TOP, SLIDE_W_IN - 2 * MARGIN, 3.0, story.presenter_notes, 18)
        s.notes_slide.notes_text_frame.text = _notes_text(slide, story)
        _ea_frame(s.notes_slide.notes_text_frame)
    core = prs.core_properties
    core.title = story.title[:250]
    core.subject = story.subject[:250]
    core.author = "Transfer Lab"
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


def write_pptx(story: Story, path: str | Path, render: Renderer | None = None) -> Path:
    """Write the deck to ``path`` (atomically) and return it."""
    path = Path(path)
    atomic_write_bytes(path, pptx_bytes(story, render))
    return path
