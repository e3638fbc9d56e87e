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
from transfer_core.i18n import N_, _
from transfer_core.training import cache_dir, cache_size_bytes, clear_cache

DEFAULT_BACKBONE = "resnet18"
# ImageNet weights of a backbone: internal state -> what the table says.
WEIGHTS_STATE = {"cached": N_("cached"), "download": N_("download on first use"), "none": "—"}
# The tables' columns stay these English keys; the headers people see are translated (column_config labels).
SPEC_COLUMNS = {
    "Backbone": N_("Backbone"), "Family": N_("Family"), "Params (M)": N_("Params (M)"),
    "Feature dim": N_("Feature dim"), "Layer groups": N_("Layer groups"), "Input size": N_("Input size"),
    "ImageNet weights": N_("ImageNet weights"), "Imported files": N_("Imported files"),
    "Finished runs": N_("Finished runs"),
}


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
        "fixed_size": s.fixed_size,  # "Input size" is worded outside the cache (in the session's language)
        "min_size": s.min_size,
        "groups": [(g.name, g.num_params) for g in s.groups],
    }


def _weights_state(name: str) -> str:
    """ "cached", "download" or "none" (a key of WEIGHTS_STATE)."""
    try:
        return "cached" if imagenet_weights_info(name)["cached"] else "download"
    except Exception:  # a builder without ImageNet weights
        return "none"


def _input_size(r: dict[str, Any]) -> str:
    return _("{px} px (fixed)").format(px=r["fixed_size"]) if r["fixed_size"] else f"≥ {r['min_size']} px"


st.title(_("Models"))
st.caption(_("Backbones to build on: their size and layer groups, which weights are ready, and what freezing leaves "
             "trainable."))

ss = st.session_state
show_all = st.toggle(
    _("Show all torchvision backbones"),
    key="mb_all",
    help=_("About 80 architectures. Reading them all takes a minute the first time; the curated 16 cover every "
           "family."),
)
names = list_backbones(curated_only=not show_all)
rows: list[dict[str, Any]] = []
progress = st.progress(0.0, text=_("Reading backbone specs…"))
for i, n in enumerate(names):
    try:
        rows.append(dict(_spec_row(n)))
    except Exception as exc:  # one odd architecture must not hide the others
        st.warning(_("{name}: cannot read its spec ({error})").format(name=n, error=str(exc).splitlines()[0][:160]),
                   icon=":material/warning:")
    progress.progress((i + 1) / len(names), text=_("Reading backbone specs… {i}/{n}").format(i=i + 1, n=len(names)))
progress.empty()

imported = w.list_imported_weights()
finished = run_store().finished()
for r in rows:
    r["Input size"] = _input_size(r)
    state = r["weights_state"] = _weights_state(r["Backbone"])
    r["ImageNet weights"] = _(WEIGHTS_STATE[state])
    r["Imported files"] = sum(f["backbone"] == r["Backbone"] for f in imported)
    r["Finished runs"] = sum(r["Backbone"] in s.backbones for s in finished)
by_name = {r["Backbone"]: r for r in rows}

m1, m2, m3, m4 = st.columns(4)
m1.metric(_("Backbones"), len(rows), help=_("curated list") if not show_all else _("every torchvision classifier"))
m2.metric(_("ImageNet weights cached"), sum(r["weights_state"] == "cached" for r in rows))
m3.metric(_("Imported weight files"), len(imported))
m4.metric(_("Finished runs to start from"), len(finished))

table = pd.DataFrame([{k: r[k] for k in SPEC_COLUMNS} for r in rows], columns=list(SPEC_COLUMNS))
number_formats = {"Params (M)": "%.1f", "Feature dim": "%d"}
spec_columns = {k: st.column_config.NumberColumn(_(label), format=number_formats[k]) if k in number_formats
                else st.column_config.Column(_(label)) for k, label in SPEC_COLUMNS.items()}
st.dataframe(
    table,
    key="mb_table",
    hide_index=True,
    height=min(38 + 35 * len(rows), 640),
    column_config=spec_columns,
)

left, right = st.columns(2, gap="large")

with left:
    st.subheader(_("Layer groups and freezing"))
    options = [r["Backbone"] for r in rows] or [DEFAULT_BACKBONE]
    if ss.get("mb_backbone") not in options:
        ss["mb_backbone"] = DEFAULT_BACKBONE if DEFAULT_BACKBONE in options else options[0]
    name = st.selectbox(_("Backbone"), options, key="mb_backbone")
    spec = get_backbone(name)
    k = len(spec.groups)
    if ss.get("mb_freeze", 0) > k:
        ss["mb_freeze"] = k
    freeze = st.slider(
        _("Frozen layer groups"), min_value=0, max_value=k, key="mb_freeze",
        help=_("The first n groups keep their weights; the rest (and the new head) are trained."),
    )
    trainable = trainable_params(spec, int(freeze))
    share = trainable / spec.num_params if spec.num_params else 0.0
    c1, c2, c3 = st.columns(3)
    c1.metric(_("Trainable parameters"), human_count(trainable))
    c2.metric(_("Frozen parameters"), human_count(spec.num_params - trainable))
    c3.metric(_("Trainable share"), f"{share:.0%}")
    st.caption(_("{trainable:,} of {total:,} body parameters are trained; grey groups keep their weights.").format(
        trainable=trainable, total=spec.num_params))
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
                "State": _("frozen") if i < freeze else _("trained"),
            }
            for i, g in enumerate(spec.groups)
        ]),
        key="mb_groups_table",
        hide_index=True,
        column_config={
            "Group": st.column_config.TextColumn(_("Group")),
            "Params": st.column_config.NumberColumn(_("Params"), format="localized"),
            "Share": st.column_config.ProgressColumn(_("Share"), format="percent", min_value=0.0, max_value=1.0),
            "State": st.column_config.TextColumn(_("State")),
        },
    )
    st.caption(_("{name}: feature dim {dim}; the new classification head is always trained.").format(
        name=name, dim=spec.feature_dim))

with right:
    st.subheader(_("Weights ready to use"))
    st.caption(_("Pick these on the Train page as the weights source of a backbone."))
    st.markdown("**" + _("Imported files") + "**")
    if imported:
        st.dataframe(
            pd.DataFrame([
                {"File": f["name"], "For": f["backbone"], "MB": f["size_mb"]} for f in imported
            ]),
            key="mb_imported_table", hide_index=True,
            column_config={"File": st.column_config.TextColumn(_("File")),
                           "For": st.column_config.TextColumn(_("For"))},
        )
    else:
        st.caption(_("None yet: import one below."))
    st.markdown("**" + _("Finished runs") + "**")
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
                "Run": st.column_config.TextColumn(_("Run"), width="medium"),
                "Val acc": st.column_config.NumberColumn(_("Val acc"), format="percent", width="small"),
                "Backbones": st.column_config.TextColumn(_("Backbones")),
                "Dataset": st.column_config.TextColumn(_("Dataset")),
            },
        )
    else:
        st.caption(_("None yet: a completed run can seed a new one (its body weights are reused)."))

    with st.container(border=True):
        st.markdown("**" + _("Import a weights file") + "**")
        up = st.file_uploader(
            _("PyTorch state_dict (.pt / .pth)"),
            type=["pt", "pth"],
            key="weights_upload",
            max_upload_size=w.WEIGHTS_UPLOAD_MAX_MB,
            help=_(
                "torch.save(model.state_dict(), 'w.pt') of a torchvision model. Read with weights_only=True: "
                "files containing code are refused. Up to {mb} MB."
            ).format(mb=w.WEIGHTS_UPLOAD_MAX_MB),
        )
        if ss.get("wi_backbone") not in options:
            ss["wi_backbone"] = name
        target = st.selectbox(_("It is for backbone"), options, key="wi_backbone")
        flash = ss.get("_wi_flash")
        already = bool(flash and up is not None and flash[0] == up.file_id and flash[1] == "ok")
        if st.button(_("Check and import"), key="wi_import", type="primary", disabled=up is None or already):
            try:
                with st.spinner(_("Checking {file} against {backbone}…").format(file=up.name, backbone=target)):
                    saved = w.import_weights(up.name, up.getvalue(), target)
                ss["_wi_flash"] = (up.file_id, "ok", saved.name)  # worded when shown (the language may change)
            except (WeightsError, ValueError) as exc:
                ss["_wi_flash"] = (up.file_id, "error", str(exc))
            st.rerun()
        if flash and up is not None and flash[0] == up.file_id:
            if flash[1] == "ok":
                st.success(_("Saved as **{name}**: choose it on the Train page.").format(name=flash[2]),
                           icon=":material/check_circle:")
            else:
                st.error(flash[2], icon="🚫")

with st.container(border=True):
    st.markdown("**" + _("Feature cache") + "**")
    cache_root = cache_dir(run_store().root)
    size = cache_size_bytes(runs_root=run_store().root)
    st.caption(_(
        "When every backbone of a run is fully frozen (a linear probe, or a fusion of frozen backbones), each "
        "image's features are computed once and only the head, projections and α train on them. They are kept "
        "here and reused by any later run on the same backbone, weights, data, split and preprocessing, so "
        "changing α, the head, lr or epochs starts in seconds. Cached runs do not augment: they train on the "
        "features of the unaugmented images (turn off the cache in the run's config to augment through the "
        "frozen bodies)."
    ))
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.metric(_("Size on disk"), human_bytes(size), help=str(cache_root))
    c1.caption(f"`{cache_root}`")
    if c2.button(_("Clear cache"), key="mb_clear_cache", disabled=size == 0, icon=":material/delete:"):
        ss["_mb_cache_flash"] = clear_cache(runs_root=run_store().root)  # bytes freed, worded when shown
        st.rerun()
    if ss.get("_mb_cache_flash") is not None:
        freed = ss.pop("_mb_cache_flash")
        st.success(_("Freed {size}. The next frozen run extracts its features again.").format(size=human_bytes(freed)),
                   icon=":material/check_circle:")
