"""Results: any run in the store, live or finished, from this session or an earlier one.

Reads only the run folder (config, status, metrics, confusion, per-class table), so a
reload or a server restart shows the same thing. Interrupted or stopped runs can be
resumed from their last checkpoint.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard import galleries as gal
from dashboard import run_cache as rc
from dashboard import widgets_distill as wd
from dashboard import widgets_teaching as wt
from dashboard.formatting import run_option, run_time
from dashboard.labels import kind_label, method_label, state_label, status_text
from dashboard.run_curves import draw_curves
from dashboard.run_view import RunView, run_view, show_notice
from dashboard.state import job_manager, run_store, select_run, selected_run_id, selection_changed
from transfer_core.backbones import WeightsError
from transfer_core.compare import run_kind
from transfer_core.config import ConfigError, dump_yaml
from transfer_core.data import DataError
from transfer_core.i18n import _
from transfer_core.runs import Run

ss = st.session_state


def _on_pick() -> None:
    select_run(ss["results_run"])
    ss["watched_run"] = ss["results_run"]


def _headline(view: RunView) -> None:
    summary = view.summary
    c = st.columns([1.5, 1.3, 1.3, 1, 1.1])  # "interrupted" must fit
    c[0].metric(_("State"), state_label(view.state))
    c[1].metric(_("Validation accuracy"), f"{summary.val_acc:.1%}" if summary.val_acc is not None else "—")
    c[2].metric(_("Best val accuracy"), f"{summary.best_val_acc:.1%}" if summary.best_val_acc is not None else "—")
    c[3].metric(_("Epochs"), f"{view.epochs_done} / {summary.epochs}")
    c[4].metric(_("Training time"), run_time(view.status))


def _state_message(view: RunView) -> None:
    rid, state, status = view.id, view.state, view.status
    show_notice(view)
    if state in ("running", "queued"):
        st.page_link("pages/train.py", label=_("Watch it live on the Train page"), icon=":material/visibility:",
                     query_params={"run": rid})
    if state in ("interrupted", "stopped"):
        if st.button(_("Resume"), key="resume", icon=":material/play_arrow:", type="primary",
                     help=_("Continue from the last checkpoint to the configured number of epochs "
                            "(a run trained under torchrun resumes under torchrun, with as many processes)")):
            try:
                job_manager().resume(rid)
            except (ValueError, RuntimeError) as exc:
                st.error(str(exc))
            else:
                ss["watched_run"] = rid
                st.switch_page("pages/train.py", query_params={"run": rid})
    for warning in status.get("warnings") or []:
        st.caption(f":orange[:material/warning: {status_text(warning)}]")


def _per_class_table(rows: list[dict[str, Any]]) -> None:
    df = pd.DataFrame(rows)
    st.dataframe(
        df, key="results_per_class", hide_index=True, width="stretch",
        column_config={
            "class": st.column_config.TextColumn(_("Class")),
            "precision": st.column_config.NumberColumn(_("Precision"), format="%.2f"),
            "recall": st.column_config.NumberColumn(_("Recall"), format="%.2f"),
            "f1": st.column_config.ProgressColumn("F1", format="%.2f", min_value=0.0, max_value=1.0, width="small"),
            "support": st.column_config.NumberColumn(_("Support"), help=_("validation images of this class")),
        },
    )


def _galleries(rid: str, run: Run) -> None:
    """Validation images of the clicked confusion cell, and (on request) the top losses."""
    st.subheader(_("Images behind the numbers"))
    picked = ss.get("res_cell")
    cell = tuple(picked[1:]) if picked and picked[0] == rid else None
    show_top = st.toggle(_("Show the top losses"), key="res_show_top_losses",
                         help=_("The validation images with the highest loss: confident mistakes first"))
    if cell is None:
        st.caption(_("Click a cell of the confusion matrix to see its validation images with the predicted "
                     "probabilities (the diagonal holds the correct ones)."))
        if not show_top:
            return
    root, mtime = str(run_store().root), rc.checkpoint_mtime(run)
    try:
        with st.spinner(_("Running the model over the validation images…")):
            loaded = rc.cached_model(rid, root, mtime)
            bundle = rc.cached_bundle(rid, root)
            vp = rc.cached_pass(rid, root, mtime)
    except (WeightsError, ConfigError, DataError, ValueError) as exc:
        st.error(_("Cannot show the images of this run: {error}").format(error=exc), icon=":material/error:")
        return
    n = len(loaded.classes)
    if cell is not None and 0 <= cell[0] < n and 0 <= cell[1] < n:
        gal.cell_gallery(loaded, bundle, vp, int(cell[0]), int(cell[1]), key="res_gallery")
    if show_top:
        st.markdown(_("**Top losses** — the images the model is most confidently wrong (or least sure) about."))
        gal.top_losses_gallery(loaded, bundle, vp, key="res_top_losses")


def _show(rid: str, clickable: bool = False) -> bool:
    """Draw one run; returns whether it is still active. ``clickable``: confusion cells open a gallery."""
    view = run_view(rid)
    run, summary, status, state, metrics, cfg = view.run, view.summary, view.status, view.state, view.metrics, view.config
    if view.config_error:
        st.error(_("config.yaml of this run cannot be read: {error}").format(error=view.config_error))

    bb = ", ".join(f"{n} ({w})" for n, w in zip(summary.backbones, summary.weights))
    created = dt.datetime.fromtimestamp(summary.created).strftime("%Y-%m-%d %H:%M") if summary.created else "?"
    where = f" · {status.get('device')}" if status.get("device") else ""
    if int(status.get("world_size") or 1) > 1:
        where += f" · torchrun × {status['world_size']} ({status.get('dist_backend') or '?'})"
    st.markdown(_("**{method}** · {backbones} · data **{dataset}** · created {created}").format(
        method=kind_label(run_kind(cfg)) if cfg else method_label(summary.method), backbones=bb, dataset=summary.dataset, created=created) + where)
    _headline(view)
    _state_message(view)

    st.subheader(_("Learning curves"))
    if metrics:
        planned = int((cfg.get("train") or {}).get("epochs") or 0) or None
        draw_curves(cfg, metrics, active=view.active, prefix="results", epochs=planned)  # SVG while it trains
    else:
        st.caption(_("No finished epoch yet."))
    if cfg.get("method") == "distill" and state == "completed" and run.checkpoint_path.exists():
        wd.versus_section(run, cfg)

    conf, per_class = run.confusion(), run.per_class()
    if conf or per_class:
        st.subheader(_("Validation errors"))
        left, right = st.columns([4, 3], gap="large")
        with left:
            if conf:
                norm = st.toggle(_("Row-normalised"), key="cm_norm",
                                 help=_("Show each true class as shares that sum to 1 instead of image counts"))
                fig = charts.confusion_figure(conf, normalised=norm)
                if clickable and state == "completed" and run.checkpoint_path.exists():
                    event = st.plotly_chart(charts.clickable_confusion(fig, conf), key="results_confusion",
                                            on_select="rerun", selection_mode="points",
                                            config={"displayModeBar": False})
                    st.caption(_("Click a cell to see its validation images below."))
                    cell = wt.cell_from_selection(event, conf["labels"])
                    if selection_changed(f"results_confusion_{rid}", cell):
                        ss["res_cell"] = (rid, *cell)
                else:
                    st.plotly_chart(fig, key="results_confusion", config={"displayModeBar": False})
        with right:
            if per_class:
                st.markdown("**" + _("Per class") + "**")
                _per_class_table(per_class)
    elif state not in ("running", "queued"):
        st.caption(_("No confusion matrix: the run ended before a validation pass was recorded."))
    if clickable and conf and state == "completed" and run.checkpoint_path.exists():
        _galleries(rid, run)

    with st.expander(_("Configuration (YAML)"), icon=":material/settings:"):
        st.code(dump_yaml(cfg) if cfg else _("(unreadable)"), language="yaml")
        st.caption(_("Reproduce from a shell: `python -m transfer_core train {path}`").format(path=run.config_path))
    if state == "completed":
        st.page_link("pages/insights.py", label=_("Insights and downloads: embeddings, checkpoint, TorchScript, ONNX, "
                                                  "HTML report"), icon=":material/download:", query_params={"run": rid})
    return view.active


@st.fragment(run_every=2.0)
def _live(rid: str) -> None:
    if not _show(rid):
        st.rerun(scope="app")


st.title(_("Results"))
st.caption(_("Inspect any run: curves, final metrics, where it confuses classes, and the exact configuration."))

runs = run_store().list()
if not runs:
    st.info(_("No runs yet. Start one on the Train page."), icon=":material/info:")
    st.page_link("pages/train.py", label=_("Go to Train"), icon=":material/model_training:")
    st.stop()

ids = [s.id for s in runs]
labels = {s.id: run_option(s) for s in runs}
url_run = selected_run_id()
if url_run in labels:
    ss["results_run"] = url_run  # the URL wins: links and reloads land on their run
elif ss.get("results_run") not in labels:
    ss["results_run"] = ss.get("watched_run") if ss.get("watched_run") in labels else ids[0]
rid = st.selectbox(_("Run"), ids, key="results_run", format_func=labels.get, on_change=_on_pick,
                   help=_("Every run in the store, newest first"))
if url_run != rid:
    select_run(rid)

if run_view(rid).active:
    _live(rid)
else:
    _show(rid, clickable=True)
