"""Models: the backbone registry, which weights are ready, importing weights, freezing.

Specs come from transfer_core.backbones (computed on the meta device, cached here per
name); weight files are checked by the core (weights_only=True, every key must fit)
before they are saved into <runs root>/_weights, where the Train page's pickers find them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard import widgets as w
from dashboard.formatting import human_bytes, human_count
from dashboard.state import run_store
from transfer_core.backbones import (
    WeightsError,
    get_backbone,
    imagenet_weights_info,
    list_backbones,
    trainable_params,
)
from transfer_core.training import cache_dir, cache_size_bytes, clear_cache

DEFAULT_BACKBONE = "resnet18"


@st.cache_data(show_spinner=False)
def _spec_row(name: str) -> dict[str, Any]:
    """The static facts of one backbone (no weights state: that can change)."""
    s = get_backbone(name)
    return {
        "Backbone": s.name,
        "Family": s.family,
        "Params (M)": round(s.num_params / 1e6, 2),
        "Feature dim": s.feature_dim,
        "Layer groups": len(s.groups),
        "Input size": f"{s.fixed_size} px (fixed)" if s.fixed_size else f"≥ {s.min_size} px",
        "groups": [(g.name, g.num_params) for g in s.groups],
    }


def _weights_state(name: str) -> str:
    try:
        return "cached" if imagenet_weights_info(name)["cached"] else "download on first use"
    except Exception:  # a builder without ImageNet weights
        return "—"


st.title("Models")
st.caption("Backbones to build on: their size and layer groups, which weights are ready, and what freezing leaves trainable.")

ss = st.session_state
show_all = st.toggle(
    "Show all torchvision backbones",
    key="mb_all",
    help="About 80 architectures. Reading them all takes a minute the first time; the curated 16 cover every family.",
)
names = list_backbones(curated_only=not show_all)
rows: list[dict[str, Any]] = []
progress = st.progress(0.0, text="Reading backbone specs…")
for i, n in enumerate(names):
    try:
        rows.append(_spec_row(n))
    except Exception as exc:  # one odd architecture must not hide the others
        st.warning(f"{n}: cannot read its spec ({str(exc).splitlines()[0][:160]})", icon=":material/warning:")
    progress.progress((i + 1) / len(names), text=f"Reading backbone specs… {i + 1}/{len(names)}")
progress.empty()

imported = w.list_imported_weights()
finished = run_store().finished()
for r in rows:
    r["ImageNet weights"] = _weights_state(r["Backbone"])
    r["Imported files"] = sum(f["backbone"] == r["Backbone"] for f in imported)
    r["Finished runs"] = sum(r["Backbone"] in s.backbones for s in finished)
by_name = {r["Backbone"]: r for r in rows}

m1, m2, m3, m4 = st.columns(4)
m1.metric("Backbones", len(rows), help="curated list" if not show_all else "every torchvision classifier")
m2.metric("ImageNet weights cached", sum(r["ImageNet weights"] == "cached" for r in rows))
m3.metric("Imported weight files", len(imported))
m4.metric("Finished runs to start from", len(finished))

table = pd.DataFrame([{k: v for k, v in r.items() if k != "groups"} for r in rows])
st.dataframe(
    table,
    key="mb_table",
    hide_index=True,
    height=min(38 + 35 * len(rows), 640),
    column_config={
        "Params (M)": st.column_config.NumberColumn(format="%.1f"),
        "Feature dim": st.column_config.NumberColumn(format="%d"),
    },
)

left, right = st.columns(2, gap="large")

with left:
    st.subheader("Layer groups and freezing")
    options = [r["Backbone"] for r in rows] or [DEFAULT_BACKBONE]
    if ss.get("mb_backbone") not in options:
        ss["mb_backbone"] = DEFAULT_BACKBONE if DEFAULT_BACKBONE in options else options[0]
    name = st.selectbox("Backbone", options, key="mb_backbone")
    spec = get_backbone(name)
    k = len(spec.groups)
    if ss.get("mb_freeze", 0) > k:
        ss["mb_freeze"] = k
    freeze = st.slider(
        "Frozen layer groups", min_value=0, max_value=k, key="mb_freeze",
        help="The first n groups keep their weights; the rest (and the new head) are trained.",
    )
    trainable = trainable_params(spec, int(freeze))
    share = trainable / spec.num_params if spec.num_params else 0.0
    c1, c2, c3 = st.columns(3)
    c1.metric("Trainable parameters", human_count(trainable))
    c2.metric("Frozen parameters", human_count(spec.num_params - trainable))
    c3.metric("Trainable share", f"{share:.0%}")
    st.caption(f"{trainable:,} of {spec.num_params:,} body parameters are trained; grey groups keep their weights.")
    st.plotly_chart(
        charts.groups_figure([(g.name, g.num_params) for g in spec.groups], int(freeze)), key="mb_groups_chart",
        config={"displayModeBar": False},
    )
    st.dataframe(
        pd.DataFrame([
            {
                "#": i + 1,
                "Group": g.name,
                "Params": g.num_params,
                "Share": g.num_params / spec.num_params if spec.num_params else 0.0,
                "State": "frozen" if i < freeze else "trained",
            }
            for i, g in enumerate(spec.groups)
        ]),
        key="mb_groups_table",
        hide_index=True,
        column_config={
            "Params": st.column_config.NumberColumn(format="localized"),
            "Share": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
        },
    )
    st.caption(f"{name}: feature dim {spec.feature_dim}; the new classification head is always trained.")

with right:
    st.subheader("Weights ready to use")
    st.caption("Pick these on the Train page as the weights source of a backbone.")
    st.markdown("**Imported files**")
    if imported:
        st.dataframe(
            pd.DataFrame([
                {"File": f["name"], "For": f["backbone"], "MB": f["size_mb"]} for f in imported
            ]),
            key="mb_imported_table", hide_index=True,
        )
    else:
        st.caption("None yet: import one below.")
    st.markdown("**Finished runs**")
    if finished:
        st.dataframe(
            pd.DataFrame([
                {
                    "Run": s.id,
                    "Val acc": s.val_acc,
                    "Backbones": ", ".join(s.backbones),
                    "Dataset": s.dataset,
                }
                for s in finished
            ]),
            key="mb_runs_table", hide_index=True,
            column_config={
                "Run": st.column_config.TextColumn(width="medium"),
                "Val acc": st.column_config.NumberColumn(format="percent", width="small"),
            },
        )
    else:
        st.caption("None yet: a completed run can seed a new one (its body weights are reused).")

    with st.container(border=True):
        st.markdown("**Import a weights file**")
        up = st.file_uploader(
            "PyTorch state_dict (.pt / .pth)",
            type=["pt", "pth"],
            key="weights_upload",
            max_upload_size=w.WEIGHTS_UPLOAD_MAX_MB,
            help=(
                "torch.save(model.state_dict(), 'w.pt') of a torchvision model. Read with weights_only=True: "
                f"files containing code are refused. Up to {w.WEIGHTS_UPLOAD_MAX_MB} MB."
            ),
        )
        if ss.get("wi_backbone") not in options:
            ss["wi_backbone"] = name
        target = st.selectbox("It is for backbone", options, key="wi_backbone")
        flash = ss.get("_wi_flash")
        already = bool(flash and up is not None and flash[0] == up.file_id and flash[1] == "ok")
        if st.button("Check and import", key="wi_import", type="primary", disabled=up is None or already):
            try:
                with st.spinner(f"Checking {up.name} against {target}…"):
                    saved = w.import_weights(up.name, up.getvalue(), target)
                ss["_wi_flash"] = (up.file_id, "ok", f"Saved as **{saved.name}**: choose it on the Train page.")
            except (WeightsError, ValueError) as exc:
                ss["_wi_flash"] = (up.file_id, "error", str(exc))
            st.rerun()
        if flash and up is not None and flash[0] == up.file_id:
            (st.success if flash[1] == "ok" else st.error)(flash[2], icon=":material/check_circle:" if flash[1] == "ok" else "🚫")

with st.container(border=True):
    st.markdown("**Feature cache**")
    cache_root = cache_dir(run_store().root)
    size = cache_size_bytes(runs_root=run_store().root)
    st.caption(
        "When every backbone of a run is fully frozen (a linear probe, or a fusion of frozen backbones), each "
        "image's features are computed once and only the head, projections and α train on them. They are kept "
        "here and reused by any later run on the same backbone, weights, data, split and preprocessing, so "
        "changing α, the head, lr or epochs starts in seconds. Cached runs do not augment: they train on the "
        "features of the unaugmented images (turn off the cache in the run's config to augment through the "
        "frozen bodies)."
    )
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.metric("Size on disk", human_bytes(size), help=str(cache_root))
    c1.caption(f"`{cache_root}`")
    if c2.button("Clear cache", key="mb_clear_cache", disabled=size == 0, icon=":material/delete:"):
        freed = clear_cache(runs_root=run_store().root)
        ss["_mb_cache_flash"] = f"Freed {human_bytes(freed)}. The next frozen run extracts its features again."
        st.rerun()
    if ss.get("_mb_cache_flash"):
        st.success(ss.pop("_mb_cache_flash"), icon=":material/check_circle:")
