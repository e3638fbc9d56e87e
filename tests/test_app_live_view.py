"""AppTest: the Train and Results pages draw light SVG charts while a run trains, plotly once it has ended.

The run is made without training: its folder as RunStore writes it, marked running and live
in this process, as the job manager marks the runs it trains.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from transfer_core.config import from_dict
from transfer_core.runs import Run, RunStore

APP = str(Path(__file__).resolve().parents[1] / "app.py")
FUSION = {"seed": 0, "method": "fusion", "data": {"dataset": "digits", "classes": [0, 1], "image_size": 32},
          "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0},
                        {"name": "mobilenet_v3_small", "weights": "none", "freeze": 0}],
          "fusion": {"mode": "sum", "learn_alpha": True}, "train": {"epochs": 6, "device": "cpu"}}


@pytest.fixture(autouse=True)
def _fresh_job_manager():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _page(rid: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = rid
    return _ok(at.run())


def _svgs(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.lstrip().startswith("<svg")]


def _training_fusion_run() -> Run:
    """A fusion run three epochs in, with learned α: state running (its status is "running" from creation)."""
    run = RunStore(None).create(from_dict(FUSION), state="running")
    for e, alpha in enumerate(([0.5, 0.5], [0.45, 0.55], [0.4, 0.6]), start=1):
        run.append_metrics({"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5 + e / 10, "val_loss": 1.2 / e,
                            "val_acc": 0.4 + e / 10, "seconds": 0.5, "alpha": alpha})
    return run


def test_live_view_draws_svg_while_training_and_plotly_once_completed():
    run = _training_fusion_run()
    run.mark_live(True)  # as the job manager does for the runs it trains
    try:
        at = _page(run.id)
        assert not at.get("plotly_chart"), "no plotly.js while the run trains"
        curves, alpha = _svgs(at)
        assert 'data-epochs="1,2,3"' in curves and ">Loss<" in curves and ">val acc<" in curves
        assert "α2 mobilenet_v3_small" in alpha
        _ok(at.switch_page("pages/results.py").run())  # Results of a training run: the same light charts
        assert not at.get("plotly_chart") and len(_svgs(at)) == 2
    finally:
        run.mark_live(False)
    run.set_status("completed")
    at = _page(run.id)
    assert not _svgs(at)
    assert len(at.get("plotly_chart")) == 2  # curves and α (no confusion.json: the run was made without training)
