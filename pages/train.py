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
from dashboard.run_view import run_view
from dashboard.state import draft_config, job_manager, run_exists, run_store, select_run, selected_run_id
from dashboard.train_bodies import STUDENT, backbone_picker, bb_default, imagenet_cached
from transfer_core.backbones import list_backbones
from transfer_core.config import ACTIVATIONS, DEVICES, OPTIMIZERS, ConfigError, DataConfig, from_dict, validate
from transfer_core.i18n import N_, _
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
MAX_FUSION = 4
BATCHES = [8, 16, 32, 64, 128, 256]
_FORM = "_train_form"  # plain dict mirroring the widget values (survives page switches)
_PERSIST_PREFIXES = ("method", "epochs", "batch_size", "lr", "optimizer", "device", "n_backbones", "fusion_mode",
                     "learn_alpha", "shared_dim", "activation", "bb", "alpha_", "compile", "distill_")
METHODS = {"transfer": N_("Transfer (one backbone)"), "fusion": N_("Fusion (several)"),
           "distill": N_("Distill (teachers → a small student)")}
FUSION_MODES = {"sum": N_("sum"), "concat": N_("concat")}  # values stay the config's, labels translated
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


def _completed_runs() -> list[Any]:
    return run_store().finished()


def _n_bodies() -> int:
    return int(ss.get("n_backbones", 2)) if ss.get("method", "transfer") == "fusion" else 1


def _body_prefix() -> str:
    """Widget key prefix of the bodies being edited: the student's in distill mode."""
    return STUDENT if ss.get("method") == "distill" else "bb"


def _apply_preset(preset: str) -> None:
    """Callback (runs before the widgets are drawn): set the widget values of a preset."""
    px = _body_prefix()
    bodies = [(ss.get(f"{px}{i}_name", bb_default(i, px)), ss.get(f"{px}{i}_weights", "none"))
              for i in range(_n_bodies())]
    choice = apply_preset(preset, bodies, _completed_runs(), imagenet_cached)
    for i, body in enumerate(choice.bodies):
        ss[f"{px}{i}_weights"], ss[f"{px}{i}_freeze"] = body.weights, body.freeze
    ss["lr"] = choice.lr
    ss["preset_note"] = (choice.summary, list(choice.notes))


# --------------------------------------------------------------------------- widgets


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
             _("all classes") if not classes else _("{n} classes").format(n=len(classes)),
             f"{data['image_size']} px",
             _("val {share:.0%}").format(share=float(data.get("val_fraction", 0.2)))]
    if data.get("train_per_class"):
        parts.append(_("{n} train images per class").format(n=data["train_per_class"]))
    if data.get("augment"):
        parts.append(_("augmented"))
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
        st.toast(_("That run was just started: watch it below."), icon=":material/info:")
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

st.title(_("Train"))
st.caption(_("Pick a method, backbones and settings, press **Start**, and watch the run learn live."))

names = list_backbones(curated_only=True)
completed = _completed_runs()
imported = w.list_imported_weights()
for key, value in DEFAULTS.items():
    _init(key, value)

# Presets first: their callbacks set widget values before the widgets are drawn.
pc = st.columns([0.7, 2.0, 1.6, 1.6, 2.2], vertical_alignment="center")
pc[0].markdown("**" + _("Presets:") + "**")
pc[1].button(_("From-scratch baseline"), key="preset_scratch", on_click=_apply_preset, args=("scratch",),
             icon=":material/restart_alt:", help=_("Random init, every layer trains"), width="stretch")
pc[2].button(_("Linear probe"), key="preset_probe", on_click=_apply_preset, args=("probe",),
             icon=":material/ac_unit:", help=_("Frozen pretrained backbone, only the new head trains"), width="stretch")
pc[3].button(_("Full fine-tune"), key="preset_finetune", on_click=_apply_preset, args=("finetune",),
             icon=":material/tune:", help=_("Everything trains, with a lower learning rate"), width="stretch")
note = ss.pop("preset_note", None)
if note:
    with pc[4]:
        st.caption(note[0] + ("  \n" + "  \n".join(note[1]) if note[1] else ""))

demo_ui.demo_section()  # guided transfer demo: queues source, transfer and scratch; shows their comparison

settings_col, live_col = st.columns([2, 3], gap="large")
with settings_col:
    st.subheader(_("Model"))
    if ss["method"] not in METHODS:
        ss["method"] = DEFAULTS["method"]
    method = st.radio(_("Method"), list(METHODS), key="method", horizontal=True, format_func=lambda m: _(METHODS[m]))
    data = _data_section()
    distill: dict[str, Any] | None = None
    if method == "transfer":
        bodies = [backbone_picker(0, names, completed, imported, _("Backbone"), _init)]
    elif method == "distill":
        st.caption(_("Completed runs (the teachers) teach one small new model (the student) with their softened "
                     "predictions, on the labeled images and, if you let it, on the unlabeled ones."))
        with st.container(border=True):
            bodies = [backbone_picker(0, names, completed, imported, _("Student"), _init, prefix=STUDENT,
                                      help=_("The small model that learns from the teachers: what you ship. A "
                                             "new head is put on it; it may start from random weights."))]
        distill = wd.distill_settings(data, _init)
    else:
        f1, f2 = st.columns(2)
        n = int(f1.number_input(_("Backbones"), min_value=2, max_value=MAX_FUSION, step=1, key="n_backbones"))
        mode = f2.selectbox(_("Fusion mode"), list(FUSION_MODES), key="fusion_mode",
                            format_func=lambda m: _(FUSION_MODES[m]),
                            help=_("sum: α-weighted sum in the shared space; concat: side by side"))
        f3, f4 = st.columns(2)
        f3.number_input(_("Shared dimension"), min_value=8, max_value=2048, step=32, key="shared_dim",
                        help=_("Every backbone is projected to this width before fusing"))
        f4.selectbox(_("φ (activation)"), list(ACTIVATIONS), key="activation", help=_("Applied to the fused vector"))
        bodies = []
        for i in range(n):
            with st.container(border=True):
                bodies.append(backbone_picker(i, names, completed, imported, _("Backbone {i}").format(i=i + 1), _init))
        if mode == "sum":
            learn = st.checkbox(_("Learn α (softmax-normalised, trained with the rest)"), key="learn_alpha")
            if not learn:
                acols = st.columns(n)
                for i in range(n):
                    _init(f"alpha_{i}", 0.5)
                    acols[i].slider(f"α{i + 1} {bodies[i]['name']}", 0.0, 1.0, step=0.05, key=f"alpha_{i}")
                st.caption(_("Fixed weights are normalised to sum to 1."))

    st.subheader(_("Training"))
    d1, d2 = st.columns([3, 2], vertical_alignment="center")
    d1.markdown(_("Data: {summary}").format(summary=_data_summary(data)))
    d2.page_link("pages/data.py", label=_("Change data"), icon=":material/photo_library:")
    t1, t2 = st.columns(2)
    t1.number_input(_("Epochs"), min_value=1, max_value=1000, step=1, key="epochs")
    if ss["batch_size"] not in BATCHES:
        ss["batch_size"] = DEFAULTS["batch_size"]
    t2.select_slider(_("Batch size"), BATCHES, key="batch_size")
    t3, t4 = st.columns(2)
    t3.number_input(_("Learning rate"), min_value=1e-6, max_value=1e6, step=1e-4, format="%.1e", key="lr")
    t4.selectbox(_("Optimizer"), list(OPTIMIZERS), key="optimizer")
    st.segmented_control(_("Device"), list(DEVICES), key="device",
                         help=_("auto picks a CUDA GPU, then Apple MPS, then the CPU"))
    if ss.get("device") is None:  # segmented control can be cleared by clicking the selected item
        ss["device"] = "auto"
    st.toggle(_("Compile the model (torch.compile)"), key="compile",
              help=_("Faster epochs on a GPU for long runs; the first epoch is slower while it compiles (about a "
                     "minute on a CPU). Falls back to normal training, with a warning, if compiling fails. "
                     "Not used for fully frozen runs (they train on cached features)."))
    if gpu_count() > 1 and ss.get("device") in ("auto", "cuda"):  # scale-out: one torchrun DDP process per GPU
        st.toggle(_("Use {n} GPUs").format(n=gpu_count()), key="use_gpus",
                  help=_("Runs as a torchrun subprocess with one DistributedDataParallel process per GPU; "
                         "the batch size is split between them. Stop ends the whole process group."))

    cfg_dict = _build_config(method, bodies, data, distill)
    _save_form()
    recipe = _recipe_line(cfg_dict)
    if recipe:
        st.caption(f":material/school: {recipe}", help=_(
            "Discriminative learning rates, as fastai's fine_tune: over seeds 0-4 on the demo's task, full "
            "fine-tuning went from 51 % to 78 % with them (README). train.lr_decay and train.head_epochs in a "
            "config, or --set on the CLI, override it; from-scratch runs train every layer at the same rate."))
    if st.button(_("Start"), key="start", type="primary", icon=":material/play_arrow:", width="stretch"):
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
        st.subheader(_("Live view"))
        st.info(_("No run yet. Press **Start**: the progress, loss and accuracy curves and the confusion matrix "
                  "appear here. The defaults train resnet18 on the built-in digits in under a minute."),
                icon=":material/info:")
    else:
        ss["watched_run"] = rid
        active = run_view(rid).active
        head, stop_col = st.columns([4, 1], vertical_alignment="bottom")
        head.subheader(_("Live view"))
        if active and job_manager().is_active(rid):
            stop_col.button(_("Stop"), key="stop", icon=":material/stop_circle:", width="stretch",
                            on_click=lambda r=rid: job_manager().stop(r),
                            help=_("Stops within one batch; the run keeps its last checkpoint"))
        live_view.watch(rid, active)
