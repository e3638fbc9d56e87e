"""The transfer-demo journey in a real browser (Debian's chromium driven by playwright).

One click on the Train page queues the triple (source, transfer from it, scratch twin);
the three runs train one after another while the page follows them; the comparison
(bar chart, transfer vs scratch) appears; the Compare page opens with the three runs;
on Results, clicking a confusion-matrix cell of the transfer run shows its validation
images. The demo is shrunk with ``TRANSFER_LAB_DEMO`` so the test fits a 2-core box.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
import time
import urllib.parse

import pytest

from browser_utils import ARTIFACTS, launch, require_browser, start_server, stop_server, wait_idle

pytestmark = pytest.mark.e2e

TINY_DEMO = ("dataset=digits,source_classes=0-2,target_classes=3-5,source_per_class=20,target_per_class=5,"
             "source_epochs=1,target_epochs=2,source_batch_size=16,target_batch_size=8,device=cpu")

TRACE_NAMES_JS = """(key) => {
  const el = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  return el && el.data ? el.data.map(t => t.name) : null;
}"""


@pytest.fixture
def server(tmp_path):
    require_browser()
    proc, url = start_server(tmp_path, env_extra={"TRANSFER_LAB_DEMO": TINY_DEMO})
    yield url, tmp_path
    stop_server(proc)


def _demo_ids(page) -> list[str]:
    query = urllib.parse.urlparse(page.evaluate("() => location.href")).query
    demo = urllib.parse.parse_qs(query).get("demo", [""])[0]
    return demo.split(",") if demo else []


def _click_cell(page, key: str) -> None:
    """Click the first cell marker of a clickable confusion matrix (true 0, predicted 0)."""
    point = page.locator(f".st-key-{key} .js-plotly-plot .scatterlayer .trace path.point").first
    point.wait_for(state="attached", timeout=30_000)
    page.locator(f".st-key-{key}").scroll_into_view_if_needed()  # a mouse click only reaches the viewport
    time.sleep(0.5)
    box = point.bounding_box()
    assert box, "the cell marker has no box"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    time.sleep(0.3)  # plotly picks the point on hover, then the click selects it
    page.mouse.click(x, y)


def test_transfer_demo_journey_in_a_real_browser(server):
    from playwright.sync_api import sync_playwright

    url, tmp = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            wait_idle(page)
            page.get_by_text("Guided transfer demo").first.click()  # open the expander
            wait_idle(page)
            page.get_by_role("button", name="Run the transfer demo").first.click()

            # the URL names the triple at once; the three runs then train one after another
            deadline = time.monotonic() + 60
            while not _demo_ids(page) and time.monotonic() < deadline:
                time.sleep(0.25)
            ids = _demo_ids(page)
            assert len(ids) == 3, page.evaluate("() => location.href")
            source, transfer, scratch = ids
            page.wait_for_selector(".st-key-demo_kinds .js-plotly-plot", timeout=240_000)
            wait_idle(page)
            names = page.evaluate(TRACE_NAMES_JS, "demo_kinds")
            assert sorted(names) == ["scratch", "transfer"], names
            for rid in ids:
                assert (tmp / "runs" / rid / "checkpoint.pt").exists(), rid
            page.get_by_text("of validation accuracy on the target classes").first.wait_for(timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "e2e_demo_comparison.png"), full_page=True)

            # Compare, opened from the demo with the three runs picked
            page.get_by_role("link", name="Compare the three runs").first.click()
            page.wait_for_selector(".st-key-cmp_kinds .js-plotly-plot", timeout=60_000)
            wait_idle(page)
            assert sorted(page.evaluate(TRACE_NAMES_JS, "cmp_kinds")) == ["scratch", "transfer"]  # one trace per kind
            bars = page.evaluate("() => document.querySelector('.st-key-cmp_kinds .js-plotly-plot').data"
                                 ".reduce((n, t) => n + t.y.length, 0)")
            assert bars == 3  # source and scratch twin are both "scratch"
            page.screenshot(path=str(ARTIFACTS / "e2e_demo_compare.png"), full_page=True)

            # Results of the transfer run: click a confusion-matrix cell, see its images
            page.goto(f"{url}/results?run={transfer}")
            page.wait_for_selector(".st-key-results_confusion .js-plotly-plot", timeout=60_000)
            wait_idle(page)
            for attempt in range(3):
                _click_cell(page, "results_confusion")
                try:
                    page.wait_for_selector(".st-key-res_gallery img", timeout=30_000)
                    break
                except Exception:
                    if attempt == 2:
                        raise
            wait_idle(page)
            page.get_by_text("predicted as").first.wait_for(timeout=10_000)
            assert page.locator(".st-key-res_gallery img").count() >= 1
            assert "%" in page.locator(".st-key-res_gallery").inner_text()
            page.screenshot(path=str(ARTIFACTS / "e2e_demo_gallery.png"), full_page=True)
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "e2e_demo_failure.png"), full_page=True)
            shutil.copy(tmp / "server.log", ARTIFACTS / "e2e_demo_server.log")
            raise
        finally:
            browser.close()
