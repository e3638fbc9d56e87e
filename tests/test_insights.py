"""Core of the teaching features: Grad-CAM, contributions, embeddings, ablation, disagreement,
galleries, run comparison helpers, the LR finder, the HTML report and TensorBoard logging.

Two tiny runs (a scratch resnet18 and a resnet18 + mobilenet_v3_small fusion, 1 epoch) are
trained once for the module. ONNX of a fusion run matching PyTorch within 1e-3 is covered by
tests/test_export.py::test_torchscript_and_onnx_match_pytorch[fusion] (not repeated here).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re

import numpy as np
import pytest
import torch

from conftest import tiny_config
from transfer_core import compare
from transfer_core import insights as ins
from transfer_core.data import build_data
from transfer_core.models import FusionModel
from transfer_core.predict import load_run_model
from transfer_core.training import run_training

FUSION = dict(
    method="fusion",
    backbones=[{"name": "resnet18"}, {"name": "mobilenet_v3_small"}],
    fusion={"mode": "sum", "shared_dim": 16, "learn_alpha": True},
    train__epochs=1,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny tensors, one thread


@pytest.fixture(scope="module")
def runs(module_tmp, one_torch_thread):
    root = module_tmp
    scratch = run_training(tiny_config(train__epochs=1), root)
    fusion = run_training(tiny_config(**FUSION), root)
    assert scratch.state == fusion.state == "completed"
    out = {}
    for kind, res in (("scratch", scratch), ("fusion", fusion)):
        loaded = load_run_model(res.run)
        bundle = build_data(loaded.cfg.data, loaded.cfg.seed)
        out[kind] = (loaded, bundle, ins.val_pass(loaded, bundle))
    out["root"] = root
    return out


def _x(bundle, i=0):
    return bundle.val[i][0]


# --------------------------------------------------------------------------- Grad-CAM / contributions


@pytest.mark.parametrize("kind", ["scratch", "fusion"])
def test_gradcam_one_map_per_backbone_in_unit_range(runs, kind):
    loaded, bundle, _ = runs[kind]
    x = _x(bundle)
    maps = ins.gradcam_maps(loaded, x)
    assert len(maps) == len(loaded.cfg.backbones)
    for m in maps:
        assert m.shape == (32, 32) and m.dtype == np.float32
        assert np.isfinite(m).all() and m.min() >= 0.0 and m.max() <= 1.0
    # The layer read has a spatial grid (at 32 px resnet18's last stage is 1 x 1; layer3 is 2 x 2).
    assert ins.cam_layers(loaded, x)[0] == "layer3"
    # Hooks went on a copy: the shared, cached model is untouched.
    assert all(not m._forward_hooks for m in loaded.model.modules())
    # A batch of one and a single image give the same map; a chosen class works.
    np.testing.assert_allclose(ins.gradcam_maps(loaded, x.unsqueeze(0))[0], maps[0], atol=1e-5)
    assert len(ins.gradcam_maps(loaded, x, target=1)) == len(maps)


def _assert_not_blank(m: np.ndarray) -> None:
    """A map that says where the model looked: finite, and not one flat value (blank)."""
    assert np.isfinite(m).all(), "non-finite Grad-CAM values"
    assert float(m.std()) > 0.01 and float(m.max() - m.min()) > 0.1, f"blank Grad-CAM map (std {float(m.std()):.2e})"


def test_gradcam_reaches_frozen_bodies(runs):
    """Frozen parameters (requires_grad False) must not blank the maps: the input carries the gradient.

    Every backbone's map is non-blank for the trainable model and for a fully frozen copy,
    the two are the same map, and the map follows the image (another image, another map).
    """
    loaded, bundle, _ = runs["fusion"]
    frozen = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    for p in frozen.model.parameters():
        p.requires_grad_(False)
    x = _x(bundle, 1)
    live, cold = ins.gradcam_maps(loaded, x), ins.gradcam_maps(frozen, x)
    assert len(live) == len(cold) == 2
    for a, b in zip(live, cold):
        _assert_not_blank(a)
        _assert_not_blank(b)
        np.testing.assert_allclose(a, b, atol=1e-4)
    other = ins.gradcam_maps(frozen, _x(bundle, 2))
    assert any(float(np.abs(a - b).max()) > 1e-3 for a, b in zip(cold, other)), "the same map for different images"


@pytest.mark.parametrize("name", ["squeezenet1_1", "swin_t"])
def test_cam_target_is_found_generically(name):
    """Other families: a conv net without residual stages and a channels-last transformer."""
    from transfer_core.models import BackboneBody
    from transfer_core.backbones import get_backbone

    body = BackboneBody(get_backbone(name), 32).eval()
    x = torch.rand(1, 3, 32, 32)
    tgt = ins.cam_target(body, x)
    assert tgt.name
    captured = []
    h = tgt.module.register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        body(x)
    h.remove()
    out = tgt.reshape(captured[0]) if tgt.reshape else captured[0]
    assert out.dim() == 4 and out.shape[0] == 1


def test_contributions_are_alpha_times_projected_norm(runs):
    loaded, bundle, vp = runs["fusion"]
    model = loaded.model
    assert isinstance(model, FusionModel)
    x = torch.stack([_x(bundle, i) for i in range(4)])
    got = ins.contributions(loaded, x)
    with torch.no_grad():
        feats = model.features(x)
        want = [a * float(p(f).norm(dim=1).mean()) for a, p, f in zip(model.alpha_list(), model.projections, feats)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert len(got) == 2 and all(v >= 0 for v in got) and sum(got) > 0
    # dividing out the norms gives back alpha (sums to one)
    with torch.no_grad():
        norms = [float(p(f).norm(dim=1).mean()) for p, f in zip(model.projections, feats)]
    assert abs(sum(c / n for c, n in zip(got, norms)) - 1.0) < 1e-5
    # the validation-pass version agrees with a direct call on the same images
    np.testing.assert_allclose(ins.mean_contributions(loaded, vp),
                               ins.contributions(loaded, torch.stack([_x(bundle, int(i)) for i in vp.indices])),
                               rtol=1e-4)


# --------------------------------------------------------------------------- embeddings


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embeddings_shapes(runs, method):
    loaded, bundle, vp = runs["fusion"]
    maps = ins.embeddings(loaded, bundle, method, max_points=30, vp=vp)
    assert list(maps) == ["resnet18", "mobilenet_v3_small", "fused"]
    labels_all = bundle.val.labels.numpy()
    for pts, labels, idx in maps.values():
        assert pts.shape == (len(labels), 2) and len(idx) == len(labels) <= 30
        assert np.isfinite(pts).all()
        assert set(labels.tolist()) == {0, 1, 2}  # every class kept by the stratified cap
        np.testing.assert_array_equal(labels_all[idx], labels)
    with pytest.raises(ValueError, match="unknown embedding method"):
        ins.embeddings(loaded, bundle, "umap", vp=vp)


def test_val_pass_cap_is_stratified_and_deterministic(runs):
    loaded, bundle, vp = runs["scratch"]
    small = ins.val_pass(loaded, bundle, limit=10)
    assert len(small.indices) <= 10 and set(small.labels.tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(small.indices, ins.val_pass(loaded, bundle, limit=10).indices)
    assert vp.total == len(bundle.val) == len(vp.labels)
    assert vp.feats[0].shape == (len(bundle.val), 512)


# --------------------------------------------------------------------------- fusion ablation / disagreement


@pytest.mark.parametrize("mode", ["sum", "concat"])
def test_fuse_keep_leaves_the_other_backbones_out(mode):
    """``fuse(keep=...)`` against the fused vector computed by hand without the dropped backbones."""
    from transfer_core.models import build_model

    cfg = tiny_config(**{**FUSION, "fusion": {"mode": mode, "shared_dim": 8, "learn_alpha": True,
                                              "activation": "tanh"}})
    model = build_model(cfg, 3, load_weights=False).eval()
    if mode == "sum":
        with torch.no_grad():
            model.alpha_logits.copy_(torch.tensor([0.3, -0.4]))  # unequal weights: a swapped alpha shows
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn(5, b.feature_dim, generator=gen) for b in model.bodies]
    with torch.no_grad():
        p = [proj(f) for proj, f in zip(model.projections, feats)]
        a = model.alpha()
        zero = torch.zeros_like(p[0])
        if mode == "sum":
            by_hand = {(0,): a[0] * p[0], (1,): a[1] * p[1], (0, 1): a[0] * p[0] + a[1] * p[1], (): zero}
        else:
            by_hand = {(0,): torch.cat([p[0], zero], 1), (1,): torch.cat([zero, p[1]], 1),
                       (0, 1): torch.cat(p, 1), (): torch.cat([zero, zero], 1)}
        for keep, z in by_hand.items():
            torch.testing.assert_close(model.fuse(feats, keep=keep), torch.tanh(z))
        torch.testing.assert_close(model.fuse(feats, keep={1}), model.fuse(feats, drop=0))
        torch.testing.assert_close(model.fuse(feats), torch.tanh(by_hand[(0, 1)]))
        assert not torch.allclose(model.fuse(feats, keep=[0]), model.fuse(feats, keep=[1]))


def test_ablation_and_disagreement_ranges(runs):
    loaded, bundle, vp = runs["fusion"]
    rows = ins.ablation(loaded, bundle, vp=vp)
    assert [r["removed"] for r in rows] == [None, "resnet18", "mobilenet_v3_small"]
    assert rows[0]["val_acc"] == pytest.approx(vp.acc)
    for r in rows:
        assert 0.0 <= r["val_acc"] <= 1.0
        assert r["change"] == pytest.approx(r["val_acc"] - rows[0]["val_acc"])

    d = ins.disagreement(loaded, bundle, vp=vp)
    m = np.asarray(d["matrix"])
    assert d["names"] == ["resnet18", "mobilenet_v3_small"] and m.shape == (2, 2)
    assert (np.diag(m) == 0).all() and (m >= 0).all() and (m <= 1).all()
    assert all(0 <= a <= 1 for a in d["solo_acc"]) and 0 <= d["both_wrong"] <= 1
    # P(i right, j wrong) - P(j right, i wrong) = P(i right) - P(j right)
    assert m[0, 1] - m[1, 0] == pytest.approx(d["solo_acc"][0] - d["solo_acc"][1])
    # without a shared vp, the same answer
    assert ins.disagreement(loaded, bundle) == d


def test_fusion_only_views_refuse_a_single_backbone_run(runs):
    loaded, bundle, vp = runs["scratch"]
    with pytest.raises(ValueError, match="needs a fusion run"):
        ins.ablation(loaded, bundle, vp=vp)
    with pytest.raises(ValueError, match="needs a fusion run"):
        ins.disagreement(loaded, bundle, vp=vp)


# --------------------------------------------------------------------------- galleries


def test_confusion_cell_images_match_the_matrix(runs):
    loaded, bundle, vp = runs["fusion"]
    conf = ins.confusion_from_pass(vp, loaded.classes)
    assert sum(map(sum, conf["matrix"])) == len(vp.labels)
    m = np.asarray(conf["matrix"])
    t, p = np.unravel_index(int(m.argmax()), m.shape)
    items = ins.confusion_cell_images(loaded, bundle, int(t), int(p), limit=5, vp=vp)
    assert len(items) == min(5, int(m[t, p]))
    for img, probs in items:
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
        assert len(probs) == 3 and probs[0][0] == loaded.classes[p]
        assert [q for _, q in probs] == sorted((q for _, q in probs), reverse=True) and sum(q for _, q in probs) <= 1 + 1e-5
    assert ins.confusion_cell_images(loaded, bundle, int(t), int(p), limit=0, vp=vp) == []


def test_top_losses_sorted_and_consistent(runs):
    loaded, bundle, vp = runs["scratch"]
    tl = ins.top_losses(loaded, bundle, k=4, vp=vp)
    assert len(tl) == 4
    losses = [t[3] for t in tl]
    assert losses == sorted(losses, reverse=True) and all(v >= 0 for v in losses)
    for img, true, pred, loss, prob in tl:
        assert img.shape == (32, 32, 3) and true in loaded.classes and pred in loaded.classes and 0 <= prob <= 1
        if true == pred:
            assert loss == pytest.approx(-math.log(prob), rel=1e-3)


# --------------------------------------------------------------------------- comparing runs


def test_run_kind_flatten_and_diff():
    base = {"method": "transfer", "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}],
            "data": {"dataset": "digits", "classes": [0, 1, 2]}, "train": {"lr": 0.001}, "name": "a"}
    tr = {**base, "backbones": [{"name": "resnet18", "weights": "run:x", "freeze": 2}], "name": "b"}
    fu = {**base, "method": "fusion", "backbones": base["backbones"] * 2, "train": {"lr": 0.01}}
    assert compare.run_kind(base) == "scratch" and compare.run_kind(tr) == "transfer" and compare.run_kind(fu) == "fusion"
    assert compare.run_kind({**base, "backbones": [{"name": "resnet18", "weights": "imagenet", "freeze": 0}]}) == "transfer"

    flat = compare.flatten_config(base)
    assert flat["backbones.0.weights"] == "none" and flat["data.classes"] == [0, 1, 2] and flat["train.lr"] == 0.001

    diff = compare.config_diff({"a": base, "b": tr, "c": fu})
    assert set(diff) == {"method", "backbones.0.weights", "backbones.0.freeze", "backbones.1.name",
                         "backbones.1.weights", "backbones.1.freeze", "train.lr"}
    assert diff["backbones.1.name"] == {"a": "—", "b": "—", "c": "resnet18"}
    assert compare.config_diff({"a": base, "b": dict(base)}) == {}


def test_not_comparable_flags_the_odd_run_out():
    def cfg(dataset="digits", classes=(0, 1, 2)):
        return {"data": {"dataset": dataset, "classes": None if classes is None else list(classes)}}

    ref, odd = compare.not_comparable({"a": cfg(), "b": cfg(), "c": cfg(classes=(3, 4, 5))})
    assert ref == ("digits", ("0", "1", "2")) and odd == ["c"]
    assert compare.not_comparable({"a": cfg(), "b": cfg(dataset="shapes")})[1] == ["b"]  # tie: the first run is the reference
    assert compare.not_comparable({"a": cfg(classes=None), "b": cfg(classes=None)})[1] == []
    assert compare.not_comparable({}) == (None, [])


def test_comparison_rows_headline_and_diff_table():
    from transfer_core import compare
    from transfer_core.runs import RunSummary

    def summary(rid, acc, weights="none"):
        return RunSummary(id=rid, dir=None, state="completed", message="", created=0.0, method="transfer",
                          dataset="digits", backbones=["resnet18"], weights=[weights], epochs_done=2, epochs=3,
                          val_acc=acc, best_val_acc=acc, name="")

    configs = {"a": {"backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}]},
               "b": {"backbones": [{"name": "resnet18", "weights": "imagenet", "freeze": 2}]}, "c": {}}
    rows = compare.comparison_rows([summary("a", 0.5), summary("b", 0.75, "imagenet"), summary("c", 0.9)], configs,
                                   odd=["c"])
    assert [(r["id"], r["kind"], r["comparable"], r["epochs"]) for r in rows] == [
        ("a", "scratch", True, "2 / 3"), ("b", "transfer", True, "2 / 3"), ("c", "transfer", False, "2 / 3")]
    best, spread = compare.best_and_spread(rows)
    assert best["id"] == "b" and spread == pytest.approx(0.25)  # c is better but not comparable
    assert compare.best_and_spread(rows[:1])[1] is None and compare.best_and_spread([]) == (None, None)
    diff = compare.config_diff({rid: configs[rid] for rid in ("a", "b")})
    assert list(diff) == ["backbones.0.weights", "backbones.0.freeze"]
    assert compare.diff_table(diff, ["a", "b"]) == {"a": ["none", "0"], "b": ["imagenet", "2"]}
    assert compare.diff_table({"k": {"a": None}}, ["a"]) == {"a": ["—"]}


def test_compare_needs_no_torch():
    """Run comparison is pure data: its module imports nothing beyond the standard library."""
    import ast
    import sys

    from transfer_core import compare

    tree = ast.parse(open(compare.__file__, encoding="utf-8").read())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import sys, transfer_core.compare; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "importing transfer_core.compare loaded torch"


def test_alpha_trajectory_reads_the_metrics_rows():
    from transfer_core.insights.fusion import alpha_trajectory

    rows = [{"epoch": 1, "alpha": [0.5, 0.5]}, {"epoch": 2}, {"epoch": 3, "alpha": [0.6, 0.4]}]
    assert alpha_trajectory(rows, ["resnet18", "vgg11"]) == {"α1 resnet18": ([1, 3], [0.5, 0.6]),
                                                            "α2 vgg11": ([1, 3], [0.5, 0.4])}
    assert alpha_trajectory([{"epoch": 1}], ["resnet18"]) == {}


def test_run_summaries_never_import_sklearn():
    """A run writes its confusion matrix and per-class table without importing scikit-learn (1.5 s)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, transfer_core.metrics as m\n"
            "assert m.confusion([0, 1, 1], [0, 1, 0], 2) == [[1, 0], [1, 1]]\n"
            "m.per_class_metrics([0, 1, 1], [0, 1, 0], ['a', 'b'])\n"
            "assert 'sklearn' not in sys.modules, 'sklearn imported by transfer_core.metrics'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_and_per_class_match_scikit_learn(seed):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from transfer_core.metrics import confusion, per_class_metrics

    rng = np.random.default_rng(seed)
    n = 5
    t = rng.integers(0, n - 1, 60)  # class 4 never occurs: zero support
    p = np.where(rng.random(60) < 0.6, t, rng.integers(0, n, 60))
    p[p == 3] = 2  # class 3 never predicted: zero precision denominator
    assert confusion(t, p, n) == confusion_matrix(t, p, labels=list(range(n))).tolist()
    pr, rc, f1, sup = precision_recall_fscore_support(t, p, labels=list(range(n)), zero_division=0)
    rows = per_class_metrics(t, p, [f"c{i}" for i in range(n)])
    assert [r["class"] for r in rows] == [f"c{i}" for i in range(n)]
    np.testing.assert_allclose([r["precision"] for r in rows], pr)
    np.testing.assert_allclose([r["recall"] for r in rows], rc)
    np.testing.assert_allclose([r["f1"] for r in rows], f1)
    assert [r["support"] for r in rows] == sup.tolist()


# --------------------------------------------------------------------------- LR finder


def test_suggest_lr_finds_the_steepest_descent():
    from transfer_core.training.lr_finder import default_iterations, suggest_lr

    lrs = list(np.logspace(-7, 1, 81))
    x = np.log10(lrs)
    losses = list(2.0 - 1.5 / (1 + np.exp(-(x + 3) * 3)) + np.where(x > -1, (x + 1) ** 2 * 3, 0))
    s = suggest_lr(lrs, losses)
    assert 10**-3.3 < s["steepest"] < 10**-2.7 and s["suggested"] == s["steepest"]
    # too short a curve: min / 10, still inside the range
    short = suggest_lr(lrs[:3], [1.0, 0.9, 2.0])
    assert short["steepest"] is None and lrs[0] <= short["suggested"] <= lrs[2]
    assert default_iterations(36, 16) == 30 and default_iterations(100000, 64) == 100


def test_find_lr_is_deterministic_in_range_and_side_effect_free(runs, tmp_path):
    from transfer_core.training.lr_finder import find_lr
    from transfer_core.training import prepare

    cfg = tiny_config(train__epochs=1)
    bundle, model = prepare(cfg, tmp_path / "runs")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    a = find_lr(cfg, model=model, bundle=bundle, num_iter=10)
    b = find_lr(cfg, model=model, bundle=bundle, num_iter=10)
    assert a["lrs"] == b["lrs"] and a["losses"] == b["losses"] and a["suggested"] == b["suggested"]
    assert 1 < len(a["lrs"]) <= 10 and len(a["losses"]) == len(a["lrs"])
    assert a["lrs"][0] == pytest.approx(1e-7) and all(x < y for x, y in zip(a["lrs"], a["lrs"][1:]))
    assert a["lrs"][0] <= a["suggested"] <= a["lrs"][-1]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert not (tmp_path / "runs").exists()  # nothing written to the run store


# --------------------------------------------------------------------------- report


def test_html_report_is_self_contained_with_every_section(runs):
    from transfer_core.report import html_report, write_report

    run = runs["fusion"][0].run
    html = html_report(run)
    for anchor in ("id='summary'", "id='curves'", "id='alpha'", "id='confusion'", "id='per-class'",
                   "id='samples'", "id='config'"):
        assert anchor in html, anchor
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*['\"]?(https?:)?//", html, re.I)
    assert not re.search(r"<link[^>]*href\s*=\s*['\"]?(https?:)?//", html, re.I)
    ids = re.findall(r"\bid=['\"]([^'\"]+)", html)
    assert len(ids) == len(set(ids)), "duplicate element ids (plotly would draw into the wrong element)"
    assert html.count("data:image/png;base64,") >= 3
    assert html.count("Plotly.newPlot") == 3  # curves, alpha, confusion
    assert html.count("window.PlotlyConfig") == 1  # the bundle is inlined exactly once
    assert "resnet18 + mobilenet_v3_small" in html
    path = write_report(run)
    assert path == run.dir / "report.html" and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# --------------------------------------------------------------------------- TensorBoard


def test_tensorboard_logs_scalars_per_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from transfer_core.runs import RunStore
    from transfer_core.training import Trainer, prepare
    from transfer_core.training.tensorboard import tensorboard_callback

    cfg = tiny_config(**{**FUSION, "train__epochs": 2,
                         "backbones": [{"name": "resnet18", "freeze": "all"}, {"name": "mobilenet_v3_small", "freeze": "all"}]})
    root = tmp_path / "runs"
    bundle, model = prepare(cfg, root)
    run = RunStore(root).create(cfg, state="running")
    tb = tensorboard_callback(run, [b.name for b in cfg.backbones])
    assert tb is not None
    trainer = Trainer(cfg, model, bundle, runs_root=root, callbacks=[tb])
    assert trainer.fit().state == "completed"
    acc = EventAccumulator(str(run.dir / "tb")).Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss/train", "loss/val", "acc/train", "acc/val", "lr",
            "alpha/1_resnet18", "alpha/2_mobilenet_v3_small"} <= tags
    assert [e.step for e in acc.Scalars("acc/val")] == [1, 2]
    assert acc.Scalars("lr")[0].value == pytest.approx(cfg.train.lr)
    assert acc.Scalars("alpha/1_resnet18")[-1].value == pytest.approx(trainer.alpha()[0], abs=1e-6)


# --------------------------------------------------------------------------- TensorBoard wired into every run


def test_every_run_writes_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    res = run_training(tiny_config(train__epochs=2), tmp_path / "runs")
    assert res.state == "completed"
    acc = EventAccumulator(str(res.run.dir / "tb")).Reload()
    assert [e.step for e in acc.Scalars("acc/val")] == [1, 2]
    assert [round(e.value, 6) for e in acc.Scalars("acc/val")] == [round(m["val_acc"], 6) for m in res.run.metrics()]


def test_event_file_crc_and_resume_purge(tmp_path):
    """The hand-written event file: CRC-32C's check value, and TensorBoard drops events from a resume's step on."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from transfer_core.training.tb_events import EventFile, crc32c

    assert crc32c(b"123456789") == 0xE3069283
    first = EventFile(tmp_path)
    for step in (1, 2, 3):
        first.scalar("acc/val", step / 10, step)
    first.close()
    import time as _time

    _time.sleep(1.1)  # a second file, as a resumed run writes
    again = EventFile(tmp_path, purge_step=3)
    again.scalar("acc/val", 0.99, 3)
    again.close()
    acc = EventAccumulator(str(tmp_path)).Reload()
    assert [(e.step, round(e.value, 2)) for e in acc.Scalars("acc/val")] == [(1, 0.1), (2, 0.2), (3, 0.99)]


def test_missing_or_broken_tensorboard_never_fails_a_run(tmp_path, monkeypatch):
    import transfer_core.training.tensorboard as tbl

    monkeypatch.setattr(tbl, "tensorboard_available", lambda: False)
    res = run_training(tiny_config(train__epochs=1), tmp_path / "runs")
    assert res.state == "completed" and not (res.run.dir / "tb").exists()

    monkeypatch.undo()
    pytest.importorskip("tensorboard")
    import transfer_core.training.tb_events as tbe

    def _broken(*a, **k):
        raise OSError("read-only file system")

    monkeypatch.setattr(tbe, "EventFile", _broken)
    res = run_training(tiny_config(train__epochs=1), tmp_path / "runs2")
    assert res.state == "completed", res.message


def test_selection_to_confusion_cell_mapping():
    from dashboard.widgets_teaching import cell_from_selection, point_from_selection

    labels = ["0", "1", "2"]
    event = {"selection": {"points": [{"x": "2", "y": "0", "customdata": 4}]}}  # true 0, predicted 2
    assert cell_from_selection(event, labels) == (0, 2)
    assert cell_from_selection({"selection": {"points": [{"x": 1, "y": 1}]}}, labels) == (1, 1)  # numbers too
    assert cell_from_selection({"selection": {"points": []}}, labels) is None
    assert cell_from_selection({"selection": {"points": [{"x": "7", "y": "0"}]}}, labels) is None
    assert cell_from_selection(None, labels) is None
    assert point_from_selection({"selection": {"points": [{"customdata": [12]}]}}) == 12
