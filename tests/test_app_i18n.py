"""AppTest: every page renders in Chinese without an exception, and no page in Chinese shows a
string of the catalogue untranslated (a label, caption, option, metric, chart title, … that
equals, or is a filled-in form of, an English message whose translation differs).

Runs and an experiment are written without training (tests/seed_runs.py): the pages'
texts are under test here, not training.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Widget

from seed_runs import seed_demo_runs
from transfer_core import i18n_catalogue as cat
from transfer_core.i18n import use_language

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # the first render imports torch; slow on a busy 2-core box
CJK = re.compile(r"[\u4e00-\u9fff]")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shared(module_tmp):
    return seed_demo_runs(module_tmp / "runs")


@pytest.fixture
def env(shared, monkeypatch):
    from transfer_core.sweeps import builtin

    monkeypatch.setenv("TRANSFER_LAB_RUNS", str(shared["root"]))
    monkeypatch.delenv(builtin.EXPERIMENT_ENV, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield shared
    st.cache_resource.clear()


class Untranslated:
    """The catalogue's English messages whose Chinese differs, as exact texts and as patterns of filled-in forms."""

    def __init__(self) -> None:
        self.exact: dict[str, str] = {}
        self.patterns: list[tuple[re.Pattern, str, int]] = []
        for msg in cat.read(cat.po_path("zh"), "zh_CN"):
            ids = msg.id if isinstance(msg.id, (tuple, list)) else (msg.id,)
            strings = msg.string if isinstance(msg.string, (tuple, list)) else (msg.string,)
            for mid in ids:
                if not mid or not strings[0] or strings[0] == mid:
                    continue
                literal = PLACEHOLDER.sub("", mid)
                if len(re.findall(r"[A-Za-z]", literal)) < 4 or re.fullmatch(r"[a-z][a-z0-9_]*", mid):
                    continue  # "α", "{name}": nothing to tell a language by; "digits", "transfer": also identifiers
                if PLACEHOLDER.search(mid):
                    parts = [re.escape(_clean(p)) for p in PLACEHOLDER.split(mid)]
                    pattern = re.compile("^" + "(.+?)".join(parts) + "$", re.S)
                    self.patterns.append((pattern, mid, len(_clean(literal))))
                else:
                    self.exact[_clean(mid)] = mid

    def find(self, text: str) -> str | None:
        clean = _clean(text)
        if clean in self.exact:
            return self.exact[clean]
        if CJK.search(clean):
            return None  # a filled-in message in Chinese (its values may be English names)
        for pattern, mid, literal in self.patterns:
            if literal * 2 >= len(clean) and pattern.match(clean):  # the message's own words are most of the text
                return mid
        return None


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[*_`#]+", "", text)).strip()


def _chart_texts(spec: str) -> list[str]:
    fig = json.loads(spec)
    layout = fig.get("layout", {})
    out = []
    for key, part in layout.items():
        if isinstance(part, dict) and isinstance(part.get("title"), dict) and key.startswith(("xaxis", "yaxis")):
            out.append(part["title"].get("text") or "")
    title = layout.get("title")
    out.append((title or {}).get("text", "") if isinstance(title, dict) else (title or ""))
    out += [t.get("name") or "" for t in fig.get("data", []) if isinstance(t.get("name"), str)]
    return [re.sub(r"<[^>]+>", " ", t) for t in out if t]


def page_texts(at: AppTest) -> list[str]:
    """Every text a user reads on the page: element values, labels, help, options, metric and chart texts."""
    texts: list[str] = []

    def walk(node) -> None:
        # a widget's value is the program's (an option's identifier), what it shows is its label and options
        for attr in (("label", "help", "placeholder") if isinstance(node, Widget) else ("value", "label", "help", "body")):
            try:
                v = getattr(node, attr, None)
            except Exception:  # noqa: BLE001 - some elements compute value lazily from state
                v = None
            if isinstance(v, str):
                texts.append(v)
        for attr in ("options",):
            opts = getattr(node, attr, None)
            if isinstance(opts, (list, tuple)):
                texts.extend(o for o in opts if isinstance(o, str))
        proto = getattr(node, "proto", None)
        if getattr(node, "type", "") == "plotly_chart" and proto is not None and getattr(proto, "spec", ""):
            texts.extend(_chart_texts(proto.spec))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)

    walk(at._tree)
    return [t for t in texts if t and t.strip()]


def open_in_chinese(page: str, **query: str) -> AppTest:
    """The page in Chinese. The test thread speaks Chinese too: AppTest formats the widgets' values
    with their ``format_func`` in the test's thread when it sends them back on the next run."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["lang"] = "zh"
    with use_language("zh"):
        at.run()
        assert not at.exception, at.exception
        at.sidebar_texts = page_texts(at)  # app.py's run: the sidebar (switch_page then runs the page alone)
        for k, v in query.items():
            at.query_params[k] = v
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _check_page(at: AppTest, untranslated: Untranslated) -> None:
    texts = at.sidebar_texts + page_texts(at)
    shown = sorted({f"{t!r} (message {mid!r})" for t in texts if (mid := untranslated.find(t))})
    assert not shown, "shown untranslated in Chinese mode:\n" + "\n".join(shown[:30])
    assert sum(bool(CJK.search(t)) for t in texts) >= 3, texts[:20]
    assert at.session_state["lang"] == "zh"


@pytest.fixture(scope="module")
def untranslated():
    return Untranslated()


PAGES = [
    ("pages/train.py", {}),
    ("pages/data.py", {}),
    ("pages/models.py", {}),
    ("pages/results.py", {"run": "TRANSFER0"}),
    ("pages/predict.py", {}),
    ("pages/compare.py", {"runs": "COMPARE"}),
    ("pages/insights.py", {}),
    ("pages/experiments.py", {"exp": "labels"}),
    ("pages/present.py", {}),
]


@pytest.mark.parametrize("page, query", PAGES, ids=[p.split("/")[1][:-3] for p, _q in PAGES])
def test_every_page_renders_in_chinese_and_shows_no_catalogue_string_untranslated(env, untranslated, page, query):
    query = {k: (env["transfer"][0] if v == "TRANSFER0" else
                 ",".join(env["transfer"] + env["scratch"]) if v == "COMPARE" else v) for k, v in query.items()}
    at = open_in_chinese(page, **query)
    _check_page(at, untranslated)


def test_the_sidebar_switch_changes_language_and_the_url(env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert at.session_state["lang"] == "en" and at.query_params.get("lang") in ("en", ["en"])
    switch = at.sidebar.get("button_group")[0]
    assert switch.options == ["English", "简体中文"]
    switch.set_value("zh").run()
    assert not at.exception, at.exception
    assert at.session_state["lang"] == "zh" and at.query_params.get("lang") in ("zh", ["zh"])
    assert any(CJK.search(t) for t in page_texts(at))


def test_results_names_a_run_by_its_kind_so_a_from_scratch_run_is_not_called_transfer(env):
    """Method "transfer" with random weights and nothing frozen is training from scratch: the Results
    header says so (it said "transfer", 迁移学习 in Chinese, while Insights and Compare said scratch)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.query_params["run"] = env["scratch"][0]
    at.switch_page("pages/results.py").run()
    assert not at.exception, at.exception
    header = next(m.value for m in at.markdown if "created" in m.value)
    assert header.startswith("**scratch**"), header
