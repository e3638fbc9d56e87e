"""The Train page's live view of the watched run: progress bar, final numbers, curves, confusion.

Drawn from :func:`dashboard.run_view.run_view` inside a fragment that reruns every
``LIVE_REFRESH_S`` while the run is active and stops its timer once it has ended.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.formatting import eta_suffix, run_time
from dashboard.labels import method_label, state_label
from dashboard.run_curves import draw_curves
from dashboard.run_view import RunView, epoch_fraction, run_view, show_notice
from transfer_core.i18n import _, ngettext

__all__ = ["LIVE_REFRESH_S", "watch"]

LIVE_REFRESH_S = 2.0  # every watching tab costs a rerun per tick: 2 s keeps 5 watchers light on a 2-core box


def _progress(view: RunView) -> None:
    p, state, epochs = view.progress, view.state, max(view.epochs, 1)
    if state == "queued":
        st.progress(0.0, text=_("Queued: waiting for the run in front of it to finish"))
        return
    if state == "running" and (not p or p.get("phase") == "starting"):
        st.progress(0.0, text=_("Preparing data and model…"))
        return
    if state == "running":
        frac, epoch, _epochs, batch, batches = epoch_fraction({**p, "epochs": epochs})
        text = _("Epoch {epoch} of {epochs}").format(epoch=max(epoch, 1), epochs=epochs) + " · " + (
            _("batch {batch}/{batches}").format(batch=batch, batches=batches) if batches else _("validating"))
        head = int((view.config.get("train") or {}).get("head_epochs") or 0)
        if head and max(epoch, 1) <= head:  # the recipe's head warm-up: say why the body is not moving yet
            text += " · " + _("only the new head trains until epoch {head}, then the body unfreezes").format(head=head)
        text += eta_suffix(p.get("eta_s"))
        if view.stopping:
            text = _("Stopping at the end of this batch…")
    else:
        frac = min(view.epochs_done / epochs, 1.0)
        text = ngettext("{state} · {done} of {epochs} epoch", "{state} · {done} of {epochs} epochs", epochs).format(
            state=state_label(state).capitalize(), done=view.epochs_done, epochs=epochs)
    st.progress(frac, text=text)


def _final_metrics(view: RunView) -> None:
    metrics = view.metrics
    last = metrics[-1]
    best = max((m.get("val_acc") or 0.0) for m in metrics)
    c = st.columns(5)
    c[0].metric(_("Val acc"), f"{last['val_acc']:.1%}", help=_("Accuracy on the held-out validation images, last epoch"))
    c[1].metric(_("Best val acc"), f"{best:.1%}", help=_("Best validation accuracy over the epochs"))
    c[2].metric(_("Val loss"), f"{last['val_loss']:.3f}")
    c[3].metric(_("Train acc"), f"{last['train_acc']:.1%}")
    c[4].metric(_("Time"), run_time(view.status), help=_("Wall-clock training time (m:ss)"))


def _draw(rid: str) -> bool:
    """Everything about the watched run; returns whether it is still active."""
    view = run_view(rid)
    cfg, metrics, state = view.config, view.metrics, view.state
    bbs = " + ".join(_("{name} ({weights}, freeze {freeze})").format(name=b.get("name"), weights=b.get("weights"),
                                                                      freeze=b.get("freeze"))
                     for b in cfg.get("backbones", []))
    st.caption(_("Run `{run_id}` · {method} · {backbones} · data {dataset}").format(
        run_id=rid, method=method_label(cfg.get("method", "?")), backbones=bbs,
        dataset=(cfg.get("data") or {}).get("dataset", "?")))
    _progress(view)
    if state == "completed" and metrics:
        _final_metrics(view)
    show_notice(view, skip=("running", "queued"))
    if state in ("stopped", "interrupted"):
        st.page_link("pages/results.py", label=_("Resume it from the Results page"), icon=":material/play_arrow:",
                     query_params={"run": rid})

    planned = int((cfg.get("train") or {}).get("epochs") or 0) or None
    draw_curves(cfg, metrics, active=view.active, prefix="train", epochs=planned)  # SVG while it trains
    if not metrics:
        st.caption(_("The curves fill in as epochs finish (one point per epoch)."))

    if state == "completed":
        conf = view.run.confusion()
        if conf:
            st.plotly_chart(charts.confusion_figure(conf), key="train_confusion", config={"displayModeBar": False})
            st.caption(_("Rows are the true classes, columns the predicted ones: the diagonal is what it got right."))
            l1, l2 = st.columns(2)
            l1.page_link("pages/results.py", label=_("Full results and config"), icon=":material/insights:",
                         query_params={"run": rid})
            l2.page_link("pages/predict.py", label=_("Try the model on an image"), icon=":material/image_search:",
                         query_params={"run": rid})
    return view.active


@st.fragment(run_every=LIVE_REFRESH_S)
def _live(rid: str) -> None:
    """Redraws every LIVE_REFRESH_S while the run is active; one full rerun when it ends (stops the timer)."""
    if not _draw(rid):
        st.rerun(scope="app")


@st.fragment
def _static(rid: str) -> None:
    _draw(rid)


def watch(rid: str, active: bool) -> None:
    """The live view of run ``rid``: a ticking fragment while ``active``, else drawn once."""
    if active:
        _live(rid)
    else:
        _static(rid)
