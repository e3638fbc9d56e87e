"""A real server restart during a run, in a real browser.

The dashboard (``streamlit run app.py``) trains a run started from the Train page; once
an epoch has finished, the server process is killed with SIGKILL (a crash, a power cut,
a closed laptop). A new server on the same runs folder shows the run "interrupted" on
the Results page with a Resume button; Resume finishes it with every epoch exactly once.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from browser_utils import ARTIFACTS, few_shot_session, launch, require_browser, run_id_of, start_server, stop_server, wait_for, wait_idle
from transfer_core.runs import Run

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 180_000
EPOCHS = 12


def _epochs(rd: Path) -> list[int]:
    return [m["epoch"] for m in Run(rd).metrics()]


def test_server_killed_mid_run_then_resume_from_results(tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    proc, url = start_server(tmp_path)
    runs = tmp_path / "runs"
    page = None
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            page = few_shot_session(browser, url, 10, EPOCHS, timeout_ms=TIMEOUT_MS)
            page.locator(".st-key-start button").click()
            rid = wait_for(lambda: run_id_of(page), 180, "the run id in the URL")
            rd = runs / rid
            wait_for(lambda: len(_epochs(rd)) >= 1, 300, "a finished epoch")

            proc.send_signal(signal.SIGKILL)  # no clean shutdown: the worker thread dies mid-epoch
            proc.wait(30)
            before = _epochs(rd)
            assert before and before == list(range(1, len(before) + 1))
            assert len(before) < EPOCHS, "the run finished before the kill: make it longer"
            assert json.loads((rd / "status.json").read_text())["state"] == "running"  # as the crash left it
            assert Run(rd).status()["state"] == "interrupted"  # its owner is dead

            proc, url = start_server(tmp_path)
            page.goto(f"{url}/results?run={rid}", wait_until="domcontentloaded")
            wait_idle(page, TIMEOUT_MS)
            page.get_by_text("Interrupted:").first.wait_for()
            wait_idle(page, TIMEOUT_MS)
            resume = page.get_by_role("button", name="Resume", exact=True).locator("visible=true")
            resume.first.wait_for()  # the first page after a restart draws slowly (torch is imported anew)
            wait_idle(page, TIMEOUT_MS)
            page.screenshot(path=str(ARTIFACTS / "e2e_restart_interrupted.png"), full_page=True)
            assert resume.count() == 1, f"{resume.count()} visible Resume buttons"
            resume.click()
            wait_for(lambda: Run(rd).raw_status()["state"] == "completed", 420, "the resumed run to complete")
            assert _epochs(rd) == list(range(1, EPOCHS + 1)), "epochs missing or duplicated after resume"
            assert (rd / "checkpoint.pt").is_file() and (rd / "confusion.json").is_file()
            page.goto(f"{url}/results?run={rid}", wait_until="domcontentloaded")
            wait_idle(page, TIMEOUT_MS)
            page.get_by_text(f"{EPOCHS} / {EPOCHS}").first.wait_for()
            assert page.get_by_role("button", name="Resume", exact=True).count() == 0, "a completed run offers no Resume"
            browser.close()
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        if page is not None:
            try:
                page.screenshot(path=str(ARTIFACTS / "e2e_restart_failure.png"), full_page=True)
            except Exception:
                pass
        shutil.copy(tmp_path / "server.log", ARTIFACTS / "e2e_restart_server.log")
        raise
    finally:
        if proc.poll() is None:
            stop_server(proc)
