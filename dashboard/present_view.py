"""The Present page's Streamlit side: the cached story, one slide drawn large, keys, edits and decks.

The story itself (slides as plain data) is :mod:`transfer_core.present.story`; this module
only draws it. Figures come from :func:`transfer_core.present.figures.build`, the same
function the decks use, so what the room sees is what the file holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import streamlit as st

from transfer_core.i18n import _, language, use_language
from transfer_core.present.figures import build
from transfer_core.present.notes import load_notes, save_notes
from transfer_core.present.story import Slide, Story, apply_notes, build_story
from transfer_core.present.subject import Subject

__all__ = ["CSS", "KEYS_JS", "story_for", "stamp", "draw_slide", "edit_form", "deck_buttons", "md", "widget_suffix"]

ss = st.session_state

# Large type for a room: scoped to the slide's container, so the rest of the page keeps its look.
CSS = """<style>
.st-key-present_slide h1{font-size:2.9rem!important;line-height:1.15!important;padding-top:.2rem!important}
.st-key-present_slide .stMarkdown p,.st-key-present_slide .stMarkdown li{font-size:1.35rem;line-height:1.45}
.st-key-present_lead .stMarkdown p{font-size:1.45rem!important;color:#475569}
.st-key-present_step .stMarkdown p{font-size:1rem!important;letter-spacing:.06em;font-weight:700}
.st-key-present_slide [data-testid="stMetricValue"]{font-size:3.4rem!important;line-height:1.1}
.st-key-present_slide [data-testid="stMetricLabel"] p{font-size:1.05rem!important;text-transform:uppercase;letter-spacing:.04em}
.st-key-present_numbers [data-testid="stColumn"]:first-child [data-testid="stMetricValue"]{color:#2563eb;font-size:4.4rem!important}
.st-key-present_question{background:linear-gradient(135deg,#1e3a8a,#2563eb);border-radius:18px;padding:9vh 4vw 8vh}
.st-key-present_question h1{color:#fff!important;font-size:3.3rem!important}
.st-key-present_question .stMarkdown p{color:#dbeafe!important}
.st-key-present_slide [data-testid="stCaptionContainer"] p,.st-key-present_slide [data-testid="stImageCaption"]{font-size:.95rem!important}
</style>"""

# ← → step through the slides: click the page's own Back / Next buttons (so the URL, the
# session and a reload all agree). st.html runs this in the app's document, once per tab.
KEYS_JS = """<script>
(function () {
  if (window.__transferLabPresentKeys) return;
  window.__transferLabPresentKeys = true;
  document.addEventListener('keydown', function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    var t = e.target;
    if (t && t.closest && t.closest('input, textarea, select, [contenteditable="true"], [role="combobox"], [role="slider"]')) return;
    var key = (e.key === 'ArrowRight' || e.key === 'PageDown') ? 'present_next'
            : (e.key === 'ArrowLeft' || e.key === 'PageUp') ? 'present_back' : null;
    if (!key) return;
    var btn = document.querySelector('.st-key-' + key + ' button');
    if (btn && !btn.disabled) { e.preventDefault(); btn.click(); }
  });
})();
</script>"""

_MD_SPECIAL = "\\`*_{}[]<>#+-!|$~"


def md(text: str) -> str:
    """Text shown as-is by st.markdown (titles and takeaways are typed by people: no markup, no LaTeX)."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in str(text))


def widget_suffix(subject_key: str) -> str:
    """Widget keys per subject: another subject's text must not stay in this one's boxes."""
    return hashlib.sha1(subject_key.encode()).hexdigest()[:8]


def stamp(subject: Subject) -> tuple[int, ...]:
    """What changes when the subject's results change (file times): the story cache's key."""
    if subject.kind == "sweep":
        folder = Path(subject.refs[0])
        paths = [folder / "trials.csv", folder / "summary.csv", folder / "state.json"]
    else:
        paths = []
        for rid in subject.refs:
            d = subject.runs_root / rid
            paths += [d / "status.json", d / "metrics.jsonl", d / "confusion.json", d / "checkpoint.pt"]
    out = []
    for p in paths:
        try:
            out.append(p.stat().st_mtime_ns)
        except OSError:
            out.append(0)
    return tuple(out)


@st.cache_data(show_spinner=False, max_entries=8)
def _story(key: str, runs_root: str, _stamp: tuple[int, ...], lang: str) -> Story:  # noqa: ARG001 - _stamp keys the cache
    """The story in ``lang`` (an argument: the cache keeps one story per language)."""
    with use_language(lang):
        return build_story(key, runs_root, with_notes=False)


def story_for(subject: Subject) -> Story:
    """The subject's story (cached until its files change) with the presenter's saved edits."""
    base = _story(subject.key, str(subject.runs_root), stamp(subject), language())
    return apply_notes(base, load_notes(subject.folder))


def _figure(spec: dict[str, Any], key: str) -> None:
    fig = build(spec, slide=True)
    if fig is not None:
        # theme=None: the figure's own slide styling (larger type), as in the decks
        st.plotly_chart(fig, key=key, config={"displayModeBar": False}, theme=None)
        if spec.get("caption"):
            st.caption(md(spec["caption"]))


def _picture(pic: Any) -> None:
    st.image(pic.png, caption=pic.caption or None, width="stretch")


def draw_slide(story: Story, index: int) -> Slide:
    """Slide ``index`` (1-based), full width and large."""
    slide = story.slides[index - 1]
    total = len(story.slides)
    with st.container(key="present_slide"):
        if slide.id == "question":
            with st.container(key="present_question"):
                st.markdown(_("**THE QUESTION** · {index} / {total}").format(index=index, total=total))
                st.title(md(slide.title), anchor=False)
                if slide.lead:
                    st.markdown(md(slide.lead))
            return slide
        with st.container(key="present_step"):
            st.markdown(f":blue[{index} / {total} · {slide.step.upper()}]")
        st.title(md(slide.title), anchor=False)
        if slide.lead:
            with st.container(key="present_lead"):
                st.markdown(md(slide.lead))
        if slide.numbers:
            with st.container(key="present_numbers"):
                cols = st.columns([1.25] + [1.0] * (len(slide.numbers) - 1), gap="large")
                for col, n in zip(cols, slide.numbers):
                    with col:
                        st.metric(n.label, n.value, border=True)
                        if n.sub:
                            st.caption(md(n.sub))
        if slide.id == "takeaways":
            if slide.bullets:
                st.markdown("\n".join(f"- {md(b)}" for b in slide.bullets))
            if story.presenter_notes.strip():
                st.info(md(story.presenter_notes), icon=":material/record_voice_over:")
            return slide
        figures = [("figure", f) for f in slide.figures]
        pictures = [("picture", p) for p in slide.pictures]
        items = pictures + figures if slide.id == "data" else figures + pictures
        if items:
            widths = {"evidence": [0.62, 0.38], "fails": [0.42, 0.58], "data": [0.45, 0.55]}.get(slide.id, [0.5, 0.5])
            share = items[0][1].get("share") if items[0][0] == "figure" else None
            if share:  # the same split as the decks
                widths = [float(share), 1 - float(share)]
            cols = st.columns(widths if len(items) > 1 else [1], gap="large")
            for k, (col, (kind, item)) in enumerate(zip(cols, items)):
                with col:
                    if kind == "figure":
                        _figure(item, f"present_fig_{slide.id}_{k}")
                    else:
                        _picture(item)
        if slide.bullets:
            st.markdown("\n".join(f"- {md(b)}" for b in slide.bullets))
    return slide


def _save(story: Story, slide: Slide, suffix: str, reset: bool = False) -> None:
    """Form callback (runs before the rerun draws, so the slide shows what was saved)."""
    tkey, bkey, nkey = f"present_title_{suffix}_{slide.id}", f"present_take_{suffix}", f"present_notes_{suffix}"
    if reset:
        save_notes(story.folder, story.subject, titles={slide.id: ""},
                   reset_takeaways=slide.id == "takeaways", notes="" if slide.id == "takeaways" else None)
        for k in (tkey, bkey, nkey):
            ss.pop(k, None)
        ss["present_saved"] = _("Back to the computed text.")
        return
    title = str(ss.get(tkey, "")).strip()
    titles = {slide.id: "" if title == slide.computed_title else title}
    takeaways, notes = None, None
    if slide.id == "takeaways":
        lines = [ln.strip().lstrip("•-* ").strip() for ln in str(ss.get(bkey, "")).splitlines()]
        lines = [ln for ln in lines if ln]
        takeaways = lines
        notes = str(ss.get(nkey, ""))
    reset_take = slide.id == "takeaways" and takeaways == story.computed_takeaways
    save_notes(story.folder, story.subject, titles=titles, takeaways=None if reset_take else takeaways,
               notes=notes, reset_takeaways=reset_take)
    ss["present_saved"] = _("Saved with the subject ({file}): the decks use it too.").format(
        file=f"{Path(story.folder).name}/present.json")


def edit_form(story: Story, slide: Slide, suffix: str) -> None:
    """Edit this slide's title (and, on the last slide, the takeaways and the presenter's notes)."""
    with st.expander(_("Edit this slide"), icon=":material/edit:"):
        with st.form(key=f"present_edit_{suffix}_{slide.id}", border=False):
            st.text_input(_("Title"), value=slide.title, key=f"present_title_{suffix}_{slide.id}")
            if slide.id == "takeaways":
                st.text_area(_("Takeaways, one per line"), value="\n".join(slide.bullets), height=180,
                             key=f"present_take_{suffix}")
                st.text_area(_("Your notes (shown under the takeaways)"), value=story.presenter_notes, height=100,
                             key=f"present_notes_{suffix}")
            c = st.columns([1, 1, 4])
            c[0].form_submit_button(_("Save"), key="present_save", type="primary", icon=":material/save:",
                                    on_click=_save, args=(story, slide, suffix))
            c[1].form_submit_button(_("Back to computed"), key="present_reset", icon=":material/undo:",
                                    on_click=_save, args=(story, slide, suffix, True))
        if ss.get("present_saved"):
            st.caption(ss.pop("present_saved"))


def deck_buttons(story: Story) -> None:
    """Build a deck (saved in the subject's folder too), then offer it for download."""
    from transfer_core.present.decks import MIME, write_deck
    from transfer_core.present.render import RenderError

    version = (story.subject, tuple(s.title for s in story.slides), tuple(story.slides[-1].bullets),
               story.presenter_notes)
    cols = st.columns(2)
    labels = {"pptx": (_("Download PowerPoint (.pptx)"), _("Build PowerPoint (.pptx)")),
              "html": (_("Download HTML deck (one offline file)"), _("Build HTML deck (one offline file)"))}
    for col, fmt in zip(cols, ("pptx", "html")):
        download, build_label = labels[fmt]
        with col:
            held = ss.get(f"present_deck_{fmt}")
            if held and held[0] == version:
                st.download_button(download, data=held[1], file_name=held[2], mime=MIME[fmt],
                                   key=f"present_dl_{fmt}", icon=":material/download:", type="primary")
                continue
            if st.button(build_label, key=f"present_build_{fmt}", icon=":material/slideshow:"):
                try:
                    with st.spinner(_("Drawing the charts and writing the deck…") if fmt == "pptx"
                                    else _("Writing the deck…")):
                        path = write_deck(story, fmt)
                except (RenderError, ValueError) as exc:
                    st.error(str(exc).splitlines()[0], icon=":material/error:")
                else:
                    ss[f"present_deck_{fmt}"] = (version, path.read_bytes(), f"{_slug(story)}.{fmt}")
                    st.rerun()


def _slug(story: Story) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_-]+", "-", story.subject.replace(":", "-")).strip("-")[:60] or "deck"
