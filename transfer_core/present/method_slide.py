"""The method slide: each backbone's layer groups (frozen shaded), a fusion's projections and α, a
distillation's teachers above its student, said in one sentence, with the config in the notes."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from ..compare import run_kind
from ..runs import RunStore
from . import sentences as sx
from .slides import class_count
from .story import Slide

__all__ = ["backbone_block", "method_slide"]

log = logging.getLogger(__name__)


def backbone_block(b: Mapping[str, Any], store: RunStore) -> dict[str, Any]:
    from ..backbones import frozen_groups, get_backbone

    name = str(b.get("name", "?"))
    weights = str(b.get("weights", "none"))
    source_cfg = None
    if weights.startswith("run:"):
        try:
            source_cfg = store.get(weights).config_dict()
        except Exception:  # noqa: BLE001
            source_cfg = None
    out: dict[str, Any] = {"name": name, "source": sx.weights_text(weights, source_cfg), "groups": [], "frozen": 0,
                           "params": None, "trainable": None}
    try:
        spec = get_backbone(name)
        out["groups"] = [[g.name, g.num_params] for g in spec.groups]
        fr = b.get("freeze", 0)
        out["frozen"] = frozen_groups(spec, fr if fr == "all" else int(fr))
        out["params"] = spec.num_params
        out["trainable"] = spec.num_params - sum(g.num_params for g in spec.groups[: out["frozen"]])
    except Exception as exc:  # noqa: BLE001 - an unknown backbone: one block
        log.warning("present: no layer groups for %s: %s", name, exc)
        out["all_frozen"] = b.get("freeze") == "all"
    return out




def _method_spec(cfg: Mapping[str, Any], store: RunStore, metrics: Sequence[Mapping[str, Any]] = (),
                 n_classes: int | None = None, teachers: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    bbs = [backbone_block(b, store) for b in cfg.get("backbones") or [] if isinstance(b, Mapping)]
    spec: dict[str, Any] = {"method": cfg.get("method", "transfer"), "backbones": bbs,
                            "classes": n_classes or class_count(cfg, None),
                            "image_size": (cfg.get("data") or {}).get("image_size")}
    if cfg.get("method") == "fusion":
        fu = dict(cfg.get("fusion") or {})
        learned = [m.get("alpha") for m in metrics if m.get("alpha")]
        alpha = learned[-1] if learned else fu.get("alpha") or [1 / max(1, len(bbs))] * len(bbs)
        spec["fusion"] = {"mode": fu.get("mode", "sum"), "shared_dim": fu.get("shared_dim", "?"), "alpha": alpha,
                          "learn_alpha": bool(fu.get("learn_alpha"))}
    if teachers:
        spec["teachers"] = [dict(t) for t in teachers]
    return spec


def _method_lead(cfg: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    bbs = spec["backbones"]
    n = spec.get("classes") or "its"
    method = cfg.get("method", "transfer")
    if method == "fusion" and len(bbs) > 1:
        fu = spec.get("fusion") or {}
        names = sx.join_words([b["name"] for b in bbs])
        how = ("their features are joined side by side" if fu.get("mode") == "concat" else
               f"their features are projected to {fu.get('shared_dim')} numbers each, weighted by α and summed"
               + (" (α is learned during training)" if fu.get("learn_alpha") else ""))
        return f"{names} each turn an image into features; {how}; a new head then picks one of {n} classes."
    parts = []
    for b in bbs:
        groups, frozen = len(b.get("groups") or []), int(b.get("frozen") or 0)
        if not groups:
            parts.append(f"{b['name']} ({b['source']})")
        elif frozen == 0:
            parts.append(f"{b['name']} starts from {b['source'].removeprefix('pretrained on ')} and every one of its "
                         f"{groups} layer groups is trained" if b["source"] != "random init" else
                         f"{b['name']} starts from random weights and all {groups} layer groups are trained")
        elif frozen >= groups:
            parts.append(f"{b['name']} is {b['source']} and kept frozen: only a new head is trained")
        else:
            parts.append(f"{b['name']} is {b['source']}; its first {frozen} of {groups} layer groups stay frozen "
                         f"and the rest are trained")
    text = "; ".join(parts)
    if method == "distill":
        t = spec.get("teachers") or []
        who = f"{len(t)} frozen teacher{'s' if len(t) != 1 else ''}" if t else "its frozen teachers"
        return f"The student: {text}. It learns from the labels and from the answers of {who}."
    return f"{text}, with a new head for {n} classes."


def method_slide(cfg: Mapping[str, Any], store: RunStore, metrics: Sequence[Mapping[str, Any]] = (),
                  n_classes: int | None = None, teachers: Sequence[Mapping[str, Any]] = (),
                  title: str | None = None) -> Slide:
    spec = _method_spec(cfg, store, metrics, n_classes, teachers)
    kind = "distill" if cfg.get("method") == "distill" else run_kind(cfg)
    slide = Slide("method", title or f"The method: {sx.KIND_TEXT.get(kind, kind).split(' (')[0]}")
    slide.lead = _method_lead(cfg, spec)
    slide.figures.append({"kind": "method", "args": spec,
                          "caption": "Each block is a layer group: grey ones are frozen, blue ones are trained"})
    counted = [b for b in spec["backbones"] if b.get("params")]
    if counted:
        tot = sum(b["params"] for b in counted)
        tr = sum(b["trainable"] for b in counted)
        whose = "the backbones'" if len(counted) > 1 else "the backbone's"
        new = "the projections, α and the new head" if spec.get("fusion") else "the new head"
        slide.bullets.append(f"None of {whose} {tot / 1e6:.1f}M parameters change: only {new} are trained." if tr == 0
                             else f"{tr / 1e6:.1f}M of {whose} {tot / 1e6:.1f}M parameters are trained, plus {new}.")
    train = cfg.get("train") or {}
    slide.notes = (f"Backbones: {sx.backbone_text(cfg)}. Training: {train.get('epochs', '?')} epochs, "
                   f"{train.get('optimizer', '?')}, learning rate {train.get('lr', '?')}, batch size "
                   f"{train.get('batch_size', '?')}, seed {cfg.get('seed', 0)}.\n\nConfig:\n{_yaml(cfg)}")
    return slide


def _yaml(cfg: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(cfg), sort_keys=False, allow_unicode=True).strip()
