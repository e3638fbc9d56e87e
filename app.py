"""Transfer Lab dashboard entry point: page navigation and the shared sidebar.

Run with ``streamlit run app.py``. The pages live in ``pages/`` and are registered
here with ``st.navigation`` (Train is the default page). The sidebar shows the
device, the job queue (live while jobs exist) and a link to the run being watched.
"""

from __future__ import annotations

import contextlib
import sys

import streamlit as st

from dashboard.i18n import init_language, language_switch
from transfer_core.i18n import _

st.set_page_config(page_title="Transfer Lab", page_icon=":material/school:", layout="wide")
init_language()

PAGES = {
    "data": st.Page("pages/data.py", title=_("Data"), icon=":material/photo_library:", url_path="data"),
    "models": st.Page("pages/models.py", title=_("Models"), icon=":material/hub:", url_path="models"),
    # The default page lives at "/" (Streamlit ignores url_path for it): /?run=<id> watches a run.
    "train": st.Page("pages/train.py", title=_("Train"), icon=":material/model_training:", default=True),
    "results": st.Page("pages/results.py", title=_("Results"), icon=":material/insights:", url_path="results"),
    "predict": st.Page("pages/predict.py", title=_("Predict"), icon=":material/image_search:", url_path="predict"),
    "compare": st.Page("pages/compare.py", title=_("Compare"), icon=":material/compare_arrows:", url_path="compare"),
    "insights": st.Page("pages/insights.py", title=_("Insights"), icon=":material/lightbulb:", url_path="insights"),
    "experiments": st.Page("pages/experiments.py", title=_("Experiments"), icon=":material/science:", url_path="experiments"),
    "present": st.Page("pages/present.py", title=_("Present"), icon=":material/slideshow:", url_path="present"),
}
# The menu goes to the browser before the heavy imports below (torch: seconds on a cold
# start), so the first page after a server start never shows Streamlit's file-name menu.
nav = st.navigation(list(PAGES.values()))

# The first page after a server start says why it takes a moment (torch is imported once).
with st.spinner(_("Starting Transfer Lab: loading PyTorch (once per server start)…")) if "torch" not in sys.modules \
        else contextlib.nullcontext():
    from dashboard.formatting import eta_suffix  # noqa: E402
    from dashboard.run_view import epoch_fraction  # noqa: E402
    from dashboard.state import device_badge_text, job_manager, selected_run_id  # noqa: E402

QUEUE_REFRESH_S = 2.0


def _job_line(job: dict) -> tuple[float, str]:
    """Progress fraction and a short text for one queue entry."""
    p = job.get("progress") or {}
    if job["state"] == "queued":
        return 0.0, _("queued")
    if job.get("stopping"):
        return 0.0, _("stopping…")
    frac, epoch, epochs, batch, batches = epoch_fraction(p)
    if p.get("phase") == "starting" or not p:
        return frac, _("starting…")
    text = _("epoch {epoch}/{epochs}").format(epoch=epoch, epochs=epochs)
    if batches:
        text += " · " + _("batch {batch}/{batches}").format(batch=batch, batches=batches)
    return frac, text + eta_suffix(p.get("eta_s"))


def _queue_body() -> None:
    jobs = job_manager().jobs()
    watched = selected_run_id()
    st.markdown("**" + _("Job queue") + "**")
    if not jobs:
        st.caption(_("No runs in progress."))
        return
    for job in jobs:
        rid = job["run_id"]
        frac, text = _job_line(job)
        icon = ":material/visibility:" if rid == watched else (
            ":material/play_circle:" if job["state"] == "running" else ":material/schedule:")
        st.page_link(
            PAGES["train"],
            label=f"{'+'.join(job['backbones'])} · {job['dataset']}",
            icon=icon,
            query_params={"run": rid},
            help=_("{method} run {run_id}: click to watch it on the Train page").format(method=job["method"], run_id=rid),
        )
        st.progress(frac, text=text)


@st.fragment(run_every=QUEUE_REFRESH_S)
def _queue_live() -> None:
    """Redraws the queue every few seconds; one full rerun when it drains (the timer stops then)."""
    _queue_body()
    if not job_manager().jobs():
        st.rerun(scope="app")


@st.fragment
def _queue_static() -> None:
    _queue_body()


def _sidebar() -> None:
    with st.sidebar:
        language_switch()
        st.caption(f":material/memory: {device_badge_text()}")
        if job_manager().jobs():
            _queue_live()
        else:
            _queue_static()
        rid = selected_run_id()
        if rid:
            st.divider()
            st.markdown("**" + _("Watched run") + "**")
            st.caption(rid)
            st.page_link(PAGES["train"], label=_("Live view"), icon=":material/visibility:", query_params={"run": rid})
            st.page_link(PAGES["results"], label=_("Results"), icon=":material/insights:", query_params={"run": rid})


_sidebar()
nav.run()
