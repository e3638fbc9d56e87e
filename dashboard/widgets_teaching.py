"""Small interactive panels of the teaching pages: chart selections and the learning-rate finder.

Turning a plotly selection into a confusion cell or an image index, and the LR-finder
panel (a button, one core call and a chart) that the Train page and Insights embed.
The figures themselves live in :mod:`dashboard.charts`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Mapping, Sequence

import streamlit as st

from dashboard.charts import lr_finder_figure
from transfer_core.i18n import _

__all__ = ["cell_from_selection", "point_from_selection", "lr_finder_panel", "train_lr_finder"]

# --------------------------------------------------------------------------- selections


def _points(event: Any) -> list[Mapping[str, Any]]:
    try:
        sel = event["selection"] if not hasattr(event, "selection") else event.selection
        return list(sel["points"] or [])
    except (KeyError, TypeError, AttributeError):
        return []


def cell_from_selection(event: Any, labels: Sequence[str]) -> tuple[int, int] | None:
    """(true index, predicted index) of a clicked confusion-matrix cell, or None."""
    names = [str(x) for x in labels]
    for p in _points(event):
        x, y = p.get("x"), p.get("y")
        if str(x) in names and str(y) in names:
            return names.index(str(y)), names.index(str(x))
    return None


def point_from_selection(event: Any) -> int | None:
    """The validation index (customdata) of the first selected embedding point, or None."""
    for p in _points(event):
        cd = p.get("customdata")
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            try:
                return int(cd)
            except (TypeError, ValueError):
                continue
    return None


# --------------------------------------------------------------------------- LR finder panel


def _cfg_key(cfg: Any) -> str:
    from transfer_core.config import to_dict

    return hashlib.sha1(json.dumps(to_dict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:12]


def lr_finder_panel(cfg: Any, key: str = "lrf", on_use: Callable[[float], None] | None = None) -> float | None:
    """Button + chart of the learning-rate range test for ``cfg``; returns the suggested lr (or None).

    The result is kept in ``st.session_state`` per config (a UI choice, not durable
    state): nothing is written to the run store. Bad input shows one ``st.error`` line.
    ``on_use``: if given, a "Use it" button calls it with the suggested lr (as a widget
    callback, so it may set another widget's session-state value, e.g. the lr input).
    """
    from transfer_core.backbones import WeightsError
    from transfer_core.config import ConfigError
    from transfer_core.data import DataError

    store = st.session_state.setdefault(f"{key}_results", {})
    ck = _cfg_key(cfg)
    cols = st.columns([1, 3])
    clicked = cols[0].button(_("Find a learning rate"), key=f"{key}_run", icon=":material/troubleshoot:",
                             help=_("Trains a throw-away copy for ~100 batches while the learning rate grows from "
                                    "1e-7 to 10, and picks where the loss falls fastest."))
    cols[1].caption(_("A quick range test (fastai's lr_find): seeded, leaves the model and the run store untouched."))
    if clicked:
        from transfer_core.training.lr_finder import find_lr

        try:
            with st.spinner(_("Running the learning-rate range test…")):
                store[ck] = find_lr(cfg)
        except (ConfigError, DataError, WeightsError, ValueError) as exc:
            st.error(_("Learning-rate finder: {error}").format(error=exc), icon=":material/error:")
            return None
    res = store.get(ck)
    if not res:
        return None
    m = st.columns(3)
    m[0].metric(_("Suggested learning rate"), f"{res['suggested']:.1e}" if res.get("suggested") else "—")
    m[1].metric(_("Current learning rate"), f"{cfg.train.lr:.1e}")
    m[2].metric(_("Batches tried"), f"{res['iterations']}")
    st.plotly_chart(lr_finder_figure(res), key=f"{key}_chart", config={"displayModeBar": False})
    if on_use is not None and res.get("suggested"):
        st.button(_("Use {lr:.1e}").format(lr=res["suggested"]), key=f"{key}_use", on_click=on_use,
                  args=(float(res["suggested"]),),
                  icon=":material/check:")
    return res.get("suggested")


def train_lr_finder(cfg_dict: Mapping[str, Any], lr_key: str = "lr", key: str = "train_lrf") -> None:
    """The Train page's learning-rate finder for the settings being edited.

    "Use …" writes the suggestion into the ``lr_key`` widget (a callback: it runs before
    the widgets are drawn again). Settings that do not make a valid config show why.
    """
    from transfer_core.config import ConfigError, from_dict, validate

    def _use(lr: float) -> None:
        st.session_state[lr_key] = lr
        st.session_state[f"{key}_used"] = lr

    with st.expander(_("Learning-rate finder"), icon=":material/troubleshoot:",
                     expanded=bool(st.session_state.get(f"{key}_results"))):
        try:
            cfg = validate(from_dict(dict(cfg_dict)))
        except (ConfigError, ValueError) as exc:
            st.caption(_("Fix the settings first: {error}").format(error=exc))
            return
        lr_finder_panel(cfg, key=key, on_use=_use)
        used = st.session_state.pop(f"{key}_used", None)
        if used is not None:
            st.success(_("Learning rate set to {lr:.1e}.").format(lr=used), icon=":material/check:")
