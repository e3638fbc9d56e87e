"""Streamlit-side helpers shared by the pages: the job manager handle, run selection, charts.

Only this package and the pages import streamlit; transfer_core never does.
"""

from __future__ import annotations

import streamlit as st


def _leave_pages_folder_mode() -> None:
    """Make every request go through app.py's ``st.navigation``, even the first one.

    Why: Streamlit decides per process whether the app is a legacy "pages/ folder" app
    from the mere existence of ``pages/`` next to app.py, and only ``st.navigation``
    clears that flag. So after a server (re)start, if the first request is a page URL
    (a reload of ``/results?run=...``), Streamlit runs that page file alone: no wide layout,
    no sidebar queue, the old file-name menu, for every session until someone opens
    ``/``. Every page imports this package before anything heavy (torch), so the flag is
    cleared here and the request reruns through app.py before seconds of imports.
    (Renaming the folder would avoid this too.)
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # pragma: no cover - a Streamlit without these internals
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if get_script_run_ctx(suppress_warning=True) is not None:
            st.rerun()


_leave_pages_folder_mode()

from dashboard import i18n as _i18n  # noqa: E402,F401  (registers the session language resolver)
