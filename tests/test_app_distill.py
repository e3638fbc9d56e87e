"""Distillation in the dashboard: the Train page's distill mode through to a completed run, the live
loss parts, Results' student-vs-teachers table, Compare with a student, and the "Compress the
model" built-in experiment (its trials, its sentence, its chart).

One tiny teacher (3 digit classes, 12 images each, resnet18 at 16 px, 1 epoch) is trained once
per module and copied into each test's runs folder. AppTest never ticks a ``run_every``
fragment, so the tests poll with ``at.run()``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import tiny_config
from seed_runs import fake_run
from transfer_core.runs import Run, RunStore
from transfer_core.sweeps import builtin, timing

APP = str(Path(__file__).resolve().parents[1] / "app.py")
DATA = {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 12, "val_fraction": 0.1, "image_size": 16}
TIMEOUT = 180

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(builtin.EXPERIMENT_ENV, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()  # on_release: the job manager stops what still runs


@pytest.fixture(scope="module")
def teacher_dir(module_tmp, one_torch_thread) -> Path:
    from transfer_core.training import run_training

    res = run_training(tiny_config(name="tiny-teacher", data__image_size=16, data__val_fraction=0.1,
                                   train__epochs=1), module_tmp)
    assert res.state == "completed"
    return res.run.dir


@pytest.fixture
def teacher(teacher_dir, runs_root) -> str:
    """The module's teacher, copied into this test's runs folder; its id."""
    runs_root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(teacher_dir, runs_root / teacher_dir.name)
    return teacher_dir.name


def _app(draft: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["draft_data"] = dict(DATA if draft is None else draft)
    return at


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _distill_mode(at: AppTest) -> AppTest:
    _ok(at.run())
    at.radio(key="method").set_value("distill")
    return _ok(at.run())


def _runs() -> list[Run]:
    return RunStore(None).runs()


def _charts(at: AppTest) -> dict[str, dict]:
    out = {}
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        title = ((spec.get("layout") or {}).get("title") or {}).get("text") or ""
        out[title or el.proto.id] = spec
    return out


def _loss_parts(at: AppTest) -> dict | None:
    return next((s for t, s in _charts(at).items() if t.startswith("Loss parts")), None)


# --------------------------------------------------------------------------- Train page


def test_distill_mode_without_teachers_explains_and_refuses_start():
    at = _distill_mode(_app())
    assert at.radio(key="method").value == "distill"
    assert "Distill (teachers → a small student)" in at.radio(key="method").options
    assert at.selectbox(key="distill_bb0_name").value == "mobilenet_v3_small"  # the student: small by default
    assert at.selectbox(key="distill_bb0_weights").value == "none"
    assert not [b for b in at.selectbox if b.key == "bb1_name"]  # one body only
    info = " ".join(i.value for i in at.info)
    assert "No teacher yet" in info and "completed run trained on exactly these classes (0, 1, 2)" in info
    assert at.multiselect(key="distill_teachers").value == []
    assert at.slider(key="distill_T").value == 4.0 and at.slider(key="distill_lambda").value == 0.9
    assert at.checkbox(key="distill_unlabeled").value is True and at.checkbox(key="distill_features").value is False
    _ok(at.button(key="start").click().run())
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "distill.teachers" in errors[0], errors
    assert not _runs()
    _ok(at.button(key="preset_probe").click().run())  # presets set the student's widgets
    assert at.select_slider(key="distill_bb0_freeze").value == "all"


def test_unlabeled_images_need_a_few_shot_size():
    at = _distill_mode(_app({**DATA, "train_per_class": None}))
    box = [c for c in at.checkbox if c.label.startswith("Learn from the unlabeled")]
    assert len(box) == 1 and box[0].disabled and box[0].value is False
    assert any("No unlabeled images" in c.value for c in at.caption)


def test_bad_input_is_one_error_line_and_keeps_every_setting(teacher):
    at = _distill_mode(_app())
    assert at.multiselect(key="distill_teachers").value == [f"run:{teacher}"]  # the newest candidate, preselected
    at.slider(key="distill_T").set_value(6.0)
    at.slider(key="distill_lambda").set_value(0.0)  # teaches nothing through the unlabeled images
    _ok(at.run())
    _ok(at.button(key="start").click().run())
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "distill.weight" in errors[0] and "\n" not in errors[0], errors
    assert [r.id for r in _runs()] == [teacher]  # nothing made
    assert at.slider(key="distill_T").value == 6.0 and at.slider(key="distill_lambda").value == 0.0
    assert at.multiselect(key="distill_teachers").value == [f"run:{teacher}"]
    # a visit to another page keeps the choices (Streamlit drops undrawn widgets' state)
    _ok(at.switch_page("pages/results.py").run())
    _ok(at.switch_page("pages/train.py").run())
    assert at.radio(key="method").value == "distill"
    assert at.slider(key="distill_T").value == 6.0 and at.slider(key="distill_lambda").value == 0.0


def test_a_teacher_that_stopped_being_completed_is_one_error_line(teacher):
    from transfer_core.config import from_dict
    from transfer_core.errors import ConfigError

    import dashboard.widgets_distill as wd

    cfg = from_dict({"method": "distill", "data": DATA, "backbones": [{"name": "mobilenet_v3_small"}],
                     "distill": {"teachers": [f"run:{teacher}"]}})
    Run(RunStore(None).root / teacher).set_status("failed", "gone")
    with pytest.raises(ConfigError, match="only a completed run can teach") as exc:
        wd.check_teachers(cfg, DATA)
    assert exc.value.field == "distill.teachers.0"


def test_distill_run_from_the_train_page_to_results(teacher):
    at = _distill_mode(_app())
    labels = at.multiselect(key="distill_teachers")
    assert labels.value == [f"run:{teacher}"]
    assert "tiny-teacher" in labels.format_func(labels.value[0]) and "resnet18" in labels.format_func(labels.value[0])
    at.number_input(key="epochs").set_value(2)
    at.select_slider(key="batch_size").set_value(32)
    _ok(at.run())
    _ok(at.button(key="start").click().run())
    runs = [r for r in _runs() if r.id != teacher]
    assert len(runs) == 1
    rid = runs[0].id
    cfg = runs[0].config()
    assert cfg.method == "distill" and [b.name for b in cfg.backbones] == ["mobilenet_v3_small"]
    assert cfg.distill.teachers == [f"run:{teacher}"] and cfg.distill.unlabeled is True
    assert cfg.distill.temperature == 4.0 and cfg.distill.weight == 0.9 and cfg.distill.features is False

    end = time.monotonic() + 120
    while time.monotonic() < end:
        _ok(at.run())
        if Run(runs[0].dir).status()["state"] == "completed" and _loss_parts(at) and not any(b.key == "stop" for b in at.button):
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"timed out: {Run(runs[0].dir).status()}")
    parts = _loss_parts(at)
    names = [t["name"] for t in parts["data"]]
    assert names[:2] == ["CE with the labels", "KD from the teachers (T²·KL)"] and len(parts["data"][0]["x"]) == 2
    assert "0.1·CE + 0.9·KD" in parts["layout"]["title"]["text"]

    _ok(at.switch_page("pages/results.py").run())
    assert at.selectbox(key="results_run").value == rid
    assert "Student vs teachers" in [s.value for s in at.subheader]
    assert _loss_parts(at)
    _ok(at.button(key="svt_measure").click().run())
    table = next(d for d in at.dataframe if "role" in d.value.columns).value
    assert list(table["role"]) == ["student", "teacher"] and list(table["run"])[1] == "tiny-teacher"
    assert list(table["backbones"]) == ["mobilenet_v3_small", "resnet18"]
    assert ((0 <= table["val acc"]) & (table["val acc"] <= 100)).all()  # percent points: "95.0 %"
    assert (table["ms per image"] > 0).all() and (table["exported MB"] > 0).all() and set(table["device"]) == {"cpu"}
    sentence = " ".join(m.value for m in at.markdown if "accuracy" in m.value)
    assert "keeps" in sentence and "tiny-teacher" in sentence and "one seed" in sentence, sentence
    # measured once: the next draw (and a new session) shows it without the button
    _ok(at.run())
    assert not any(b.key == "svt_measure" for b in at.button)
    # "Measure again" times every model anew: the student's cost.json is rewritten
    from transfer_core.runs import RunStore

    path = RunStore().get(rid).dir / "cost.json"
    before = path.stat().st_mtime_ns
    _ok(at.button(key="svt_again").click().run())
    assert path.stat().st_mtime_ns > before
    assert next(d for d in at.dataframe if "role" in d.value.columns).value["ms per image"].gt(0).all()

    # Compare takes a student among its picks
    at.session_state["cmp_runs"] = [rid, teacher]
    _ok(at.switch_page("pages/compare.py").run())
    table = at.dataframe[0].value
    assert set(table["kind"]) == {"distill", "scratch"}
    # measured once on Results, so Compare shows the student against its teachers at once
    assert any("the student against its teachers" in e.proto.label for e in at.expander)
    versus = next(d for d in at.dataframe if "role" in d.value.columns).value
    assert list(versus["role"]) == ["student", "teacher"] and (versus["ms per image"] > 0).all()


def test_run_kind_of_a_distillation():
    from transfer_core.compare import run_kind

    student = {"method": "distill", "backbones": [{"name": "mobilenet_v3_small", "weights": "none", "freeze": 0}]}
    assert run_kind(student) == "distill"
    from dashboard.charts import KIND_COLORS

    assert "distill" in KIND_COLORS


def test_loss_parts_figure_uses_a_log_axis_when_the_parts_differ_widely():
    from dashboard.charts import has_loss_parts, loss_parts_figure

    rows = [{"epoch": e, "train_ce": 20.0 / e, "train_kd": 0.3 / e, "train_feat": 0.9} for e in (1, 2, 3)]
    assert has_loss_parts(rows) and not has_loss_parts([{"epoch": 1, "train_loss": 1.0}])
    fig = loss_parts_figure(rows, epochs=5, weight=0.9)
    assert [t.name for t in fig.data] == ["CE with the labels", "KD from the teachers (T²·KL)", "feature matching (MSE)"]
    assert fig.layout.yaxis.type == "log" and tuple(fig.layout.xaxis.range) == (0, 5.5)
    close = loss_parts_figure([{"epoch": 1, "train_ce": 1.0, "train_kd": 0.5}])
    assert close.layout.yaxis.type == "linear" and len(close.data) == 2


# --------------------------------------------------------------------------- the built-in experiment


def test_compress_experiment_expands_to_its_trials():
    spec = builtin.load_builtin("compress")
    assert spec.axis_labels() == {"variant": list(builtin.COMPRESS_VARIANTS)}
    assert spec.seeds == [0, 1, 2] and spec.n_trials == 9
    source, teacher = spec.before
    assert source["name"] == "source-mnist-0-4"
    # the teacher is the demo's transfer run, exactly examples/target_mnist_5-9_transfer.yaml (a run of it is reused)
    from transfer_core.config import load_yaml, to_dict

    example = to_dict(load_yaml(Path(__file__).resolve().parents[1] / "examples" / "target_mnist_5-9_transfer.yaml"))
    assert teacher == example
    alone, without, with_ = (spec.trial_config({"variant": v}, 1) for v in builtin.COMPRESS_VARIANTS)
    assert alone.method == "transfer" and alone.seed == 1
    for t in (alone, without, with_):
        assert [(b.name, b.weights, b.freeze) for b in t.backbones] == [("mobilenet_v3_small", "none", 0)]
        assert t.data.dataset == "mnist5k" and t.data.classes == [5, 6, 7, 8, 9] and t.data.train_per_class == 10
        assert t.data.image_size == 32
    assert without.method == with_.method == "distill"
    assert without.distill.teachers == with_.distill.teachers == ["run:target-mnist-5-9-transfer"]
    assert without.distill.unlabeled is False and with_.distill.unlabeled is True
    quick = builtin.load_builtin("compress", "quick")
    assert quick.n_trials == 9 and quick.base["train"]["epochs"] < spec.base["train"]["epochs"]
    # the 50-image variants take as many steps in more, smaller passes (batch 16, 4x the epochs)
    assert alone.train.batch_size == without.train.batch_size == 16 and with_.train.batch_size == 64
    assert alone.train.epochs == without.train.epochs == 4 * with_.train.epochs
    # the unlabeled images cost time: the model counts them, and the teacher's one pass
    cfgs = [to_dict(c) for c in (without, with_)]
    assert timing.trial_seconds(cfgs[1]) > 3 * timing.trial_seconds(cfgs[0])


def test_compress_experiment_shrinks_for_tests(monkeypatch):
    monkeypatch.setenv(builtin.EXPERIMENT_ENV, "dataset=digits,epochs=1,source_epochs=1,image_size=16,seeds=2")
    spec = builtin.load_builtin("compress", "quick")
    source, teacher = spec.before
    assert spec.n_trials == 6 and teacher["train"]["epochs"] == 1 and teacher["data"]["dataset"] == "digits"
    assert teacher["name"].startswith("target-mnist-5-9-transfer-")  # its own name: run:<name> finds it
    assert teacher["backbones"][0]["weights"] == f"run:{source['name']}"
    assert spec.base["distill"]["teachers"] == [f"run:{teacher['name']}"]


def _row(variant: str, mean: float, half: float, n: int = 3) -> dict:
    return {"variant": variant, "n": n, "val_acc_mean": mean, "val_acc_ci_low": mean - half,
            "val_acc_ci_high": mean + half, "train_s_mean": 5.0}


def test_compress_headline_and_chart():
    from dashboard.charts_sweeps import compress_figure, sweep_figure
    from transfer_core.sweeps.headlines import NOTHING_YET, headline

    alone, without, with_ = builtin.COMPRESS_VARIANTS
    axes = {"variant": list(builtin.COMPRESS_VARIANTS)}
    summary = [_row(alone, 0.45, 0.06), _row(without, 0.604, 0.05), _row(with_, 0.78, 0.04)]
    paired = [{"axis": "variant", "a": with_, "b": alone, "n": 3, "wins": 3, "ties": 0, "losses": 0}]
    teacher = {"name": "target", "val_acc": 0.8, "backbones": ["resnet18"], "params": 11176512, "student_params": 1517856}
    assert headline("compress", summary, paired, axes, reference=teacher) == (
        "Distilled with the unlabeled images, the student reaches 78 ± 4 %; without them 60 ± 5 %; alone 45 ± 6 % "
        "(3 seeds; distilled with unlabeled wins 3 of 3 against alone). Its teacher: 80 % (one run), with 7.4× the "
        "student's parameters.")
    assert headline("compress", summary[:1], [], axes, partial=True) == "So far: The student alone reaches 45 ± 6 % (3 seeds)."
    assert headline("compress", [], [], axes) == NOTHING_YET

    trials = [{"variant": v, "seed": s, "state": "completed", "val_acc": 0.5} for v in axes["variant"] for s in (0, 1, 2)]
    fig = sweep_figure("compress", summary, trials, axes, reference=teacher)
    bars = fig.data[0]
    assert list(bars.x) == list(builtin.COMPRESS_VARIANTS) and bars.error_y.array[2] == pytest.approx(0.04)
    assert sum(len(t.x) for t in fig.data if t.meta == "seed") == 9
    assert fig.layout.shapes[0].y0 == 0.8 and "teacher (resnet18): 80.0%" in fig.layout.annotations[0].text
    assert not compress_figure(summary, [], axes).layout.shapes  # no teacher yet: no line


def test_experiments_page_offers_the_compress_experiment():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["exp"] = "compress"
    _ok(at.run())
    _ok(at.switch_page("pages/experiments.py").run())
    assert at.selectbox(key="exp_pick").value == "compress"
    assert "Compress the model" in [s.value for s in at.subheader]
    body = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "**Default size** · 9 trials (3 × 3 seeds)" in body and "**Quick (a live class)** · 9 trials" in body
    assert "includes 2 runs trained first" in body  # the source and the teacher


def test_teacher_reference_reads_the_before_run(runs_root, monkeypatch):
    monkeypatch.setenv(builtin.EXPERIMENT_ENV, "dataset=digits,epochs=1,source_epochs=1,image_size=16,seeds=2")
    spec = builtin.load_builtin("compress", "quick")
    assert builtin.teacher_reference(spec, runs_root) is None  # not trained yet
    cfg = dict(spec.before[1])
    fake_run(runs_root, cfg, 0.81)
    ref = builtin.teacher_reference(spec, runs_root)
    assert ref["name"] == cfg["name"] and ref["val_acc"] == pytest.approx(0.81) and ref["backbones"] == ["resnet18"]
    assert ref["params"] > 5 * ref["student_params"]
    assert builtin.teacher_reference(builtin.load_builtin("labels", "quick"), runs_root) is None
