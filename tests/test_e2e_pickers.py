"""Run pickers in a real browser: a run finished from the CLI while the server runs is listed.

The dashboard is started with one completed run; Predict and Insights are opened (their
pickers are drawn), a second run is trained with ``python -m transfer_core train``, and a
new tab on each page must offer (and, being the newest, select) the second run. Before
the fix the pickers were cached per server process and kept showing the first run only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser_utils import (ARTIFACTS, ROOT, launch, new_tab, require_browser, start_server, stop_server, wait_for,
                           wait_idle)
from conftest import tiny_config

pytestmark = pytest.mark.e2e

PAGES = {"predict": "pred_run", "insights": "ins_run"}  # url path -> key of its run picker


def _picked(page, key: str) -> str:
    """The run the picker shows ("" until it is drawn): the select box is an input holding the label."""
    box = page.locator(f".st-key-{key} input")
    return box.first.input_value() if box.count() else ""


def _cli_train(tmp: Path, name: str) -> str:
    """Train a tiny run with the CLI into the server's runs folder; returns its id."""
    from transfer_core.config import dump_yaml
    from transfer_core.runs import RunStore

    cfg_path = tmp / f"{name}.yaml"
    cfg_path.write_text(dump_yaml(tiny_config(train__epochs=1, name=name)), encoding="utf-8")
    before = {r.id for r in RunStore(tmp / "runs").runs()}
    done = subprocess.run([sys.executable, "-m", "transfer_core", "train", str(cfg_path), "--runs-dir", str(tmp / "runs")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (new,) = [r for r in RunStore(tmp / "runs").runs() if r.id not in before]
    assert new.status()["state"] == "completed"
    return new.id


@pytest.fixture
def server(tmp_path):
    require_browser()
    first = _cli_train(tmp_path, "first")
    proc, url = start_server(tmp_path)
    yield url, tmp_path, first
    stop_server(proc)


def test_pickers_show_a_run_finished_from_the_cli_in_a_new_tab(server):
    from playwright.sync_api import sync_playwright

    url, tmp, first = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = None
        try:
            for name, key in PAGES.items():  # draw each picker once: the old code cached its run list here
                page = new_tab(browser, f"{url}/{name}")
                wait_idle(page)
                wait_for(lambda: first in _picked(page, key), 180, f"run {first} in the {name} picker")
                page.context.close()
            second = _cli_train(tmp, "second")
            for name, key in PAGES.items():  # a new tab picks the newest completed run: the second
                page = new_tab(browser, f"{url}/{name}")
                wait_idle(page)
                wait_for(lambda: second in _picked(page, key), 180, f"run {second} in the {name} picker")
                page.screenshot(path=str(ARTIFACTS / f"e2e_pickers_{name}.png"))
                page.context.close()
        except BaseException:
            if page is not None and not page.is_closed():
                page.screenshot(path=str(ARTIFACTS / "e2e_pickers_failure.png"), full_page=True)
            shutil.copy(tmp / "server.log", ARTIFACTS / "e2e_pickers_server.log")
            raise
        finally:
            browser.close()
