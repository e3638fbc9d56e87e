"""The main journey in a real browser: Debian's chromium driven by playwright.

Starts the dashboard as a real server on a free port, opens it, makes the run small on
the Data page, starts it on Train, watches the loss curve grow without reloading, sees
the confusion matrix, reloads and still finds the run. Screenshots go to
``test-artifacts/`` on failure (and one of the finished run always).
"""

from __future__ import annotations

import shutil
import time

import pytest

from browser_utils import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_server, stop_server
from browser_utils import POINTS_JS as _POINTS_JS
from browser_utils import require_browser as _require_browser
from browser_utils import set_number as _set_number
from browser_utils import wait_idle as _wait_idle

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path):
    _require_browser()
    proc, url = start_server(tmp_path)
    yield url, tmp_path
    stop_server(proc)


def test_main_journey_in_a_real_browser(server):
    from playwright.sync_api import sync_playwright

    url, tmp = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            _wait_idle(page)
            # Data page: a small few-shot subset of the built-in digits, so the run is quick
            page.get_by_role("link", name="Data").first.click()
            page.wait_for_selector(".st-key-train_per_class input", timeout=60_000)
            _wait_idle(page)
            _set_number(page, "train_per_class", 40)
            # the Data page hands its settings to Train once the preview has loaded
            page.get_by_text("40 per class").first.wait_for(timeout=120_000)
            # Train page
            page.get_by_role("link", name="Train").first.click()
            page.wait_for_selector(".st-key-start button", timeout=60_000)
            _wait_idle(page)
            page.get_by_text("40 train images per class").first.wait_for(timeout=60_000)
            _set_number(page, "epochs", 4)
            page.locator(".st-key-start button").click()

            # the loss curve grows while training, without a reload
            counts: list[int] = []
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                n = page.evaluate(_POINTS_JS)
                if n >= 0 and (not counts or counts[-1] != n):
                    counts.append(n)
                if page.locator(".st-key-train_confusion .js-plotly-plot").count():
                    break
                time.sleep(0.25)
            growing = sorted(set(c for c in counts if c > 0))
            assert len(growing) >= 2, f"loss curve point counts seen: {counts}"
            assert counts == sorted(counts), f"point counts went down: {counts}"

            # the confusion matrix when the run completes
            page.wait_for_selector(".st-key-train_confusion .js-plotly-plot", timeout=120_000)
            assert "run=" in page.url
            run_id = page.url.split("run=")[1].split("&")[0]
            assert (tmp / "runs" / run_id / "confusion.json").exists()
            page.screenshot(path=str(ARTIFACTS / "e2e_train_completed.png"), full_page=True)

            # a reload keeps the run (the URL carries it) and shows it again
            page.reload()
            _wait_idle(page)
            page.wait_for_selector(".st-key-train_confusion .js-plotly-plot", timeout=60_000)
            assert page.evaluate(_POINTS_JS) == 4
            assert run_id in page.url
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "e2e_failure.png"), full_page=True)
            shutil.copy(tmp / "server.log", ARTIFACTS / "e2e_server.log")
            raise
        finally:
            browser.close()
