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

from dashboard import charts
from dashboard import demo as demo_ui
from dashboard import widgets as w
from dashboard import widgets_teaching as wt
from dashboard.state import draft_config, job_manager, run_store, select_run, selected_run_id
from transfer_core.backbones import get_backbone, imagenet_weights_info, list_backbones, trainable_params
from transfer_core.config import ACTIVATIONS, DEVICES, OPTIMIZERS, ConfigError, DataConfig, from_dict
from transfer_core.runs import Run
from transfer_core.train import gpu_count

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
                     "learn_alpha", "shared_dim", "activation", "bb", "alpha_", "compile")
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


def _bb_default(i: int) -> str:
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
            acc = f" · val acc {s.val_acc:.3f}" if s.val_acc is not None else ""
            labels[f"run:{s.id}"] = f"run · {s.id}{acc}"
    return list(labels), labels


def _pretrained_source(name: str, completed: list[Any]) -> tuple[str, str]:
    """Best available pretrained source for a preset: ImageNet if cached, else the newest completed run."""
    if _imagenet_cached(name):
        return "imagenet", f"{name}: ImageNet weights."
    for s in completed:  # newest first
        if name in s.backbones:
            return f"run:{s.id}", f"{name}: ImageNet weights are not cached, so it starts from run {s.id}."
    return "none", (f"{name}: no ImageNet weights cached and no completed run to start from, so it is random init "
                    "(expect a low accuracy; import weights on the Models page).")


def _n_bodies() -> int:
    return 1 if ss.get("method", "transfer") == "transfer" else int(ss.get("n_backbones", 2))


def _apply_preset(preset: str) -> None:
    """Callback (runs before the widgets are drawn): set the widget values of a preset."""
    completed = _completed_runs()
    notes: list[str] = []
    for i in range(_n_bodies()):
        name = ss.get(f"bb{i}_name", _bb_default(i))
        if preset == "scratch":
            ss[f"bb{i}_weights"], ss[f"bb{i}_freeze"] = "none", 0
        elif preset == "probe":
            ss[f"bb{i}_weights"], note = _pretrained_source(name, completed)
            ss[f"bb{i}_freeze"] = "all"
            notes.append(note)
        elif preset == "finetune":
            ss[f"bb{i}_freeze"] = 0
            if ss.get(f"bb{i}_weights", "none") == "none":
                ss[f"bb{i}_weights"], note = _pretrained_source(name, completed)
                notes.append(note)
    if preset == "scratch":
        ss["lr"] = 1e-3
        ss["preset_note"] = ("From-scratch baseline: random init, every layer trains.", [])
    elif preset == "probe":
        ss["lr"] = 1e-3
        ss["preset_note"] = ("Linear probe: the backbone is frozen, only the new head trains.", notes)
    else:
        ss["lr"] = 1e-4
        ss["preset_note"] = ("Full fine-tune: every layer trains, with a lower learning rate (1e-4).", notes)


# --------------------------------------------------------------------------- widgets


def _backbone_picker(i: int, names: list[str], completed: list[Any], imported: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """Backbone, weights source and freeze slider for body ``i``; returns its config dict."""
    kname, kw, kf = f"bb{i}_name", f"bb{i}_weights", f"bb{i}_freeze"
    _init(kname, _bb_default(i))
    if ss[kname] not in names:
        ss[kname] = names[0] if _bb_default(i) not in names else _bb_default(i)
    name = st.selectbox(label, names, key=kname, help="torchvision classifiers; the final layer is replaced by a new head")

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
               f"{w.human_count(trainable)} of {w.human_count(total)} backbone parameters trainable")
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


def _build_config(method: str, bodies: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
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
    return cfg


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
        rid = job_manager().submit(from_dict(cfg_dict), nproc=_gpus_to_use())
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


# --------------------------------------------------------------------------- live view


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _progress(rid: str, run: Run, status: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
    p = job_manager().progress(rid) or run.progress() or {}
    epochs = int(p.get("epochs") or 0) or int(run.config_dict().get("train", {}).get("epochs", 1))
    state = status.get("state")
    if state == "queued":
        st.progress(0.0, text="Queued: waiting for the run in front of it to finish")
        return
    if state == "running" and (not p or p.get("phase") == "starting"):
        st.progress(0.0, text="Preparing data and model…")
        return
    epoch, batch, batches = int(p.get("epoch") or 0), int(p.get("batch") or 0), int(p.get("batches") or 0)
    if state == "running":
        done = (epoch - 1 + batch / batches) if batches else float(epoch)
        text = f"Epoch {max(epoch, 1)} of {epochs}" + (f" · batch {batch}/{batches}" if batches else " · validating")
        text += f" · ETA {_fmt_s(p.get('eta_s'))}" if p.get("eta_s") is not None else ""
        if job_manager().is_active(rid) and any(j["run_id"] == rid and j.get("stopping") for j in job_manager().jobs()):
            text = "Stopping at the end of this batch…"
    else:
        done = float(len(metrics))
        text = f"{state.capitalize()} · {len(metrics)} of {epochs} epochs"
    st.progress(min(max(done / max(epochs, 1), 0.0), 1.0), text=text)


def _final_metrics(metrics: list[dict[str, Any]], status: dict[str, Any]) -> None:
    last = metrics[-1]
    best = max((m.get("val_acc") or 0.0) for m in metrics)
    took = (status.get("ended") or 0) - (status.get("started") or 0)
    c = st.columns(5)
    c[0].metric("Val acc", f"{last['val_acc']:.1%}", help="Accuracy on the held-out validation images, last epoch")
    c[1].metric("Best val acc", f"{best:.1%}", help="Best validation accuracy over the epochs")
    c[2].metric("Val loss", f"{last['val_loss']:.3f}")
    c[3].metric("Train acc", f"{last['train_acc']:.1%}")
    c[4].metric("Time", _fmt_s(took) if took > 0 else "—", help="Wall-clock training time (m:ss)")


def _draw_run(rid: str) -> bool:
    """Everything about the watched run; returns whether it is still active."""
    run = run_store().get(rid)
    status = run.status()
    state = status.get("state", "interrupted")
    if state == "interrupted" and job_manager().is_active(rid):
        state = status["state"] = "running"  # our worker is preparing data/model: not interrupted
    active = job_manager().is_active(rid) or state in ("running", "queued")
    metrics = run.metrics()
    try:
        cfg = run.config_dict()
    except Exception:  # a damaged config still shows the rest
        cfg = {}

    bbs = " + ".join(f"{b.get('name')} ({b.get('weights')}, freeze {b.get('freeze')})" for b in cfg.get("backbones", []))
    st.caption(f"Run `{rid}` · {cfg.get('method', '?')} · {bbs} · data {(cfg.get('data') or {}).get('dataset', '?')}")
    _progress(rid, run, status, metrics)
    if state == "completed" and metrics:
        _final_metrics(metrics, status)
    elif state == "failed":
        st.error(f"The run failed: {status.get('message') or 'no message'}", icon=":material/error:")
    elif state in ("stopped", "interrupted"):
        st.warning(f"The run is {state}: {status.get('message', '')}", icon=":material/pause_circle:")
        st.page_link("pages/results.py", label="Resume it from the Results page", icon=":material/play_arrow:",
                     query_params={"run": rid})

    planned = int((cfg.get("train") or {}).get("epochs") or 0) or None
    st.plotly_chart(charts.curves_figure(metrics, epochs=planned), key="train_curves", config={"displayModeBar": False})
    if not metrics:
        st.caption("The curves fill in as epochs finish (one point per epoch).")
    if cfg.get("method") == "fusion" and (cfg.get("fusion") or {}).get("mode") == "sum" and any(m.get("alpha") for m in metrics):
        names = [b.get("name", "?") for b in cfg.get("backbones", [])]
        st.plotly_chart(charts.alpha_figure(metrics, names), key="train_alpha", config={"displayModeBar": False})

    if state == "completed":
        conf = run.confusion()
        if conf:
            st.plotly_chart(charts.confusion_figure(conf), key="train_confusion", config={"displayModeBar": False})
            st.caption("Rows are the true classes, columns the predicted ones: the diagonal is what it got right.")
            l1, l2 = st.columns(2)
            l1.page_link("pages/results.py", label="Full results: per-class table, config", icon=":material/insights:",
                         query_params={"run": rid})
            l2.page_link("pages/predict.py", label="Try the model on an image", icon=":material/image_search:",
                         query_params={"run": rid})
    return active


LIVE_REFRESH_S = 2.0  # every watching tab costs a rerun per tick: 2 s keeps 5 watchers light on a 2-core box


@st.fragment(run_every=LIVE_REFRESH_S)
def _live(rid: str) -> None:
    """Redraws every LIVE_REFRESH_S while the run is active; one full rerun when it ends (stops the timer)."""
    if not _draw_run(rid):
        st.rerun(scope="app")


@st.fragment
def _static(rid: str) -> None:
    _draw_run(rid)


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
    method = st.radio("Method", ["transfer", "fusion"], key="method", horizontal=True,
                      format_func=lambda m: {"transfer": "Transfer (one backbone)", "fusion": "Fusion (several)"}[m])
    if method == "transfer":
        bodies = [_backbone_picker(0, names, completed, imported, "Backbone")]
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
    data = _data_section()
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

    cfg_dict = _build_config(method, bodies, data)
    _save_form()
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
if rid is None and ss.get("watched_run") and (run_store().root / ss["watched_run"] / "config.yaml").is_file():
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
        active = job_manager().is_active(rid) or run_store().get(rid).status().get("state") in ("running", "queued")
        head, stop_col = st.columns([4, 1], vertical_alignment="bottom")
        head.subheader("Live view")
        if active and job_manager().is_active(rid):
            stop_col.button("Stop", key="stop", icon=":material/stop_circle:", width="stretch",
                            on_click=lambda r=rid: job_manager().stop(r),
                            help="Stops within one batch; the run keeps its last checkpoint")
        if active:
            _live(rid)
        else:
            _static(rid)
