"""AppTest: Compare and the guided demo panel speak over seeds (mean ± interval, paired wins) where the
compared runs have siblings, and say "one seed" with a link to the experiment where they do not.

Run folders are written directly (tests/seed_runs.py), nothing trains: only the wording is under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from seed_runs import demo_cfg, fake_run

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # the first render imports torch; slow on a busy 2-core box
LINK = "/experiments?exp=labels"


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _triple(root: Path, t_accs: list[float], s_accs: list[float]) -> dict[str, list[str]]:
    """A source, then transfer runs from it and scratch twins over seeds 0, 1, ... (seed 0 first)."""
    src = fake_run(root, {**demo_cfg(0, "scratch"), "name": "source",
                          "data": {"dataset": "digits", "classes": [0, 1, 2], "image_size": 32}}, 0.95)
    t = [fake_run(root, demo_cfg(s, "transfer", source=f"run:{src}"), a) for s, a in enumerate(t_accs)]
    s_ = [fake_run(root, demo_cfg(s, "scratch"), a) for s, a in enumerate(s_accs)]
    return {"source": [src], "transfer": t, "scratch": s_}


def _app(**query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def _compare(at: AppTest, picked: list[str]) -> AppTest:
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    at.multiselect(key="cmp_runs").set_value(picked).run()
    assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_compare_shows_mean_interval_and_paired_wins_over_seeds(runs_root):
    runs = _triple(runs_root, [0.8, 0.9, 0.85], [0.6, 0.7, 0.64])
    at = _compare(_app(), [runs["transfer"][0], runs["scratch"][0]])
    assert "Over seeds" in [h.value for h in at.subheader]
    text = _text(at)
    assert "85.0 ± 12.4 % (3 seeds), seeds 0, 1, 2" in text  # 4.3027 * 0.05 / sqrt(3)
    assert "64.7 ± 12.5 % (3 seeds)" in text
    assert "Paired by seed: transfer beats scratch by 20.3 ± 1.4 points over 3 seeds (transfer wins 3 of 3)" in text
    assert not [i for i in at.info if "One seed" in i.value]
    table = at.dataframe[0].value
    assert list(table["seeds"]) == [3, 3]


def test_compare_says_one_seed_and_links_the_experiment(runs_root):
    runs = _triple(runs_root, [0.8], [0.6])
    at = _compare(_app(), [runs["transfer"][0], runs["scratch"][0]])
    text = _text(at)
    assert "80.0 %, one seed" in text and "60.0 %, one seed" in text
    assert "Paired by seed" not in text
    infos = [i.value for i in at.info if "One seed" in i.value]
    assert len(infos) == 1
    assert f"[How many labels does transfer save? — run it over 5 seeds]({LINK})" in infos[0]
    assert list(at.dataframe[0].value["seeds"]) == [1, 1]


def test_compare_mixes_a_run_with_siblings_and_one_without(runs_root):
    runs = _triple(runs_root, [0.8, 0.9, 0.85], [0.6])
    at = _compare(_app(), [runs["transfer"][0], runs["scratch"][0]])
    text = _text(at)
    assert "85.0 ± 12.4 % (3 seeds)" in text and "60.0 %, one seed" in text
    assert "Paired by seed" not in text  # pairing needs several seeds on both sides
    infos = [i.value for i in at.info if "One seed" in i.value]
    assert len(infos) == 1 and "target-scratch" in infos[0] and "target-transfer" not in infos[0]


def _demo(root: Path, runs: dict[str, list[str]]) -> AppTest:
    ids = ",".join(runs[r][0] for r in ("source", "transfer", "scratch"))
    return _app(demo=ids)  # the Train page (default) shows the demo of ?demo=


def test_demo_panel_says_one_seed_and_links_how_many_labels(runs_root):
    at = _demo(runs_root, _triple(runs_root, [0.8], [0.55]))
    text = _text(at)
    assert "**On one seed, transfer beats scratch by 25.0 points** of validation accuracy on the target classes" in text
    assert f"[How many labels does transfer save? — run it over 5 seeds]({LINK})" in text
    assert "Transfer beats scratch" not in text  # no unqualified claim


def test_demo_panel_over_seeds_when_siblings_exist(runs_root):
    at = _demo(runs_root, _triple(runs_root, [0.8, 0.9, 0.85], [0.6, 0.7, 0.64]))
    text = _text(at)
    assert ("**Transfer beats scratch by 20.3 ± 1.4 points over 3 seeds (Transfer wins 3 of 3)** of validation "
            "accuracy on the target classes") in text
    assert "transfer 85.0 ± 12.4 % (3 seeds), scratch 64.7 ± 12.5 % (3 seeds)" in text
    assert "On one seed" not in text


def test_kind_bars_carry_the_mean_and_interval_over_seeds_where_there_are_seeds():
    from dashboard.charts import kind_bar_figure

    fig = kind_bar_figure([
        {"label": "transfer", "val_acc": 0.8, "kind": "transfer", "n": 3, "mean": 0.78, "ci_low": 0.7, "ci_high": 0.86},
        {"label": "scratch", "val_acc": 0.5, "kind": "scratch", "n": 1, "mean": 0.5, "ci_low": None, "ci_high": None},
    ])
    marks = [t for t in fig.data if t.type == "scatter"]
    assert len(marks) == 1 and list(marks[0].y) == ["transfer"] and marks[0].x[0] == 0.78
    assert marks[0].error_x.array[0] == pytest.approx(0.08) and marks[0].error_x.arrayminus[0] == pytest.approx(0.08)
