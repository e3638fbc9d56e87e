"""PNG images of plotly figures for the PowerPoint deck: kaleido driving the system's Chromium.

Why kaleido: it is plotly's own static-image engine, so a PNG is the figure the page and
the HTML deck draw, with the same plotly.js; version 1.x no longer ships a browser and
drives an installed Chrome or Chromium through choreographer (found on ``PATH``, or named
by ``$BROWSER_PATH``; Debian's ``/usr/bin/chromium`` here).

Why a child process: a browser that hangs must not hang the dashboard or the CLI. All the
figures of a deck go to one ``python -m transfer_core.present.render`` (one browser start,
then a fraction of a second per figure) in its own process group, which is killed after
``$TRANSFER_LAB_RENDER_TIMEOUT`` seconds (default 90); the caller then gets a
:class:`RenderError` with one line that says why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..i18n import _

__all__ = ["RenderError", "render_pngs", "browser_path", "TIMEOUT_ENV", "DEFAULT_TIMEOUT_S", "RENDERER"]

TIMEOUT_ENV = "TRANSFER_LAB_RENDER_TIMEOUT"
DEFAULT_TIMEOUT_S = 90.0
RENDERER = "kaleido (plotly's image export) driving Chromium"
_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class RenderError(RuntimeError):
    """The charts could not be drawn as images; the message is one line for the user."""


def browser_path() -> str | None:
    """The browser kaleido will drive: ``$BROWSER_PATH``, else the first Chrome/Chromium on ``PATH``."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env
    for name in _BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _timeout(timeout_s: float | None) -> float:
    if timeout_s is not None:
        return float(timeout_s)
    try:
        return float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S


def _kill(proc: subprocess.Popen, tmp: Path) -> None:
    """Stop the child and the browser it started: choreographer starts the browser in a session of its
    own, so it is found by its profile folder, which lies in our work folder ``tmp`` (TMPDIR)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass
    mark = str(tmp).encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if mark in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def render_pngs(figures: Sequence[Any], sizes: Sequence[tuple[int, int]], scale: float = 2.0,
                timeout_s: float | None = None) -> list[bytes]:
    """PNG bytes of each plotly figure at its (width, height) in CSS pixels, times ``scale``.

    Raises :class:`RenderError` (one line) when no browser is found, the renderer fails, or
    it takes longer than ``timeout_s`` (default: ``$TRANSFER_LAB_RENDER_TIMEOUT`` or 90 s).
    """
    if not figures:
        return []
    browser = browser_path()
    if not browser or not Path(browser).exists():
        raise RenderError(_("cannot draw the charts as images: no Chrome or Chromium found "
                            "(install chromium, or set BROWSER_PATH to a Chrome)"))
    limit = _timeout(timeout_s)
    tmp = Path(tempfile.mkdtemp(prefix="transfer-lab-render-"))
    try:
        jobs = []
        for i, (fig, (w, h)) in enumerate(zip(figures, sizes)):
            jobs.append({"fig": json.loads(fig.to_json()), "width": int(w), "height": int(h), "scale": float(scale),
                         "out": str(tmp / f"{i}.png")})
        (tmp / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
        # TMPDIR: kaleido's page and the browser's profile go in our folder, removed below even when killed
        env = dict(os.environ, BROWSER_PATH=browser, TMPDIR=str(tmp), TMP=str(tmp), TEMP=str(tmp))
        proc = subprocess.Popen([sys.executable, "-m", "transfer_core.present.render", str(tmp / "jobs.json"),
                                 str(limit)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=str(Path(__file__).resolve().parents[2]), start_new_session=True)
        try:
            _out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill(proc, tmp)
            raise RenderError(_("drawing the charts took longer than {limit} s and was stopped "
                                "(kaleido with {browser}; set {env} to allow more)").format(
                limit=f"{limit:g}", browser=browser, env=TIMEOUT_ENV)) from None
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (err or "").splitlines() if ln.strip()]
            why = lines[-1] if lines else _("exit code {code}").format(code=proc.returncode)
            raise RenderError(_("drawing the charts failed (kaleido with {browser}): {why}").format(
                browser=browser, why=why[:300]))
        out = []
        for j in jobs:
            p = Path(j["out"])
            if not p.is_file():
                raise RenderError(_("drawing the charts failed: the renderer wrote no image"))
            out.append(p.read_bytes())
        return out
    finally:
        _remove(tmp)


def _remove(tmp: Path) -> None:
    """Remove the work folder; a browser killed a moment ago may still be writing its profile there."""
    import time

    for _try in range(50):
        shutil.rmtree(tmp, ignore_errors=True)
        if not tmp.exists():
            return
        time.sleep(0.1)


def _child(jobs_path: str, limit: float) -> int:
    """In the child: draw every job with one kaleido (one browser)."""
    import asyncio

    import kaleido

    jobs = json.loads(Path(jobs_path).read_text(encoding="utf-8"))

    async def draw() -> None:
        # mathjax=False: no MathJax from a CDN (nothing here needs LaTeX, and there may be no network)
        async with kaleido.Kaleido(n=1, timeout=limit, mathjax=False) as k:
            for j in jobs:
                png = await k.calc_fig(j["fig"], opts={"format": "png", "width": j["width"], "height": j["height"],
                                                       "scale": j["scale"]})
                Path(j["out"]).write_bytes(png)

    try:
        asyncio.run(draw())
    except Exception as exc:  # noqa: BLE001 - one line for the parent
        print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - run by render_pngs
    sys.exit(_child(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_TIMEOUT_S))
