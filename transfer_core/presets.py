"""The three training presets as pure rules: from-scratch baseline, linear probe, full fine-tune.

A preset decides, for every backbone of a run, where its weights come from and how much
of it is frozen, and sets the learning rate. "Pretrained" means ImageNet weights when
they are cached, else the newest completed run with that backbone, else random init (with
a note saying so). No Streamlit, no torch: the Train page hands in what it knows (the
backbones chosen, the completed runs, which ImageNet weights are cached) and draws the
result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .i18n import N_, _

__all__ = ["PRESETS", "PRESET_LR", "BodySetting", "PresetChoice", "pretrained_source", "apply_preset"]

PRESETS = ("scratch", "probe", "finetune")
PRESET_LR = {"scratch": 1e-3, "probe": 1e-3, "finetune": 1e-4}
_SUMMARY = {
    "scratch": N_("From-scratch baseline: random init, every layer trains."),
    "probe": N_("Linear probe: the backbone is frozen, only the new head trains."),
    "finetune": N_("Full fine-tune: every layer trains, with a lower learning rate (1e-4)."),
}


@dataclass(frozen=True)
class BodySetting:
    """One backbone's weights source (``none``, ``imagenet``, ``run:<id>``, ``file:<path>``) and freeze."""

    weights: str
    freeze: int | str


@dataclass(frozen=True)
class PresetChoice:
    """What applying a preset gives: one setting per backbone, the lr, a summary and per-backbone notes
    (both in the language current when the preset was applied)."""

    preset: str
    bodies: tuple[BodySetting, ...]
    lr: float
    summary: str
    notes: tuple[str, ...]


def pretrained_source(name: str, completed: Sequence[Any], imagenet_cached: bool) -> tuple[str, str]:
    """The best pretrained weights for backbone ``name`` and a note saying which (in the current language).

    ``completed``: completed runs newest first, each with ``.id`` and ``.backbones``.
    """
    if imagenet_cached:
        return "imagenet", _("{name}: ImageNet weights.").format(name=name)
    for s in completed:
        if name in s.backbones:
            return f"run:{s.id}", _("{name}: ImageNet weights are not cached, so it starts from run {run_id}.").format(
                name=name, run_id=s.id)
    return "none", _("{name}: no ImageNet weights cached and no completed run to start from, so it is random init "
                     "(expect a low accuracy; import weights on the Models page).").format(name=name)


def apply_preset(preset: str, bodies: Sequence[tuple[str, str]], completed: Sequence[Any],
                 imagenet_cached: Callable[[str], bool]) -> PresetChoice:
    """Apply ``preset`` to ``bodies`` ((backbone name, current weights source) each).

    scratch: random init, nothing frozen. probe: pretrained, fully frozen. finetune: nothing
    frozen, keeps a chosen weights source and picks a pretrained one for a random-init body.
    """
    if preset not in PRESETS:
        raise ValueError(_("unknown preset '{preset}': expected one of {choices}").format(
            preset=preset, choices=", ".join(PRESETS)))
    out: list[BodySetting] = []
    notes: list[str] = []
    for name, weights in bodies:
        if preset == "scratch":
            out.append(BodySetting("none", 0))
            continue
        if preset == "finetune" and weights != "none":
            out.append(BodySetting(weights, 0))
            continue
        source, note = pretrained_source(name, completed, imagenet_cached(name))
        out.append(BodySetting(source, "all" if preset == "probe" else 0))
        notes.append(note)
    return PresetChoice(preset, tuple(out), PRESET_LR[preset], _(_SUMMARY[preset]), tuple(notes))
