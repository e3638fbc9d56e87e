"""Config: strict loading, overrides, validation messages naming the field."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from transfer_core.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    data_roots,
    dump_yaml,
    from_dict,
    load_yaml,
    parse_yaml_text,
    runs_dir,
    to_dict,
    validate,
)


def test_defaults_round_trip_through_yaml(tmp_path):
    cfg = RunConfig()
    p = tmp_path / "c.yaml"
    p.write_text(dump_yaml(cfg))
    assert load_yaml(p) == cfg
    assert to_dict(from_dict(to_dict(cfg))) == to_dict(cfg)


def test_unknown_key_is_an_error_with_suggestion():
    with pytest.raises(ConfigError) as ei:
        from_dict({"train": {"epocs": 3}})
    assert ei.value.field == "train.epocs"
    assert "epochs" in str(ei.value)


def test_types_are_checked():
    with pytest.raises(ConfigError) as ei:
        from_dict({"train": {"epochs": "many"}})
    assert ei.value.field == "train.epochs"
    with pytest.raises(ConfigError):
        from_dict({"train": {"amp": "yes"}})
    assert from_dict({"train": {"lr": 1}}).train.lr == 1.0


def test_overrides_with_list_indices_and_append():
    base = to_dict(RunConfig())
    out = apply_overrides(base, ["backbones.0.weights=run:abc", "train.epochs=2", "backbones.1.name=vgg11", "data.classes=[5,6]"])
    cfg = from_dict(out)
    assert cfg.backbones[0].weights == "run:abc"
    assert cfg.train.epochs == 2
    assert cfg.backbones[1].name == "vgg11" and cfg.backbones[1].weights == "none"
    assert cfg.data.classes == [5, 6]
    with pytest.raises(ConfigError):
        apply_overrides(base, ["backbones.5.name=x"])
    with pytest.raises(ConfigError):
        apply_overrides(base, ["novalue"])


def test_unparsable_yaml_is_one_line():
    with pytest.raises(ConfigError) as ei:
        parse_yaml_text("train: [1, 2\nseed: 0")
    assert "not valid YAML" in str(ei.value)
    assert "\n" not in str(ei.value)


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"backbones": [{"name": "resnt18"}]}, "backbones.0.name"),
        ({"backbones": [{"name": "resnet18", "freeze": 99}]}, "backbones.0.freeze"),
        ({"backbones": [{"name": "resnet18", "freeze": "some"}]}, "backbones.0.freeze"),
        ({"backbones": [{"name": "resnet18", "weights": "hub"}]}, "backbones.0.weights"),
        ({"method": "fusion"}, "backbones"),
        ({"method": "fusion", "backbones": [{"name": "resnet18"}, {"name": "resnet34"}], "fusion": {"alpha": [1.0]}}, "fusion.alpha"),
        ({"method": "fusion", "backbones": [{"name": "resnet18"}, {"name": "resnet34"}], "fusion": {"alpha": [-1.0, 2.0]}}, "fusion.alpha"),
        ({"method": "fusion", "backbones": [{"name": "resnet18"}, {"name": "resnet34"}], "fusion": {"alpha": [0.0, 0.0]}}, "fusion.alpha"),
        ({"method": "fusion", "backbones": [{"name": "resnet18"}, {"name": "resnet34"}], "fusion": {"alpha": [math.nan, 1.0]}}, "fusion.alpha"),
        ({"fusion": {"shared_dim": 0}}, "fusion.shared_dim"),
        ({"fusion": {"mode": "max"}}, "fusion.mode"),
        ({"train": {"lr": -1}}, "train.lr"),
        ({"data": {"val_fraction": 1.5}}, "data.val_fraction"),
        ({"data": {"classes": [1]}}, "data.classes"),
        ({"method": "distillation"}, "method"),
    ],
)
def test_validation_names_the_field(patch, field):
    with pytest.raises(ConfigError) as ei:
        validate(from_dict(patch))
    assert ei.value.field == field, str(ei.value)


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(ConfigError) as ei:
        validate(from_dict({"backbones": [{"name": "resnt18"}]}))
    assert "resnet18" in str(ei.value)


def test_folders_follow_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSFER_LAB_RUNS", str(tmp_path / "r"))
    assert runs_dir() == tmp_path / "r"
    assert runs_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("TRANSFER_LAB_RUNS")
    assert str(runs_dir()) == "runs"
    import os

    monkeypatch.setenv("TRANSFER_LAB_DATA", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    assert data_roots() == [tmp_path / "a", tmp_path / "b"]


@pytest.fixture(scope="module")
def folders_before_a_tests_own():
    """What a module-scoped fixture (which trains before the per-test folders exist) sees."""
    from transfer_core.paths import cache_dir

    return runs_dir().resolve(), cache_dir().resolve()


def test_module_fixtures_never_write_into_the_checkout(folders_before_a_tests_own):
    root = Path(__file__).resolve().parents[1]
    for folder in folders_before_a_tests_own:
        assert not folder.is_relative_to(root), folder
