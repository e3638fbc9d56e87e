"""The built-in experiments: valid sweep specs, their sizes, the test shrink and the time estimates."""

from __future__ import annotations

import pytest

from transfer_core.errors import ConfigError
from transfer_core.sweeps import builtin, timing
from transfer_core.sweeps.spec import load_sweep


@pytest.fixture(autouse=True)
def _no_shrink(monkeypatch):
    monkeypatch.delenv(builtin.EXPERIMENT_ENV, raising=False)


@pytest.mark.parametrize("exp", list(builtin.EXPERIMENTS))
@pytest.mark.parametrize("size", builtin.SIZES)
def test_every_experiment_is_a_valid_sweep_and_its_yaml_round_trips(exp, size):
    spec = builtin.load_builtin(exp, size)
    assert spec.n_trials > 0 and spec.before
    assert load_sweep(builtin.spec_yaml(exp, size)).fingerprint() == spec.fingerprint()
    assert builtin.experiment_of(spec) == (exp, size)
    assert "\n" not in builtin.EXPERIMENTS[exp].description


def test_sizes_of_the_labels_experiment():
    spec = builtin.load_builtin("labels")
    assert spec.axis_labels() == {"data.train_per_class": [1, 2, 5, 10, 20, 50], "variant": ["scratch", "transfer", "probe"]}
    assert spec.seeds == [0, 1, 2, 3, 4] and spec.n_trials == 90
    assert spec.base["data"]["dataset"] == "mnist5k" and spec.base["data"]["classes"] == [5, 6, 7, 8, 9]
    assert spec.before[0]["name"] == "source-mnist-0-4"
    quick = builtin.load_builtin("labels", "quick")
    assert quick.n_trials == 27 and quick.base["train"]["epochs"] < spec.base["train"]["epochs"]
    # the variants: scratch from random weights, transfer freezes 3 groups of the source, the probe all of them
    t = quick.trial_config({"data.train_per_class": 2, "variant": "probe"}, 0)
    assert t.backbones[0].weights == "run:source-mnist-0-4" and t.backbones[0].freeze == "all"
    assert t.data.train_per_class == 2


def test_freeze_alpha_parts_axes():
    assert builtin.load_builtin("freeze").axis_labels()["backbones.0.freeze"] == [0, 1, 2, 3, 4, "all"]
    alpha = builtin.load_builtin("alpha")
    labels = alpha.axis_labels()["alpha1"]
    assert labels[0] == "0" and labels[-2] == "1" and labels[-1] == "learned"
    zero = alpha.trial_config({"alpha1": "0"}, 0)
    assert zero.method == "fusion" and zero.fusion.alpha == [0.0, 1.0] and zero.fusion.learn_alpha is False
    assert alpha.trial_config({"alpha1": "learned"}, 0).fusion.learn_alpha is True
    parts = builtin.load_builtin("parts")
    alone = parts.trial_config({"model": "resnet18 alone"}, 0)
    assert alone.method == "transfer" and [b.name for b in alone.backbones] == ["resnet18"]
    assert parts.trial_config({"model": "concat"}, 0).fusion.mode == "concat"


def test_shrink_from_the_environment(monkeypatch):
    monkeypatch.setenv(builtin.EXPERIMENT_ENV, "dataset=digits,epochs=1,source_epochs=1,image_size=16,seeds=2,budgets=2 5")
    spec = builtin.load_builtin("labels", "quick")
    assert spec.n_trials == 2 * 3 * 2 and spec.seeds == [0, 1]
    assert spec.base["data"]["dataset"] == "digits" and spec.base["train"]["epochs"] == 1
    src = spec.before[0]
    assert src["train"]["epochs"] == 1 and src["name"].startswith("source-mnist-0-4-")  # its own name: run:<name> finds it
    assert spec.axes["variant"]["transfer"]["backbones.0.weights"] == f"run:{src['name']}"
    monkeypatch.setenv(builtin.EXPERIMENT_ENV, "nonsense=1")
    with pytest.raises(ConfigError, match=builtin.EXPERIMENT_ENV):
        builtin.load_builtin("labels")


def test_unknown_experiment_or_size():
    with pytest.raises(ConfigError):
        builtin.spec_mapping("nope")
    with pytest.raises(ConfigError):
        builtin.spec_mapping("labels", "huge")


def test_estimates(tmp_path):
    # the labels default fits 10 minutes on the 2-core box; quick sizes are a few minutes at most
    assert timing.estimate_s("labels", "default", runs_root=tmp_path) < 600
    for exp in builtin.EXPERIMENTS:
        quick = timing.estimate_s(exp, "quick", runs_root=tmp_path)
        assert 0 < quick < timing.estimate_s(exp, "default", runs_root=tmp_path) and quick < 240
        # the runs needed first count until they exist
        assert timing.estimate_s(exp, "quick", runs_root=tmp_path, include_before=False) < quick
    # the model matches what the bench measured at 15 epochs (50 labels per class, scratch: 23.2 s wall)
    cfg = builtin.spec_mapping("labels")["base"]
    cfg = {**cfg, "data": {**cfg["data"], "train_per_class": 50}, "train": {**cfg["train"], "epochs": 15},
           "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}]}
    assert 20 < timing.trial_seconds(cfg) < 26


def test_remaining_scales_by_what_finished_trials_took():
    from types import SimpleNamespace

    from transfer_core.config import to_dict

    spec = builtin.load_builtin("freeze", "quick")
    rows = [{"backbones.0.freeze": f, "seed": s, "state": "pending"} for f in (0, 2, 4, "all") for s in spec.seeds]
    res = SimpleNamespace(spec=spec, trials=rows)
    full = timing.remaining_s(res)
    assert full == pytest.approx(timing.spec_seconds(spec))
    model_first = timing.trial_seconds(to_dict(spec.trial_config({"backbones.0.freeze": 0}, 0)))
    rows[0].update(state="completed", wall_s=2 * model_first)  # twice as slow as the model: the rest too
    assert timing.remaining_s(res) == pytest.approx(2 * (full - model_first))
