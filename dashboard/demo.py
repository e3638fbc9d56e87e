"""The Train page's guided transfer demo: one button queues the triple, a panel follows it.

The triple (source, transfer from it, from-scratch twin) comes from
:mod:`transfer_core.demo`. Which runs belong to the demo is a UI choice: kept in
``st.session_state`` and in the URL (``?demo=<source>,<transfer>,<scratch>``) so a
reload still shows it; everything else is read from the run store.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard import charts
from dashboard.labels import state_label
from dashboard.run_view import RunView, run_view
from dashboard.state import job_manager, run_exists, run_store, select_run, selected_run_id
from transfer_core.config import ConfigError
from transfer_core.demo import ROLES, DemoSizes, demo_sizes, queue_demo
from transfer_core.i18n import N_, _, ngettext
from transfer_core.seeds import experiment_link, paired_text, spread_text, store_seed_index

__all__ = ["demo_section", "demo_ids"]

ss = st.session_state
_KEY = "demo_runs"
DOUBLE_CLICK_S = 5.0
TITLES = {"source": N_("1 · Source"), "transfer": N_("2 · Transfer"), "scratch": N_("3 · From scratch")}


def _classes(c: tuple[int, ...]) -> str:
    c = list(c)
    return f"{c[0]}–{c[-1]}" if c == list(range(c[0], c[0] + len(c))) else ", ".join(map(str, c))


def _epochs(n: int) -> str:
    return ngettext("{n} epoch", "{n} epochs", n).format(n=n)


def _frozen(freeze: int | str) -> str:
    if freeze == "all":
        return _("body frozen, only the new head trains")
    if not freeze:
        return _("nothing frozen")
    n = int(freeze)
    return ngettext("first {n} layer group frozen", "first {n} layer groups frozen", n).format(n=n)


def demo_ids() -> dict[str, str] | None:
    """role -> run id of this session's demo (from the URL first, so a reload keeps it), or None."""
    qp = st.query_params.get("demo")
    if qp:
        parts = qp.split(",")
        if len(parts) == len(ROLES) and all(run_exists(p) for p in parts):
            ss[_KEY] = dict(zip(ROLES, parts))
    ids = ss.get(_KEY)
    if ids and all(run_exists(r) for r in ids.values()):
        return ids
    return None


def _start(sizes: DemoSizes) -> None:
    last = ss.get("_demo_started")
    if last and time.monotonic() - last < DOUBLE_CLICK_S:
        st.toast(_("The demo was just queued: watch it below."), icon=":material/info:")
        return
    try:
        ids = queue_demo(job_manager(), sizes)
    except (ConfigError, ValueError, RuntimeError) as exc:
        ss["demo_error"] = str(exc)
        return
    ss["_demo_started"] = time.monotonic()
    ss[_KEY] = ids
    st.query_params["demo"] = ",".join(ids[r] for r in ROLES)
    ss["watched_run"] = ids["source"]
    select_run(ids["source"])
    st.rerun()  # the whole app: the sidebar queue shows the three jobs at once


def _follow(ids: dict[str, str]) -> None:
    """Watch the demo's next active run once the watched one (a demo run) has ended."""
    watched = selected_run_id()
    if watched not in ids.values() or job_manager().is_active(watched):
        return
    for role in ROLES:
        rid = ids[role]
        if job_manager().is_active(rid) and rid != watched:
            ss["watched_run"] = rid
            select_run(rid)
            return


def _panel(ids: dict[str, str]) -> bool:
    """Status of the three runs, then their comparison once done; returns whether any is active."""
    views: dict[str, RunView] = {role: run_view(ids[role]) for role in ROLES}
    active = any(job_manager().is_active(ids[r]) for r in ROLES)
    cols = st.columns(3)
    for col, role in zip(cols, ROLES):
        v = views[role]
        s, state = v.summary, v.state
        shown = state_label(state)
        value = f"{s.val_acc:.1%}" if s.val_acc is not None and state == "completed" else shown
        col.metric(_(TITLES[role]), value, help=_("run {run_id} · {name}").format(run_id=ids[role], name=s.name))
        if state in ("running", "queued"):
            ep = int(v.progress.get("epoch") or 0)
            col.caption(_("{state} · epoch {epoch} of {epochs}").format(state=shown, epoch=ep, epochs=v.epochs)
                        if state == "running" and ep else _("{state}…").format(state=shown))
        elif state == "failed":
            col.caption(":red[" + (v.message or shown) + "]")
        else:
            col.caption(f"{shown} · {s.dataset} · {_epochs(v.epochs_done)}")
    if active:
        return True
    tr, sc = views["transfer"].summary, views["scratch"].summary
    if views["transfer"].state == "completed" and views["scratch"].state == "completed":
        _verdict(ids, views)
        rows = [{"label": _("transfer from the source"), "val_acc": tr.val_acc, "kind": "transfer"},
                {"label": _("from scratch"), "val_acc": sc.val_acc, "kind": "scratch"}]
        st.plotly_chart(charts.kind_bar_figure(rows), key="demo_kinds", config={"displayModeBar": False})
    else:
        st.warning(_("The demo did not finish: see the failed run above."), icon=":material/warning:")
    st.page_link("pages/compare.py", label=_("Compare the three runs: curves, table, what differed"),
                 icon=":material/compare_arrows:", query_params={"runs": ",".join(ids[r] for r in ROLES)})
    return False


def _verdict(ids: dict[str, str], views: dict[str, RunView]) -> None:
    """Transfer against scratch: over seeds where both have completed siblings (mean ± interval,
    paired by seed, wins/losses), else the one-seed gap said as such, with the experiment that settles it."""
    tr, sc = views["transfer"].summary, views["scratch"].summary
    try:
        index = store_seed_index(run_store())
        pair = index.paired(ids["transfer"], ids["scratch"], views["transfer"].config, views["scratch"].config)
    except Exception:  # noqa: BLE001 - a damaged sibling never hides the demo's own result
        index, pair = None, {"n": 0}
    if index is not None and pair["n"] >= 2:
        t_sum = index.summary(ids["transfer"], views["transfer"].config)
        s_sum = index.summary(ids["scratch"], views["scratch"].config)
        verdict = paired_text(pair, _("Transfer"), _("scratch"))
        st.markdown(_("**{verdict}** of validation accuracy on the target classes, with the same few labels and "
                      "split for each seed: transfer {transfer}, scratch {scratch} (mean ± 95 % interval).").format(
                        verdict=verdict, transfer=spread_text(t_sum), scratch=spread_text(s_sum)))
        return
    gain = round(((tr.val_acc or 0.0) - (sc.val_acc or 0.0)) * 100, 1)
    if not gain:
        verdict = _("On one seed, transfer and scratch tie at {acc:.1%}").format(acc=tr.val_acc or 0.0)
    elif gain > 0:
        verdict = _("On one seed, transfer beats scratch by {gain:.1f} points").format(gain=abs(gain))
    else:
        verdict = _("On one seed, transfer trails scratch by {gain:.1f} points").format(gain=abs(gain))
    st.markdown(_("**{verdict}** of validation accuracy on the target classes, with the same few labels, "
                  "split and seed. One seed is one draw: with so few labels another seed can move each run by "
                  "several points, and the gap with it. {link}").format(verdict=verdict, link=experiment_link()))


@st.fragment(run_every=2.0)
def _panel_live(ids: dict[str, str]) -> None:
    if not _panel(ids):
        st.rerun(scope="app")  # stops the timer; the static panel draws the comparison


def demo_section() -> None:
    """The demo's button and, once queued, its live panel. Call at script level, before the live view."""
    try:
        sizes = demo_sizes()
    except (ConfigError, ValueError, TypeError) as exc:
        st.error(_("Transfer demo settings: {error}").format(error=exc), icon=":material/error:")
        return
    ids = demo_ids()
    if ids:
        _follow(ids)
    with st.expander(_("Guided transfer demo: pretrain a source, transfer it, compare with scratch"),
                     icon=":material/school:", expanded=bool(ids)):
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        labels = ngettext("{n} label", "{n} labels", sizes.target_per_class).format(n=sizes.target_per_class)
        c1.markdown(
            _("1. **Source**: {backbone} from scratch on {dataset}, classes {classes} ({epochs}).").format(
                backbone=sizes.backbone, dataset=sizes.dataset, classes=_classes(sizes.source_classes),
                epochs=_epochs(sizes.source_epochs)) + "  \n"
            + _("2. **Transfer**: classes {classes} with only **{labels} per class**, starting from the source "
                "({frozen}; {epochs}).").format(classes=_classes(sizes.target_classes), labels=labels,
                                                frozen=_frozen(sizes.freeze), epochs=_epochs(sizes.target_epochs))
            + "  \n" + _("3. **From scratch**: the same split, seed and settings, random weights."))
        if c2.button(_("Run the transfer demo"), key="demo_start", type="primary", icon=":material/rocket_launch:",
                     width="stretch", help=_("Queues the three runs; they train one after another")):
            _start(sizes)
        err = ss.pop("demo_error", None)
        if err:
            st.error(_("Could not queue the demo: {error}").format(error=err), icon=":material/error:")
        if ids:
            if any(job_manager().is_active(r) for r in ids.values()):
                _panel_live(ids)
            else:
                _panel(ids)
