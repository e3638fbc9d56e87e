"""AppTest: the Present page steps through every slide of a run, a comparison and an experiment with
Back / Next (the slide number in the URL), opens the slide a link names, and keeps an edited title or
takeaway across a reload (a new session) and in the exported deck.

Run folders and the experiment are written without training (tests/seed_runs.py): only the page's
behaviour is under test here; the stories themselves are tests/test_present.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from seed_runs import seed_demo_runs

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/present.py"
TIMEOUT = 240  # the first render imports torch; slow on a busy 2-core box

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shared(module_tmp):
    return seed_demo_runs(module_tmp / "runs")


@pytest.fixture
def env(shared, monkeypatch):
    """The page reads the shared runs folder (conftest points every test at its own)."""
    from transfer_core.sweeps import builtin

    monkeypatch.setenv("TRANSFER_LAB_RUNS", str(shared["root"]))
    monkeypatch.delenv(builtin.EXPERIMENT_ENV, raising=False)
    st.cache_resource.clear()  # the job manager of another runs folder goes
    yield shared
    st.cache_resource.clear()


def _qp(at: AppTest, key: str):
    v = at.query_params.get(key)
    return v[0] if isinstance(v, list) else v


def open_present(**query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _story(env, subject: str):
    from transfer_core.present.story import build_story

    return build_story(subject, env["root"], images=False)


def _step_through(at: AppTest, story) -> None:
    from dashboard.present_view import md

    total = len(story.slides)
    for i, slide in enumerate(story.slides, start=1):
        assert _qp(at, "slide") == str(i)
        assert at.title[0].value == md(slide.title), (i, slide.id)
        if slide.id == "answer":
            assert [m.value for m in at.metric] == [n.value for n in slide.numbers]
        if slide.figures:
            assert len(at.get("plotly_chart")) == len(slide.figures), slide.id
        assert at.button(key="present_back").disabled == (i == 1)
        if i < total:
            at.button(key="present_next").click().run()
            assert not at.exception, at.exception
    assert at.button(key="present_next").disabled
    at.button(key="present_back").click().run()
    assert _qp(at, "slide") == str(total - 1) and at.title[0].value == md(story.slides[-2].title)


def test_steps_through_every_slide_of_a_run(env):
    subject = f"run:{env['transfer'][0]}"
    at = open_present(subject=subject)
    assert _qp(at, "subject") == subject
    _step_through(at, _story(env, subject))


def test_steps_through_every_slide_of_a_comparison(env):
    subject = f"runs:{env['transfer'][0]},{env['scratch'][0]}"
    at = open_present(subject=subject)
    assert at.radio(key="present_kind").value == "compare"
    assert at.multiselect(key="present_runs").value == [env["transfer"][0], env["scratch"][0]]
    _step_through(at, _story(env, subject))
    at.button(key="present_build_html").click().run()  # the HTML deck: written with the subject, then offered
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert "present_build_html" not in [b.key for b in at.button]
    from transfer_core.present.subject import parse_subject

    assert (parse_subject(subject, env["root"]).folder / "deck.html").is_file()


def test_steps_through_every_slide_of_an_experiment(env):
    subject = f"sweep:{env['sweep'].name}"
    at = open_present(subject=subject)
    assert at.radio(key="present_kind").value == "sweep"
    _step_through(at, _story(env, subject))


def test_a_link_opens_its_slide_and_the_picker_resets_to_the_first(env):
    from dashboard.present_view import md

    subject = f"run:{env['scratch'][1]}"
    story = _story(env, subject)
    at = open_present(subject=subject, slide="4")
    assert _qp(at, "slide") == "4" and at.title[0].value == md(story.slides[3].title)
    at.radio(key="present_kind").set_value("sweep").run()
    assert not at.exception, at.exception
    assert _qp(at, "subject") == f"sweep:{env['sweep'].name}" and _qp(at, "slide") == "1"
    at = open_present(subject=subject, slide="99")  # out of range: the last slide
    assert _qp(at, "slide") == "7"


def test_an_edited_takeaway_survives_a_reload_and_reaches_the_deck(env):
    from dashboard.present_view import widget_suffix
    from transfer_core.present.html_deck import html_deck

    subject = f"run:{env['scratch'][0]}"
    at = open_present(subject=subject, slide="7")
    sfx = widget_suffix(subject)
    at.text_input(key=f"present_title_{sfx}_takeaways").set_value("What we learned")
    at.text_area(key=f"present_take_{sfx}").set_value("Transfer wins at 5 labels.\nLabel ten more per class.")
    at.text_area(key=f"present_notes_{sfx}").set_value("Ask about the labelling budget.")
    at.button(key="present_save").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "What we learned"

    again = open_present(subject=subject, slide="7")  # a reload is a new session: what shows comes from disk
    body = "\n".join(m.value for m in again.markdown)
    assert again.title[0].value == "What we learned"
    assert "- Transfer wins at 5 labels.\n- Label ten more per class." in body
    assert any("Ask about the labelling budget." in i.value for i in again.info)

    deck = html_deck(_story(env, subject))
    assert "What we learned" in deck and "Label ten more per class." in deck and "Ask about the labelling budget." in deck
