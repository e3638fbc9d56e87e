"""The Experiments page in a real browser (Debian's chromium driven by playwright).

Opens ``/experiments?exp=labels``, starts the quick "How many labels" experiment (shrunk
with ``TRANSFER_LAB_EXPERIMENT`` so it fits a 2-core box in well under a minute), and
watches the curve gain points — one faint dot per finished trial — without a reload, until
the sweep completes and the headline sentence appears. Screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
import time

import pytest

from browser_utils import ARTIFACTS, launch, new_tab, require_browser, start_server, stop_server, wait_idle

pytestmark = pytest.mark.e2e

# 3 budgets x 3 variants x 2 seeds = 18 trials of ~1-2 s each, after a 1-epoch source
SHRINK = "dataset=digits,epochs=2,source_epochs=1,image_size=16,seeds=2,budgets=2 5 10,val_fraction=0.1"
N_TRIALS = 18

SEED_DOTS_JS = """() => {
  const el = document.querySelector('.st-key-sweep_chart .js-plotly-plot');
  if (!el || !el.data) return -1;
  return el.data.filter(t => t.meta === 'seed').reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
}"""


@pytest.fixture
def server(tmp_path):
    require_browser()
    proc, url = start_server(tmp_path, env_extra={"TRANSFER_LAB_EXPERIMENT": SHRINK})
    yield url, tmp_path
    stop_server(proc)


def test_labels_curve_gains_points_live(server):
    from playwright.sync_api import sync_playwright

    url, tmp = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = new_tab(browser, f"{url}/experiments?exp=labels")
        try:
            wait_idle(page)
            page.get_by_text("How many labels does transfer save?").first.wait_for()
            page.get_by_text(f"{N_TRIALS} trials").first.wait_for()
            page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads
            page.locator(".st-key-exp_start_quick button").click()

            counts: list[int] = []
            deadline = time.monotonic() + 420
            while time.monotonic() < deadline:
                n = page.evaluate(SEED_DOTS_JS)
                if n >= 0 and (not counts or counts[-1] != n):
                    counts.append(n)
                if n == N_TRIALS and page.get_by_text(f"{N_TRIALS} of {N_TRIALS} trials · completed").count():
                    break
                time.sleep(0.25)
            growing = sorted({c for c in counts if c > 0})
            assert len(growing) >= 2, f"seed-dot counts seen: {counts}"
            assert counts == sorted(counts), f"the count went down: {counts}"
            assert counts[-1] == N_TRIALS, f"seed-dot counts seen: {counts}"
            assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
            page.get_by_text("With 10 labels per class, transfer reaches").first.wait_for(timeout=60_000)
            wait_idle(page)
            page.screenshot(path=str(ARTIFACTS / "e2e_experiments.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "e2e_experiments_failure.png"), full_page=True)
            shutil.copy(tmp / "server.log", ARTIFACTS / "e2e_experiments_server.log")
            raise
        finally:
            browser.close()
