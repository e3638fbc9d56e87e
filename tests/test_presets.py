"""transfer_core.presets: the scratch / probe / fine-tune rules of the Train page, without Streamlit."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from transfer_core.presets import PRESETS, BodySetting, apply_preset, pretrained_source

NEWEST = SimpleNamespace(id="run-new", backbones=["resnet18", "mobilenet_v3_small"])
OLDER = SimpleNamespace(id="run-old", backbones=["resnet18"])


def cached(*names: str):
    return lambda name: name in names


def test_pretrained_source_prefers_imagenet_then_the_newest_run_then_random():
    assert pretrained_source("resnet18", [NEWEST, OLDER], True) == ("imagenet", "resnet18: ImageNet weights.")
    source, note = pretrained_source("resnet18", [NEWEST, OLDER], False)
    assert source == "run:run-new" and "starts from run run-new" in note
    assert pretrained_source("mobilenet_v3_small", [OLDER, NEWEST], False)[0] == "run:run-new"
    source, note = pretrained_source("vgg11", [NEWEST, OLDER], False)
    assert source == "none" and "random init" in note and "Models page" in note


def test_scratch_is_random_init_unfrozen_lr_1e3():
    choice = apply_preset("scratch", [("resnet18", "imagenet"), ("vgg11", "run:x")], [NEWEST], cached("resnet18"))
    assert choice.bodies == (BodySetting("none", 0), BodySetting("none", 0))
    assert choice.lr == pytest.approx(1e-3) and choice.notes == ()
    assert choice.summary.startswith("From-scratch baseline")


def test_probe_freezes_everything_on_pretrained_weights_with_a_note_per_body():
    choice = apply_preset("probe", [("resnet18", "none"), ("mobilenet_v3_small", "none"), ("vgg11", "none")],
                          [NEWEST], cached("resnet18"))
    assert [b.freeze for b in choice.bodies] == ["all", "all", "all"]
    assert [b.weights for b in choice.bodies] == ["imagenet", "run:run-new", "none"]
    assert len(choice.notes) == 3 and "random init" in choice.notes[2]
    assert choice.lr == pytest.approx(1e-3) and choice.summary.startswith("Linear probe")


def test_finetune_unfreezes_keeps_a_chosen_source_and_lowers_the_lr():
    choice = apply_preset("finetune", [("resnet18", "file:/w/r.pt"), ("mobilenet_v3_small", "none")],
                          [NEWEST], cached())
    assert choice.bodies == (BodySetting("file:/w/r.pt", 0), BodySetting("run:run-new", 0))
    assert len(choice.notes) == 1 and "mobilenet_v3_small" in choice.notes[0]  # only the body it changed
    assert choice.lr == pytest.approx(1e-4) and "1e-4" in choice.summary


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset 'warmup'"):
        apply_preset("warmup", [("resnet18", "none")], [], cached())
    assert PRESETS == ("scratch", "probe", "finetune")


def test_presets_need_neither_streamlit_nor_torch():
    import transfer_core.presets as presets

    assert "streamlit" not in presets.__dict__ and "torch" not in presets.__dict__
    src = open(presets.__file__, encoding="utf-8").read()
    assert "import streamlit" not in src and "import torch" not in src
    assert sys.modules["transfer_core.presets"] is presets
