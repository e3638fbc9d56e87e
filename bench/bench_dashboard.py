"""Training throughput of a run started from the dashboard, watched by 3 browser tabs, vs the CLI.

    .venv/bin/python bench/bench_dashboard.py            # 4 epochs of the Train page's default run
    .venv/bin/python bench/bench_dashboard.py --quick    # 1 epoch on 40 images per class

A real Streamlit server and Debian's chromium (/usr/bin/chromium, driven by
playwright). The first tab sets the epochs on the Train page and presses Start; the
URL then carries ``?run=<id>`` and two more tabs open it, so three tabs watch the run
live until it ends. The same config (the run's own ``config.yaml``) is trained by
``python -m transfer_core train --set train.threads=N`` with N the app's own torch thread count
(equal threads); dashboard and CLI alternate ``--rounds`` times and each side is averaged.

Throughput = training images x epochs / the sum of the epochs' ``seconds`` in
``metrics.jsonl`` (train + validation time of each epoch, the same definition on both
sides), over all epochs and from epoch 2 on (steady: no warm-up, tabs already loaded).
Printed: dashboard / CLI at equal threads (goal >= 0.95), split into training inside the
server process with nobody watching and watching; and, for reference, against the CLI on
all cores (the job manager leaves one core to the web server: on 2 cores that is 1 torch
thread against the CLI's 2).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FINAL = ("completed", "failed", "stopped", "interrupted")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Throughput(NamedTuple):
    """Images/s of one run over all its epochs, and from epoch 2 on (``steady``).

    The steady figure leaves out epoch 1: model warm-up on both sides and, in the dashboard,
    the watching tabs loading the app while it runs (a one-time cost per tab).
    """

    all: float
    epochs: int
    steady: float
    first_s: float  # seconds of epoch 1 (where the extra tabs load)


def _throughput(run_dir: Path) -> Throughput:
    info = json.loads((run_dir / "data_info.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"bench: no metrics in {run_dir}")
    n = int(info["num_train"])

    def rate(rs: list[dict]) -> float:
        return n * len(rs) / sum(float(r["seconds"]) for r in rs)

    return Throughput(rate(rows), len(rows), rate(rows[1:] or rows), float(rows[0]["seconds"]))


def _wait_idle(page, timeout: int = 120_000) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def _set_number(page, key: str, value: int) -> None:
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Enter")
    _wait_idle(page)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process, all its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _chromium_pids() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if "chrom" in (d / "comm").read_text():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


CPU_SPLIT: list[dict[str, float]] = []  # per dashboard run: where the machine's CPU went while it trained


def dashboard_run(tmp: Path, epochs: int, tabs: int, few_shot: int | None, nice_browser: bool = False,
                  separate: bool = False) -> Path:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = dict(os.environ, TRANSFER_LAB_RUNS=str(tmp / "runs-ui"), TRANSFER_LAB_DATA=str(tmp / "data"),
               TRANSFER_LAB_CACHE=str(tmp / "cache-ui"))
    (tmp / "data").mkdir(exist_ok=True)
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().decode() == "ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("bench: the dashboard did not start: " + (tmp / "server.log").read_text()[-2000:])
            time.sleep(0.3)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                # Tabs of one browser share its profile (HTTP cache included); --separate-contexts gives
                # each tab a fresh one, as three different browsers (or users) would have.
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.goto(url)
                _wait_idle(page)
                if few_shot:
                    page.get_by_role("link", name="Data").first.click()
                    page.wait_for_selector(".st-key-train_per_class input", timeout=120_000)
                    _wait_idle(page)
                    _set_number(page, "train_per_class", few_shot)
                    page.get_by_role("link", name="Train").first.click()
                page.wait_for_selector(".st-key-start button", timeout=120_000)
                _wait_idle(page)
                _set_number(page, "epochs", epochs)
                page.locator(".st-key-start button").click()
                page.wait_for_url("**run=**", timeout=120_000)
                rid = page.url.split("run=")[1].split("&")[0]
                watchers = [page]
                if tabs == 0:  # nobody watches: the cost of the thread policy alone
                    page.close()
                    watchers = []
                for _ in range(tabs - 1):
                    other = (browser.new_context(viewport={"width": 1400, "height": 1000}) if separate else context).new_page()
                    other.goto(page.url)
                    watchers.append(other)
                run_dir = tmp / "runs-ui" / rid
                if nice_browser:  # diagnostic: the browsers only get what training leaves
                    for pid in _chromium_pids():
                        try:
                            os.setpriority(os.PRIO_PROCESS, pid, 19)
                        except OSError:
                            pass
                print(f"dashboard run {rid}: {len(watchers)} tabs watching")
                t0 = time.monotonic()
                server0, chrome0 = _cpu_s(proc.pid), sum(_cpu_s(p) for p in _chromium_pids())
                deadline = time.monotonic() + 3600
                while time.monotonic() < deadline:
                    try:
                        state = json.loads((run_dir / "status.json").read_text()).get("state")
                    except (OSError, ValueError):
                        state = None
                    if state in FINAL:
                        break
                    time.sleep(1.0)
                wall = time.monotonic() - t0
                server_s = _cpu_s(proc.pid) - server0
                CPU_SPLIT.append({"wall": wall, "server (training included)": server_s,
                                  "chromium": max(0.0, sum(_cpu_s(p) for p in _chromium_pids()) - chrome0)})
                if state != "completed":
                    raise SystemExit(f"bench: the dashboard run ended {state}")
                if watchers:
                    time.sleep(2.0)  # let the tabs draw the final state (part of what watching costs)
                    page.screenshot(path=str(tmp / "dashboard.png"), full_page=True)
            finally:
                browser.close()
        return run_dir
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def cli_run(tmp: Path, config: Path, label: str, threads: int | None = None) -> Path:
    runs = tmp / f"runs-{label}"
    cmd = [sys.executable, "-m", "transfer_core", "train", str(config), "--runs-dir", str(runs), "-q"]
    if threads:
        cmd += ["--set", f"train.threads={threads}"]
    env = dict(os.environ, TRANSFER_LAB_DATA=str(tmp / "data"), TRANSFER_LAB_CACHE=str(tmp / f"cache-{label}"))
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench: CLI run failed ({out.returncode}): {out.stderr[-2000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 epoch on 40 training images per class")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--tabs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3, help="rounds of (dashboard, CLI at equal threads), averaged")
    p.add_argument("--separate-contexts", action="store_true",
                   help="open each extra tab in a fresh browser context (no shared cache), as separate browsers would")
    p.add_argument("--nice-browser", action="store_true",
                   help="diagnostic: run chromium at nice 19, so the ratio shows the server's own cost")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (runs, logs) instead of removing it")
    args = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: chromium not found at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        print("error: playwright is not installed (pip install playwright)", file=sys.stderr)
        return 2
    epochs = args.epochs or (1 if args.quick else 4)
    few_shot = 40 if args.quick else None
    sys.path.insert(0, str(ROOT))
    from transfer_core.jobs import ui_threads

    tmp = Path(tempfile.mkdtemp(prefix="transfer-lab-dash-bench-"))
    print(f"bench_dashboard: {os.cpu_count()} CPUs, load average {'%.1f %.1f %.1f' % os.getloadavg()}; scratch {tmp}")
    th = ui_threads()
    try:
        # Rounds of (dashboard watched, CLI at the dashboard's thread count): each side is averaged,
        # the load of a shared machine drifts. The CLI trains the dashboard run's own config.yaml.
        # Then a dashboard run nobody watches and the CLI at its default threads split the rest.
        ui_runs: list[Throughput] = []
        cli_runs: list[Throughput] = []
        config: Path | None = None
        for r in range(args.rounds):
            ui_dir = dashboard_run(tmp, epochs, args.tabs, few_shot, args.nice_browser, args.separate_contexts)
            config = config or ui_dir / "config.yaml"
            ui_runs.append(_throughput(ui_dir))
            cli_runs.append(_throughput(cli_run(tmp, config, f"cli-{r}", threads=th)))
        assert config is not None
        ui_0 = _throughput(dashboard_run(tmp, epochs, 0, few_shot))
        cli_all = _throughput(cli_run(tmp, config, "cli-all"))
        ui_mean, cli_mean = _mean(ui_runs), _mean(cli_runs)

        def runs(xs: list[Throughput], field: str) -> str:
            return ", ".join(f"{getattr(x, field):.1f}" for x in xs)

        print(f"img/s over all {ui_mean.epochs} epochs | from epoch 2 on (steady); {args.rounds} round(s) averaged")
        print(f"  dashboard + {args.tabs} tabs ({th} torch thread(s)): {ui_mean.all:7.1f} | {ui_mean.steady:7.1f}"
              f"   (runs: {runs(ui_runs, 'all')} | {runs(ui_runs, 'steady')})")
        print(f"  CLI with train.threads={th}         : {cli_mean.all:7.1f} | {cli_mean.steady:7.1f}"
              f"   (runs: {runs(cli_runs, 'all')} | {runs(cli_runs, 'steady')})")
        print(f"  dashboard, no tab open          : {ui_0.all:7.1f} | {ui_0.steady:7.1f}")
        print(f"  CLI ({_threads_default()} torch threads)           : {cli_all.all:7.1f} | {cli_all.steady:7.1f}")
        for field, label in (("all", "all epochs"), ("steady", "steady")):
            ui, cli, unwatched, cli_full = (getattr(x, field) for x in (ui_mean, cli_mean, ui_0, cli_all))
            print(f"RATIO dashboard + {args.tabs} tabs / CLI at equal threads ({th}), {label}: {ui / cli:.3f}"
                  f"  [goal >= 0.95]")
            print(f"  = in-app, unwatched / CLI@{th}: {unwatched / cli:.3f}  x  watched / unwatched: {ui / unwatched:.3f}"
                  f";  for reference, / CLI on all cores: {ui / cli_full:.3f} (thread policy CLI@{th} / CLI:"
                  f" {cli / cli_full:.3f})")
        print(f"epoch 1 (mean): dashboard + {args.tabs} tabs {ui_mean.first_s:.2f} s, CLI@{th} {cli_mean.first_s:.2f} s,"
              f" unwatched dashboard {ui_0.first_s:.2f} s")
        for i, split in enumerate(CPU_SPLIT, start=1):
            wall = split.pop("wall")
            parts = ", ".join(f"{k} {v:.1f} s ({v / wall:.0%})" for k, v in split.items())
            print(f"dashboard run {i}: {wall:.1f} s wall; CPU: {parts}")
        print(f"end: load average {'%.1f %.1f %.1f' % os.getloadavg()}")
    finally:  # ~1 GB of runs and browser profiles: never left in /tmp (a full disk once failed CI)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _mean(xs: list[Throughput]) -> Throughput:
    n = len(xs)
    return Throughput(sum(x.all for x in xs) / n, xs[0].epochs, sum(x.steady for x in xs) / n, sum(x.first_s for x in xs) / n)


def _threads_default() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
