"""The distillation parts of the dashboard: the Train page's teacher settings and the Results
page's "Student vs teachers" section.

The student itself is an ordinary backbone picker (the Train page draws it). Here: which
completed runs teach (:func:`transfer_core.distill.candidate_teachers` on the classes of the
current data selection), T, λ, the unlabeled images and feature matching, each with one line
saying what it does; and, for a finished distill run, its teachers side by side with it
(:func:`transfer_core.distill.versus.student_vs_teachers`, measured once on a click and then
cached in the run folders and here).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import pandas as pd
import streamlit as st

from dashboard.formatting import human_count
from dashboard.labels import method_label
from dashboard.state import run_store
from transfer_core.config import DataConfig, RunConfig
from transfer_core.i18n import N_, _, language
from transfer_core.runs import Run, RunSummary

__all__ = ["DEFAULTS", "class_names", "teacher_label", "distill_settings", "check_teachers", "versus_section",
           "teacher_runs"]

# Widget defaults of the Train page's distill settings (T and λ as in Hinton et al. / the demo).
DEFAULTS: dict[str, Any] = {
    "distill_T": 4.0,
    "distill_lambda": 0.9,
    "distill_unlabeled": True,
    "distill_features": False,
}
STUDENT_DEFAULT = "mobilenet_v3_small"  # small, fast on a CPU: what a distillation is for
ROLES = {"student": N_("student"), "teacher": N_("teacher")}  # versus rows' role, as shown

ss = st.session_state


def class_names(data: Mapping[str, Any]) -> list[str] | None:
    """The class names of a data selection (the Data page's draft), in its order; None when the
    dataset cannot be listed (the run itself will then say why)."""
    from transfer_core.data import dataset_classes
    from transfer_core.data.splits import select_classes

    try:
        cfg = DataConfig(**{k: v for k, v in data.items() if k in DataConfig.__dataclass_fields__})
        available = dataset_classes(cfg.dataset, cfg)
        return [available[i] for i in select_classes(cfg.classes, available, cfg.dataset)]
    except Exception:  # noqa: BLE001 - a missing folder, a bad class: the Start button reports it
        return None


def teacher_label(s: RunSummary) -> str:
    """ "target-mnist · 76.0% · transfer resnet18 · a1b2": name and accuracy first (a chip shows its start)."""
    name = s.name or s.id
    acc = f" · {s.val_acc:.1%}" if s.val_acc is not None else ""
    tail = f" · {s.id[-4:]}" if s.name else ""
    return f"{name}{acc} · {method_label(s.method)} {'+'.join(s.backbones)}{tail}"


def _teacher_line(s: RunSummary) -> str:
    acc = ", " + _("val acc {acc:.1%}").format(acc=s.val_acc) if s.val_acc is not None else ""
    return f"**{s.name or s.id}** ({method_label(s.method)}, {'+'.join(s.backbones)}{acc})"


def _candidates(classes: list[str] | None) -> list[RunSummary]:
    if not classes:
        return []
    from transfer_core.distill import candidate_teachers

    return candidate_teachers(run_store(), classes)


def distill_settings(data: Mapping[str, Any], init: Callable[[str, Any], None]) -> dict[str, Any]:
    """Teachers, T, λ, unlabeled images and feature matching; returns the config's ``distill`` section.

    ``init(key, default)`` gives a widget its value through session state (the page's
    persistence: restored after a visit to another page).
    """
    classes = class_names(data)
    cands = _candidates(classes)
    by_ref = {f"run:{s.id}": s for s in cands}
    best = max(cands, key=lambda c: c.val_acc if c.val_acc is not None else -1.0, default=None)
    init("distill_teachers", [f"run:{best.id}"] if best else [])  # the most accurate: Start works without a click
    kept = [r for r in ss["distill_teachers"] if r in by_ref]  # the data changed: drop the stale ones
    if ss["distill_teachers"] and not kept and best:
        kept = [f"run:{best.id}"]  # every chosen teacher went stale: the best of the new candidates
    ss["distill_teachers"] = kept
    teachers = st.multiselect(
        _("Teachers"), list(by_ref), key="distill_teachers", format_func=lambda r: teacher_label(by_ref[r]),
        placeholder=_("Choose one or more completed runs"),
        help=_("Completed runs (transfer, fusion or distill) trained on exactly these classes. Several teachers: "
               "the student learns their averaged softened predictions; a fusion counts as one teacher."))
    if not cands:
        what = (", ".join(classes[:8]) + (" …" if len(classes) > 8 else "")) if classes else _("these classes")
        st.info(_("No teacher yet: a teacher is a completed run trained on exactly these classes ({classes}). Train "
                  "one with Transfer or Fusion first, or use the guided demo above (its transfer run teaches "
                  "mnist5k digits 5–9).").format(classes=what), icon=":material/school:")
    elif teachers:
        st.caption(_("Taught by {teachers}. Their predictions on every training image are computed once and kept: "
                     "the student's epochs never run a teacher.").format(
            teachers=", ".join(_teacher_line(by_ref[r]) for r in teachers)))

    c1, c2 = st.columns(2)
    for key, value in DEFAULTS.items():
        init(key, value)
    c1.slider(_("Temperature T"), 1.0, 10.0, step=0.5, key="distill_T",
              help=_("Softens the teachers' and the student's probabilities alike, so the student also learns "
                     "which wrong classes look alike. 1 = as they are; 2–5 is usual."))
    c2.slider(_("Teachers' share λ"), 0.0, 1.0, step=0.05, key="distill_lambda",
              help=_("loss = (1 − λ)·CE(labels) + λ·T²·KL(teachers ‖ student). 0 = labels only, "
                     "1 = teachers only."))
    t, lam = float(ss["distill_T"]), float(ss["distill_lambda"])
    soft = (_("T = {t:g} leaves the probabilities as they are") if t == 1
            else _("T = {t:g} softens the probabilities (second guesses show)")).format(t=t)
    st.caption(soft + " · " + _("λ = {lam:.2f}: {teachers:.0%} of the loss comes from the teachers, "
                                "{labels:.0%} from the labels.").format(lam=lam, teachers=lam, labels=1 - lam))

    few_shot = data.get("train_per_class") is not None
    if few_shot:
        st.checkbox(_("Learn from the unlabeled images too"), key="distill_unlabeled",
                    help=_("The training images beyond the {n} labels per class, used through the teachers' soft "
                           "labels only: their own labels are never read. Validation images are never used.").format(
                        n=data["train_per_class"]))
        unlabeled = bool(ss["distill_unlabeled"])
    else:
        st.checkbox(_("Learn from the unlabeled images too"), value=False, disabled=True,
                    help=_("Every training image has its label here: set “Training images per class” on the Data "
                           "page to keep the rest of the training images as unlabeled ones."))
        st.caption(_("No unlabeled images: every training image is labeled (set a few-shot size on the Data page "
                     "to keep the rest unlabeled)."))
        unlabeled = False
    st.checkbox(_("Match features"), key="distill_features",
                help=_("Also pull the student's pooled features towards each teacher's (through a learned "
                       "projection when their widths differ), as timm's feature distillation. Slower; off by default."))
    return {"teachers": list(teachers), "temperature": float(ss["distill_T"]), "weight": float(ss["distill_lambda"]),
            "unlabeled": unlabeled, "features": bool(ss["distill_features"])}


def check_teachers(cfg: RunConfig, data: Mapping[str, Any]) -> None:
    """Before Start: the teachers exist, are completed and know these classes (a ConfigError naming
    ``distill.teachers.<i>`` otherwise), so a wrong teacher is one error line, not a failed run."""
    classes = class_names(data)
    if classes is None:
        return  # the data cannot be listed: the run reports that itself
    from transfer_core.distill import resolve_teachers

    resolve_teachers(cfg, classes, run_store().root)


# --------------------------------------------------------------------------- Results


def teacher_runs(run: Run, cfg: Mapping[str, Any]) -> list[Run]:
    """The runs that taught ``run`` (:func:`transfer_core.distill.versus.teacher_runs`)."""
    from transfer_core.distill.versus import teacher_runs as _teacher_runs

    return _teacher_runs(run_store(), run, dict(cfg))


def _mtime(run: Run) -> int:
    try:
        return run.checkpoint_path.stat().st_mtime_ns
    except OSError:
        return -1


def _measured(run: Run) -> bool:
    """Whether the model cost of ``run`` is already in its folder for its current checkpoint."""
    from transfer_core.model_cost import is_measured

    return is_measured(run)


@st.cache_data(show_spinner=False, max_entries=16)
def _versus(run_id: str, runs_root: str, mtimes: tuple[int, ...], lang: str) -> dict[str, Any]:
    """student_vs_teachers, once per (run, checkpoint versions of it and its teachers, language of the sentence)."""
    from transfer_core.distill.versus import student_vs_teachers

    return student_vs_teachers(run_id, runs_root)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    def role(r: dict[str, Any]) -> Any:
        value = r.get("role")
        return _(ROLES[value]) if value in ROLES else value

    return pd.DataFrame([{
        "role": role(r),
        "run": r.get("name") or r.get("run_id"),
        "method": r.get("method"),
        "backbones": r.get("backbones"),
        "val acc": None if r.get("val_acc") is None else 100.0 * float(r["val_acc"]),
        "parameters": human_count(r["params"]) if isinstance(r.get("params"), (int, float)) else "—",
        "exported MB": r.get("export_mb"),
        "ms per image": r.get("ms_per_image"),
        "device": r.get("device"),
    } for r in rows])


def versus_section(run: Run, cfg: Mapping[str, Any], prefix: str = "", title: bool = True) -> None:
    """Results (and Compare, ``prefix`` keeping its widgets apart): the student against each
    teacher (accuracy, size, speed) and the sentence.

    Measuring runs every model on this machine's device (a few seconds, more for big teachers),
    so it waits for a click unless every model was measured before."""
    if title:
        st.subheader(_("Student vs teachers"))
    teachers = teacher_runs(run, cfg)
    runs = [run, *teachers]
    mtimes = tuple(_mtime(r) for r in runs)
    key = f"{prefix}svt_{run.id}"
    ready = ss.get(key) == mtimes or all(_measured(r) for r in runs)
    if not ready:
        st.caption(_("Validation accuracy, parameters, exported (TorchScript) size and measured milliseconds per "
                     "image of the student and of each teacher, on this machine's device."))
        if not st.button(_("Measure the student against its teachers"), key=f"{prefix}svt_measure",
                         icon=":material/speed:",
                         help=_("Exports each model in memory and times it on batches of validation-sized images: "
                                "a few seconds per model (kept in each run folder afterwards)")):
            return
    again = ready and st.button(_("Measure again"), key=f"{prefix}svt_again", icon=":material/refresh:",
                                help=_("Times every model anew (the numbers are kept in each run folder; "
                                       "measure again when the machine was busy the first time)"))
    try:
        with st.spinner(_("Measuring the student and its teachers on this machine…")):
            if again:
                from transfer_core.distill.versus import student_vs_teachers

                _versus.clear()
                student_vs_teachers(run.id, str(run_store().root), refresh=True)
            out = _versus(run.id, str(run_store().root), mtimes, language())
    except Exception as exc:  # noqa: BLE001 - a teacher's checkpoint gone or unreadable: one line
        st.error(_("Cannot compare this student with its teachers: {error}").format(
            error=str(exc).splitlines()[0] if str(exc) else exc), icon=":material/error:")
        return
    ss[key] = mtimes
    st.markdown(f"**{out['sentence']}**")
    st.dataframe(
        _frame(out["rows"]), key=f"{prefix}results_versus", hide_index=True, width="stretch",
        column_config={  # the frame's columns stay the English keys; the headers are translated
            "role": st.column_config.TextColumn(_("role")),
            "run": st.column_config.TextColumn(_("run")),
            "method": st.column_config.TextColumn(_("method")),
            "backbones": st.column_config.TextColumn(_("backbones")),
            "val acc": st.column_config.NumberColumn(_("val acc"), format="%.1f %%",
                                                     help=_("Validation accuracy, final epoch")),
            "parameters": st.column_config.TextColumn(_("parameters"), help=_("Parameters the model predicts with")),
            "exported MB": st.column_config.NumberColumn(_("exported MB"), format="%.1f",
                                                         help=_("Size of the TorchScript export")),
            "ms per image": st.column_config.NumberColumn(_("ms per image"), format="%.2f",
                                                          help=_("Per image: the fastest of 10 timed batches of 32")),
            "device": st.column_config.TextColumn(_("device")),
        },
    )
    if not teachers:
        st.caption(_("Its teachers are no longer in the run store."))
