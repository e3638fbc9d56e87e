"""The head warm-up (train.head_epochs) and the recipe for pretrained weights (transfer_core.recipe)."""

from __future__ import annotations

import threading

import pytest
import torch

from conftest import tiny_config
from transfer_core.recipe import HEAD_EPOCHS, LR_DECAY, describe, resolve
from transfer_core.training import resume_training, run_training
from transfer_core.training.callbacks import Callback


class BodyAtEpochEnd(Callback):
    """The body's and the head's weights after every epoch."""

    def __init__(self):
        self.body: dict[int, dict[str, torch.Tensor]] = {}
        self.head: dict[int, torch.Tensor] = {}

    def on_fit_start(self, trainer):
        self.body.setdefault(trainer.epoch, self._body(trainer))

    @staticmethod
    def _body(trainer):
        return {k: v.detach().clone() for k, v in trainer.model.backbone.body.state_dict().items()}

    def on_epoch_end(self, trainer, epoch, metrics):
        self.body[epoch] = self._body(trainer)
        self.head[epoch] = trainer.model.head.weight.detach().clone()


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_warm_up_epochs_leave_the_body_bit_identical_then_it_trains(runs_root):
    spy = BodyAtEpochEnd()
    res = run_training(tiny_config(train__epochs=3, train__head_epochs=2), runs_root, callbacks=[spy])
    assert res.state == "completed", res.message
    assert _same(spy.body[0], spy.body[1]) and _same(spy.body[0], spy.body[2]), "the body moved during the warm-up"
    assert not _same(spy.body[2], spy.body[3]), "the body did not train after it unfroze"
    assert not torch.equal(spy.head[1], spy.head[2]), "the head did not train during the warm-up"
    assert [r["phase"] for r in res.metrics] == ["head", "head", "body"]  # where it unfroze, in the record
    assert res.run.config().train.head_epochs == 2
    assert res.run.status().get("head_epochs") == 2


def test_warm_up_trains_on_cached_features(runs_root):
    res = run_training(tiny_config(train__epochs=2, train__head_epochs=1), runs_root)
    fc = res.run.status().get("feature_cache") or {}
    warm = fc.get("head_warm_up") or {}
    assert warm.get("used") and (warm.get("extracted") or warm.get("loaded")), fc  # the frozen warm-up used the cache
    assert not fc.get("used"), "after the warm-up the body trains: no cache"


def test_resume_in_the_middle_of_the_warm_up_continues_it(runs_root):
    whole = run_training(tiny_config(train__epochs=4, train__head_epochs=2, train__checkpoint_every_s=0), runs_root)
    stop = threading.Event()

    class StopAfter1(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            if epoch == 1:
                stop.set()

    first = run_training(tiny_config(train__epochs=4, train__head_epochs=2, train__checkpoint_every_s=0), runs_root,
                         stop_event=stop, callbacks=[StopAfter1()])
    assert first.state == "stopped" and [r["phase"] for r in first.metrics] == ["head"]
    spy = BodyAtEpochEnd()
    again = resume_training(first.run.id, runs_root, callbacks=[spy])
    assert again.state == "completed"
    assert [r["phase"] for r in again.metrics] == ["head", "head", "body", "body"]
    assert _same(spy.body[1], spy.body[2]), "epoch 2 is still warm-up after the resume"
    key = lambda rows: [(r["epoch"], r["phase"], round(r["val_acc"], 6), round(r["val_loss"], 5)) for r in rows]  # noqa: E731
    assert key(again.metrics) == key(whole.metrics), "the resumed run trained differently"


def test_recipe_fills_only_what_the_user_left_empty():
    pre = [{"name": "resnet18", "weights": "imagenet", "freeze": 0}]
    auto = resolve(tiny_config(backbones=pre, train__epochs=15))
    assert (auto.train.head_epochs, auto.train.lr_decay) == (HEAD_EPOCHS, LR_DECAY)
    mine = resolve(tiny_config(backbones=pre, train__epochs=15, train__head_epochs=0, train__lr_decay=1.0))
    assert (mine.train.head_epochs, mine.train.lr_decay) == (0, 1.0)
    scratch = resolve(tiny_config(train__epochs=15))
    assert (scratch.train.head_epochs, scratch.train.lr_decay) == (0, 1.0)
    probe = resolve(tiny_config(backbones=[{**pre[0], "freeze": "all"}], train__epochs=15))
    assert probe.train.head_epochs == 0  # nothing unfreezes
    if HEAD_EPOCHS:
        short = resolve(tiny_config(backbones=pre, train__epochs=2))
        assert short.train.head_epochs == 1  # at most half the epochs
    assert describe(tiny_config(backbones=pre)) and describe(tiny_config()) is None
    assert describe(tiny_config(backbones=pre, train__head_epochs=0, train__lr_decay=1.0)) is None


def test_an_explicit_lr_and_lr_decay_reach_the_optimizer(runs_root):
    from transfer_core.training.trainer import Trainer
    from transfer_core.training.lifecycle import prepare

    cfg = resolve(tiny_config(backbones=[{"name": "resnet18", "weights": "none", "freeze": 0}], train__lr=0.01,
                              train__lr_decay=0.5, train__head_epochs=0))
    bundle, model = prepare(cfg, runs_root)
    rates = sorted({g["lr"] for g in Trainer(cfg, model, bundle).optimizer.param_groups})
    assert max(rates) == pytest.approx(0.01) and min(rates) < 0.01 * 0.5 ** 3


def test_head_epochs_must_be_a_whole_number_of_epochs():
    from transfer_core.config import ConfigError, validate

    with pytest.raises(ConfigError, match="train.head_epochs"):
        validate(tiny_config(train__head_epochs=-1))
