"""The main journey in a real browser: Debian's chromium driven by playwright.

Starts the dashboard as a real server on a free port, opens it, makes the run small on
the Data page, starts it on Train, watches the loss curve grow without reloading, sees
the confusion matrix, reloads and still finds the run. Screenshots go to
``test-artifacts/`` on failure (and one of the finished run always).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

pytestmark = pytest.mark.e2e


def _require_browser() -> None:
    have = Path(CHROMIUM).exists()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        have = False
    if not have:
        if os.environ.get("TRANSFER_LAB_REQUIRE_BROWSER"):
            pytest.fail("chromium or playwright is missing, and this run requires the browser test")
        pytest.skip("chromium/playwright not installed (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    _require_browser()
    port = _free_port()
    env = dict(os.environ)
    env.update(TRANSFER_LAB_RUNS=str(tmp_path / "runs"), TRANSFER_LAB_DATA=str(tmp_path / "data"))
    (tmp_path / "data").mkdir(exist_ok=True)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().decode() == "ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the dashboard did not answer /_stcore/health: " + (tmp_path / "server.log").read_text()[-2000:])
    yield url, tmp_path
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


_POINTS_JS = """() => {
  const el = document.querySelector('.st-key-train_curves .js-plotly-plot');
  if (!el || !el.data || !el.data.length) return -1;
  return el.data[0].x.length;
}"""


def _wait_idle(page, timeout=60_000) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )


def _set_number(page, key: str, value: int) -> None:
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Enter")
    _wait_idle(page)


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
            # Train page
            page.get_by_role("link", name="Train").first.click()
            page.wait_for_selector(".st-key-start button", timeout=60_000)
            _wait_idle(page)
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
