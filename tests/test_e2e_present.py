"""Presenting in a real browser (Debian's chromium driven by playwright).

1. The HTML deck, opened from disk with no server and no network: no console error, and the
   arrow keys (and Home / End) step through its slides, the slide number in the address.
2. The Present page: ← → step through the slides (the page's keys click its Back / Next), the
   slide number is in the URL, and a reload opens the same slide. Screenshots in ``test-artifacts/``.
"""

from __future__ import annotations

import shutil

import pytest

from browser_utils import ARTIFACTS, launch, new_tab, require_browser, start_server, stop_server, wait_idle
from seed_runs import demo_cfg, fake_run

pytestmark = pytest.mark.e2e


def _runs(root):
    src = fake_run(root, {**demo_cfg(0, "scratch"), "name": "source",
                          "data": {"dataset": "digits", "classes": [0, 1, 2], "image_size": 32}}, 0.95)
    return fake_run(root, demo_cfg(0, "transfer", source=f"run:{src}"), 0.8)


def test_html_deck_opens_offline_without_errors_and_steps_with_the_arrow_keys(tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    from transfer_core.present.decks import write_deck
    from transfer_core.present.story import build_story

    rid = _runs(tmp_path / "runs")
    path = write_deck(build_story(f"run:{rid}", tmp_path / "runs"), "html", tmp_path / "deck.html")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        ctx = browser.new_context(viewport={"width": 1280, "height": 760})
        ctx.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "data:"))
                  else route.continue_())  # no network: anything fetched from outside fails (and is counted)
        page = ctx.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("requestfailed", lambda r: problems.append(f"request {r.url}"))
        try:
            page.goto(path.as_uri())
            page.wait_for_function("() => document.body.getAttribute('data-slide') === '1'")
            slide = lambda: page.evaluate("() => [document.body.getAttribute('data-slide'), location.hash]")  # noqa: E731
            assert page.locator("section.slide.active").get_attribute("data-id") == "question"
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            assert slide() == ["3", "#3"]
            assert page.locator("section.slide.active").get_attribute("data-id") == "method"
            assert page.locator("section.slide.active .js-plotly-plot").count() == 1  # the method, drawn
            page.keyboard.press("ArrowLeft")
            assert slide() == ["2", "#2"]
            page.keyboard.press("End")
            assert slide() == ["7", "#7"] and page.locator("section.slide.active h1").inner_text() == "Takeaways"
            page.keyboard.press("ArrowRight")  # past the end: stays
            assert slide() == ["7", "#7"]
            page.goto(path.as_uri() + "#4")  # a link to a slide
            page.reload()
            page.wait_for_function("() => document.body.getAttribute('data-slide') === '4'")
            assert page.locator("section.slide.active").get_attribute("data-id") == "answer"
            page.screenshot(path=str(ARTIFACTS / "e2e_present_deck.png"))
            assert problems == [], problems
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "e2e_present_deck_failure.png"))
            raise
        finally:
            browser.close()


@pytest.fixture
def server(tmp_path):
    require_browser()
    rid = _runs(tmp_path / "runs")
    proc, url = start_server(tmp_path)
    yield url, tmp_path, rid
    stop_server(proc)


def test_present_page_steps_with_the_arrow_keys_and_a_reload_keeps_the_slide(server):
    from playwright.sync_api import sync_playwright

    url, tmp, rid = server
    ARTIFACTS.mkdir(exist_ok=True)

    def at_slide(page, n: int) -> None:
        page.wait_for_function(f"() => new URLSearchParams(location.search).get('slide') === '{n}'")
        page.locator(".st-key-present_step").get_by_text(f"{n} / 7", exact=False).first.wait_for()
        wait_idle(page)

    with sync_playwright() as pw:
        browser = launch(pw)
        page = new_tab(browser, f"{url}/present?subject=run:{rid}&slide=1")
        try:
            page.locator(".st-key-present_next button").first.wait_for()
            wait_idle(page)
            page.get_by_text("THE QUESTION").first.wait_for()
            page.mouse.click(5, 500)  # focus on the page, not in a text box (keys are ignored there)
            page.keyboard.press("ArrowRight")
            at_slide(page, 2)
            page.keyboard.press("ArrowRight")
            at_slide(page, 3)
            page.locator(".st-key-present_slide h1").get_by_text("The method").first.wait_for()
            page.keyboard.press("ArrowLeft")
            at_slide(page, 2)
            page.reload()
            page.locator(".st-key-present_next button").first.wait_for()
            at_slide(page, 2)
            page.locator(".st-key-present_slide h1").get_by_text("The data").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "e2e_present_page.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "e2e_present_page_failure.png"), full_page=True)
            shutil.copy(tmp / "server.log", ARTIFACTS / "e2e_present_server.log")
            raise
        finally:
            browser.close()
