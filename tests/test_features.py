"""Frozen-feature cache: equality with a direct forward, reuse, invalidation, one data pass, checkpoints, stop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config
from transfer_core import data as data_mod
from transfer_core.data import preprocessing as data_prep
from transfer_core.training import feature_cache as feat_mod
from transfer_core import jobs as jobs_mod
from transfer_core.training import cache_dir, cache_size_bytes, clear_cache
from transfer_core.jobs import JobManager
from transfer_core.predict import load_run_model
from transfer_core.runs import Run, RunStore
from transfer_core.training import Callback, Trainer, load_checkpoint, prepare, resume_training, run_training

CPU = torch.device("cpu")
PROBE = [{"name": "resnet18", "weights": "none", "freeze": "all"}]
FUSED = [
    {"name": "resnet18", "weights": "none", "freeze": "all"},
    {"name": "mobilenet_v3_small", "weights": "none", "freeze": "all"},
]


def probe(**overrides):
    overrides.setdefault("backbones", PROBE)
    return tiny_config(**overrides)


def fusion(freeze="all", **overrides):
    overrides.setdefault("fusion", {"mode": "sum", "shared_dim": 16})
    bbs = [dict(b, freeze=freeze) for b in FUSED]
    return tiny_config(method="fusion", backbones=bbs, **overrides)


class Hook(Callback):
    """A callback that calls ``fn`` from one hook (``on_<hook>``)."""

    def __init__(self, hook, fn):
        setattr(self, f"on_{hook}", lambda trainer, *args: fn(trainer, *args))


def trainer(cfg, **kw) -> Trainer:
    bundle, model = prepare(cfg)
    return Trainer(cfg, model, bundle, device=CPU, **kw)


@pytest.fixture
def count_extractions(monkeypatch):
    """Number of extraction passes (one per split with something missing)."""
    calls = {"n": 0}
    real = feat_mod.extract_features

    def counting(*a, **kw):
        calls["n"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(feat_mod, "extract_features", counting)
    return calls


def test_cached_features_equal_a_direct_forward():
    tr = trainer(probe())
    assert tr.cached
    fs = tr.ensure_features()
    body = tr.model.backbone.eval()
    for ds, feats, labels in ((tr.bundle.train, fs.train, fs.train_labels), (tr.bundle.val, fs.val, fs.val_labels)):
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        with torch.no_grad():
            direct = body(x)
        assert feats[0].dtype == torch.float32 and feats[0].shape == direct.shape
        assert torch.allclose(feats[0], direct, atol=1e-5, rtol=1e-4)
        assert torch.equal(labels, torch.tensor([ds[i][1] for i in range(len(ds))]))


def test_cached_training_matches_training_through_the_frozen_body(runs_root):
    cached = run_training(probe(train__epochs=2), runs_root)
    plain = run_training(probe(train__epochs=2, train__feature_cache=False), runs_root)
    assert cached.run.status()["feature_cache"]["used"] is True
    assert plain.run.status()["feature_cache"]["used"] is False
    for a, b in zip(cached.metrics, plain.metrics):
        assert set(a) == set(b)  # same metrics format
        for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), k


def test_second_run_reuses_the_cache(runs_root, count_extractions):
    first = run_training(probe(), runs_root)
    fc = first.run.status()["feature_cache"]
    assert fc["used"] and sorted(fc["extracted"]) == ["resnet18/train", "resnet18/val"] and fc["loaded"] == []
    assert count_extractions["n"] == 2
    files = sorted(cache_dir().rglob("*.pt"))
    assert len(files) == 2 and all(f.is_relative_to(cache_dir() / "features" / "resnet18") for f in files)
    mtimes = [f.stat().st_mtime_ns for f in files]

    second = run_training(probe(train__lr=0.01, train__epochs=1, train__optimizer="sgd"), runs_root)
    fc2 = second.run.status()["feature_cache"]
    assert fc2["extracted"] == [] and sorted(fc2["loaded"]) == ["resnet18/train", "resnet18/val"]
    assert count_extractions["n"] == 2  # no extraction the second time
    assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_a_changed_key_part_invalidates():
    trainer(probe()).ensure_features()
    for change in (
        {"data__image_size": 40},
        {"data__classes": [0, 1, 3]},
        {"data__train_per_class": 11},
        {"data__val_fraction": 0.3},
        {"seed": 1},
    ):
        fs = trainer(probe(**change)).ensure_features()
        assert fs.loaded == [] and sorted(fs.extracted) == ["resnet18/train", "resnet18/val"], change


def test_a_changed_weights_source_invalidates(tmp_path):
    tr = trainer(probe())
    tr.ensure_features()
    path = tmp_path / "body.pt"
    torch.save(tr.model.backbone.body.state_dict(), path)  # same tensors, another source
    cfg = probe(backbones=[{"name": "resnet18", "weights": f"file:{path}", "freeze": "all"}])
    first = trainer(cfg).ensure_features()
    assert first.loaded == [] and len(first.extracted) == 2
    assert trainer(cfg).ensure_features().extracted == []  # the file source is cached under its own key
    torch.save({k: v + 1e-3 if v.is_floating_point() else v for k, v in tr.model.backbone.body.state_dict().items()}, path)
    assert len(trainer(cfg).ensure_features().extracted) == 2  # new file contents: new key


def test_fusion_alpha_head_and_lr_changes_reuse_the_cache(count_extractions):
    trainer(fusion()).ensure_features()
    assert count_extractions["n"] == 2  # train + val, both bodies in each pass
    for cfg in (
        fusion(fusion={"mode": "sum", "shared_dim": 16, "alpha": [3.0, 1.0], "learn_alpha": False}),
        fusion(fusion={"mode": "concat", "shared_dim": 8, "activation": "gelu"}),
        fusion(train__lr=0.1, train__epochs=7),
    ):
        fs = trainer(cfg).ensure_features()
        assert fs.extracted == [] and len(fs.loaded) == 4
    assert count_extractions["n"] == 2


def _png_folder(root, classes=("a", "b"), per_class=6, size=20):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / "toy" / c).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / "toy" / c / f"{i}.png")


@pytest.mark.parametrize("freeze", [4, "all"], ids=["through-the-bodies", "cached"])
def test_fusion_decodes_each_image_once_per_epoch(tmp_path, monkeypatch, freeze):
    _png_folder(tmp_path / "data")
    monkeypatch.setattr(data_prep, "MEMORY_BUDGET_BYTES", 0)  # decode from files per item
    decodes = {"n": 0}
    real = data_mod.FileImageDataset.image

    def counting(self, i):
        decodes["n"] += 1
        return real(self, i)

    cfg = fusion(freeze=freeze, data={"dataset": "toy", "image_size": 32, "val_fraction": 0.25}, train__epochs=2)
    bundle, model = prepare(cfg)
    assert isinstance(bundle.train, data_mod.FileImageDataset)
    n_images = len(bundle.train) + len(bundle.val)
    monkeypatch.setattr(data_mod.FileImageDataset, "image", counting)

    def run_once():
        per_epoch = []
        tr = Trainer(cfg, model, bundle, device=CPU, callbacks=[Hook("epoch_end", lambda *a: per_epoch.append(decodes["n"]))])
        decodes["n"] = 0
        assert tr.fit().state == "completed"
        return per_epoch

    per_epoch = run_once()
    if freeze != "all":  # through the bodies: every image decoded once per epoch, shared by both bodies
        assert per_epoch == [n_images, 2 * n_images]
    else:  # cached: one decode per image in all, for both bodies, then none
        assert per_epoch == [n_images, n_images]
        assert run_once() == [0, 0]  # warm: nothing decoded at all


def test_cached_checkpoint_loads_the_full_model_and_predicts_the_same(runs_root):
    box = {}
    res = run_training(probe(), runs_root, callbacks=[Hook("fit_end", lambda tr: box.setdefault("tr", tr))])
    assert res.state == "completed"
    tr = box["tr"]
    ckpt = load_checkpoint(res.run.checkpoint_path)
    assert set(ckpt["model"]) == set(tr.model.state_dict())  # bodies included
    assert any(k.startswith("backbone.body.") for k in ckpt["model"])
    loaded = load_run_model(res.run.id, runs_root)
    x = torch.stack([tr.bundle.val[i][0] for i in range(len(tr.bundle.val))])
    tr.model.eval()
    with torch.no_grad():
        expected = tr.model(x)
        got = loaded.model(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert got.argmax(1).tolist() == tr.last_eval["preds"]  # the recorded predictions too


def test_stop_within_one_batch_on_the_cached_path_and_resume(runs_root, count_extractions):
    cfg = probe(train__epochs=3, train__batch_size=8)
    stop = threading.Event()
    seen = []

    def on_batch(tr, epoch, batch, batches, loss):
        seen.append((epoch, batch))
        if epoch == 2 and batch == 2:
            stop.set()

    res = run_training(cfg, runs_root, stop_event=stop, callbacks=[Hook("batch_end", on_batch)])
    assert res.state == "stopped" and seen[-1] == (2, 2)
    assert res.run.status()["feature_cache"]["used"]
    assert load_checkpoint(res.run.checkpoint_path)["epoch"] == 1
    res2 = resume_training(res.run.id, runs_root)
    assert res2.state == "completed"
    assert [r["epoch"] for r in res2.run.metrics()] == [1, 2, 3]
    assert res2.run.status()["feature_cache"]["extracted"] == []  # resumed from the cache
    assert count_extractions["n"] == 2


def test_stop_during_extraction_keeps_nothing_partial(runs_root):
    stop = threading.Event()
    cfg = probe(data__train_per_class=None)  # enough images for several extraction batches

    def on_extract(tr, batch, batches):
        assert batches > 1
        stop.set()

    res = run_training(cfg, runs_root, stop_event=stop, callbacks=[Hook("extract", on_extract)])
    assert res.state == "stopped" and res.run.metrics() == []
    assert cache_size_bytes() == 0


def test_augment_is_off_on_cached_runs_with_a_warning(runs_root):
    res = run_training(probe(data__augment=True, train__epochs=1), runs_root)
    st = res.run.status()
    assert st["feature_cache"]["used"]
    assert any("data.augment is not applied" in w for w in st["warnings"])
    tr = trainer(probe(data__augment=True, train__feature_cache=False))
    assert not tr.cached and tr.cache_reason == "train.feature_cache is off"
    assert not any("data.augment" in w for w in tr.warnings)


def test_not_cached_unless_every_body_is_fully_frozen():
    assert not trainer(probe(backbones=[{"name": "resnet18", "freeze": 4}])).cached
    assert not trainer(fusion(freeze=0)).cached
    assert not trainer(probe(train__bn_train_frozen=True)).cached
    assert trainer(fusion()).cached


def test_cache_size_clear_and_corrupt_files(runs_root, count_extractions):
    assert cache_size_bytes() == 0 and clear_cache() == 0
    run_training(probe(train__epochs=1), runs_root)
    size = cache_size_bytes()
    assert size > 0
    files = sorted(cache_dir().rglob("*.pt"))
    files[0].write_bytes(b"not a checkpoint")  # damaged: a miss, re-extracted, never an error
    fs = trainer(probe()).ensure_features()
    assert len(fs.extracted) == 1
    size = cache_size_bytes()
    assert clear_cache() == size > 0
    assert cache_size_bytes() == 0 and cache_dir().exists()  # the root stays, the features go
    assert len(trainer(probe()).ensure_features().extracted) == 2


def test_default_cache_lives_in_the_runs_folder(runs_root, monkeypatch):
    monkeypatch.delenv("TRANSFER_LAB_CACHE")
    assert cache_dir() == runs_root / "_cache"
    assert cache_dir("elsewhere") == feat_mod.Path("elsewhere") / "_cache"
    res = run_training(probe(train__epochs=1), runs_root)
    assert (runs_root / "_cache" / "features" / "resnet18").is_dir()
    assert [r.id for r in RunStore(runs_root).list()] == [res.run.id]  # the cache is not a run


def test_job_worker_thread_count_takes_effect_in_the_worker(runs_root, monkeypatch):
    seen = {}
    real = jobs_mod.run_training

    def spy(*a, **kw):
        seen["worker"] = torch.get_num_threads()
        return real(*a, **kw)

    monkeypatch.setattr(jobs_mod, "run_training", spy)
    before = torch.get_num_threads()
    jm = JobManager(runs_root, threads=1)
    try:
        rid = jm.submit(probe(train__epochs=1))
        assert jm.wait(rid, 120)
    finally:
        jm.shutdown()
    assert Run(runs_root / rid).status()["state"] == "completed"
    assert seen["worker"] == 1
    assert torch.get_num_threads() == before  # this (the server's) thread keeps its own count
