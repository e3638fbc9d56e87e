"""A run's curves on the Train and Results pages: loss and accuracy, a distillation's loss parts,
a fusion's weights α.

While the run trains they are light SVGs (:mod:`dashboard.charts_live`): every watching tab
would otherwise load plotly.js, on the same cores as training. Once it has ended they are
the interactive plotly figures (:mod:`dashboard.charts`). The curves sit in a container
keyed ``{prefix}_curves`` either way.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts, charts_live

__all__ = ["draw_curves"]

_PLAIN = {"displayModeBar": False}


def _alpha_names(cfg: dict[str, Any], metrics: list[dict[str, Any]]) -> list[str] | None:
    """Backbone names where the run learns α (a fusion's sum) and has recorded it; else None."""
    if cfg.get("method") != "fusion" or not any(m.get("alpha") for m in metrics):
        return None
    return [b.get("name", "?") for b in cfg.get("backbones", [])]


def draw_curves(cfg: dict[str, Any], metrics: list[dict[str, Any]], *, active: bool, prefix: str,
                epochs: int | None = None) -> None:
    """The run's figures: SVG while ``active``, plotly otherwise. ``epochs``: the planned total (fixes the x range)."""
    weight = (cfg.get("distill") or {}).get("weight")
    parts = cfg.get("method") == "distill" and charts.has_loss_parts(metrics)
    names = _alpha_names(cfg, metrics)
    if active:
        with st.container(key=f"{prefix}_curves"):
            st.markdown(charts_live.live_curves_svg(metrics, epochs=epochs), unsafe_allow_html=True)
        if parts:
            st.markdown(charts_live.live_loss_parts_svg(metrics, epochs=epochs, weight=weight), unsafe_allow_html=True)
        if names:
            st.markdown(charts_live.live_alpha_svg(metrics, names, epochs=epochs), unsafe_allow_html=True)
        return
    st.plotly_chart(charts.curves_figure(metrics, epochs=epochs), key=f"{prefix}_curves", config=_PLAIN)
    if parts:
        st.plotly_chart(charts.loss_parts_figure(metrics, epochs=epochs, weight=weight), key=f"{prefix}_loss_parts",
                        config=_PLAIN)
    if names:
        st.plotly_chart(charts.alpha_figure(metrics, names), key=f"{prefix}_alpha", config=_PLAIN)
