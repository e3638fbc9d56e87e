"""Insights: look inside a trained model.

Sections: what the features look like (PCA / t-SNE), what each backbone brings to a
fusion (α, drop-one ablation, disagreement), which images it gets wrong (confusion
cells, top losses), a learning-rate range test, and exports (checkpoint, TorchScript,
ONNX, config, HTML report). Heavy results come from the core and are cached per run
and checkpoint version.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard import galleries as gal
from dashboard import run_cache as rc
from dashboard import widgets_teaching as wt
from dashboard.formatting import run_label
from dashboard.labels import kind_label
from dashboard.run_view import run_file
from dashboard.state import finished_runs_or_stop, run_store, selection_changed
from transfer_core import insights as ins
from transfer_core.backbones import WeightsError
from transfer_core.checkpoint_files import checkpoint_bytes
from transfer_core.compare import run_kind
from transfer_core.config import ConfigError, dump_yaml
from transfer_core.data import DataError
from transfer_core.i18n import N_, _

# The section values are these English words (session state, tests); shown translated.
SECTIONS = [N_("Embeddings"), N_("Fusion"), N_("Errors"), N_("Learning rate"), N_("Export")]
PROJECTIONS = {"pca": N_("PCA (fast, linear)"), "tsne": N_("t-SNE (slower, keeps neighbours)")}
MAX_POINTS = 600  # points per embedding map (t-SNE speed)
GALLERY = 12
TOP_LOSSES = 8

ss = st.session_state


# --------------------------------------------------------------------------- cached core calls


# The model, its validation data and one pass over them: one cache for Predict, Results and Insights.
_model, _bundle, _pass = rc.cached_model, rc.cached_bundle, rc.cached_pass


@st.cache_data(show_spinner=False, max_entries=16)
def _embeddings(run_id: str, runs_root: str, mtime_ns: int, method: str) -> dict[str, Any]:
    loaded = _model(run_id, runs_root, mtime_ns)
    return ins.embeddings(loaded, _bundle(run_id, runs_root), method, max_points=MAX_POINTS,
                          vp=_pass(run_id, runs_root, mtime_ns))


# --------------------------------------------------------------------------- page

st.title(_("Insights"))
st.caption(_("Look inside a trained model: what its features separate, what each backbone brings, "
             "which images it gets wrong — and take it with you."))

store = run_store()
finished = finished_runs_or_stop("ins_run")


def _forget_picks() -> None:
    """Picked images and cells belong to the previous run: drop them."""
    for k in [k for k in ss if str(k).startswith(("ins_emb_pick", "ins_cell_")) or str(k).endswith("__prev")]:
        del ss[k]


run_id = st.selectbox(_("Completed run"), list(finished), key="ins_run", format_func=lambda r: run_label(finished[r]),
                      on_change=_forget_picks)
run = store.get(run_id)
root = str(store.root)
mtime = rc.checkpoint_mtime(run)
try:
    with st.spinner(_("Loading the model and its validation images…")):
        loaded = _model(run_id, root, mtime)
        bundle = _bundle(run_id, root)
except (WeightsError, ConfigError, DataError, ValueError) as exc:
    st.error(_("Cannot load run {run_id}: {error}").format(run_id=run_id, error=exc), icon=":material/error:")
    st.stop()

cfg = loaded.cfg
kind = run_kind(run.config_dict())
names = ins.backbone_names(loaded)
is_fusion = cfg.method == "fusion"

head = st.columns(4)
head[0].metric(_("Kind"), kind_label(kind))
head[1].metric(_("Backbones"), len(names), help=" + ".join(names))
head[2].metric(_("Classes"), len(loaded.classes))
head[3].metric(_("Validation images"), f"{len(bundle.val):,}")
st.caption(_("{backbones} · {dataset} · checkpoint of epoch {epoch}").format(
    backbones=" + ".join(names), dataset=cfg.data.dataset, epoch=loaded.epoch))

section = st.segmented_control(_("Section"), SECTIONS, key="ins_section", default=SECTIONS[0], required=True,
                               format_func=_, label_visibility="collapsed") or SECTIONS[0]


def _vp():  # noqa: ANN202
    try:
        with st.spinner(_("Running the model over the validation images…")):
            return _pass(run_id, root, mtime)
    except DataError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


# ---- 1. embeddings -----------------------------------------------------------------------------
if section == "Embeddings":
    st.subheader(_("What the features separate"))
    st.caption(_("Each dot is a validation image, placed by its features (one map per backbone, plus the fused vector "
                 "the classifier sees). Classes that form separate clouds are easy to tell apart. Click a dot to see "
                 "its image.") if is_fusion else
               _("Each dot is a validation image, placed by its features (one map per backbone). Classes that form "
                 "separate clouds are easy to tell apart. Click a dot to see its image."))
    method = st.radio(_("Projection"), ["pca", "tsne"], key="ins_emb_method", horizontal=True,
                      format_func=lambda m: _(PROJECTIONS[m]))
    vp = _vp()
    with st.spinner(_("Projecting the features…")):
        maps = _embeddings(run_id, root, mtime, method)
    n_pts = len(next(iter(maps.values()))[1]) if maps else 0
    st.caption(_("{n} of {total} validation images (at most {max}, every class kept).").format(
        n=n_pts, total=vp.total, max=MAX_POINTS))
    charts_col, pick_col = st.columns([3, 1], gap="large")
    with charts_col:
        items = list(maps.items())
        for row in range(0, len(items), 2):
            cols = st.columns(2)
            for col, (i, (name, (pts, labels, idx))) in zip(cols, enumerate(items[row:row + 2], start=row)):
                key = f"ins_emb_{i}"
                title = _("fused representation") if name == "fused" else name
                event = col.plotly_chart(charts.embedding_figure(pts, labels, idx, loaded.classes, title), key=key,
                                         on_select="rerun", selection_mode="points",
                                         config={"displayModeBar": False})
                picked = wt.point_from_selection(event)
                if selection_changed(key, picked):
                    ss["ins_emb_pick"] = picked
    with pick_col:
        pick = ss.get("ins_emb_pick")
        if pick is None or not (0 <= int(pick) < len(bundle.val)):
            st.caption(_("Click a dot to see the image here."))
        else:
            pick = int(pick)
            rows = [r for r, i in enumerate(vp.indices) if int(i) == pick]
            st.image(ins.val_image(bundle, pick), width="stretch", caption=_("validation image #{n}").format(n=pick))
            if rows:
                r = rows[0]
                true, pred = loaded.classes[int(vp.labels[r])], loaded.classes[int(vp.preds[r])]
                st.metric(_("True class"), str(true))
                st.metric(_("Predicted"), str(pred), delta=_("correct") if true == pred else _("wrong"),
                          delta_color="normal" if true == pred else "inverse", delta_arrow="off")

# ---- 2. fusion ---------------------------------------------------------------------------------
elif section == "Fusion":
    st.subheader(_("What each backbone brings"))
    if not is_fusion:
        st.info(_("This is a single-backbone run. Fusion insights (α, ablation, disagreement) need a fusion run."),
                icon=":material/info:")
    else:
        vp = _vp()
        metrics = run.metrics()
        a_col, c_col = st.columns(2, gap="large")
        with a_col:
            if any(r.get("alpha") for r in metrics):
                st.plotly_chart(charts.alpha_figure(metrics, names), key="ins_alpha", config={"displayModeBar": False})
            else:
                st.caption((_("Fusion mode {mode} with fixed α: no α trajectory.") if cfg.fusion.mode == "sum"
                            else _("Fusion mode {mode} (no α): no α trajectory.")).format(mode=cfg.fusion.mode))
        with c_col:
            contrib = ins.mean_contributions(loaded, vp)
            st.markdown(_("**Average contribution on validation images** — αᵢ·‖Pᵢ fᵢ(x)‖"))
            st.plotly_chart(charts.contributions_figure(names, contrib), key="ins_contrib", config={"displayModeBar": False})

        abl = ins.ablation(loaded, bundle, vp=vp)
        st.markdown(_("**Drop one backbone** — validation accuracy with that backbone's contribution removed "
                      "(no retraining). A big drop means the model relies on it."))
        a1, a2 = st.columns([3, 2], gap="large")
        a1.plotly_chart(charts.ablation_figure(abl), key="ins_ablation", config={"displayModeBar": False})
        a2.dataframe(
            pd.DataFrame([{"model": _("all backbones") if r["removed"] is None
                           else _("without {name}").format(name=r["removed"]),
                           "val acc": r["val_acc"], "change": r["change"]} for r in abl]),
            key="ins_ablation_table", hide_index=True, width="stretch",
            column_config={"model": st.column_config.TextColumn(_("model")),
                           "val acc": st.column_config.NumberColumn(_("val acc"), format="percent"),
                           "change": st.column_config.NumberColumn(_("change"), format="percent")},
        )

        dis = ins.disagreement(loaded, bundle, vp=vp)
        st.markdown(_("**Who is right when the other is wrong** — each backbone alone (all others dropped)."))
        d1, d2 = st.columns([3, 2], gap="large")
        d1.plotly_chart(charts.disagreement_figure(dis), key="ins_disagree", config={"displayModeBar": False})
        with d2:
            for name, acc in zip(dis["names"], dis["solo_acc"]):
                st.metric(_("{name} alone").format(name=name), f"{acc:.1%}")
            st.metric(_("All wrong"), f"{dis['both_wrong']:.1%}", help=_("images no backbone gets right on its own"))

# ---- 3. errors ---------------------------------------------------------------------------------
elif section == "Errors":
    st.subheader(_("Which images it gets wrong"))
    vp = _vp()
    conf = ins.confusion_from_pass(vp, loaded.classes)
    n_cls = len(loaded.classes)
    cm_col, gal_col = st.columns([2, 3], gap="large")
    with cm_col:
        event = st.plotly_chart(charts.clickable_confusion(charts.confusion_figure(conf), conf), key="ins_cm",
                                on_select="rerun",
                                selection_mode="points", config={"displayModeBar": False})
        st.caption(_("Click a cell to see its images ({n} validation images, this checkpoint).").format(n=len(vp.labels)))
    cell = wt.cell_from_selection(event, conf["labels"])
    if selection_changed("ins_cm", cell):
        ss["ins_cell_true"], ss["ins_cell_pred"] = cell
    if "ins_cell_true" not in ss or "ins_cell_pred" not in ss:
        m = conf["matrix"]
        off = [(m[i][j], i, j) for i in range(n_cls) for j in range(n_cls) if i != j and m[i][j] > 0]
        _count, t0, p0 = max(off) if off else (0, 0, 0)
        ss["ins_cell_true"], ss["ins_cell_pred"] = t0, p0
    with gal_col:
        s1, s2 = st.columns(2)
        t = s1.selectbox(_("True class"), list(range(n_cls)), key="ins_cell_true", format_func=lambda i: loaded.classes[i])
        p = s2.selectbox(_("Predicted as"), list(range(n_cls)), key="ins_cell_pred", format_func=lambda i: loaded.classes[i])
        gal.cell_gallery(loaded, bundle, vp, t, p, limit=GALLERY, key="ins_gallery")

    st.markdown(_("**Top losses** — the images the model is most confidently wrong (or least sure) about."))
    gal.top_losses_gallery(loaded, bundle, vp, k=TOP_LOSSES, key="ins_top_losses")

# ---- 4. learning rate --------------------------------------------------------------------------
elif section == "Learning rate":
    st.subheader(_("Learning-rate finder"))
    st.caption(_("Would this run's learning rate ({lr:g}) have been a good choice? The finder trains a throw-away copy "
                 "with a growing learning rate; pick a value where the loss still falls steeply.").format(lr=cfg.train.lr))
    wt.lr_finder_panel(cfg, key="ins_lrf")

# ---- 5. export ---------------------------------------------------------------------------------
else:
    from transfer_core.export import export_run
    from transfer_core.report import write_report

    st.subheader(_("Take it with you"))
    st.caption(_("Download the model and its settings, or a one-file HTML report for people without the dashboard."))

    def _fresh(path: Any) -> bool:
        """The file exists and is newer than the checkpoint it was made from."""
        try:
            return path.stat().st_mtime_ns >= mtime
        except OSError:
            return False

    def _reader(path: Any):  # noqa: ANN202 - read on click, not on every rerun
        return lambda: path.read_bytes()

    c1, c2 = st.columns(2, gap="large")
    with c1:
        st.markdown(_("**PyTorch checkpoint** — weights, optimizer state, classes, preprocessing (one file: a frozen "
                      "body is put back in)"))
        st.download_button("checkpoint.pt", lambda: checkpoint_bytes(run.checkpoint_path), file_name=f"{run_id}-checkpoint.pt",
                           mime="application/octet-stream", key="ins_dl_ckpt", icon=":material/download:")
        st.markdown(_("**Configuration** — reproduce with `python -m transfer_core train config.yaml`"))
        st.download_button("config.yaml", dump_yaml(run.config_dict()), file_name=f"{run_id}-config.yaml",
                           mime="text/yaml", key="ins_dl_yaml", icon=":material/download:")
        st.markdown(_("**HTML report** — curves, confusion matrix, per-class table, sample predictions; opens offline"))
        report_path = run_file(run, "report")
        if st.button(_("Build the report"), key="ins_build_report", icon=":material/description:"):
            try:
                with st.spinner(_("Writing the report…")):
                    write_report(run)
            except Exception as exc:  # noqa: BLE001 - shown as one line, the page keeps working
                st.error(_("Could not write the report: {error}").format(error=str(exc).splitlines()[0][:200]),
                         icon=":material/error:")
        if report_path.exists():
            st.download_button("report.html", _reader(report_path), file_name=f"{run_id}-report.html",
                               mime="text/html", key="ins_dl_report", icon=":material/download:")
    with c2:
        for fmt, title, note in (
            ("torchscript", "TorchScript", N_("load with torch.jit.load; no Python code needed")),
            ("onnx", "ONNX", N_("for onnxruntime, TensorRT, OpenVINO, …")),
        ):
            st.markdown(_("**{format}** — {note}; input N×3×{size}×{size} in [0, 1]").format(
                format=title, note=_(note), size=loaded.preprocessing.get("image_size")))
            path = run_file(run, fmt)
            fname = path.name
            if st.button(_("Export {format}").format(format=title), key=f"ins_export_{fmt}", icon=":material/upload_file:"):
                try:
                    with st.spinner(_("Exporting to {format}…").format(format=title)):
                        export_run(run.dir, fmt, root)
                except Exception as exc:  # noqa: BLE001 - exporters fail in many ways; one line is enough
                    st.error(_("{format} export failed: {error}").format(format=title, error=str(exc).splitlines()[0][:200]),
                             icon=":material/error:")
            if _fresh(path):
                st.download_button(fname, _reader(path), file_name=f"{run_id}-{fname}",
                                   mime="application/octet-stream", key=f"ins_dl_{fmt}", icon=":material/download:")
