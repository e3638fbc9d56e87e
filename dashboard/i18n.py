"""The browser session's language: chosen in the sidebar, kept in the URL (``?lang=zh``).

Order of precedence on every run: the URL's ``lang`` (a shared link opens in its
language), then this session's earlier choice, then the browser's language
(``st.context.locale``), else English. The choice is written back to the URL, so a reload
or a copied link keeps it. :func:`transfer_core.i18n.language` asks :func:`_session_language`
(registered below), so every ``_()`` on this session's script thread, in the pages and in
the core's sentences alike, translates into the session's language; other threads (the
training thread, a CLI) stay English.
"""

from __future__ import annotations

import streamlit as st

from transfer_core import i18n
from transfer_core.i18n import LANGUAGES, _, normalize_language

STATE_KEY = "lang"
WIDGET_KEY = "lang_switch"


def _session_language() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    return st.session_state.get(STATE_KEY)


i18n.set_resolver(_session_language)


def _browser_language() -> str | None:
    try:
        return normalize_language(st.context.locale)
    except Exception:  # no browser behind this run (AppTest, an old Streamlit)
        return None


def init_language() -> str:
    """Settle this run's language (URL, earlier choice, browser, English) and keep it in the URL."""
    lang = (normalize_language(st.query_params.get("lang")) or st.session_state.get(STATE_KEY)
            or _browser_language() or i18n.DEFAULT_LANGUAGE)
    st.session_state[STATE_KEY] = lang
    if st.query_params.get("lang") != lang:
        st.query_params["lang"] = lang
    return lang


def _switched() -> None:
    lang = st.session_state.get(WIDGET_KEY) or st.session_state.get(STATE_KEY) or i18n.DEFAULT_LANGUAGE
    st.session_state[STATE_KEY] = lang
    st.query_params["lang"] = lang


def language_switch() -> None:
    """English / 简体中文 in the sidebar; a change reruns the page in the new language."""
    current = st.session_state.get(STATE_KEY, i18n.DEFAULT_LANGUAGE)
    if st.session_state.get(WIDGET_KEY) != current:
        st.session_state[WIDGET_KEY] = current
    st.segmented_control(
        _("Language"), options=list(LANGUAGES), format_func=lambda code: LANGUAGES[code][1],
        key=WIDGET_KEY, on_change=_switched, label_visibility="collapsed", width="stretch",
    )
