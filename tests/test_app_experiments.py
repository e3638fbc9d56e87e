"""AppTest checks of the Experiments page: empty page, estimates, bad YAML, and a shrunk quick
built-in experiment polled to completion (chart, headline sentence, summary table)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from transfer_core.sweeps import builtin

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/experiments.py"
TIMEOUT = 240  # first renders import torch; slow on a busy 2-core box
SHRINK = "dataset=digits,epochs=1,source_epochs=1,image_size=16,seeds=2,budgets=2 5,val_fraction=0.1"

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny tensors, one thread


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(builtin.EXPERIMENT_ENV, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()  # a sweep runner of another test (and its thread) goes
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def test_page_renders_with_no_sweep():
    at = open_page()
    assert at.title[0].value == "Experiments"
    assert at.selectbox(key="exp_pick").value == "labels"
    assert "Nothing run yet" in texts(at)
    assert not at.get("plotly_chart") and not at.error


def test_picking_an_experiment_shows_trials_and_both_estimates():
    at = open_page()
    body = texts(at)
    assert "**Default size** · 90 trials (6 × 3 × 5 seeds)" in body
    assert "**Quick (a live class)** · 27 trials (3 × 3 × 3 seeds)" in body
    assert body.count("Estimated time on a 2-core CPU: about") == 2
    assert "source run trained first" in body  # nothing trained yet: the source counts
    at.selectbox(key="exp_pick").set_value("freeze").run()
    assert not at.exception, at.exception
    body = texts(at)
    assert "How deep to freeze?" in [s.value for s in at.subheader]
    assert "30 trials (6 × 5 seeds)" in body and "12 trials (4 × 3 seeds)" in body
    assert at.query_params["exp"] in ("freeze", ["freeze"])
    assert at.button(key="exp_start_default").label == "Start"


def test_query_param_preselects():
    at = open_page({"exp": "alpha"})
    assert at.selectbox(key="exp_pick").value == "alpha"
    assert "Which α?" in [s.value for s in at.subheader]


def test_bad_yaml_gives_one_error_line_and_keeps_the_text():
    at = open_page()
    at.selectbox(key="exp_pick").set_value("custom").run()
    assert not at.exception and not at.error
    assert "**This sweep** · 27 trials" in texts(at)  # starts from the quick labels experiment
    bad = "name: broken\nbase: {method: transfer\nseeds: [0"
    at.text_area(key="exp_yaml").set_value(bad).run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and "\n" not in at.error[0].value and "YAML" in at.error[0].value
    assert at.text_area(key="exp_yaml").value == bad
    assert not [b for b in at.button if b.key == "exp_start_custom"]
    unknown = "name: x\nbase: {method: transfer}\nseeds: [0]\naxes: {train.lr: [0.001]}\nbogus: 1"
    at.text_area(key="exp_yaml").set_value(unknown).run()
    assert len(at.error) == 1 and at.error[0].value.startswith("bogus: unknown key")


def _wait_until(at: AppTest, cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()  # a run_every fragment never ticks in AppTest: rerun the script instead
        assert not at.exception, at.exception
        if cond(at):
            return
        time.sleep(1.0)
    raise AssertionError("timed out; page said: " + texts(at)[-1500:])


def _chart(at: AppTest) -> dict:
    for c in at.get("plotly_chart"):
        if c.proto.id and "sweep_chart" in c.proto.id:
            return json.loads(c.proto.spec)
    raise AssertionError("no sweep chart")


def test_quick_experiment_runs_to_completion_with_chart_and_headline(monkeypatch, tmp_path):
    monkeypatch.setenv(builtin.EXPERIMENT_ENV, SHRINK)
    at = open_page()
    assert "12 trials (2 × 3 × 2 seeds)" in texts(at)
    at.button(key="exp_start_quick").click().run()
    assert not at.exception, at.exception
    assert at.button(key="exp_start_quick").disabled  # running: one sweep at a time
    assert at.button(key="exp_start_default").disabled
    _wait_until(at, lambda a: any("12 of 12 trials · completed" in str(p.proto.text) for p in a.get("progress")), 600)
    spec = _chart(at)
    seeds = [t for t in spec["data"] if t.get("meta") == "seed"]
    assert sum(len(t["x"]) for t in seeds) == 12  # every finished trial is a dot
    assert spec["layout"]["xaxis"]["type"] == "log"
    assert {t["name"] for t in spec["data"] if t.get("mode") == "lines+markers"} == {"scratch", "transfer", "probe"}
    body = texts(at)
    assert "With 5 labels per class, transfer reaches" in body and "(2 seeds; transfer wins" in body
    table = at.dataframe[0].value  # the summary (the paired table sits in a closed expander, after it)
    assert len(table) == 6 and set(table["seeds done"]) == {2}
    assert at.button(key="exp_start_quick").label.startswith("Completed")
    sweeps = list((tmp_path / "runs" / "_sweeps").iterdir())
    assert len(sweeps) == 1 and (sweeps[0] / "summary.csv").is_file()


def _progress(at: AppTest) -> str:
    return " ".join(str(p.proto.text) for p in at.get("progress"))


def test_stop_keeps_finished_trials_and_resume_runs_only_the_rest(monkeypatch, tmp_path):
    monkeypatch.setenv(builtin.EXPERIMENT_ENV, SHRINK.replace("epochs=1,", "epochs=2,"))
    at = open_page({"exp": "freeze"})
    assert "12 trials (6 × 2 seeds)" in texts(at)
    at.button(key="exp_start_default").click().run()
    _wait_until(at, lambda a: any(f"{k} of 12 trials" in _progress(a) for k in range(1, 13)), 300)
    at.button(key="exp_stop").click().run()
    _wait_until(at, lambda a: "trials · stopped" in _progress(a), 300)  # 11 trials left take 10 s or more
    sweep = next((tmp_path / "runs" / "_sweeps").iterdir())
    done = int(_progress(at).split(" of ")[0])
    assert 1 <= done < 12 and "So far: " in texts(at)
    resume = at.button(key="exp_resume")
    assert resume.label == f"Resume ({12 - done} trials left)" and at.button(key="exp_start_default").label == "Resume"
    resume.click().run()
    _wait_until(at, lambda a: "12 of 12 trials · completed" in _progress(a), 300)
    trial_runs = [p for p in (tmp_path / "runs").iterdir() if (p / "sweep.json").is_file()]
    assert len(trial_runs) == 12, "a trial ran twice or not at all"
    assert "Freezing" in texts(at) and (sweep / "paired.csv").is_file()
