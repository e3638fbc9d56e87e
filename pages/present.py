"""Present: a run, a comparison, an experiment or a distillation as a short story, one slide at a time.

The subject and the slide are in the URL (``/present?subject=run:<id>&slide=3``), so a
reload or a shared link opens the same slide. Back / Next and the ← → keys step. Titles,
takeaways and the presenter's notes are edited here and saved with the subject; the
PowerPoint and HTML decks (built here or with ``python -m transfer_core present``) say
the same. The story is :mod:`transfer_core.present.story`; drawing it is
:mod:`dashboard.present_view`.
"""

from __future__ import annotations

import streamlit as st

from dashboard import present_view as pv
from dashboard.formatting import run_option
from dashboard.state import run_store
from transfer_core.i18n import N_, _
from transfer_core.present.subject import parse_subject
from transfer_core.sweeps.folder import sweep_folders

st.set_page_config(initial_sidebar_state="collapsed")
st.html(pv.CSS)
st.html(pv.KEYS_JS, unsafe_allow_javascript=True)

ss = st.session_state
KINDS = {"run": N_("One run"), "compare": N_("Compare runs"), "sweep": N_("Experiment"), "distill": N_("Distillation")}

store = run_store()
summaries = [s for s in store.list() if s.epochs_done > 0]
sweeps = {p.name: p for p in sweep_folders(store.root)}
if not summaries and not sweeps:
    st.title(_("Present"))
    st.info(_("Nothing to present yet: train a run (Train page) or an experiment (Experiments page) first."),
            icon=":material/info:")
    st.stop()
by_id = {s.id: s for s in summaries}
distills = [s.id for s in summaries if s.method == "distill"]
singles = [s.id for s in summaries if s.method != "distill"]


def _to_widgets(key: str) -> None:
    """Point the pickers at the subject a link names (once per link)."""
    try:
        subj = parse_subject(key, store.root)
    except ValueError as exc:
        st.error(_("Cannot open this subject: {error}").format(error=str(exc).splitlines()[0]), icon=":material/error:")
        return
    ss["present_kind"] = subj.kind
    if subj.kind == "compare":
        ss["present_runs"] = [r for r in subj.refs if r in by_id]
    elif subj.kind == "sweep":
        ss["present_sweep"] = subj.key.split(":", 1)[1]
    elif subj.kind == "distill":
        ss["present_distill"] = subj.refs[0]
    else:
        ss["present_run"] = subj.refs[0]


def _reset_slide() -> None:
    st.query_params["slide"] = "1"


def _go(n: int) -> None:
    st.query_params["slide"] = str(n)


url_subject = st.query_params.get("subject")
if url_subject and ss.get("_present_link") != url_subject:
    ss["_present_link"] = url_subject
    _to_widgets(url_subject)

with st.expander(_("Subject and decks"), icon=":material/tune:", expanded=not url_subject):
    kind = st.radio(_("Present"), list(KINDS), key="present_kind", format_func=lambda k: _(KINDS[k]), horizontal=True,
                    on_change=_reset_slide)
    key = None
    if kind == "run":
        if singles:
            if ss.get("present_run") not in singles:
                ss["present_run"] = singles[0]
            rid = st.selectbox(_("Run"), singles, key="present_run", format_func=lambda r: run_option(by_id[r]),
                               on_change=_reset_slide)
            key = f"run:{rid}"
        else:
            st.caption(_("No run has finished an epoch yet."))
    elif kind == "compare":
        if "present_runs" not in ss:
            ss["present_runs"] = [s.id for s in summaries if s.state == "completed"][:3]
        ss["present_runs"] = [r for r in ss["present_runs"] if r in by_id]
        picked = st.multiselect(_("Runs"), list(by_id), key="present_runs", format_func=lambda r: run_option(by_id[r]),
                                on_change=_reset_slide, placeholder=_("Choose two runs or more"))
        key = "runs:" + ",".join(picked) if len(picked) >= 2 else None
        if key is None:
            st.caption(_("Choose two runs or more."))
    elif kind == "sweep":
        if sweeps:
            if ss.get("present_sweep") not in sweeps:
                ss["present_sweep"] = next(iter(sweeps))
            name = st.selectbox(_("Experiment"), list(sweeps), key="present_sweep", on_change=_reset_slide,
                                help=_("Sweep folders of the runs folder, newest first"))
            key = f"sweep:{name}"
        else:
            st.caption(_("No experiment yet: start one on the Experiments page."))
    else:
        if distills:
            if ss.get("present_distill") not in distills:
                ss["present_distill"] = distills[0]
            rid = st.selectbox(_("Distillation run"), distills, key="present_distill",
                               format_func=lambda r: run_option(by_id[r]), on_change=_reset_slide)
            key = f"distill:{rid}"
        else:
            st.caption(_("No distillation run yet (a run whose config says method: distill)."))
    decks = st.container()

if key is None:
    st.stop()
if url_subject != key:
    st.query_params["subject"] = key
    ss["_present_link"] = key
subject = parse_subject(key, store.root)

try:
    with st.spinner(_("Building the story…")):
        story = pv.story_for(subject)
except ValueError as exc:
    st.error(str(exc).splitlines()[0], icon=":material/error:")
    st.stop()

total = len(story.slides)
try:
    index = int(st.query_params.get("slide") or 1)
except ValueError:
    index = 1
index = max(1, min(total, index))
if st.query_params.get("slide") != str(index):
    st.query_params["slide"] = str(index)

nav = st.columns([1, 1, 8], vertical_alignment="center")
nav[0].button(_("Back"), key="present_back", icon=":material/arrow_back:", on_click=_go, args=(index - 1,),
              disabled=index <= 1, width="stretch", help=_("Previous slide (← key)"))
nav[1].button(_("Next"), key="present_next", icon=":material/arrow_forward:", on_click=_go, args=(index + 1,),
              disabled=index >= total, width="stretch", type="primary", help=_("Next slide (→ key)"))
nav[2].caption(_("Slide {index} of {total} · ← → to step · the address holds the slide: a reload or a shared link "
                 "opens it").format(index=index, total=total))

slide = pv.draw_slide(story, index)
pv.edit_form(story, slide, pv.widget_suffix(story.subject))
with decks:
    st.caption(_("Decks of this story, saved in {folder} too (the run's HTML report links to deck.html):").format(
        folder=story.folder))
    pv.deck_buttons(story)
