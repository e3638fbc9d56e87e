"""Several browser sessions against one real dashboard server (Debian chromium + playwright).

* Two sessions press Start at the same moment: one run trains, the other waits in the
  queue, both complete (one after the other). A third session's queued run is removed
  by its Stop button and never trains.
* Five sessions watch one live run: every one of them updates (its plotted epochs grow)
  without a reload. The 10-minute memory measurement of the same situation is
  ``bench/memory_watch.py``; here the server's RSS is only sampled and printed.

Each browser context is its own Streamlit session. Runs are tiny: few-shot digits
(set on the Data page), resnet18 at 32 px, a few epochs.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from browser_utils import (
    ARTIFACTS,
    LAST_EPOCH_JS,
    few_shot_session,
    launch,
    new_tab,
    require_browser,
    run_id_of,
    start_server,
    stop_server,
    vm_rss_kb,
    wait_for,
    wait_idle,
)
from transfer_core.runs import Run

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 180_000  # a busy 2-core machine: page loads and reruns can take long


@pytest.fixture(scope="module")
def server(module_tmp):
    """One server for both tests (its caches warm up once); each test tells its own runs apart."""
    require_browser()
    folder = module_tmp
    proc, url = start_server(folder)
    yield proc, url, folder
    stop_server(proc)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


def _session(browser, url: str, train_per_class: int, epochs: int, small_val: bool = False):
    return few_shot_session(browser, url, train_per_class, epochs, small_val, TIMEOUT_MS)


def _watcher(browser, url: str, rid: str):
    return new_tab(browser, f"{url}/?run={rid}", TIMEOUT_MS)


def _raw(runs: Path, rid: str) -> dict:
    return Run(runs / rid).raw_status()


def _on_failure(pages, tmp: Path, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for i, p in enumerate(pages):
        print(f"page {i}: {p.url}")
        try:
            p.screenshot(path=str(ARTIFACTS / f"{name}_{i}.png"), full_page=True)
        except Exception:
            pass
    shutil.copy(tmp / "server.log", ARTIFACTS / f"{name}_server.log")


def test_two_sessions_start_at_once_one_queues_and_stop_removes_a_queued_run(server, browser):
    _, url, tmp = server
    runs = tmp / "runs"
    epochs = 2
    pages = []
    try:
        a = _session(browser, url, 5, epochs)
        b = _session(browser, url, 5, epochs)
        c = _session(browser, url, 5, epochs)
        pages = [a, b, c]
        # the same moment: the clicks go out back to back, before any page reruns
        for p in (a, b, c):
            p.locator(".st-key-start button").click(no_wait_after=True)
        made = wait_for(lambda: (lambda ids: ids if len(ids) == 3 else None)(
            sorted(d.name for d in runs.iterdir() if (d / "config.yaml").is_file()) if runs.is_dir() else []),
            180, "three run folders")
        # one trains while the others wait (watched from disk: the pages take a while to redraw)
        seen_states = wait_for(lambda: (lambda st: st if sorted(st) == ["queued", "queued", "running"] else None)(
            [_raw(runs, r)["state"] for r in made]), 120, "one running and two queued runs", step=0.05)
        assert seen_states
        page_of = {}
        for name, p in (("A", a), ("B", b), ("C", c)):
            page_of[wait_for(lambda p=p: run_id_of(p), 180, f"session {name}'s run id in its URL")] = p
        assert sorted(page_of) == made, "each session watches its own run"
        # the server took the three submits in some order: the newest (queued behind the others) is removed
        order = sorted(made, key=lambda r: Run(runs / r).raw_status().get("created", 0))
        keep, removed = order[:2], order[2]
        waiting = [r for r in keep if _raw(runs, r)["state"] == "queued"]
        if waiting:  # the one of the two that waits says so
            page_of[waiting[0]].get_by_text("Queued: waiting for the run in front of it").wait_for()
        assert _raw(runs, removed)["state"] == "queued", "the last run left the queue before Stop was pressed"
        wait_idle(page_of[removed], TIMEOUT_MS)  # a rerun in flight can show the old button next to the new one
        page_of[removed].locator(".st-key-stop button").first.click()
        wait_for(lambda: _raw(runs, removed)["state"] == "stopped", 60, "the queued run to be removed")
        assert "removed from the queue" in _raw(runs, removed)["message"]
        page_of[removed].get_by_text("removed from the queue before it started").first.wait_for()  # the Stopped notice
        # Live views cost the server CPU that training needs: close the sessions, check from disk,
        # then look at each finished run in a fresh session.
        for p in pages:
            p.context.close()
        pages = []

        for rid in keep:
            wait_for(lambda r=rid: _raw(runs, r)["state"] in ("completed", "failed"), 600, f"run {rid} to end")
            assert _raw(runs, rid)["state"] == "completed", _raw(runs, rid)
            assert [m["epoch"] for m in Run(runs / rid).metrics()] == list(range(1, epochs + 1))
        first, second = sorted((_raw(runs, r) for r in keep), key=lambda st: st["started"])
        assert second["started"] >= first["ended"] - 0.5, "the queued run started before the first one ended"
        for rid in keep:
            p = _watcher(browser, url, rid)
            pages.append(p)
            p.wait_for_selector(".st-key-train_confusion .js-plotly-plot")
        assert Run(runs / removed).metrics() == [] and not (runs / removed / "checkpoint.pt").exists(), "it trained"
    except BaseException:
        _on_failure(pages, tmp, "e2e_concurrency_queue")
        raise
    finally:
        for p in pages:
            p.context.close()


def test_five_sessions_watch_one_live_run_and_all_update(server, browser):
    """Each tab's chart, once drawn, must show a later epoch without a reload; then the run is stopped."""
    proc, url, tmp = server
    runs = tmp / "runs"
    pages = []
    try:
        first = _session(browser, url, 5, 200, small_val=True)  # far more epochs than needed: stopped below
        pages = [first]
        first.locator(".st-key-start button").click()
        rid = wait_for(lambda: run_id_of(first), 180, "the run id in the URL")
        pages += [_watcher(browser, url, rid) for _ in range(4)]
        rss = [vm_rss_kb(proc.pid)]
        seen: list[list[int]] = [[] for _ in pages]  # plotted epochs per tab, from its first drawn chart
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for i, p in enumerate(pages):
                try:
                    e = int(p.evaluate(LAST_EPOCH_JS))
                except Exception:  # mid-navigation or mid-redraw
                    continue
                if e >= 0 and (not seen[i] or seen[i][-1] != e):
                    seen[i].append(e)
            rss.append(vm_rss_kb(proc.pid))
            if all(len(s) >= 2 for s in seen):
                break
            time.sleep(0.5)
        for i, s in enumerate(seen):
            assert len(s) >= 2 and s == sorted(s), f"tab {i} did not update live (plotted epochs seen: {s})"
        assert _raw(runs, rid)["state"] == "running"
        wait_idle(first, TIMEOUT_MS)
        first.locator(".st-key-stop button").first.click()
        wait_for(lambda: _raw(runs, rid)["state"] == "stopped", 120, "the run to stop")
        mb = [r / 1024 for r in rss if r]
        print(f"server RSS while 5 tabs watched: start {mb[0]:.0f} MB, max {max(mb):.0f} MB, end {mb[-1]:.0f} MB; "
              f"plotted epochs per tab: {seen}")
    except BaseException:
        _on_failure(pages, tmp, "e2e_concurrency_watch")
        raise
    finally:
        for p in pages:
            p.context.close()
