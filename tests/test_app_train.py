"""AppTest: app.py, the Train page (start, live view, stop, errors) and the Results page.

Runs are tiny (3 digit classes, 15 images each, resnet18 at 32 px, 1 epoch, CPU). A
``run_every`` fragment never ticks under AppTest, so the tests poll with ``at.run()``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from transfer_core.runs import Run, RunStore

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TINY_DRAFT = {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 15, "image_size": 32}


@pytest.fixture(autouse=True)
def _fresh_job_manager():
    """A new job manager per test (its runs folder is the test's); shut down afterwards."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()  # on_release -> JobManager.shutdown(): stops what is still running


def _app(run_id: str | None = None, draft: dict | None = None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if run_id:
        at.query_params["run"] = run_id
    if draft is not None:
        at.session_state["draft_data"] = dict(draft)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _runs() -> list[Run]:
    return RunStore(None).runs()


def _poll(at: AppTest, done, timeout: float = 180.0) -> AppTest:
    """Rerun the page until ``done(at)`` (the fragment timer does not tick in AppTest)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _ok(at.run())
        if done(at):
            return at
        time.sleep(0.25)
    raise AssertionError(f"timed out; runs: {[(r.id, r.status()) for r in _runs()]}")


def _charts(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by title text (confusion) or subplot titles (curves)."""
    out = {}
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        layout = spec.get("layout", {})
        title = (layout.get("title") or {}).get("text") or ""
        if not title and layout.get("annotations"):
            title = "curves:" + ",".join(a.get("text", "") for a in layout["annotations"])
        out[title] = spec
    return out


def _has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


def _state(rid: str) -> str:
    return Run(RunStore(None).root / rid).status()["state"]


def _start_tiny(at: AppTest, epochs: int = 1) -> str:
    _ok(at.run())
    at.number_input(key="epochs").set_value(epochs)
    at.select_slider(key="batch_size").set_value(16)
    _ok(at.run())
    assert not _runs()
    _ok(at.button(key="start").click().run())
    runs = _runs()
    assert len(runs) == 1, "Start must queue exactly one run"
    assert at.query_params["run"] == [runs[0].id] or at.query_params["run"] == runs[0].id
    return runs[0].id


# --------------------------------------------------------------------------- render


def test_every_page_renders_without_runs():
    at = _ok(_app().run())
    assert at.title[0].value == "Train"  # the default page
    assert any("Job queue" in m.value for m in at.sidebar.markdown)
    assert _has_button(at, "start")
    _ok(at.switch_page("pages/results.py").run())
    assert at.title[0].value == "Results"
    assert any("No runs yet" in i.value for i in at.info)
    _ok(at.switch_page("pages/train.py").run())
    # fusion draws one picker per backbone and the alpha controls
    at.radio(key="method").set_value("fusion")
    _ok(at.run())
    assert at.selectbox(key="bb1_name").value
    at.checkbox(key="learn_alpha").uncheck()
    _ok(at.run())
    assert at.slider(key="alpha_1").value == 0.5


def test_presets_set_freeze_and_lr():
    at = _ok(_app().run())
    _ok(at.button(key="preset_probe").click().run())
    assert at.select_slider(key="bb0_freeze").value == "all"
    assert at.selectbox(key="bb0_weights").value == "none"  # nothing pretrained offline: a note says so
    assert any("random init" in c.value for c in at.caption)
    assert any("Fully frozen" in c.value and "unaugmented" in c.value for c in at.caption)  # the feature cache
    _ok(at.button(key="preset_finetune").click().run())
    assert at.select_slider(key="bb0_freeze").value == 0
    assert not any("Fully frozen" in c.value for c in at.caption)
    assert at.number_input(key="lr").value == pytest.approx(1e-4)
    _ok(at.button(key="preset_scratch").click().run())
    assert at.number_input(key="lr").value == pytest.approx(1e-3)
    assert at.selectbox(key="bb0_weights").value == "none"


def test_train_page_says_what_the_recipe_does_when_weights_are_pretrained():
    at = _ok(_app().run())
    assert not any("Pretrained weights:" in c.value for c in at.caption)  # random init: nothing to protect
    at.selectbox(key="bb0_weights").set_value("imagenet")
    at.number_input(key="epochs").set_value(15)
    _ok(at.run())
    line = [c.value for c in at.caption if "Pretrained weights:" in c.value]
    assert len(line) == 1 and "learns at 0.5x the rate of the next" in line[0], line
    at.select_slider(key="bb0_freeze").set_value("all")
    _ok(at.run())
    assert not any("Pretrained weights:" in c.value for c in at.caption)  # a linear probe: no body trains


# --------------------------------------------------------------------------- runs


def test_start_runs_to_completion_shows_confusion_and_survives_reload():
    at = _app(draft=TINY_DRAFT)
    rid = _start_tiny(at, epochs=1)
    # The job thread outlives the "completed" status by a moment (it closes the run's
    # writers): the Stop button goes once the thread is done, on a later rerun.
    _poll(at, lambda a: _state(rid) == "completed" and "Confusion matrix (counts)" in _charts(a)
          and not _has_button(a, "stop"))
    assert len(_runs()) == 1  # reruns never submit again
    charts = _charts(at)
    assert any(k.startswith("curves:") for k in charts)
    conf = charts["Confusion matrix (counts)"]["data"][0]
    assert len(conf["z"]) == 3  # 3 classes
    assert any(m.label == "Val acc" for m in at.metric)
    cfg = Run(RunStore(None).root / rid).config()
    assert cfg.train.epochs == 1 and cfg.data.classes == [0, 1, 2] and cfg.data.train_per_class == 15

    # A reload (new session, the URL keeps ?run=) finds the run on Train and Results.
    st.cache_resource.clear()  # as after a server restart: the store on disk is all there is
    at2 = _ok(_app(run_id=rid).run())
    assert any(rid in c.value for c in at2.caption)
    assert "Confusion matrix (counts)" in _charts(at2)
    _ok(at2.switch_page("pages/results.py").run())
    assert at2.selectbox(key="results_run").value == rid
    assert "Confusion matrix (counts)" in _charts(at2)
    at2.toggle(key="cm_norm").set_value(True)
    _ok(at2.run())
    assert "Confusion matrix (row-normalised)" in _charts(at2)
    assert len(at2.dataframe) == 1 and list(at2.dataframe[0].value["class"]) == ["0", "1", "2"]
    assert any("config.yaml" in c.value for c in at2.caption)


def test_invalid_setting_shows_error_and_creates_no_run():
    at = _ok(_app(draft=TINY_DRAFT).run())
    at.radio(key="method").set_value("fusion")
    _ok(at.run())
    at.checkbox(key="learn_alpha").uncheck()
    _ok(at.run())
    at.slider(key="alpha_0").set_value(0.0)
    at.slider(key="alpha_1").set_value(0.0)
    _ok(at.button(key="start").click().run())
    errors = [e.value for e in at.error]
    assert any("fusion.alpha" in e and "zero" in e for e in errors), errors
    assert not _runs()
    assert "run" not in at.query_params


def test_failed_run_shows_status_and_message_on_results():
    at = _app(draft={**TINY_DRAFT, "dataset": "no_such_folder", "classes": None})
    rid = _start_tiny(at)
    _poll(at, lambda a: _state(rid) == "failed")
    _ok(at.run())
    assert any("failed" in e.value.lower() and "no_such_folder" in e.value for e in at.error)
    at2 = _ok(_app(run_id=rid).run())
    _ok(at2.switch_page("pages/results.py").run())
    assert at2.selectbox(key="results_run").value == rid
    errors = [e.value for e in at2.error]
    assert any("Failed" in e and "no_such_folder" in e for e in errors), errors
    assert any(m.label == "State" and m.value == "failed" for m in at2.metric)


def test_stop_then_resume_from_results():
    at = _app(draft=TINY_DRAFT)
    rid = _start_tiny(at, epochs=200)
    _poll(at, lambda a: _state(rid) == "running")
    # AppTest drops sidebar elements on reruns of an st.navigation app (its first run has
    # them; a real browser always does), so the queue is checked in a fresh session.
    side = _ok(_app(run_id=rid).run()).sidebar
    assert side.get("progress"), "the sidebar queue shows the running job"
    assert any("Job queue" in m.value for m in side.markdown)
    _ok(at.button(key="stop").click().run())
    _poll(at, lambda a: _state(rid) == "stopped", timeout=60)
    _ok(at.run())
    assert any("stopped" in w.value.lower() for w in at.warning)
    assert not _has_button(at, "stop")
    _ok(at.switch_page("pages/results.py").run())
    assert any("Stopped" in w.value for w in at.warning)
    _ok(at.button(key="resume").click().run())
    assert at.title[0].value == "Train"  # resume goes to the live view
    assert any(rid in c.value for c in at.caption)
    at.switch_page("pages/train.py")  # AppTest's next run() would go back to the page it was told last
    _poll(at, lambda a: _state(rid) == "running" and _has_button(a, "stop"), timeout=60)


def test_compile_toggle_reaches_the_config(monkeypatch):
    """The Train page's torch.compile switch: off by default, on puts train.compile in the run's config."""
    from transfer_core.jobs import JobManager

    submitted = []

    def fake_submit(self, cfg, nproc=1, backend="auto"):  # no minute-long compile here: record the config
        submitted.append(cfg)
        return self.store.create(cfg, state="queued").id

    monkeypatch.setattr(JobManager, "submit", fake_submit)
    at = _ok(_app(draft=TINY_DRAFT).run())
    assert at.toggle(key="compile").value is False
    _ok(at.button(key="start").click().run())
    assert submitted[-1].train.compile is False
    at.toggle(key="compile").set_value(True)
    _ok(at.run())
    _ok(at.button(key="start").click().run())
    assert len(submitted) == 2 and submitted[-1].train.compile is True


def test_results_headline_says_where_a_run_trained():
    """Device, and for a torchrun run the process count and backend, from its status."""
    from conftest import tiny_config

    store = RunStore(None)
    single = store.create(tiny_config(), state="queued")
    single.set_status("stopped", "by the user", device="cpu", world_size=1, dist_backend=None)
    ddp = store.create(tiny_config(), state="queued")
    ddp.set_status("stopped", "by the user", device="cuda:0", world_size=4, dist_backend="nccl")
    for run, want, not_want in ((single, "· cpu", "torchrun"), (ddp, "· cuda:0 · torchrun × 4 (nccl)", None)):
        at = _ok(_app(run_id=run.id).run())
        _ok(at.switch_page("pages/results.py").run())
        heads = [m.value for m in at.markdown if "created" in m.value]
        assert heads and want in heads[0], heads
        assert not not_want or not_want not in heads[0]


def test_sidebar_device_badge_counts_threads_in_good_english():
    """'CPU · 1 thread', not '1 threads'; the badge is formatted in one place (dashboard.formatting)."""
    import torch

    from dashboard.formatting import device_label

    assert device_label("cpu", threads=1) == "CPU · 1 thread"
    assert device_label("cpu", threads=2) == "CPU · 2 threads"
    assert device_label("cuda", "H100", gpus=2) == "GPU: H100 (x2)"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        at = _ok(_app().run())
    finally:
        torch.set_num_threads(before)
    badges = [c.value for c in at.sidebar.caption if "CPU" in c.value]
    assert badges and badges[0].endswith("CPU · 1 thread"), badges
