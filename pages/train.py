"""Train: choose the method, backbones and settings, press Start, watch the run live.

Thin page: widgets -> a RunConfig -> ``job_manager().submit`` -> plot what the run store
says. The watched run is ``?run=<id>`` in the URL, so a reload keeps watching it.
Widget values are mirrored into a plain session-state dict so they survive a visit to
another page (Streamlit drops the state of widgets that are not drawn).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import streamlit as st

from dashboard import demo as demo_ui
from dashboard import live_view
from dashboard import widgets as w
from dashboard import widgets_distill as wd
from dashboard import widgets_teaching as wt
from dashboard.formatting import human_count, weights_run_label
from dashboard.run_view import run_view
from dashboard.state import draft_config, job_manager, run_exists, run_store, select_run, selected_run_id
from transfer_core.backbones import get_backbone, imagenet_weights_info, list_backbones, trainable_params
from transfer_core.config import ACTIVATIONS, DEVICES, OPTIMIZERS, ConfigError, DataConfig, from_dict, validate
from transfer_core.presets import apply_preset
from transfer_core.recipe import describe
from transfer_core.training import gpu_count

# Defaults: a newcomer who presses Start without touching anything gets a finished,
# meaningful run on the built-in digits in under a minute on a 2-core CPU (the app
# trains with one thread there). Measured with the job manager, resnet18 from scratch at
# 32 px, batch 64, Adam 1e-3: about 17 s of CPU per epoch; 2 epochs reach val acc 0.944
# (3 epochs: 0.942 for ~55 s, too close to the minute on a slow machine).
DEFAULTS: dict[str, Any] = {
    "method": "transfer",
    "epochs": 2,
    "batch_size": 64,
    "lr": 1e-3,
    "optimizer": "adam",
    "device": "auto",
    "n_backbones": 2,
    "fusion_mode": "sum",
    "learn_alpha": True,
    "shared_dim": 128,
    "activation": "relu",
    "compile": False,
}
FUSION_DEFAULT_BACKBONES = ("resnet18", "mobilenet_v3_small", "shufflenet_v2_x1_0", "squeezenet1_1")
MAX_FUSION = 4
BATCHES = [8, 16, 32, 64, 128, 256]
_FORM = "_train_form"  # plain dict mirroring the widget values (survives page switches)
_PERSIST_PREFIXES = ("method", "epochs", "batch_size", "lr", "optimizer", "device", "n_backbones", "fusion_mode",
                     "learn_alpha", "shared_dim", "activation", "bb", "alpha_", "compile", "distill_")
METHODS = {"transfer": "Transfer (one backbone)", "fusion": "Fusion (several)",
           "distill": "Distill (teachers → a small student)"}
STUDENT = "distill_bb"  # the student's picker keys (distill_bb0_name, ...): its own choice, not the transfer body's
DOUBLE_SUBMIT_S = 5.0

ss = st.session_state


# --------------------------------------------------------------------------- state helpers


def _init(key: str, default: Any) -> None:
    """Give a widget its value through session state (restored after a page switch)."""
    if key not in ss:
        ss[key] = ss.get(_FORM, {}).get(key, default)


def _save_form() -> None:
    saved = dict(ss.get(_FORM, {}))
    saved.update({k: ss[k] for k in list(ss.keys()) if isinstance(k, str) and k.startswith(_PERSIST_PREFIXES)})
    ss[_FORM] = saved


def _bb_default(i: int, prefix: str = "bb") -> str:
    if prefix == STUDENT:
        return wd.STUDENT_DEFAULT
    return FUSION_DEFAULT_BACKBONES[i % len(FUSION_DEFAULT_BACKBONES)]


@st.cache_data(show_spinner=False)
def _groups(name: str) -> tuple[list[str], list[int], int]:
    spec = get_backbone(name)
    return [g.name for g in spec.groups], [g.num_params for g in spec.groups], spec.num_params


def _completed_runs() -> list[Any]:
    return run_store().finished()


def _imagenet_cached(name: str) -> bool:
    try:
        return bool(imagenet_weights_info(name)["cached"])
    except Exception:  # a builder without ImageNet weights
        return False


def _weights_options(name: str, completed: list[Any], imported: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """Weight sources that fit backbone ``name``, with their labels."""
    labels = {"none": "none · random init",
              "imagenet": "imagenet · " + ("cached" if _imagenet_cached(name) else "not cached: downloads on first use")}
    for f in imported:
        if f.get("backbone") in (name, "?", None, ""):
            labels[f["source"]] = f"file · {f['name']}"
    for s in completed:
        if name in s.backbones:
            labels[f"run:{s.id}"] = weights_run_label(s)
    return list(labels), labels


def _n_bodies() -> int:
    return int(ss.get("n_backbones", 2)) if ss.get("method", "transfer") == "fusion" else 1


def _body_prefix() -> str:
    """Widget key prefix of the bodies being edited: the student's in distill mode."""
    return STUDENT if ss.get("method") == "distill" else "bb"


def _apply_preset(preset: str) -> None:
    """Callback (runs before the widgets are drawn): set the widget values of a preset."""
    px = _body_prefix()
    bodies = [(ss.get(f"{px}{i}_name", _bb_default(i, px)), ss.get(f"{px}{i}_weights", "none"))
              for i in range(_n_bodies())]
    choice = apply_preset(preset, bodies, _completed_runs(), _imagenet_cached)
    for i, body in enumerate(choice.bodies):
        ss[f"{px}{i}_weights"], ss[f"{px}{i}_freeze"] = body.weights, body.freeze
    ss["lr"] = choice.lr
    ss["preset_note"] = (choice.summary, list(choice.notes))


# --------------------------------------------------------------------------- widgets


def _backbone_picker(i: int, names: list[str], completed: list[Any], imported: list[dict[str, Any]], label: str,
                     prefix: str = "bb", help: str = "torchvision classifiers; the final layer is replaced by a new head",
                     ) -> dict[str, Any]:
    """Backbone, weights source and freeze slider for body ``i``; returns its config dict."""
    kname, kw, kf = f"{prefix}{i}_name", f"{prefix}{i}_weights", f"{prefix}{i}_freeze"
    default = _bb_default(i, prefix)
    _init(kname, default)
    if ss[kname] not in names:
        ss[kname] = names[0] if default not in names else default
    name = st.selectbox(label, names, key=kname, help=help)

    options, labels = _weights_options(name, completed, imported)
    _init(kw, "none")
    if ss[kw] not in options:
        ss[kw] = "none"
    weights = st.selectbox("Weights", options, key=kw, format_func=lambda v: labels.get(v, v),
                           help="Where the backbone starts from: random, ImageNet, an imported file, or a completed run")
    if weights == "imagenet" and not _imagenet_cached(name):
        st.caption(":orange[ImageNet weights are not cached: the run downloads them, and fails if offline.]")

    groups, sizes, total = _groups(name)
    k = len(groups)
    freeze_opts: list[Any] = list(range(k)) + ["all"]
    _init(kf, 0)
    if ss[kf] not in freeze_opts:
        ss[kf] = "all" if isinstance(ss[kf], int) and ss[kf] >= k else 0
    freeze = st.select_slider(
        "Freeze layer groups", freeze_opts, key=kf,
        format_func=lambda v: "all" if v == "all" else str(v),
        help=f"{name} is split into {k} groups, stem first: {', '.join(groups)}. Freezing n keeps the first n fixed.",
    )
    n = k if freeze == "all" else int(freeze)
    trainable = trainable_params(get_backbone(name), freeze)
    frozen_txt = ", ".join(groups[:n]) if n else "nothing"
    train_txt = ", ".join(groups[n:] + ["new head"])
    st.caption(f"Frozen: **{frozen_txt}** · trains: **{train_txt}** · "
               f"{human_count(trainable)} of {human_count(total)} backbone parameters trainable")
    if freeze == "all":
        st.caption(":material/bolt: Fully frozen: features are computed once and cached (see Models), so epochs "
                   "take seconds; cached runs train on unaugmented images.")
    return {"name": name, "weights": weights, "freeze": freeze}


def _data_section() -> dict[str, Any]:
    """The Data page's draft as a DataConfig dict (defaults: digits, all classes, 32 px)."""
    draft = draft_config()
    fields = {f.name for f in dataclasses.fields(DataConfig)}
    data = {k: v for k, v in draft.items() if k in fields}
    data.setdefault("dataset", "digits")
    data.setdefault("image_size", 32)
    return data


def _data_summary(data: dict[str, Any]) -> str:
    classes = data.get("classes")
    parts = [f"**{data['dataset']}**",
             "all classes" if not classes else f"{len(classes)} classes",
             f"{data['image_size']} px",
             f"val {float(data.get('val_fraction', 0.2)):.0%}"]
    if data.get("train_per_class"):
        parts.append(f"{data['train_per_class']} train images per class")
    if data.get("augment"):
        parts.append("augmented")
    return " · ".join(parts)


def _build_config(method: str, bodies: list[dict[str, Any]], data: dict[str, Any],
                  distill: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "method": method,
        "data": data,
        "backbones": bodies,
        "train": {"epochs": int(ss["epochs"]), "batch_size": int(ss["batch_size"]), "lr": float(ss["lr"]),
                  "optimizer": ss["optimizer"], "device": ss["device"]},
    }
    if ss.get("compile"):
        cfg["train"]["compile"] = True
    if method == "fusion":
        learn = bool(ss["learn_alpha"])
        cfg["fusion"] = {
            "mode": ss["fusion_mode"],
            "shared_dim": int(ss["shared_dim"]),
            "activation": ss["activation"],
            "learn_alpha": learn,
            "alpha": None if (learn or ss["fusion_mode"] != "sum") else [float(ss[f"alpha_{i}"]) for i in range(len(bodies))],
        }
    if method == "distill" and distill is not None:
        cfg["distill"] = distill
    return cfg


def _recipe_line(cfg_dict: dict[str, Any]) -> str | None:
    """What the fine-tuning recipe will do to this config (pretrained weights), in one line."""
    try:
        return describe(from_dict(cfg_dict))
    except ConfigError:
        return None  # the Start button reports the bad field


def _gpus_to_use() -> int:
    """N when "use N GPUs" is on (a torchrun job, see transfer_core.distributed), else 1 (a thread here)."""
    n = gpu_count()
    return n if n > 1 and ss.get("use_gpus") and ss.get("device") in ("auto", "cuda") else 1


def _submit(cfg_dict: dict[str, Any]) -> None:
    """Start button: validate + queue; a ConfigError is shown next to the button, no run made."""
    sig = repr(cfg_dict)
    last = ss.get("_last_submit")
    if last and last[0] == sig and time.monotonic() - last[1] < DOUBLE_SUBMIT_S:
        ss["submit_error"] = None
        st.toast("That run was just started: watch it below.", icon=":material/info:")
        return  # a double click: the first click already queued this exact run
    try:
        cfg = from_dict(cfg_dict)
        if cfg.method == "distill":  # a wrong teacher is one line here, not a failed run
            wd.check_teachers(validate(cfg), cfg_dict["data"])
        rid = job_manager().submit(cfg, nproc=_gpus_to_use())
    except ConfigError as exc:
        ss["submit_error"] = (exc.field, exc.message)
        return
    except (ValueError, RuntimeError) as exc:  # WeightsError / DataError are ValueErrors too
        ss["submit_error"] = ("", str(exc))
        return
    ss["_last_submit"] = (sig, time.monotonic())
    ss["submit_error"] = None
    ss["watched_run"] = rid
    select_run(rid)
    st.rerun()  # the whole app, so the sidebar queue shows the new job at once


# --------------------------------------------------------------------------- page

st.title("Train")
st.caption("Pick a method, backbones and settings, press **Start**, and watch the run learn live.")

names = list_backbones(curated_only=True)
completed = _completed_runs()
imported = w.list_imported_weights()
for key, value in DEFAULTS.items():
    _init(key, value)

# Presets first: their callbacks set widget values before the widgets are drawn.
pc = st.columns([0.7, 2.0, 1.6, 1.6, 2.2], vertical_alignment="center")
pc[0].markdown("**Presets:**")
pc[1].button("From-scratch baseline", key="preset_scratch", on_click=_apply_preset, args=("scratch",),
             icon=":material/restart_alt:", help="Random init, every layer trains", width="stretch")
pc[2].button("Linear probe", key="preset_probe", on_click=_apply_preset, args=("probe",),
             icon=":material/ac_unit:", help="Frozen pretrained backbone, only the new head trains", width="stretch")
pc[3].button("Full fine-tune", key="preset_finetune", on_click=_apply_preset, args=("finetune",),
             icon=":material/tune:", help="Everything trains, with a lower learning rate", width="stretch")
note = ss.pop("preset_note", None)
if note:
    with pc[4]:
        st.caption(note[0] + ("  \n" + "  \n".join(note[1]) if note[1] else ""))

demo_ui.demo_section()  # guided transfer demo: queues source, transfer and scratch; shows their comparison

settings_col, live_col = st.columns([2, 3], gap="large")
with settings_col:
    st.subheader("Model")
    if ss["method"] not in METHODS:
        ss["method"] = DEFAULTS["method"]
    method = st.radio("Method", list(METHODS), key="method", horizontal=True, format_func=METHODS.get)
    data = _data_section()
    distill: dict[str, Any] | None = None
    if method == "transfer":
        bodies = [_backbone_picker(0, names, completed, imported, "Backbone")]
    elif method == "distill":
        st.caption("Completed runs (the teachers) teach one small new model (the student) with their softened "
                   "predictions, on the labeled images and, if you let it, on the unlabeled ones.")
        with st.container(border=True):
            bodies = [_backbone_picker(0, names, completed, imported, "Student", prefix=STUDENT,
                                       help="The small model that learns from the teachers: what you ship. A "
                                            "new head is put on it; it may start from random weights.")]
        distill = wd.distill_settings(data, _init)
    else:
        f1, f2 = st.columns(2)
        n = int(f1.number_input("Backbones", min_value=2, max_value=MAX_FUSION, step=1, key="n_backbones"))
        mode = f2.selectbox("Fusion mode", ["sum", "concat"], key="fusion_mode",
                            help="sum: α-weighted sum in the shared space; concat: side by side")
        f3, f4 = st.columns(2)
        f3.number_input("Shared dimension", min_value=8, max_value=2048, step=32, key="shared_dim",
                        help="Every backbone is projected to this width before fusing")
        f4.selectbox("φ (activation)", list(ACTIVATIONS), key="activation", help="Applied to the fused vector")
        bodies = []
        for i in range(n):
            with st.container(border=True):
                bodies.append(_backbone_picker(i, names, completed, imported, f"Backbone {i + 1}"))
        if mode == "sum":
            learn = st.checkbox("Learn α (softmax-normalised, trained with the rest)", key="learn_alpha")
            if not learn:
                acols = st.columns(n)
                for i in range(n):
                    _init(f"alpha_{i}", 0.5)
                    acols[i].slider(f"α{i + 1} {bodies[i]['name']}", 0.0, 1.0, step=0.05, key=f"alpha_{i}")
                st.caption("Fixed weights are normalised to sum to 1.")

    st.subheader("Training")
    d1, d2 = st.columns([3, 2], vertical_alignment="center")
    d1.markdown(f"Data: {_data_summary(data)}")
    d2.page_link("pages/data.py", label="Change data", icon=":material/photo_library:")
    t1, t2 = st.columns(2)
    t1.number_input("Epochs", min_value=1, max_value=1000, step=1, key="epochs")
    if ss["batch_size"] not in BATCHES:
        ss["batch_size"] = DEFAULTS["batch_size"]
    t2.select_slider("Batch size", BATCHES, key="batch_size")
    t3, t4 = st.columns(2)
    t3.number_input("Learning rate", min_value=1e-6, max_value=1e6, step=1e-4, format="%.1e", key="lr")
    t4.selectbox("Optimizer", list(OPTIMIZERS), key="optimizer")
    st.segmented_control("Device", list(DEVICES), key="device",
                         help="auto picks a CUDA GPU, then Apple MPS, then the CPU")
    if ss.get("device") is None:  # segmented control can be cleared by clicking the selected item
        ss["device"] = "auto"
    st.toggle("Compile the model (torch.compile)", key="compile",
              help="Faster epochs on a GPU for long runs; the first epoch is slower while it compiles (about a "
                   "minute on a CPU). Falls back to normal training, with a warning, if compiling fails. "
                   "Not used for fully frozen runs (they train on cached features).")
    if gpu_count() > 1 and ss.get("device") in ("auto", "cuda"):  # scale-out: one torchrun DDP process per GPU
        st.toggle(f"Use {gpu_count()} GPUs", key="use_gpus",
                  help="Runs as a torchrun subprocess with one DistributedDataParallel process per GPU; "
                       "the batch size is split between them. Stop ends the whole process group.")

    cfg_dict = _build_config(method, bodies, data, distill)
    _save_form()
    recipe = _recipe_line(cfg_dict)
    if recipe:
        st.caption(f":material/school: {recipe}", help="Discriminative learning rates, as fastai's fine_tune: over "
                   "seeds 0-4 on the demo's task, full fine-tuning went from 51 % to 78 % with them (README). "
                   "train.lr_decay and train.head_epochs in a config, or --set on the CLI, override it; from-scratch "
                   "runs train every layer at the same rate.")
    if st.button("Start", key="start", type="primary", icon=":material/play_arrow:", width="stretch"):
        _submit(cfg_dict)
    err = ss.get("submit_error")
    if err:
        field, message = err
        st.error(f"**{field}**: {message}" if field else message, icon=":material/error:")
        ss["submit_error"] = None  # shown once, next to the button
    wt.train_lr_finder(cfg_dict, lr_key="lr")  # range test of these settings; "Use" sets the lr above

# --------------------------------------------------------------------------- watched run

rid = selected_run_id()
if rid is None and run_exists(ss.get("watched_run")):
    rid = ss["watched_run"]  # came back from another page: keep watching
    select_run(rid)
with live_col:
    if rid is None:
        st.subheader("Live view")
        st.info("No run yet. Press **Start**: the progress, loss and accuracy curves and the confusion matrix "
                "appear here. The defaults train resnet18 on the built-in digits in under a minute.",
                icon=":material/info:")
    else:
        ss["watched_run"] = rid
        active = run_view(rid).active
        head, stop_col = st.columns([4, 1], vertical_alignment="bottom")
        head.subheader("Live view")
        if active and job_manager().is_active(rid):
            stop_col.button("Stop", key="stop", icon=":material/stop_circle:", width="stretch",
                            on_click=lambda r=rid: job_manager().stop(r),
                            help="Stops within one batch; the run keeps its last checkpoint")
        live_view.watch(rid, active)
