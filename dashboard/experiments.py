"""The Experiments page's results view: progress, the chart, the headline sentence and the tables
of one sweep folder, redrawn live while its sweep runs.

Everything is read from the sweep folder (:func:`transfer_core.sweeps.folder.read_results`);
the sweep's thread never touches Streamlit. While the sweep is active a fragment reruns
every ``REFRESH_S`` and stops its timer (one full rerun) once it has ended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.charts_sweeps import sweep_figure
from dashboard.formatting import duration
from dashboard.sweep_state import sweep_jobs
from transfer_core.i18n import N_, _
from transfer_core.sweeps.builtin import label_text, teacher_reference
from transfer_core.sweeps.timing import remaining_s
from transfer_core.sweeps.folder import SweepResults, read_results
from transfer_core.sweeps.headlines import headline_for, value_text

__all__ = ["REFRESH_S", "watch", "results", "progress_text", "summary_frame", "paired_frame", "minutes"]

REFRESH_S = 2.0
STATE_WORDS = {"completed": N_("completed"), "stopped": N_("stopped (finished trials kept)"), "failed": N_("failed"),
               "running": N_("running"), "pending": N_("not started")}


def minutes(seconds: float | None) -> str:
    """ "about 7 min", "about 40 s" (an estimate, said as one)."""
    if seconds is None:
        return _("unknown")
    if seconds < 90:
        return _("about {seconds:.0f} s").format(seconds=max(5, round(seconds / 5) * 5))
    return _("about {minutes:.0f} min").format(minutes=seconds / 60)


def results(path: str | Path) -> SweepResults | None:
    """The sweep's results, or None while its folder cannot be read (it is being created)."""
    try:
        return read_results(path)
    except Exception:  # noqa: BLE001 - a folder half written by the first refresh reads again next tick
        return None


def progress_text(res: SweepResults, active: bool) -> tuple[float, str]:
    n, total = res.n_done, max(res.n_total, 1)
    text = _("{n} of {total} trials").format(n=n, total=res.n_total)
    if active and not res.trials:
        text += " · " + _("training the runs it needs first (the source models, once)")
    elif active:
        left = remaining_s(res)
        running = sum(1 for t in res.trials if t.get("state") == "running")
        text += " · " + _("{n} running").format(n=running) if running else ""
        text += " · " + _("{time} left").format(time=minutes(left)) if left else ""
    else:
        text += " · " + (_(STATE_WORDS[res.state]) if res.state in STATE_WORDS else str(res.state))
    failed = sum(1 for t in res.trials if t.get("state") == "failed")
    if failed:
        text += " · " + _("{n} failed").format(n=failed)
    return min(n / total, 1.0), text


AXIS_NAMES = {"data.train_per_class": N_("labels per class"), "backbones.0.freeze": N_("frozen groups"),
              "alpha1": "α₁", "variant": N_("variant"), "model": N_("model")}  # the built-in experiments' axes, as shown


def _interval(r: dict[str, Any]) -> str:
    """The 95 % interval of val accuracy, drawn within 0-100 % (two or three seeds can reach past them)."""
    lo, hi = r.get("val_acc_ci_low"), r.get("val_acc_ci_high")
    if lo is None or hi is None:
        return _("one seed: no interval")
    return f"{max(lo, 0.0) * 100:.0f}–{min(hi, 1.0) * 100:.0f} %"


def summary_frame(res: SweepResults, builtin_kind: bool = False) -> pd.DataFrame:
    axes = list(res.spec.axes) + list(res.spec.search)
    names = {a: _(AXIS_NAMES[a]) if builtin_kind and a in AXIS_NAMES else a for a in axes}
    shown = label_text if builtin_kind else str
    rows = []
    for r in res.summary:
        n = int(r.get("n") or 0)
        t = r.get("train_s_mean")
        rows.append({**{names[a]: shown(r.get(a)) for a in axes}, _("seeds done"): n,
                     _("val accuracy (mean ± 95 %)"): value_text(r) if n else "—",
                     _("95 % interval"): _interval(r) if n else "—",
                     _("training per run"): "—" if t is None else _("under 0.1 s") if t < 0.05 else f"{float(t):.1f} s"})
    return pd.DataFrame(rows)


def paired_frame(res: SweepResults, builtin_kind: bool = False) -> pd.DataFrame:
    shown = label_text if builtin_kind else str
    rows = []
    for p in res.paired:
        n = int(p.get("n") or 0)
        if not n or p.get("mean_diff") is None:
            continue
        d, lo, hi = float(p["mean_diff"]) * 100, p.get("ci_low"), p.get("ci_high")
        interval = _("one seed") if lo is None or hi is None else _("{low:+.1f} to {high:+.1f}").format(
            low=lo * 100, high=hi * 100)
        axis = p.get("axis")
        rows.append({_("axis"): _(AXIS_NAMES[axis]) if builtin_kind and axis in AXIS_NAMES else axis, "a − b": f"{shown(p.get('a'))} − {shown(p.get('b'))}",
                     _("at"): p.get("at") or "", _("seeds"): n,
                     _("mean difference"): _("{diff:+.1f} points").format(diff=d), _("95 % interval"): interval,
                     _("a wins / ties / loses"): f"{p.get('wins')} / {p.get('ties')} / {p.get('losses')}"})
    return pd.DataFrame(rows)


@st.cache_data(show_spinner=False, ttl=20, max_entries=8)
def _reference(path: str, fingerprint: str, n_done: int) -> dict[str, Any] | None:
    """The teacher of a compress sweep (reads the run store: once per finished trial, or every 20 s)."""
    res = results(path)
    return teacher_reference(res.spec) if res is not None else None


def _draw(path: str, kind: str | None) -> bool:
    """Everything about one sweep; returns whether its sweep is still running in this process."""
    jobs = sweep_jobs()
    active = jobs.active() is not None and str(jobs.active()) == path
    res = results(path)
    if res is None:
        st.progress(0.0, text=_("Starting…"))
        return active
    frac, text = progress_text(res, active)
    st.progress(frac, text=text)
    if not active and jobs.error() and str(jobs.last()) == path:
        st.error(jobs.error().splitlines()[0], icon=":material/error:")
    axes = {**res.spec.axis_labels()}
    ref = _reference(path, res.spec.fingerprint(), res.n_done) if kind == "compress" else None
    fig = sweep_figure(kind, res.summary, res.trials, axes, reference=ref)
    st.plotly_chart(fig, key="sweep_chart", config={"displayModeBar": False})
    st.markdown(f"**{headline_for(res, kind, reference=ref)}**")
    st.caption(_("± is the half-width of the 95 % interval over seeds (Student t). The same seed gives every "
                 "variant the same split, so the differences are paired; a single seed is one draw, not a finding."))
    if res.summary:
        st.dataframe(summary_frame(res, kind is not None), hide_index=True, key="sweep_summary",
                     height="content" if len(res.summary) <= 40 else "auto")  # a whole small grid, no inner scroll
    paired = paired_frame(res, kind is not None)
    if not paired.empty:
        with st.expander(_("Paired differences over seeds (a − b, wins/ties/losses)")):
            st.dataframe(paired, hide_index=True)
    st.caption(_("Sweep folder: `{path}` (trials.csv, summary.csv, paired.csv) · elapsed trial time {time}").format(
        path=path, time=duration(sum(float(t.get("wall_s") or 0) for t in res.trials))))
    return active


@st.fragment(run_every=REFRESH_S)
def _live(path: str, kind: str | None) -> None:
    """Redraws every REFRESH_S while the sweep runs; one full rerun when it ends (the timer stops)."""
    if not _draw(path, kind):
        st.rerun(scope="app")


@st.fragment
def _static(path: str, kind: str | None) -> None:
    _draw(path, kind)


def watch(path: str | Path, kind: str | None, active: bool) -> None:
    """The results of the sweep in ``path``: live while ``active``, else drawn once."""
    if active:
        _live(str(path), kind)
    else:
        _static(str(path), kind)
