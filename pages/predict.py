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
from transfer_core.predict import predict_images

IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]


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
    gray = "grayscale" if prep.get("source_mode") == "L" else "colour"
    resize = str(prep.get("resize", "")).replace("_", " ")
    return f"{prep.get('image_size')}×{prep.get('image_size')} px, {gray}, {resize}"


st.title("Predict")
st.caption("Ask a trained model what it sees: upload an image or pick a validation image, and get its top guesses.")

ss = st.session_state
store = run_store()
finished = finished_runs_or_stop("pred_run")

top = st.columns([3, 1])
run_id = top[0].selectbox("Completed run", list(finished), key="pred_run", format_func=lambda r: run_label(finished[r]))
mtime = rc.checkpoint_mtime(store.get(run_id))
try:
    with st.spinner("Loading the model…"):
        loaded = rc.cached_model(run_id, str(store.root), mtime)
except (WeightsError, ConfigError, DataError, ValueError) as exc:
    st.error(f"Cannot load run {run_id}: {exc}", icon=":material/error:")
    st.stop()

n_classes = len(loaded.classes)
k_max = min(10, n_classes)
if ss.get("pred_k", 0) > k_max or "pred_k" not in ss:
    ss["pred_k"] = min(5, k_max)
top_k = top[1].number_input("Top k", min_value=1, max_value=k_max, step=1, key="pred_k")
st.caption(
    f"{n_classes} classes · epoch {loaded.epoch} · images are prepared as in training: {_prep_text(loaded.preprocessing)}"
)

source = st.radio("Image", ["Upload an image", "Validation image"], key="pred_source", horizontal=True)

image: Image.Image | None = None
truth: str | None = None
label = ""
if source == "Upload an image":
    up = st.file_uploader(
        "Image file", type=IMAGE_TYPES, key="pred_upload", max_upload_size=w.IMAGE_UPLOAD_MAX_MB,
        help=f"PNG, JPEG, … up to {w.IMAGE_UPLOAD_MAX_MB} MB.",
    )
    if up is not None:
        try:
            image = load_image(up.getvalue())
            label = up.name
        except DataError:
            st.error(f"{up.name} is not an image that can be read (damaged or another file type).", icon=":material/error:")
else:
    try:
        with st.spinner("Loading validation images…"):
            samples = rc.val_samples(run_id, str(store.root))
    except (DataError, ConfigError, ValueError) as exc:
        st.error(f"Cannot load the validation images of this run: {exc}", icon=":material/error:")
        samples = {}
    choices = [(cls, i) for cls, imgs in samples.items() for i in range(len(imgs))]
    if choices:
        keys = [f"{cls} · #{i + 1}" for cls, i in choices]
        if ss.get("pred_sample") not in keys:
            ss["pred_sample"] = keys[0]
        pick = st.columns([2, 3])[0].selectbox("Validation image (true class · number)", keys, key="pred_sample")
        cls, i = choices[keys.index(pick)]
        image, truth, label = Image.fromarray(samples[cls][i]), cls, pick

if image is None:
    st.caption("Choose an image to see the model's guesses.")
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
    a.image(image, caption=label or "your image", width="stretch")
    b.image(seen.permute(1, 2, 0).numpy(), caption=f"what the model sees ({seen.shape[-1]} px)", width="stretch", clamp=True)
with out_col:
    m1, m2, m3 = st.columns(3)
    m1.metric("Prediction", str(best["class"]))
    m2.metric("Confidence", f"{best['prob']:.1%}")
    if truth is not None:
        m3.metric("True class", truth, delta="correct" if str(best["class"]) == truth else "wrong",
                  delta_color="normal" if str(best["class"]) == truth else "inverse", delta_arrow="off")
    st.plotly_chart(charts.topk_figure(preds), key="pred_topk_chart", config={"displayModeBar": False})

# ---- Grad-CAM: where each backbone looked ---------------------------------------------------
st.subheader("Where does the model look?")
names = ins.backbone_names(loaded)
is_fusion = loaded.cfg.method == "fusion"
cam_choices = [-1] + list(range(n_classes))
if ss.get("pred_cam_class") not in cam_choices:
    ss["pred_cam_class"] = -1
g1, g2 = st.columns([1, 2])
cam_for = g1.selectbox(
    "Explain the class", cam_choices, key="pred_cam_class",
    format_func=lambda c: "the predicted class" if c == -1 else str(loaded.classes[c]),
)
explained = str(best["class"]) if cam_for == -1 else str(loaded.classes[cam_for])
g2.caption(f"Grad-CAM for class **{explained}**: red areas pushed its score up the most"
           + (" — one map per backbone, each through the whole fused model." if is_fusion else "."))
arr = seen.permute(1, 2, 0).numpy()
try:
    with st.spinner("Computing Grad-CAM…"):
        cams = _cams(run_id, str(store.root), mtime, hashlib.sha1(arr.tobytes()).hexdigest(),
                     None if cam_for == -1 else int(cam_for), seen)
except Exception as exc:  # noqa: BLE001 - an explanation failing must not hide the prediction
    st.warning(f"Grad-CAM is not available for this model: {str(exc).splitlines()[0][:200]}", icon=":material/warning:")
    st.stop()
n_maps = len(cams["maps"])
cols = st.columns([1] * (n_maps + 1) + ([2] if is_fusion else [1]))
cols[0].image(ins.enlarge(arr, 160), caption="input", width="stretch")
for col, name, cam, layer in zip(cols[1:], names, cams["maps"], cams["layers"]):
    col.image(ins.cam_overlay(arr, cam, min_size=160), caption=f"{name} · layer {layer}", width="stretch")
if is_fusion and cams["contrib"] is not None:
    with cols[-1]:
        st.markdown("**Contribution to the fused features** — αᵢ·‖Pᵢ fᵢ(x)‖ for this image")
        st.plotly_chart(charts.contributions_figure(names, cams["contrib"]), key="pred_contrib",
                        config={"displayModeBar": False})
