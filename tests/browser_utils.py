"""Helpers shared by the real-browser tests and bench/memory_watch.py.

A dashboard server on a free port (``start_server`` / ``stop_server``), Debian's
chromium driven by playwright (``launch``), and the waits every page interaction needs.
Not a test module: pytest collects nothing here.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def browser_available() -> bool:
    if not Path(CHROMIUM).exists():
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def require_browser() -> None:
    """Skip the test without chromium/playwright; fail instead where the run requires them (CI)."""
    import pytest

    if not browser_available():
        if os.environ.get("TRANSFER_LAB_REQUIRE_BROWSER"):
            pytest.fail("chromium or playwright is missing, and this run requires the browser test")
        pytest.skip("chromium/playwright not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Poll ``/_stcore/health`` until it answers ``ok``; False on timeout or if the server died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().decode() == "ok":
                return True
        except OSError:
            time.sleep(0.3)
    return False


def start_server(folder: Path, env_extra: dict[str, str] | None = None, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start ``streamlit run app.py`` on a free port with runs/data under ``folder``.

    Returns the process and its URL once it is healthy; the log is ``folder/server.log``.
    """
    port = free_port()
    env = dict(os.environ)
    env.update(TRANSFER_LAB_RUNS=str(folder / "runs"), TRANSFER_LAB_DATA=str(folder / "data"))
    env.update(env_extra or {})
    (folder / "data").mkdir(parents=True, exist_ok=True)
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()  # the child holds its own descriptor
    url = f"http://127.0.0.1:{port}"
    if not wait_health(url, proc, timeout):
        proc.kill()
        proc.wait(10)
        raise RuntimeError("the dashboard did not answer /_stcore/health: " + (folder / "server.log").read_text()[-2000:])
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def launch(pw: Any) -> Any:
    """Headless Debian chromium (playwright cannot download its own here)."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def wait_idle(page: Any, timeout: int = 60_000) -> None:
    """The app is drawn and no script run is in flight (the status widget is gone)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )


def new_tab(browser: Any, url: str, timeout_ms: int = 180_000) -> Any:
    """A fresh browser session (its own context) on ``url``, patient enough for a busy 2-core box."""
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    ctx.set_default_timeout(timeout_ms)
    ctx.set_default_navigation_timeout(timeout_ms)
    page = ctx.new_page()
    page.goto(url, wait_until="domcontentloaded")
    return page


def few_shot_session(browser: Any, url: str, train_per_class: int, epochs: int, small_val: bool = False,
                     timeout_ms: int = 180_000) -> Any:
    """A new session on the Train page, with a few-shot digits setting handed over from the Data page."""
    page = new_tab(browser, url, timeout_ms)
    wait_idle(page, timeout_ms)
    page.get_by_role("link", name="Data").first.click()
    page.wait_for_selector(".st-key-train_per_class input")
    wait_idle(page, timeout_ms)
    set_number(page, "train_per_class", train_per_class)
    page.get_by_text(f"{train_per_class} per class").first.wait_for()
    if small_val:  # the smallest validation share (Home on the slider): less to evaluate per epoch
        page.locator(".st-key-val_fraction input[type=range]").press("Home")
        wait_idle(page, timeout_ms)
    page.get_by_role("link", name="Train").first.click()
    page.wait_for_selector(".st-key-start button")
    wait_idle(page, timeout_ms)
    set_number(page, "epochs", epochs)
    return page


def wait_for(cond: Any, timeout: float, what: str, step: float = 0.25) -> Any:
    """Poll ``cond()`` until it returns something truthy (returned), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def set_number(page: Any, key: str, value: int) -> None:
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def run_id_of(page: Any) -> str | None:
    """The run a page watches: ``?run=<id>`` in its URL.

    Asked from the page itself: ``page.url`` of playwright's sync API only changes while a
    playwright call is in flight, so a loop of ``page.url`` and ``time.sleep`` never sees it.
    """
    url = page.evaluate("() => location.href")
    return url.split("run=")[1].split("&")[0] if "run=" in url else None


def vm_rss_kb(pid: int) -> int | None:
    """Resident set size of a process in kB (``VmRSS`` of /proc/<pid>/status)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# The Train page's curves: the epochs they plot, read from the live SVG (``data-epochs``) while
# the run trains and from the plotly figure once it has ended; null while no curve is drawn.
_CURVE_EPOCHS_JS = """
  const box = document.querySelector('.st-key-train_curves');
  if (!box) return null;
  const svg = box.querySelector('svg[data-epochs]');
  if (svg) { const v = svg.getAttribute('data-epochs'); return v ? v.split(',').map(Number) : []; }
  const el = box.querySelector('.js-plotly-plot');
  if (!el || !el.data || !el.data.length) return null;
  return Array.from(el.data[0].x);
"""
# The number of plotted epochs (-1 while not drawn).
POINTS_JS = "() => { const e = (() => {" + _CURVE_EPOCHS_JS + "})(); return e === null ? -1 : e.length; }"
# The last plotted epoch (-1 while not drawn, 0 while drawn empty).
LAST_EPOCH_JS = ("() => { const e = (() => {" + _CURVE_EPOCHS_JS
                 + "})(); return e === null ? -1 : (e.length ? Math.max(...e) : 0); }")
