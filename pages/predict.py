"""Predict: top-k classes for an image with the model of a completed run, and where it looked.

The image is preprocessed by the core with the run's own recipe (size, crop, channels),
the one its training images had; the page only shows what goes in and what comes out:
top-k probabilities, a Grad-CAM map per backbone and, for fusion runs, each backbone's
contribution to the fused features.
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st
from PIL import Image

from dashboard import charts
from dashboard import run_cache as rc
from dashboard import widgets as w
from dashboard.formatting import run_label
from dashboard.state import finished_runs_or_stop, run_store
from transfer_core import insights as ins
from transfer_core.backbones import WeightsError
from transfer_core.config import ConfigError
from transfer_core.data import DataError, load_image, preprocess_image
from transfer_core.i18n import N_, _, ngettext
from transfer_core.predict import predict_images

IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
# Where the image comes from: the option values are these English words (kept in session
# state and by the tests), shown translated.
UPLOAD, VALIDATION = N_("Upload an image"), N_("Validation image")
RESIZE_LABELS = {"square": N_("square"), "shorter_side_center_crop": N_("shorter side center crop")}


@st.cache_data(show_spinner=False, max_entries=32)
def _cams(run_id: str, runs_root: str, mtime_ns: int, image_key: str, target: int | None, _x: Any) -> dict[str, Any]:
    """Grad-CAM maps, their layers and (fusion) contributions for one preprocessed image."""
    loaded = rc.cached_model(run_id, runs_root, mtime_ns)
    return {
        "maps": ins.gradcam_maps(loaded, _x, target),
        "layers": ins.cam_layers(loaded, _x),
        "contrib": ins.contributions(loaded, _x) if loaded.cfg.method == "fusion" else None,
    }


def _prep_text(prep: dict[str, Any]) -> str:
    resize = str(prep.get("resize", ""))
    resize = _(RESIZE_LABELS[resize]) if resize in RESIZE_LABELS else resize.replace("_", " ")
    text = (_("{size}×{size} px, grayscale, {resize}") if prep.get("source_mode") == "L"
            else _("{size}×{size} px, colour, {resize}"))
    return text.format(size=prep.get("image_size"), resize=resize)


st.title(_("Predict"))
st.caption(_("Ask a trained model what it sees: upload an image or pick a validation image, and get its top guesses."))

ss = st.session_state
store = run_store()
finished = finished_runs_or_stop("pred_run")

top = st.columns([3, 1])
run_id = top[0].selectbox(_("Completed run"), list(finished), key="pred_run", format_func=lambda r: run_label(finished[r]))
mtime = rc.checkpoint_mtime(store.get(run_id))
try:
    with st.spinner(_("Loading the model…")):
        loaded = rc.cached_model(run_id, str(store.root), mtime)
except (WeightsError, ConfigError, DataError, ValueError) as exc:
    st.error(_("Cannot load run {run_id}: {error}").format(run_id=run_id, error=exc), icon=":material/error:")
    st.stop()

n_classes = len(loaded.classes)
k_max = min(10, n_classes)
if ss.get("pred_k", 0) > k_max or "pred_k" not in ss:
    ss["pred_k"] = min(5, k_max)
top_k = top[1].number_input(_("Top k"), min_value=1, max_value=k_max, step=1, key="pred_k")
st.caption(
    ngettext("{n} class · epoch {epoch} · images are prepared as in training: {prep}",
             "{n} classes · epoch {epoch} · images are prepared as in training: {prep}", n_classes).format(
        n=n_classes, epoch=loaded.epoch, prep=_prep_text(loaded.preprocessing))
)

source = st.radio(_("Image"), [UPLOAD, VALIDATION], key="pred_source", horizontal=True, format_func=_)

image: Image.Image | None = None
truth: str | None = None
label = ""
if source == UPLOAD:
    up = st.file_uploader(
        _("Image file"), type=IMAGE_TYPES, key="pred_upload", max_upload_size=w.IMAGE_UPLOAD_MAX_MB,
        help=_("PNG, JPEG, … up to {mb} MB.").format(mb=w.IMAGE_UPLOAD_MAX_MB),
    )
    if up is not None:
        try:
            image = load_image(up.getvalue())
            label = up.name
        except DataError:
            st.error(_("{name} is not an image that can be read (damaged or another file type).").format(name=up.name),
                     icon=":material/error:")
else:
    try:
        with st.spinner(_("Loading validation images…")):
            samples = rc.val_samples(run_id, str(store.root))
    except (DataError, ConfigError, ValueError) as exc:
        st.error(_("Cannot load the validation images of this run: {error}").format(error=exc), icon=":material/error:")
        samples = {}
    choices = [(cls, i) for cls, imgs in samples.items() for i in range(len(imgs))]
    if choices:
        keys = [f"{cls} · #{i + 1}" for cls, i in choices]
        if ss.get("pred_sample") not in keys:
            ss["pred_sample"] = keys[0]
        pick = st.columns([2, 3])[0].selectbox(_("Validation image (true class · number)"), keys, key="pred_sample")
        cls, i = choices[keys.index(pick)]
        image, truth, label = Image.fromarray(samples[cls][i]), cls, pick

if image is None:
    st.caption(_("Choose an image to see the model's guesses."))
    st.stop()

try:
    preds = predict_images(loaded, [image], top_k=int(top_k))[0]
    seen = preprocess_image(image, loaded.preprocessing)
except DataError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

best = preds[0]
img_col, out_col = st.columns([1, 2], gap="large")
with img_col:
    a, b = st.columns(2)
    a.image(image, caption=label or _("your image"), width="stretch")
    b.image(seen.permute(1, 2, 0).numpy(), caption=_("what the model sees ({px} px)").format(px=seen.shape[-1]),
            width="stretch", clamp=True)
with out_col:
    m1, m2, m3 = st.columns(3)
    m1.metric(_("Prediction"), str(best["class"]))
    m2.metric(_("Confidence"), f"{best['prob']:.1%}")
    if truth is not None:
        m3.metric(_("True class"), truth, delta=_("correct") if str(best["class"]) == truth else _("wrong"),
                  delta_color="normal" if str(best["class"]) == truth else "inverse", delta_arrow="off")
    st.plotly_chart(charts.topk_figure(preds), key="pred_topk_chart", config={"displayModeBar": False})

# ---- Grad-CAM: where each backbone looked ---------------------------------------------------
st.subheader(_("Where does the model look?"))
names = ins.backbone_names(loaded)
is_fusion = loaded.cfg.method == "fusion"
cam_choices = [-1] + list(range(n_classes))
if ss.get("pred_cam_class") not in cam_choices:
    ss["pred_cam_class"] = -1
g1, g2 = st.columns([1, 2])
cam_for = g1.selectbox(
    _("Explain the class"), cam_choices, key="pred_cam_class",
    format_func=lambda c: _("the predicted class") if c == -1 else str(loaded.classes[c]),
)
explained = str(best["class"]) if cam_for == -1 else str(loaded.classes[cam_for])
g2.caption((_("Grad-CAM for class **{cls}**: red areas pushed its score up the most — one map per backbone, "
             "each through the whole fused model.") if is_fusion
            else _("Grad-CAM for class **{cls}**: red areas pushed its score up the most.")).format(cls=explained))
arr = seen.permute(1, 2, 0).numpy()
try:
    with st.spinner(_("Computing Grad-CAM…")):
        cams = _cams(run_id, str(store.root), mtime, hashlib.sha1(arr.tobytes()).hexdigest(),
                     None if cam_for == -1 else int(cam_for), seen)
except Exception as exc:  # noqa: BLE001 - an explanation failing must not hide the prediction
    st.warning(_("Grad-CAM is not available for this model: {error}").format(error=str(exc).splitlines()[0][:200]),
               icon=":material/warning:")
    st.stop()
n_maps = len(cams["maps"])
cols = st.columns([1] * (n_maps + 1) + ([2] if is_fusion else [1]))
cols[0].image(ins.enlarge(arr, 160), caption=_("input"), width="stretch")
for col, name, cam, layer in zip(cols[1:], names, cams["maps"], cams["layers"]):
    col.image(ins.cam_overlay(arr, cam, min_size=160), caption=_("{name} · layer {layer}").format(name=name, layer=layer),
              width="stretch")
if is_fusion and cams["contrib"] is not None:
    with cols[-1]:
        st.markdown(_("**Contribution to the fused features** — αᵢ·‖Pᵢ fᵢ(x)‖ for this image"))
        st.plotly_chart(charts.contributions_figure(names, cams["contrib"]), key="pred_contrib",
                        config={"displayModeBar": False})
