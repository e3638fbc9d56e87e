"""Server memory while several browser tabs watch one live run (not part of the test suite).

Starts the dashboard (``streamlit run app.py``) on a free port with throw-away runs/data
folders, starts a long tiny run from tab 1 (Data: few-shot; Train: many epochs, Start),
opens the other tabs on ``/?run=<id>`` so they all watch it live, and samples the
server's resident memory (``VmRSS`` of /proc/<pid>/status) every few seconds for the
whole duration. Prints a table, the start / max / end RSS and the growth, and whether
every tab kept updating (its plotted epoch count grew).

    .venv/bin/python bench/memory_watch.py                  # 5 tabs, 10 minutes
    .venv/bin/python bench/memory_watch.py --tabs 5 --minutes 2 --interval 5

Needs Debian's chromium and playwright (like the e2e tests).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_utils import (  # noqa: E402
    LAST_EPOCH_JS,
    browser_available,
    launch,
    run_id_of,
    set_number,
    start_server,
    stop_server,
    vm_rss_kb,
    wait_idle,
)


def _epochs_done(runs: Path, rid: str) -> int:
    try:
        return sum(1 for line in (runs / rid / "metrics.jsonl").read_text().splitlines() if line.strip())
    except OSError:
        return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tabs", type=int, default=5, help="browser tabs (sessions) watching the run")
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to sample")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--train-per-class", type=int, default=20, help="few-shot size of the run (digits, 10 classes)")
    ap.add_argument("--json", type=Path, default=None, help="also write the samples here")
    args = ap.parse_args()
    if not browser_available():
        print("chromium/playwright missing (apt-get install chromium)", file=sys.stderr)
        return 2

    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="memory_watch-"))
    proc, url = start_server(folder)
    runs = folder / "runs"
    samples: list[dict] = []
    print(f"server pid {proc.pid} at {url}; folders in {folder}", flush=True)
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            contexts = [browser.new_context(viewport={"width": 1300, "height": 900}) for _ in range(args.tabs)]
            for ctx in contexts:  # a busy machine: page loads can take far longer than playwright's 30 s
                ctx.set_default_timeout(180_000)
                ctx.set_default_navigation_timeout(180_000)
            first = contexts[0].new_page()
            first.goto(url)
            wait_idle(first)
            first.get_by_role("link", name="Data").first.click()
            first.wait_for_selector(".st-key-train_per_class input", timeout=120_000)
            wait_idle(first)
            set_number(first, "train_per_class", args.train_per_class)
            first.get_by_role("link", name="Train").first.click()
            first.wait_for_selector(".st-key-start button", timeout=120_000)
            wait_idle(first)
            set_number(first, "epochs", 1000)  # far more than fits: the run outlasts the measurement
            first.locator(".st-key-start button").click()
            deadline = time.monotonic() + 180
            rid = None
            while rid is None and time.monotonic() < deadline:
                made = [p.name for p in runs.iterdir() if (p / "config.yaml").is_file()] if runs.is_dir() else []
                rid = run_id_of(first) or (made[0] if made else None)
                time.sleep(0.2)
            if rid is None:
                raise RuntimeError("Start made no run")
            pages = [first]
            for ctx in contexts[1:]:
                p = ctx.new_page()
                p.goto(f"{url}/?run={rid}", wait_until="domcontentloaded")
                pages.append(p)
            for p in pages[1:]:
                wait_idle(p, timeout=120_000)
            print(f"run {rid}; {len(pages)} tabs watching; sampling every {args.interval:.0f}s "
                  f"for {args.minutes:g} min", flush=True)

            t0 = time.monotonic()
            end = t0 + args.minutes * 60
            first_seen: list[int | None] = [None] * len(pages)
            while True:
                now = time.monotonic()
                tabs = []
                for p in pages:
                    try:
                        tabs.append(int(p.evaluate(LAST_EPOCH_JS)))
                    except Exception:  # a page mid-redraw: count it as not drawn this time
                        tabs.append(-1)
                for i, e in enumerate(tabs):
                    if first_seen[i] is None and e > 0:
                        first_seen[i] = e
                row = {"t_s": round(now - t0, 1), "rss_mb": round((vm_rss_kb(proc.pid) or 0) / 1024, 1),
                       "epochs": _epochs_done(runs, rid), "tabs": tabs}
                samples.append(row)
                if len(samples) % max(1, int(60 / args.interval)) == 1:
                    print(f"  t={row['t_s']:>6.0f}s  rss={row['rss_mb']:>7.1f} MB  epochs={row['epochs']:>4}  tabs={tabs}",
                          flush=True)
                if now >= end:
                    break
                time.sleep(max(0.0, args.interval - (time.monotonic() - now)))
            last_tabs = samples[-1]["tabs"]
            browser.close()
    finally:
        stop_server(proc)

    rss = [s["rss_mb"] for s in samples]
    half = len(rss) // 2
    print()
    print(f"{'t (s)':>7} {'RSS (MB)':>9} {'epochs':>7}  tabs (last plotted epoch)")
    step = max(1, int(30 / args.interval))
    for s in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        print(f"{s['t_s']:>7.0f} {s['rss_mb']:>9.1f} {s['epochs']:>7}  {s['tabs']}")
    print()
    print(f"tabs: {args.tabs}; duration: {samples[-1]['t_s'] / 60:.1f} min; samples: {len(samples)}")
    print(f"RSS start {rss[0]:.1f} MB, max {max(rss):.1f} MB, end {rss[-1]:.1f} MB; "
          f"growth end-start {rss[-1] - rss[0]:+.1f} MB, max-start {max(rss) - rss[0]:+.1f} MB; "
          f"second half growth {rss[-1] - rss[half]:+.1f} MB")
    updated = [bool(f is not None and l > f) for f, l in zip(first_seen, last_tabs)]
    print(f"every tab kept updating: {all(updated)} (first/last plotted epoch per tab: "
          f"{list(zip(first_seen, last_tabs))})")
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "tabs": args.tabs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
