"""The method slide: each backbone's layer groups (frozen shaded), a fusion's projections and α, a
distillation's teachers above its student, said in one sentence, with the config in the notes."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from ..compare import run_kind
from ..i18n import _, ngettext
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
    out: dict[str, Any] = {"name": name, "weights": weights, "source": sx.weights_text(weights, source_cfg),
                           "start": sx.start_text(weights, source_cfg), "groups": [], "frozen": 0,
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
    n = spec.get("classes")
    method = cfg.get("method", "transfer")
    if method == "fusion" and len(bbs) > 1:
        fu = spec.get("fusion") or {}
        names = sx.join_words([b["name"] for b in bbs])
        how = (_("their features are joined side by side") if fu.get("mode") == "concat" else
               _("their features are projected to {dim} numbers each, weighted by α and summed (α is learned during "
                 "training)").format(dim=fu.get("shared_dim")) if fu.get("learn_alpha") else
               _("their features are projected to {dim} numbers each, weighted by α and summed").format(
                   dim=fu.get("shared_dim")))
        return (_("{names} each turn an image into features; {how}; a new head then picks one of {n} classes.")
                if n else _("{names} each turn an image into features; {how}; a new head then picks one of its "
                            "classes.")).format(names=names, how=how, n=n)
    parts = []
    for b in bbs:
        groups, frozen = len(b.get("groups") or []), int(b.get("frozen") or 0)
        args = {"name": b["name"], "source": b["source"], "groups": groups, "frozen": frozen}
        if not groups:
            parts.append(_("{name} ({source})").format(**args))
        elif frozen == 0:
            parts.append(_("{name} starts from {start} and every one of its {groups} layer groups is trained").format(
                start=b.get("start", b["source"]), **args) if str(b.get("weights", "none")) != "none" else
                _("{name} starts from random weights and all {groups} layer groups are trained").format(**args))
        elif frozen >= groups:
            parts.append(_("{name} is {source} and kept frozen: only a new head is trained").format(**args))
        else:
            parts.append(_("{name} is {source}; its first {frozen} of {groups} layer groups stay frozen and the rest "
                           "are trained").format(**args))
    text = sx.semicolons(parts)
    if method == "distill":
        t = spec.get("teachers") or []
        if not t:
            return _("The student: {text}. It learns from the labels and from the answers of its frozen "
                     "teachers.").format(text=text)
        return ngettext("The student: {text}. It learns from the labels and from the answers of {n} frozen teacher.",
                        "The student: {text}. It learns from the labels and from the answers of {n} frozen teachers.",
                        len(t)).format(text=text, n=len(t))
    return (_("{text}, with a new head for {n} classes.") if n else
            _("{text}, with a new head for its classes.")).format(text=text, n=n)


def method_slide(cfg: Mapping[str, Any], store: RunStore, metrics: Sequence[Mapping[str, Any]] = (),
                  n_classes: int | None = None, teachers: Sequence[Mapping[str, Any]] = (),
                  title: str | None = None) -> Slide:
    spec = _method_spec(cfg, store, metrics, n_classes, teachers)
    kind = "distill" if cfg.get("method") == "distill" else run_kind(cfg)
    slide = Slide("method", title or _("The method: {kind}").format(kind=sx.kind_short(kind)))
    slide.lead = _method_lead(cfg, spec)
    slide.figures.append({"kind": "method", "args": spec,
                          "caption": _("Each block is a layer group: grey ones are frozen, blue ones are trained")})
    counted = [b for b in spec["backbones"] if b.get("params")]
    if counted:
        tot = f"{sum(b['params'] for b in counted) / 1e6:.1f}M"
        tr = sum(b["trainable"] for b in counted)
        several = len(counted) > 1
        fusion = bool(spec.get("fusion"))
        if tr == 0:
            text = (_("None of the backbones' {total} parameters change: only the projections, α and the new head are "
                      "trained.") if several and fusion else
                    _("None of the backbones' {total} parameters change: only the new head are trained.") if several
                    else _("None of the backbone's {total} parameters change: only the projections, α and the new head "
                           "are trained.") if fusion else
                    _("None of the backbone's {total} parameters change: only the new head are trained."))
        else:
            text = (_("{trained} of the backbones' {total} parameters are trained, plus the projections, α and the new "
                      "head.") if several and fusion else
                    _("{trained} of the backbones' {total} parameters are trained, plus the new head.") if several
                    else _("{trained} of the backbone's {total} parameters are trained, plus the projections, α and "
                           "the new head.") if fusion else
                    _("{trained} of the backbone's {total} parameters are trained, plus the new head."))
        slide.bullets.append(text.format(total=tot, trained=f"{tr / 1e6:.1f}M"))
    train = cfg.get("train") or {}
    slide.notes = _("Backbones: {backbones}. Training: {epochs} epochs, {optimizer}, learning rate {lr}, batch size "
                    "{batch}, seed {seed}.").format(
        backbones=sx.backbone_text(cfg), epochs=train.get("epochs", "?"), optimizer=train.get("optimizer", "?"),
        lr=train.get("lr", "?"), batch=train.get("batch_size", "?"), seed=cfg.get("seed", 0))
    slide.notes += "\n\n" + _("Config:") + "\n" + _yaml(cfg)
    return slide


def _yaml(cfg: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(cfg), sort_keys=False, allow_unicode=True).strip()
