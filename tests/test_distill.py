"""Knowledge distillation: the loss, the teachers' outputs computed once, unlabeled images
without their labels, several teachers, bad input, and a student run folder that is an
ordinary run (predicts, exports, resumes, teaches, serves as a source)."""

from __future__ import annotations

import math
import threading

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config
from transfer_core import cli
from transfer_core.config import from_dict, to_dict
from transfer_core.distill import distill_loss, resolve_teachers, soft_targets
from transfer_core.distill import targets as targets_mod
from transfer_core.distill.student import StudentModel, inference_parameters
from transfer_core.distill.targets import TeacherOutputs
from transfer_core.distill.versus import student_vs_teachers, versus_sentence
from transfer_core.errors import ConfigError
from transfer_core.predict import load_run_model
from transfer_core.runs import RunStore
from transfer_core.training import run_training
from transfer_core.training.lifecycle import resume_training

CLASSES = [0, 1, 2]


def _teacher_cfg(name: str, seed: int = 0, classes=CLASSES, method: str = "transfer"):
    cfg = tiny_config(name=name, seed=seed, data__classes=list(classes), data__train_per_class=6, data__image_size=16,
                      train__epochs=2, train__batch_size=8)
    if method == "fusion":
        d = to_dict(cfg)
        d["method"] = "fusion"
        d["backbones"] = [{"name": "resnet18", "weights": "none", "freeze": 0},
                          {"name": "squeezenet1_1", "weights": "none", "freeze": 0}]
        d["fusion"]["shared_dim"] = 16
        cfg = from_dict(d)
    return cfg


def _student_dict(teachers, **distill):
    return {
        "seed": 0, "name": "student", "method": "distill",
        "data": {"dataset": "digits", "classes": CLASSES, "train_per_class": 6, "val_fraction": 0.1, "image_size": 16},
        "backbones": [{"name": "squeezenet1_1", "weights": "none", "freeze": 0}],
        "distill": {"teachers": list(teachers), "temperature": 4.0, "weight": 0.9, "unlabeled": True, **distill},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.003, "device": "cpu"},
    }


@pytest.fixture(scope="module")
def teachers(module_tmp, one_torch_thread):
    """Two completed teachers on digits 0-2 (a transfer and a fusion) and one on other classes."""
    root = module_tmp / "runs"
    out = {}
    for key, cfg in (("t1", _teacher_cfg("teacher-a")), ("fusion", _teacher_cfg("teacher-f", method="fusion")),
                     ("other", _teacher_cfg("teacher-other", classes=[3, 4, 5]))):
        res = run_training(cfg, root)
        assert res.state == "completed", res.message
        out[key] = res.run.id
    return root, out


# --------------------------------------------------------------------------- the loss


def test_loss_matches_a_hand_computation_of_ce_and_t2_kl():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, generator=g)
    labels = torch.tensor([0, 2, -1, -1])  # two labeled, two unlabeled
    targets = torch.softmax(torch.randn(4, 3, generator=g), 1)
    T, lam = 3.0, 0.7
    total, parts = distill_loss(logits, labels, targets, T, lam)
    # by hand: CE over the labeled two only; KL(p || q) = sum p (log p - log q), mean over all four
    ce = -(torch.log_softmax(logits[0], 0)[0] + torch.log_softmax(logits[1], 0)[2]) / 2
    q = torch.log_softmax(logits / T, 1)
    kl = (targets * (targets.log() - q)).sum(1).mean()
    expected = (1 - lam) * ce + lam * T * T * kl
    assert math.isclose(float(parts["ce"]), float(ce), rel_tol=1e-5)
    assert math.isclose(float(parts["kd"]), float(T * T * kl), rel_tol=1e-5)
    assert math.isclose(float(total), float(expected), rel_tol=1e-5)


def test_a_batch_without_labels_learns_from_the_teachers_only():
    logits = torch.randn(3, 4, requires_grad=True)
    total, parts = distill_loss(logits, torch.full((3,), -1), torch.full((3, 4), 0.25), 2.0, 0.5)
    assert float(parts["ce"]) == 0.0
    total.backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_several_teachers_give_the_weighted_mean_of_their_softened_distributions():
    z1, z2 = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 3.0]])
    out = TeacherOutputs([z1, z2], [torch.zeros(1, 2), torch.zeros(1, 2)])
    T = 2.0
    got = soft_targets(out, [0.75, 0.25], T)
    want = 0.75 * F.softmax(z1 / T, 1) + 0.25 * F.softmax(z2 / T, 1)
    assert torch.allclose(got, want)
    assert torch.allclose(got.sum(1), torch.ones(1))


def test_teacher_weights_are_normalised_and_classes_may_come_in_another_order(teachers):
    root, ids = teachers
    cfg = from_dict(_student_dict([f"run:{ids['t1']}", f"run:{ids['fusion']}"], teacher_weights=[3, 1]))
    got = resolve_teachers(cfg, ["2", "0", "1"], root)  # the student's class order differs from the teachers'
    assert [t.weight for t in got] == [0.75, 0.25]
    assert got[0].order == [2, 0, 1] and got[1].method == "fusion"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, field", [
    ({"teachers": ["run:no-such-run"]}, "distill.teachers.0"),
    ({"teachers": ["OTHER"]}, "distill.teachers.0"),  # classes 3-5, this run has 0-2
    ({"teachers": ["FAILED"]}, "distill.teachers.0"),
    ({"teachers": ["t1"]}, "distill.teachers.0"),  # not run:...
    ({"temperature": 0}, "distill.temperature"),
    ({"weight": 1.5}, "distill.weight"),
    ({"teacher_weights": [1, 2]}, "distill.teacher_weights"),
    ({"teachers": []}, "distill.teachers"),
])
def test_bad_distill_input_is_one_error_line_exit_2_and_nothing_trained(teachers, tmp_path, capsys, change, field):
    from seed_runs import fake_run

    root, ids = teachers
    failed = fake_run(root, to_dict(_teacher_cfg("teacher-failed")), 0.5, state="failed")
    refs = {"OTHER": f"run:{ids['other']}", "FAILED": f"run:{failed}"}
    if "teachers" in change:
        change = {"teachers": [refs.get(t, t) for t in change["teachers"]]}
    d = _student_dict([f"run:{ids['t1']}"])
    d["distill"].update(change)
    import yaml

    path = tmp_path / "student.yaml"
    path.write_text(yaml.safe_dump(d))
    before = {r.id for r in RunStore(root).runs()}
    code = cli.main(["train", str(path), "--runs-dir", str(root)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and field in err[0], err
    assert {r.id for r in RunStore(root).runs()} == before  # no folder made


# --------------------------------------------------------------------------- a student run


@pytest.fixture(scope="module")
def student(teachers):
    root, ids = teachers
    calls = {"n": 0}
    real = targets_mod.teacher_pass

    def counting(model, x):
        calls["n"] += 1
        return real(model, x)

    targets_mod.teacher_pass = counting
    try:
        res = run_training(from_dict(_student_dict([f"run:{ids['t1']}"])), root)
        first = calls["n"]
        again = run_training(from_dict({**_student_dict([f"run:{ids['t1']}"]), "name": "student-again"}), root)
        second = calls["n"] - first
    finally:
        targets_mod.teacher_pass = real
    assert res.state == "completed" and again.state == "completed", (res.message, again.message)
    return root, ids, res, first, second, again


def test_teacher_outputs_are_computed_once_and_never_in_the_epochs(student):
    root, ids, res, first, second, _ = student
    st = res.run.status()["feature_cache"]["teachers"]
    n_images = st["images"]
    assert st["unlabeled"] > 0 and n_images > st["unlabeled"]
    # one pass over labeled + unlabeled images (batches of 128), though the student trained 2 epochs
    assert first == math.ceil((n_images - st["unlabeled"]) / 128) + math.ceil(st["unlabeled"] / 128)
    assert st["computed"] == [ids["t1"]]
    assert second == 0  # the next student on the same data reads them from the cache


def test_metrics_carry_the_two_loss_parts(student):
    rows = student[2].run.metrics()
    assert len(rows) == 2 and all({"train_ce", "train_kd"} <= set(r) for r in rows)


def test_unlabeled_images_labels_are_never_read(teachers, monkeypatch):
    """Shuffle the true labels of the unlabeled images before the dataset is made: same student."""
    import numpy as np

    from transfer_core.data import bundle as bundle_mod

    root, ids = teachers
    real = bundle_mod._unlabeled

    def shuffled(pool, idx, size, prep):
        labels = pool.labels.copy()
        labels[idx] = np.random.default_rng(1).permutation(labels[idx])
        assert not np.array_equal(labels[idx], pool.labels[idx])
        pool.labels = labels
        return real(pool, idx, size, prep)

    cfg = dict(_student_dict([f"run:{ids['t1']}"]), name="s-plain")
    cfg["train"]["epochs"] = 1
    a = run_training(from_dict(cfg), root)
    monkeypatch.setattr(bundle_mod, "_unlabeled", shuffled)
    b = run_training(from_dict(dict(cfg, name="s-shuffled")), root)
    wa = torch.load(a.run.checkpoint_path, weights_only=True)["model"]
    wb = torch.load(b.run.checkpoint_path, weights_only=True)["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_the_student_folder_predicts_exports_teaches_and_is_a_source(student, tmp_path):
    from transfer_core.export import export_run
    from transfer_core.predict import predict_tensors

    root, ids, res, *_ = student
    loaded = load_run_model(res.run.id, root)
    assert isinstance(loaded.model, StudentModel)
    assert len(predict_tensors(loaded, torch.rand(2, 3, 16, 16))[0]) == 3
    assert export_run(res.run.id, "torchscript", root).stat().st_size > 0
    onnx_path = export_run(res.run.id, "onnx", root)
    import numpy as np
    import onnxruntime as ort

    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    got = ort.InferenceSession(str(onnx_path)).run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        assert np.allclose(got, loaded.model(x).numpy(), atol=1e-4)
    # it teaches a next student, and its body is a run: source
    nxt = from_dict(_student_dict([f"run:{res.run.id}"]))
    assert resolve_teachers(nxt, ["0", "1", "2"], root)[0].method == "distill"
    src = tiny_config(data__classes=[0, 1, 2], data__image_size=16, train__epochs=1)
    d = to_dict(src)
    d["backbones"] = [{"name": "squeezenet1_1", "weights": f"run:{res.run.id}", "freeze": 1}]
    assert run_training(from_dict(d), root).state == "completed"


def test_a_stopped_student_resumes_to_the_end(teachers):
    root, ids = teachers
    stop = threading.Event()
    from transfer_core.training import Callback

    class StopAfterFirst(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            stop.set()

    cfg = from_dict({**_student_dict([f"run:{ids['t1']}"]), "name": "s-resume"})
    first = run_training(cfg, root, stop_event=stop, callbacks=[StopAfterFirst()])
    assert first.state == "stopped"
    done = resume_training(first.run.id, root)
    assert done.state == "completed" and [m["epoch"] for m in done.run.metrics()] == [1, 2]


def test_feature_matching_trains_projections_that_reload_from_the_folder(teachers):
    root, ids = teachers
    cfg = from_dict({**_student_dict([f"run:{ids['t1']}", f"run:{ids['fusion']}"], features=True), "name": "s-feat"})
    res = run_training(cfg, root)
    assert res.state == "completed", res.message
    assert all("train_feat" in r for r in res.run.metrics())
    loaded = load_run_model(res.run.id, root)  # rebuilt from the checkpoint's shapes alone
    dims = [p.out_features for p in loaded.model.feature_proj]
    assert dims == [512, 16]  # resnet18's pooled features, the fusion's shared space
    plain = sum(p.numel() for p in loaded.model.parameters())
    assert inference_parameters(loaded.model) == plain - sum(p.numel() for p in loaded.model.feature_proj.parameters())


def test_student_vs_teachers_rows_and_one_seed_sentence(student):
    root, ids, res, *_ = student
    out = student_vs_teachers(res.run.id, root)
    roles = [r["role"] for r in out["rows"]]
    assert roles == ["student", "teacher"] and out["rows"][1]["run_id"] == ids["t1"]
    for r in out["rows"]:
        assert r["params"] > 0 and r["export_mb"] > 0 and r["ms_per_image"] > 0
    assert "one seed" in out["sentence"] and "teacher-a" in out["sentence"]
    assert (res.run.dir / "cost.json").is_file()


def test_versus_sentence_numbers():
    s = {"val_acc": 0.80, "params": 1_000_000, "ms_per_image": 1.0, "device": "cpu"}
    t = {"val_acc": 0.84, "params": 12_000_000, "ms_per_image": 6.0, "name": "fusion", "device": "cpu"}
    text = versus_sentence(s, t, {"n": 1, "mean": 0.8})
    assert "keeps 95 % of fusion's accuracy" in text and "1/12 of its parameters" in text
    assert "6.0× faster" in text and "(one seed)" in text
    three = versus_sentence(s, t, {"n": 3, "mean": 0.82, "ci_low": 0.80, "ci_high": 0.84})
    assert three.startswith("Over 3 seeds the student (82.0 ± 2.0 % (3 seeds))") and "one seed" not in three


def test_short_run_batchnorm_momentum_lets_eval_statistics_settle():
    """mobilenet_v3_small (momentum 0.01) scored chance in eval after a short run from random weights:
    its running statistics still held two thirds of their initial values after 40 batches."""
    from transfer_core.backbones import get_backbone
    from transfer_core.models import BackboneBody

    body = BackboneBody(get_backbone("mobilenet_v3_small"), 32)
    bns = [m for m in body.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    first = bns[0]
    seen = {}
    first.register_forward_hook(lambda m, inp, out: seen.update(mean=inp[0].mean((0, 2, 3)).detach()))
    body.train()
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.2 + 0.7
    with torch.no_grad():
        for _ in range(40):
            body(x)
    gap = (first.running_mean - seen["mean"]).abs().max() / seen["mean"].abs().max()
    assert float(gap) < 0.05, f"running mean is still {float(gap):.0%} away from the data's mean"


@pytest.mark.parametrize("name", ["distill.yaml", "student_alone.yaml", "fusion_mnist_5-9.yaml",
                                  "source_mnist_0-4_shufflenet.yaml"])
def test_the_distillation_demo_configs_validate(name):
    from pathlib import Path

    from transfer_core.config import load_yaml, validate

    cfg = validate(load_yaml(Path(__file__).resolve().parents[1] / "examples" / name))
    if name == "distill.yaml":
        assert cfg.method == "distill" and cfg.distill.teachers == ["run:target-mnist-5-9-transfer"]
        assert cfg.backbones[0].name == "mobilenet_v3_small" and cfg.data.train_per_class == 10
