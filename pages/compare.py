"""Compare: several runs side by side — curves, final numbers, and what differed in their settings.

Reads only the run store (configs and metrics). Runs trained on different classes are
flagged: their accuracies answer different questions.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import widgets_distill as wd
from dashboard import charts
from dashboard.formatting import run_title
from dashboard.labels import kind_label, method_label, state_label
from dashboard.state import run_store
from transfer_core.compare import best_and_spread, comparison_rows, config_diff, diff_table, not_comparable, run_kind
from transfer_core.i18n import _, ngettext
from transfer_core.seeds import ONE_SEED, experiment_link, paired_text, seed_index, seed_key, spread_text

MAX_DEFAULT = 3

ss = st.session_state

st.title(_("Compare"))
st.caption(_("Put runs side by side: learning curves, final accuracy by kind (scratch, transfer, fusion, distill), "
             "and exactly which settings differed."))

store = run_store()
summaries = [s for s in store.list() if s.epochs_done > 0]
if not summaries:
    st.info(_("No run has finished an epoch yet. Train a few on the Train page, then compare them here."),
            icon=":material/info:")
    st.stop()

by_id = {s.id: s for s in summaries}
configs_all: dict[str, dict[str, Any]] = {}
for s in summaries:
    try:
        configs_all[s.id] = store.get(s.id).config_dict()
    except Exception:  # a damaged config.yaml: still listed, compared as empty
        configs_all[s.id] = {}


def _short(rid: str) -> str:
    return run_title(by_id[rid], kind_label(run_kind(configs_all.get(rid, {}))))


def _option(rid: str) -> str:
    s = by_id[rid]
    if s.val_acc is None:
        return _("{run} ({dataset}, {state})").format(run=_short(rid), dataset=s.dataset, state=state_label(s.state))
    return _("{run} ({dataset}, {state} · val acc {acc:.1%})").format(
        run=_short(rid), dataset=s.dataset, state=state_label(s.state), acc=s.val_acc)


_wanted = st.query_params.get("runs")  # ?runs=a,b,c (the transfer demo links here): preselect once per link
if _wanted and ss.get("_cmp_link") != _wanted and any(r in by_id for r in _wanted.split(",")):
    ss["_cmp_link"] = _wanted
    ss["cmp_runs"] = [r for r in _wanted.split(",") if r in by_id]
if "cmp_runs" in ss:
    ss["cmp_runs"] = [r for r in ss["cmp_runs"] if r in by_id]
else:
    done = [s.id for s in summaries if s.state == "completed"] or [s.id for s in summaries]
    ss["cmp_runs"] = done[:MAX_DEFAULT]

picked: list[str] = st.multiselect(_("Runs to compare"), list(by_id), key="cmp_runs", format_func=_option,
                                   placeholder=_("Choose two or more runs"))
if not picked:
    st.info(_("Choose at least one run above."), icon=":material/info:")
    st.stop()

configs = {rid: configs_all.get(rid, {}) for rid in picked}
ref, odd = not_comparable(configs)
if odd and ref is not None:
    ref_classes = _("all classes") if ref[1] == "all" else (ref[1] if isinstance(ref[1], str) else ", ".join(ref[1]))
    st.warning(
        ngettext("Not comparable: {runs} was trained on different classes than the others "
                 "({dataset}, {classes}): their accuracies measure a different task.",
                 "Not comparable: {runs} were trained on different classes than the others "
                 "({dataset}, {classes}): their accuracies measure a different task.", len(odd)).format(
            runs=", ".join(_short(r) for r in odd), dataset=ref[0], classes=ref_classes),
        icon=":material/warning:",
    )

seeds = seed_index(summaries, configs_all)  # completed runs by experiment: their siblings over seeds
over_seeds = {rid: seeds.summary(rid, configs[rid]) for rid in picked}
rows = [{"run": _short(r["id"]), **r, "seeds": over_seeds[r["id"]]["n"]}
        for r in comparison_rows([by_id[rid] for rid in picked], configs, odd)]
best, spread = best_and_spread(rows)
m = st.columns(4)
m[0].metric(_("Runs"), len(picked))
if best is not None:
    m[1].metric(_("Best final val accuracy"), f"{best['final val acc']:.1%}",
                help=_("{run}: {spread} with its settings").format(run=best["run"], spread=spread_text(over_seeds[best["id"]])))
    m[2].metric(_("Best run"), kind_label(best["kind"]), help=best["run"])
    if spread is not None:
        m[3].metric(_("Spread (best − worst)"), f"{spread:.1%}", help=_("between the comparable runs"))


def _over_seeds() -> None:
    """Each picked experiment over its seeds (mean ± 95 % interval), paired differences between
    experiments that both have several seeds, and "one seed" (with the experiment) where not."""
    groups: dict[str, list[str]] = {}  # picked runs by experiment (siblings picked together show once)
    for rid in picked:
        groups.setdefault(seed_key(configs[rid]), []).append(rid)
    lines, single = [], []
    for members in groups.values():
        head, summ = members[0], over_seeds[members[0]]
        names = ", ".join(_short(r) for r in members)
        if summ["n"] >= 2:
            lines.append("- " + _("**{names}**: {spread}, seeds {seeds} (mean ± 95 % interval over the completed runs "
                                  "with these settings)").format(names=names, spread=spread_text(summ),
                                                                 seeds=", ".join(map(str, summ["seeds"]))))
        else:
            acc = by_id[head].val_acc
            lines.append("- " + _("**{names}**: {acc}, {one_seed}").format(
                names=names, acc="—" if acc is None else f"{acc * 100:.1f} %", one_seed=_(ONE_SEED)))
            single.append(names)
    multi = [ms[0] for ms in groups.values() if over_seeds[ms[0]]["n"] >= 2 and ms[0] not in odd]
    kinds = [run_kind(configs[r]) for r in multi]
    for i, first in enumerate(multi):
        for second in multi[i + 1:]:
            a, b = first, second
            if run_kind(configs[a]) == "scratch" and run_kind(configs[b]) != "scratch":
                a, b = b, a  # the gap is read from scratch up
            ka, kb = run_kind(configs[a]), run_kind(configs[b])
            unique = ka != kb and kinds.count(ka) == 1 and kinds.count(kb) == 1  # a kind names one experiment
            la, lb = (kind_label(ka), kind_label(kb)) if unique else (_short(a), _short(b))
            p = seeds.paired(a, b, configs[a], configs[b])
            lines.append("- " + _("Paired by seed: {text}.").format(text=paired_text(p, la, lb)))
    st.subheader(_("Over seeds"))
    st.markdown("\n".join(lines))
    if single:
        st.info(_("**One seed** for {runs}: a single run is one draw, and with few labels another seed can move its "
                  "accuracy by several points. {link}").format(runs="; ".join(single), link=experiment_link()),
                icon=":material/casino:")


_over_seeds()

st.plotly_chart(charts.compare_curves_figure({_short(rid): store.get(rid).metrics() for rid in picked}),
                key="cmp_curves", config={"displayModeBar": False})
st.plotly_chart(charts.kind_bar_figure([{"label": r["run"] if r["comparable"] else _("{run} (other classes)").format(run=r["run"]),
                                     "val_acc": r["final val acc"], "kind": r["kind"], **over_seeds[r["id"]]}
                                    for r in rows]), key="cmp_kinds", config={"displayModeBar": False})

st.dataframe(
    pd.DataFrame(rows).drop(columns=["id"]), key="cmp_table", hide_index=True, width="stretch",
    column_config={  # the columns keep their keys (the data); only the headers and the kind/method cells are shown translated
        "run": st.column_config.TextColumn(_("run")),
        "kind": st.column_config.SelectboxColumn(_("kind"), options=sorted({r["kind"] for r in rows}),
                                                 format_func=kind_label),
        "method": st.column_config.SelectboxColumn(_("method"), options=sorted({r["method"] for r in rows}),
                                                   format_func=method_label),
        "backbones": st.column_config.TextColumn(_("backbones")),
        "weights": st.column_config.TextColumn(_("weights")),
        "epochs": st.column_config.TextColumn(_("epochs")),
        "final val acc": st.column_config.ProgressColumn(_("final val acc"), format="percent", min_value=0, max_value=1),
        "best val acc": st.column_config.NumberColumn(_("best val acc"), format="percent"),
        "comparable": st.column_config.CheckboxColumn(_("comparable"), help=_("same dataset and classes as most runs")),
        "seeds": st.column_config.NumberColumn(_("seeds"), help=_("completed runs with these settings and another seed "
                                                                  "(this one included)")),
    },
)

students = [rid for rid in picked if configs[rid].get("method") == "distill"]
for rid in students[:3]:  # size and speed need the models: measured on a click, kept in the run folders
    with st.expander(_("{run}: the student against its teachers (accuracy, parameters, size, speed)").format(run=_short(rid)),
                     icon=":material/compress:"):
        wd.versus_section(store.get(rid), configs[rid], prefix=f"cmp_{rid}_", title=False)
        st.page_link("pages/results.py", label=_("Open it on Results"), query_params={"run": rid})

st.subheader(_("What was different"))
diff = config_diff(configs)
if len(picked) < 2:
    st.caption(_("Pick a second run to see which settings differ."))
elif not diff:
    st.caption(_("These runs have identical settings (only their names may differ)."))
else:
    cells = diff_table(diff, picked)
    table = pd.DataFrame({_short(rid): cells[rid] for rid in picked}, index=list(diff))
    table.index.name = _("setting")
    st.caption(ngettext("{n} setting differ; every other setting is the same.",
                        "{n} settings differ; every other setting is the same.", len(diff)).format(n=len(diff)))
    st.dataframe(table, key="cmp_diff", width="stretch")
