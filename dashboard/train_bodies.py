"""The Train page's backbone picker: backbone, weights source and freeze slider of one body.

Split out of ``pages/train.py`` (which draws one picker per body: the transfer backbone,
each fusion backbone, or the distillation's student). ``init(key, default)`` is the page's
persistence: it gives a widget its value through session state, restored after a visit to
another page.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from dashboard import widgets_distill as wd
from dashboard.formatting import human_count, weights_run_label
from transfer_core.backbones import get_backbone, imagenet_weights_info, trainable_params
from transfer_core.i18n import _

__all__ = ["FUSION_DEFAULT_BACKBONES", "STUDENT", "bb_default", "imagenet_cached", "backbone_picker"]

FUSION_DEFAULT_BACKBONES = ("resnet18", "mobilenet_v3_small", "shufflenet_v2_x1_0", "squeezenet1_1")
STUDENT = "distill_bb"  # the student's picker keys (distill_bb0_name, ...): its own choice, not the transfer body's

ss = st.session_state


def bb_default(i: int, prefix: str = "bb") -> str:
    if prefix == STUDENT:
        return wd.STUDENT_DEFAULT
    return FUSION_DEFAULT_BACKBONES[i % len(FUSION_DEFAULT_BACKBONES)]


@st.cache_data(show_spinner=False)
def _groups(name: str) -> tuple[list[str], list[int], int]:
    spec = get_backbone(name)
    return [g.name for g in spec.groups], [g.num_params for g in spec.groups], spec.num_params


def imagenet_cached(name: str) -> bool:
    try:
        return bool(imagenet_weights_info(name)["cached"])
    except Exception:  # a builder without ImageNet weights
        return False


def _weights_options(name: str, completed: list[Any], imported: list[dict[str, Any]],
                     ) -> tuple[list[str], dict[str, str]]:
    """Weight sources that fit backbone ``name``, with their labels."""
    cached = _("cached") if imagenet_cached(name) else _("not cached: downloads on first use")
    labels = {"none": "none · " + _("random init"), "imagenet": "imagenet · " + cached}
    for f in imported:
        if f.get("backbone") in (name, "?", None, ""):
            labels[f["source"]] = _("file · {name}").format(name=f["name"])
    for s in completed:
        if name in s.backbones:
            labels[f"run:{s.id}"] = weights_run_label(s)
    return list(labels), labels


def backbone_picker(i: int, names: list[str], completed: list[Any], imported: list[dict[str, Any]], label: str,
                    init: Callable[[str, Any], None], prefix: str = "bb", help: str | None = None) -> dict[str, Any]:
    """Backbone, weights source and freeze slider for body ``i``; returns its config dict."""
    kname, kw, kf = f"{prefix}{i}_name", f"{prefix}{i}_weights", f"{prefix}{i}_freeze"
    default = bb_default(i, prefix)
    init(kname, default)
    if ss[kname] not in names:
        ss[kname] = names[0] if default not in names else default
    name = st.selectbox(label, names, key=kname,
                        help=help or _("torchvision classifiers; the final layer is replaced by a new head"))

    options, labels = _weights_options(name, completed, imported)
    init(kw, "none")
    if ss[kw] not in options:
        ss[kw] = "none"
    weights = st.selectbox(_("Weights"), options, key=kw, format_func=lambda v: labels.get(v, v),
                           help=_("Where the backbone starts from: random, ImageNet, an imported file, or a "
                                  "completed run"))
    if weights == "imagenet" and not imagenet_cached(name):
        st.caption(":orange[" + _("ImageNet weights are not cached: the run downloads them, and fails if offline.")
                   + "]")

    groups, _sizes, total = _groups(name)
    k = len(groups)
    freeze_opts: list[Any] = list(range(k)) + ["all"]
    init(kf, 0)
    if ss[kf] not in freeze_opts:
        ss[kf] = "all" if isinstance(ss[kf], int) and ss[kf] >= k else 0
    freeze = st.select_slider(
        _("Freeze layer groups"), freeze_opts, key=kf,
        format_func=lambda v: _("all") if v == "all" else str(v),
        help=_("{name} is split into {k} groups, stem first: {groups}. Freezing n keeps the first n fixed.").format(
            name=name, k=k, groups=", ".join(groups)),
    )
    n = k if freeze == "all" else int(freeze)
    trainable = trainable_params(get_backbone(name), freeze)
    frozen_txt = ", ".join(groups[:n]) if n else _("nothing")
    train_txt = ", ".join(groups[n:] + [_("new head")])
    st.caption(_("Frozen: **{frozen}** · trains: **{trains}** · {trainable} of {total} backbone parameters "
                 "trainable").format(frozen=frozen_txt, trains=train_txt, trainable=human_count(trainable),
                                     total=human_count(total)))
    if freeze == "all":
        st.caption(_(":material/bolt: Fully frozen: features are computed once and cached (see Models), so epochs "
                     "take seconds; cached runs train on unaugmented images."))
    return {"name": name, "weights": weights, "freeze": freeze}
