"""Trainer and run lifecycle: completion, fusion, stop, divergence, resume, sources, crash safety."""

from __future__ import annotations

import errno
import json
import threading
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from transfer_core.config import ConfigError
from transfer_core.models import FusionModel, build_model
from transfer_core.runs import RunStore
from transfer_core.training import Callback, Trainer, load_checkpoint, prepare, resume_training, run_training
from transfer_core.training import checkpoint as ckpt_mod


class OnBatch(Callback):
    """Calls ``fn(trainer, epoch, batch, batches, loss)`` after every batch."""

    def __init__(self, fn):
        self.fn = fn

    def on_batch_end(self, trainer, epoch, batch, batches, loss):
        self.fn(trainer, epoch, batch, batches, loss)


def test_transfer_run_completes_and_store_round_trip(runs_root):
    cfg = tiny_config()
    res = run_training(cfg, runs_root)
    assert res.state == "completed", res.message
    run = res.run
    from transfer_core.recipe import resolve

    assert run.config() == resolve(cfg)  # the run records the recipe's values it trained with
    assert (run.config().train.lr_decay, run.config().train.head_epochs) == (1.0, 0)  # from scratch
    st = run.status()
    assert st["state"] == "completed"
    rows = run.metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"):
            assert k in r
    conf = run.confusion()
    assert conf["labels"] == ["0", "1", "2"]
    n_val = sum(map(sum, conf["matrix"]))
    assert n_val == len(prepare(cfg)[0].val)
    pc = run.per_class()
    assert [p["class"] for p in pc] == ["0", "1", "2"] and all(0 <= p["f1"] <= 1 for p in pc)
    ckpt = load_checkpoint(run.checkpoint_path)  # weights_only=True
    assert ckpt["epoch"] == 2 and ckpt["classes"] == ["0", "1", "2"]
    assert ckpt["preprocessing"]["image_size"] == 32
    assert run.best_path.exists()
    listed = RunStore(runs_root).list()
    assert listed[0].id == run.id and listed[0].epochs_done == 2


def test_training_learns_and_is_deterministic(runs_root):
    cfg = tiny_config(train__epochs=3, data__train_per_class=30, train__lr=0.001)
    a = run_training(cfg, runs_root).metrics
    b = run_training(cfg, runs_root).metrics
    assert [r["train_loss"] for r in a] == pytest.approx([r["train_loss"] for r in b], rel=1e-5)
    assert a[-1]["val_acc"] > 0.6  # 3 digit classes: chance is 0.33


def test_linear_probe_keeps_body_and_frozen_bn_fixed():
    cfg = tiny_config(backbones=[{"name": "resnet18", "weights": "none", "freeze": "all"}])
    bundle, model = prepare(cfg)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.train()
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    tr = Trainer(cfg, model, bundle, device=torch.device("cpu"))
    tr.fit()
    after = model.backbone.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k  # weights and BN running stats unchanged
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == model.head.weight.numel() + model.head.bias.numel()


def test_partial_freeze_only_trains_later_groups():
    cfg = tiny_config(backbones=[{"name": "resnet18", "weights": "none", "freeze": 2}])
    _, model = prepare(cfg)
    spec = model.backbone.spec
    frozen = [p for g in spec.groups[:2] for p in g.prefixes]
    for name, p in model.backbone.body.named_parameters():
        is_frozen = any(name == f or name.startswith(f + ".") for f in frozen)
        assert p.requires_grad == (not is_frozen), name


@pytest.mark.parametrize("mode", ["sum", "concat"])
def test_fusion_modes_complete(runs_root, mode):
    cfg = tiny_config(
        method="fusion",
        backbones=[{"name": "resnet18", "weights": "none"}, {"name": "mobilenet_v3_small", "weights": "none"}],
        fusion={"mode": mode, "shared_dim": 32, "learn_alpha": True},
        train__epochs=2,
    )
    res = run_training(cfg, runs_root)
    assert res.state == "completed", res.message
    rows = res.metrics
    if mode == "sum":
        alphas = [r["alpha"] for r in rows]
        assert len(alphas) == 2 and all(len(a) == 2 and sum(a) == pytest.approx(1.0) for a in alphas)
        assert alphas[-1] != pytest.approx([0.5, 0.5], abs=1e-6)  # learned, so it moved
    else:
        assert all("alpha" not in r for r in rows)


def test_fixed_alpha_is_kept_and_normalised():
    cfg = tiny_config(
        method="fusion",
        backbones=[{"name": "resnet18"}, {"name": "resnet18"}],
        fusion={"mode": "sum", "shared_dim": 8, "learn_alpha": False, "alpha": [3.0, 1.0]},
    )
    _, model = prepare(cfg)
    assert isinstance(model, FusionModel)
    assert model.alpha_list() == pytest.approx([0.75, 0.25])
    assert not any("alpha" in n for n, p in model.named_parameters())
    x = torch.rand(2, 3, 32, 32)
    feats = model.features(x)
    full = model.fuse(feats)
    # dropping a backbone removes exactly its weighted projection
    dropped = model.fuse(feats, drop=1)
    manual = torch.relu(0.75 * model.projections[0](feats[0]))
    assert torch.allclose(dropped, manual, atol=1e-6)
    assert not torch.allclose(full, dropped)


def test_stop_mid_epoch_closes_as_stopped_with_last_checkpoint(runs_root):
    cfg = tiny_config(train__epochs=3, train__batch_size=8)
    stop = threading.Event()
    seen = []

    def on_batch(tr, epoch, batch, batches, loss):
        seen.append((epoch, batch))
        if epoch == 2 and batch == 2:
            stop.set()

    res = run_training(cfg, runs_root, stop_event=stop, callbacks=[OnBatch(on_batch)])
    assert res.state == "stopped"
    assert seen[-1] == (2, 2)  # no batch ran after the stop
    assert res.run.status()["state"] == "stopped"
    assert load_checkpoint(res.run.checkpoint_path)["epoch"] == 1
    assert [r["epoch"] for r in res.run.metrics()] == [1]
    # and a stopped run resumes to the configured epochs without duplicates
    res2 = resume_training(res.run.id, runs_root)
    assert res2.state == "completed"
    assert [r["epoch"] for r in res2.run.metrics()] == [1, 2, 3]


def test_nan_loss_fails_with_diverged_message(runs_root):
    cfg = tiny_config(train__lr=1e6, train__optimizer="sgd", train__epochs=3)
    res = run_training(cfg, runs_root)
    assert res.state == "failed"
    assert res.message.startswith("diverged at epoch") and "lower the learning rate" in res.message
    assert res.run.status()["state"] == "failed"


def test_run_source_loads_body_and_discards_head(runs_root):
    src = run_training(tiny_config(train__epochs=1), runs_root)
    assert src.state == "completed"
    ckpt = load_checkpoint(src.run.checkpoint_path)
    cfg = tiny_config(
        data={"dataset": "digits", "classes": [5, 6, 7, 8], "train_per_class": 10, "image_size": 32},
        backbones=[{"name": "resnet18", "weights": f"run:{src.run.id}", "freeze": "all"}],
    )
    model = build_model(cfg, 4, runs_root)
    body = model.backbone.body.state_dict()
    for k, v in body.items():
        assert torch.equal(v, ckpt["model"][f"backbone.body.{k}"]), k
    assert model.head.out_features == 4
    # by folder path too
    build_model(tiny_config(backbones=[{"name": "resnet18", "weights": f"run:{src.run.dir}"}]), 3, runs_root)


def test_run_source_must_be_completed_and_match(runs_root):
    from transfer_core.backbones import WeightsError

    stop = threading.Event()
    stop.set()
    stopped = run_training(tiny_config(), runs_root, stop_event=stop)
    with pytest.raises(WeightsError, match="only a completed run"):
        build_model(tiny_config(backbones=[{"name": "resnet18", "weights": f"run:{stopped.run.id}"}]), 3, runs_root)
    with pytest.raises(WeightsError, match="no run"):
        build_model(tiny_config(backbones=[{"name": "resnet18", "weights": "run:nope"}]), 3, runs_root)


def test_failed_checkpoint_write_keeps_previous(runs_root, monkeypatch):
    real = ckpt_mod.atomic_write_bytes
    calls = {"n": 0}

    def flaky(path, data):
        if Path(path).name == "checkpoint.pt":
            calls["n"] += 1
            if calls["n"] > 1:  # epoch 1 wrote its checkpoint; epoch 2 fails
                raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(ckpt_mod, "atomic_write_bytes", flaky)
    res = run_training(tiny_config(train__epochs=3, train__checkpoint_every_s=0), runs_root)  # every epoch
    assert res.state == "failed"
    assert "could not write the checkpoint of epoch 2" in res.message and "No space left" in res.message
    assert load_checkpoint(res.run.checkpoint_path)["epoch"] == 1
    assert not list(res.run.dir.glob(".*.tmp"))


def test_invalid_config_creates_no_run(runs_root):
    with pytest.raises(ConfigError):
        run_training(tiny_config(train__epochs=0), runs_root)
    assert RunStore(runs_root).list() == []


def test_batch_size_larger_than_data_is_clamped_with_warning(runs_root):
    res = run_training(tiny_config(train__batch_size=4096, train__epochs=1), runs_root)
    assert res.state == "completed"
    warnings = res.run.status().get("warnings", [])
    assert any("batch size 4096" in w for w in warnings)


class Recorder(Callback):
    """Records the hooks called, in order."""

    def __init__(self):
        self.events = []

    def on_fit_start(self, trainer):
        self.events.append("fit_start")

    def on_batch_end(self, trainer, epoch, batch, batches, loss):
        self.events.append("batch_end")

    def on_epoch_end(self, trainer, epoch, metrics):
        self.events.append("epoch_end")

    def on_exception(self, trainer, exc):
        self.events.append(f"exception:{type(exc).__name__}")

    def on_fit_end(self, trainer):
        self.events.append("fit_end")


def test_events_fire_in_order():
    cfg = tiny_config(train__epochs=1)
    bundle, model = prepare(cfg)
    rec = Recorder()
    tr = Trainer(cfg, model, bundle, device=torch.device("cpu"), callbacks=[rec])
    tr.fit()
    events = rec.events
    assert events[0] == "fit_start" and events[-1] == "fit_end"
    assert events[-2] == "epoch_end" and "batch_end" in events
    with pytest.raises(TypeError):
        Trainer(cfg, model, bundle, device=torch.device("cpu"), callbacks=[print])


def test_fit_end_runs_after_an_unexpected_error():
    cfg = tiny_config(train__epochs=2)
    bundle, model = prepare(cfg)

    class Boom(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            raise RuntimeError("boom")

    rec = Recorder()
    tr = Trainer(cfg, model, bundle, device=torch.device("cpu"), callbacks=[Boom(), rec])
    with pytest.raises(RuntimeError, match="boom"):
        tr.fit()
    assert rec.events[-2:] == ["exception:RuntimeError", "fit_end"] and tr.result is None


def test_metrics_jsonl_is_json_lines(runs_root):
    res = run_training(tiny_config(train__epochs=1), runs_root)
    lines = res.run.metrics_path.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["epoch"] == 1


def test_compile_switch_routes_forwards_through_torch_compile_and_falls_back(runs_root, monkeypatch):
    """``train.compile``: training and evaluation forwards go through ``torch.compile``'s
    callable; a compiler failure mid-run is one warning and the run finishes eagerly.
    (torch.compile is replaced by a recorder here: a real compile takes a minute on this
    CPU; tests/test_ddp.py compiles for real under torchrun.)"""
    import torch._dynamo.exc as dynamo_exc

    calls: list[int] = []

    def fake_compile(model):
        def forward(x):
            calls.append(len(x))
            if len(calls) == 3:
                raise dynamo_exc.TorchDynamoException("backend exploded")
            return model(x)
        return forward

    monkeypatch.setattr(torch, "compile", fake_compile)
    res = run_training(tiny_config(train__compile=True), runs_root)
    assert res.state == "completed", res.message
    st = res.run.status()
    assert st["compiled"] == ["train", "eval"]
    assert len(calls) == 3  # two batches compiled, the third failed: eager from then on
    assert [w for w in st["warnings"] if w.startswith("train.compile failed (TorchDynamoException: backend exploded)")]
    assert run_training(tiny_config(), runs_root).run.status()["compiled"] == []


def _strict_json_files(run_dir: Path) -> list[str]:
    """Parse every JSON file of a run folder with a parser that refuses NaN and Infinity; their names."""

    def refuse(constant):
        raise ValueError(f"non-finite number {constant} in a JSON file")

    names = []
    for path in sorted(run_dir.iterdir()):
        if path.suffix == ".json":
            json.loads(path.read_text(), parse_constant=refuse)
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line, parse_constant=refuse)
        else:
            continue
        names.append(path.name)
    return names


@pytest.mark.parametrize("bad", [float("inf"), float("nan")], ids=["inf", "nan"])
def test_non_finite_validation_loss_fails_as_diverged(runs_root, monkeypatch, bad):
    """Issue 11, defect 2: a finite training loss but a non-finite validation loss ends the run as
    failed with the 'diverged' message (it raised 'Out of range float values are not JSON compliant')."""
    real = Trainer.evaluate

    def diverging(self, ds=None):
        out = real(self, ds)
        return {**out, "loss": bad} if self.epoch == 1 else out  # epoch 2's validation diverges

    monkeypatch.setattr(Trainer, "evaluate", diverging)
    res = run_training(tiny_config(train__epochs=3), runs_root)
    assert res.state == "failed", res.message
    assert res.message.startswith("diverged at epoch 2: the validation loss is") and "lower the learning rate" in res.message
    st = res.run.status()
    assert st["state"] == "failed" and st["message"] == res.message
    assert [r["epoch"] for r in res.run.metrics()] == [1]  # the diverged epoch is not recorded
    assert load_checkpoint(res.run.checkpoint_path)["epoch"] == 1
    assert {"status.json", "metrics.jsonl", "progress.json", "confusion.json", "per_class.json"} <= set(
        _strict_json_files(res.run.dir)
    )


def test_one_step_at_a_huge_lr_diverges_in_validation(runs_root):
    """The real thing: one batch per epoch, so epoch 1's training loss is taken before the step
    (finite) and only the validation sees the blown-up weights."""
    res = run_training(tiny_config(train__lr=1e6, train__batch_size=64, train__epochs=2), runs_root)
    assert res.state == "failed" and res.message.startswith("diverged at epoch 1: the validation loss is"), res.message
    assert "lower the learning rate (now 1e+06)" in res.message
    assert "status.json" in _strict_json_files(res.run.dir)


def test_metrics_writer_refuses_non_finite_values(tmp_path):
    from transfer_core.training import Diverged, MetricsWriter
    from transfer_core.training.callbacks import finite_or_none

    run = RunStore(tmp_path / "runs").create(tiny_config(), state="running")
    fake = type("T", (), {"cfg": tiny_config()})()
    with pytest.raises(Diverged, match="diverged at epoch 1: the train_acc is nan; lower the learning rate"):
        MetricsWriter(run).on_epoch_end(fake, 1, {"epoch": 1, "train_loss": 0.5, "train_acc": float("nan")})
    assert run.metrics() == []
    assert finite_or_none({"a": [1.0, float("inf")], "b": float("-inf"), "c": "x"}) == {"a": [1.0, None], "b": None, "c": "x"}
