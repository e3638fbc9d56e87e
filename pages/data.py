"""Data: choose the images, see samples and counts, pick classes and the few-shot size.

The choices go into the draft (dashboard.state.set_draft) that the Train page uses as
its data section. Building a dataset can take seconds, so the preview is cached on the
settings and holds plain data only (numpy thumbnails and counts), never torch objects.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts
from dashboard import widgets as w
from dashboard.state import draft_config, set_draft
from transfer_core.config import ConfigError, DataConfig
from transfer_core.data import DataError, build_data, dataset_classes, resolve_dataset_path, sample_grid
from transfer_core.i18n import N_, _, language

SIZES = [16, 24, 28, 32, 48, 64, 96, 128, 160, 224]
PREVIEW_MAX_SIZE = 96  # thumbnails are built at most this big, whatever the training size
GRID_PER_CLASS = 8
GRID_MAX_CLASSES = 12
ABOUT = {
    "digits": N_("1,797 handwritten digits, 8×8 px (scikit-learn)"),
    "mnist5k": N_("5,000 MNIST digits, 28×28 px"),
    "shapes": N_("synthetic coloured shapes, 720 images"),
}
KIND_TEXT = {
    "built-in": N_("built-in"),
    "torchvision": N_("torchvision · downloads on first use"),
    "folder": N_("folder in the data root"),
    "upload": N_("uploaded zip"),
}


def _error_text(exc: Exception) -> str:
    return exc.message if isinstance(exc, ConfigError) else str(exc)


def _stamp(dataset: str, kind: str) -> int:
    """Changes when a folder/zip changes, so cached listings and previews are refreshed."""
    if kind not in ("folder", "upload"):
        return 0
    try:
        return resolve_dataset_path(dataset).stat().st_mtime_ns
    except (DataError, OSError):
        return -1


# The cached listing and preview hold the core's error and warning texts: keyed by language too.
@st.cache_data(show_spinner=False, max_entries=32)
def _classes(dataset: str, stamp: int, lang: str) -> dict[str, Any]:
    try:
        return {"classes": dataset_classes(dataset)}
    except (DataError, ConfigError, ValueError) as exc:
        return {"error": _error_text(exc)}


@st.cache_data(show_spinner=False, max_entries=16)
def _preview(
    dataset: str, classes: tuple[str, ...] | None, train_per_class: int | None, val_fraction: float, size: int, stamp: int,
    lang: str,
) -> dict[str, Any]:
    """Counts and thumbnails for these settings; errors are returned (and cached) as text."""
    cfg = DataConfig(
        dataset=dataset,
        classes=list(classes) if classes is not None else None,
        train_per_class=train_per_class,
        val_fraction=val_fraction,
        image_size=size,
    )
    try:
        bundle = build_data(cfg, seed=0)
        grid = sample_grid(bundle, per_class=GRID_PER_CLASS)
    except (DataError, ConfigError) as exc:
        return {"error": _error_text(exc)}
    info = bundle.info
    return {
        "classes": list(bundle.classes),
        "grid": {k: grid[k] for k in list(grid)[:GRID_MAX_CLASSES]},
        "train_counts": dict(info.get("train_counts", {})),
        "val_counts": dict(info.get("val_counts", {})),
        "skipped": int(info.get("skipped", 0)),
        "skipped_files": list(info.get("skipped_files", [])),
        "warnings": list(info.get("warnings", [])),
        "location": info.get("location"),
        "seconds": info.get("load_seconds"),
    }


st.title(_("Data"))
st.caption(_("Choose the images to learn from, look at them, and set the classes and examples per class used for "
             "training."))

draft = draft_config()
ss = st.session_state
options = dict(w.dataset_options())  # value -> kind
ss.setdefault("dataset", draft.get("dataset", "digits"))
if ss["dataset"] not in options:
    if ss["dataset"] == draft.get("dataset") and ss["dataset"]:
        options[ss["dataset"]] = "folder"  # a path typed elsewhere (CLI config): keep it visible
    else:
        ss["dataset"] = "digits"

pick_col, upload_col = st.columns([3, 2], gap="large")

# The upload is handled before the dataset box is drawn so a fresh upload can select itself.
with upload_col:
    with st.container(border=True):
        st.markdown("**" + _("Your own images") + "**")
        up = st.file_uploader(
            _("Zip with one folder of images per class"),
            type=["zip"],
            key="zip_upload",
            max_upload_size=w.ZIP_UPLOAD_MAX_MB,
            help=_(
                "e.g. pets.zip → cat/*.jpg, dog/*.jpg. Up to {mb} MB, expanding to at most {gb} GB; saved in the "
                "data folder under '{folder}/'."
            ).format(mb=w.ZIP_UPLOAD_MAX_MB, gb=w.ZIP_EXTRACT_MAX_BYTES // 1024**3, folder=w.UPLOADS),
        )
        if up is not None:
            done = ss.setdefault("_zip_imports", {})
            if up.file_id not in done:
                try:
                    with st.spinner(_("Checking and extracting {file}…").format(file=up.name)):
                        name = w.import_zip(up.name, up.getvalue())
                    done[up.file_id] = ("ok", name)
                    options[name] = "upload"
                    ss["dataset"] = name
                except DataError as exc:
                    done[up.file_id] = ("error", str(exc))
            status, text = done[up.file_id]
            if status == "ok":
                st.success(_("Imported as **{name}**").format(name=text), icon=":material/check_circle:")
            else:
                st.error(text, icon=":material/error:")

with pick_col:
    dataset = st.selectbox(
        _("Dataset"),
        list(options),
        key="dataset",
        format_func=lambda v: f"{v}  ·  {_(KIND_TEXT[options[v]]) if options.get(v) in KIND_TEXT else ''}",
    )
    kind = options.get(dataset, "folder")
    if dataset in ABOUT:
        st.caption(_(ABOUT[dataset]))
    elif kind == "torchvision":
        st.caption(_("The official training split of {dataset}, kept in the data folder under torchvision/{dataset}.")
                   .format(dataset=dataset))
    else:
        st.caption(_("Each sub-folder is a class; unreadable files are skipped and counted."))

    stamp = _stamp(dataset, kind)
    listing = _classes(dataset, stamp, language())
    if "error" in listing:
        st.error(listing["error"], icon=":material/error:")
        st.stop()
    all_classes: list[str] = listing["classes"]

    # Class subset: reset to "all" when the dataset changes (or take the saved draft's subset).
    if "classes" not in ss or ss.get("_classes_for") != dataset or any(c not in all_classes for c in ss.get("classes", [])):
        saved = draft.get("classes") if draft.get("dataset") == dataset else None
        ss["classes"] = [str(c) for c in saved if str(c) in all_classes] if saved else list(all_classes)
        ss["_classes_for"] = dataset
    ss.setdefault("train_per_class", int(draft.get("train_per_class") or 0))
    ss.setdefault("val_fraction", float(draft.get("val_fraction", 0.2)))
    ss.setdefault("image_size", int(draft.get("image_size") or 32))

    chosen = st.multiselect(
        _("Classes ({n} available)").format(n=len(all_classes)),
        all_classes,
        key="classes",
        help=_("Train on a subset: fewer classes train faster and make cleaner demos."),
    )
    classes_err = _("Pick at least two classes.") if len(chosen) < 2 else None
    if classes_err:
        st.error(classes_err, icon=":material/error:")



c1, c2, c3 = st.columns(3)
tpc = c1.number_input(
    _("Training images per class (few-shot)"),
    min_value=0, max_value=100_000, step=5, key="train_per_class",
    help=_("0 = use every training image. Small numbers show how transfer learning copes with few examples."),
)
val_fraction = c2.slider(
    _("Validation share"), min_value=0.05, max_value=0.5, step=0.05, key="val_fraction",
    help=_("Share of each class held out to measure accuracy. The same images whatever the few-shot size."),
)
size = c3.select_slider(
    _("Image size (px)"), sorted({*SIZES, int(ss["image_size"])}), key="image_size",
    help=_("Images are resized to this square side."),
)

if classes_err:
    st.stop()

subset = None if chosen == all_classes else tuple(chosen)
preview_args = (dataset, subset, int(tpc) or None, round(float(val_fraction), 4), min(int(size), PREVIEW_MAX_SIZE), stamp,
                language())

if kind == "torchvision" and dataset not in ss.setdefault("_tv_loaded", set()):
    st.info(
        _("**{dataset}** is read from the data folder, or downloaded there the first time (needs internet).").format(
            dataset=dataset),
        icon=":material/info:",
    )
    if st.button(_("Load {dataset}").format(dataset=dataset), key="data_load_tv", type="primary"):
        ss["_tv_loaded"].add(dataset)
        st.rerun()
    st.stop()

with st.spinner(_("Loading {dataset}…").format(dataset=dataset)):
    pv = _preview(*preview_args)
if "error" in pv:
    err_col, btn_col = st.columns([5, 1])
    err_col.error(pv["error"], icon=":material/error:")
    if btn_col.button(_("Try again"), key="data_retry"):
        _preview.clear()
        _classes.clear()
        st.rerun()
    st.caption(_("These settings are not saved for the Train page until the data loads."))
    st.stop()

set_draft(
    dataset=dataset,
    classes=list(subset) if subset is not None else None,
    train_per_class=int(tpc) or None,
    val_fraction=round(float(val_fraction), 4),
    image_size=int(size),
)

train_counts, val_counts = pv["train_counts"], pv["val_counts"]
n_train, n_val = sum(train_counts.values()), sum(val_counts.values())
m1, m2, m3, m4 = st.columns(4)
m1.metric(_("Classes"), len(pv["classes"]))
m2.metric(_("Training images"), f"{n_train:,}")
m3.metric(_("Validation images"), f"{n_val:,}")
m4.metric(_("Skipped files"), pv["skipped"], help=_("Files that could not be read as images."))

for msg in pv["warnings"]:
    st.warning(msg, icon=":material/warning:")
if pv["skipped_files"]:
    with st.expander(_("Skipped files ({n})").format(n=pv["skipped"])):
        st.code("\n".join(pv["skipped_files"]), language=None)

grid_col, chart_col = st.columns([3, 2], gap="large")
with chart_col:
    st.subheader(_("Images per class"))
    st.plotly_chart(charts.counts_figure(train_counts, val_counts), key="data_counts_chart", width="stretch")
    used_classes = (_("all {n} classes").format(n=len(all_classes)) if subset is None
                    else _("{n} classes").format(n=len(subset)))
    used_images = _("all images") if not tpc else _("{n} per class").format(n=int(tpc))
    st.success(
        _("Used by the Train page: **{dataset}**, {classes}, {images}, {size} px.").format(
            dataset=dataset, classes=used_classes, images=used_images, size=int(size)),
        icon=":material/check_circle:",
    )
with grid_col:
    shown_size = min(int(size), PREVIEW_MAX_SIZE)
    st.subheader(_("Samples"))
    st.caption(
        _("What the model sees: {shown}×{shown} px").format(shown=shown_size) if shown_size == int(size)
        else _("What the model sees: {shown}×{shown} px (training uses {size} px)").format(shown=shown_size,
                                                                                            size=int(size))
    )
    for name, imgs in pv["grid"].items():
        lab, pics = st.columns([1.7, 6], vertical_alignment="center")
        lab.markdown(f"**{name}**")
        lab.caption(_("{train} train · {val} val").format(train=train_counts.get(name, 0),
                                                          val=val_counts.get(name, 0)))
        if imgs:
            pics.image(imgs, width=48)
        else:
            pics.caption(_("no images"))
    if len(pv["classes"]) > len(pv["grid"]):
        st.caption(_("…and {n} more classes.").format(n=len(pv["classes"]) - len(pv["grid"])))
