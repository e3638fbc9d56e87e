"""Experiments: a question answered over seeds and settings — a built-in experiment or any sweep YAML.

Pick one (``?exp=labels`` preselects), see its trials and estimated time at the default and
the quick size, Start; the chart, the headline sentence and the summary fill in as trials
finish. Stop keeps the finished trials; Resume (the same spec again) runs only the rest.
The sweep runs in the server's one sweep thread (:func:`dashboard.sweep_state.sweep_jobs`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import experiments as ex
from dashboard.sweep_state import sweep_jobs
from transfer_core.i18n import N_, _, ngettext
from transfer_core.paths import runs_dir
from transfer_core.sweeps import builtin, timing
from transfer_core.sweeps.folder import read_state, sweep_dir
from transfer_core.sweeps.spec import SweepSpec, load_sweep

ss = st.session_state
CUSTOM = "custom"
CHOICES = [*builtin.EXPERIMENTS, CUSTOM]
SIZE_NAMES = {"default": N_("Default size"), "quick": N_("Quick (a live class)"), CUSTOM: N_("This sweep")}
SIZE_WORDS = {"default": N_("default size"), "quick": N_("quick size")}

st.title(_("Experiments"))
st.caption(_("One run is one draw: with few labels another seed can move accuracy by 10 points or more. An "
             "experiment repeats a question over seeds and settings and answers with the mean, its 95 % interval "
             "and how often one variant beats another on the same split."))

_wanted = st.query_params.get("exp")  # a link (?exp=labels) preselects once per link
if _wanted in CHOICES and ss.get("_exp_link") != _wanted:
    ss["_exp_link"] = _wanted
    ss["exp_pick"] = _wanted
choice = st.selectbox(_("Experiment"), CHOICES, key="exp_pick",
                      format_func=lambda c: _("Custom sweep (YAML)") if c == CUSTOM else builtin.EXPERIMENTS[c].title)
if st.query_params.get("exp") != choice:
    st.query_params["exp"] = choice
    ss["_exp_link"] = choice

jobs = sweep_jobs()
root = runs_dir().resolve()  # the sweep runner holds absolute paths
specs: dict[str, SweepSpec] = {}  # size (or "custom") -> spec
kind: str | None = choice if choice != CUSTOM else None

if choice == CUSTOM:
    st.caption(_("A base config, axes and seeds; the grid is the product of the axes, times the seeds. Start from a "
                 "built-in experiment's YAML and edit it."))
    if "exp_yaml" not in ss:
        ss["exp_yaml"] = builtin.spec_yaml("labels", "quick")
    st.text_area(_("Sweep YAML"), key="exp_yaml", height=380)
    try:
        specs[CUSTOM] = load_sweep(ss["exp_yaml"], base_dir=Path.cwd())
    except Exception as exc:  # noqa: BLE001 - anything wrong with the text is one line; the text stays
        st.error(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, icon=":material/error:")
    if CUSTOM in specs:
        match = builtin.experiment_of(specs[CUSTOM])
        kind = match[0] if match else None
else:
    exp = builtin.EXPERIMENTS[choice]
    st.subheader(exp.title)
    st.caption(exp.description)
    try:
        specs = {size: builtin.load_builtin(choice, size) for size in builtin.SIZES}
    except Exception as exc:  # noqa: BLE001 - e.g. a bad TRANSFER_LAB_EXPERIMENT: one line
        st.error(str(exc).splitlines()[0], icon=":material/error:")


def _shape(spec: SweepSpec) -> str:
    parts = [str(len(v)) for v in spec.axis_labels().values()]
    if spec.is_search:
        parts = [ngettext("{n} sampled point", "{n} sampled points", spec.n_search).format(n=spec.n_search)]
    seeds = _("one seed") if len(spec.seeds) == 1 else ngettext("{n} seed", "{n} seeds", len(spec.seeds)).format(n=len(spec.seeds))
    return " × ".join(parts + [seeds])


def _folder_state(spec: SweepSpec) -> tuple[Path, str | None]:
    path = sweep_dir(spec, root)
    if not (path / "sweep.yaml").is_file():
        return path, None
    return path, read_state(path).get("state")


def _start(spec: SweepSpec, label: str) -> None:
    try:
        path = jobs.start(spec)
    except RuntimeError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    ss["exp_shown"] = str(path)
    ss["exp_size_shown"] = label
    st.rerun()


active = jobs.active()
cols = st.columns(len(specs)) if specs else []
for col, (size, spec) in zip(cols, specs.items()):
    path, state = _folder_state(spec)
    with col, st.container(border=True):
        pending = timing.before_pending(spec, root)  # reads the run store once
        est = timing.estimate_s(spec, include_before=False) + sum(timing.trial_seconds(b) for b in pending)
        st.markdown(_("**{name}** · {n} trials ({shape})").format(name=_(SIZE_NAMES[size]), n=spec.n_trials,
                                                                  shape=_shape(spec)))
        k = len(pending)  # compress: the source and its teacher
        if not pending:
            note = _("Estimated time on a 2-core CPU: {time}")
        elif all(str(b.get("name", "")).startswith("source") for b in pending):
            note = ngettext("Estimated time on a 2-core CPU: {time} (includes {n} source run trained first, once)",
                            "Estimated time on a 2-core CPU: {time} (includes {n} source runs trained first, once)", k)
        else:
            note = ngettext("Estimated time on a 2-core CPU: {time} (includes {n} run trained first, once)",
                            "Estimated time on a 2-core CPU: {time} (includes {n} runs trained first, once)", k)
        st.caption(note.format(time=ex.minutes(est), n=k))
        running_here = active is not None and active == path
        if running_here:
            st.button(_("Running…"), key=f"exp_start_{size}", disabled=True, width="stretch")
        elif state == "completed":
            st.button(_("Completed: results below"), key=f"exp_start_{size}", disabled=True, width="stretch")
        elif st.button(_("Resume") if state in ("stopped", "failed", "running") else _("Start"), key=f"exp_start_{size}",
                       type="primary", disabled=active is not None, width="stretch",
                       help=_("One sweep runs at a time: stop the running one first") if active is not None else None):
            _start(spec, size)

# which sweep folder to show: the running one of this choice, else the last one started here, else the newest
existing = {size: sweep_dir(spec, root) for size, spec in specs.items()
            if (sweep_dir(spec, root) / "sweep.yaml").is_file()}
if active is not None and active not in existing.values():
    with st.container(border=True):
        other = ex.results(active)
        if other:
            msg = _("Another sweep is running: **{name}** · {n} of {total} trials. One sweep runs at a time.").format(
                name=active.name, n=other.n_done, total=other.n_total)
        else:
            msg = _("Another sweep is running: **{name}**. One sweep runs at a time.").format(name=active.name)
        st.info(msg, icon=":material/hourglass_top:")
        if st.button(_("Stop it (keeps its finished trials)"), key="exp_stop_other"):
            jobs.stop()
            st.rerun()
if not existing:
    if specs:
        st.caption(_("Nothing run yet for this choice: press Start. The chart fills in as trials finish."))
    st.stop()

sizes = list(existing)
by_path = {str(p): s for s, p in existing.items()}
if ss.get("exp_size_shown") not in sizes:
    ss["exp_size_shown"] = by_path.get(str(active)) or by_path.get(ss.get("exp_shown", "")) or max(
        sizes, key=lambda s: (existing[s] / "sweep.yaml").stat().st_mtime)
if active is not None and str(active) in by_path:
    ss["exp_size_shown"] = by_path[str(active)]
if len(sizes) > 1:
    st.radio(_("Results of"), sizes, key="exp_size_shown", horizontal=True,
             format_func=lambda s: _(SIZE_WORDS[s]) if s in SIZE_WORDS else s)
shown = existing[ss["exp_size_shown"]]
is_active = active is not None and active == shown

st.divider()
c1 = st.columns([1, 3])[0]
if is_active:
    if c1.button(_("Stop"), key="exp_stop", icon=":material/stop:", help=_("Stops after the current trial's batch; "
                 "finished trials are kept and Resume runs the rest")):
        jobs.stop()
        st.toast(_("Stopping: the finished trials are kept."))
else:
    res = ex.results(shown)
    if res is not None and res.n_done < res.n_total and active is None:
        if c1.button(_("Resume ({n} trials left)").format(n=res.n_total - res.n_done), key="exp_resume",
                     icon=":material/play_arrow:"):
            _start(res.spec, ss["exp_size_shown"])
ex.watch(shown, kind, is_active)
