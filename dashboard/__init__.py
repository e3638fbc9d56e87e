"""Streamlit-side helpers shared by the pages: the job manager handle, run selection, charts.

Only this package and the pages import streamlit; transfer_core never does.
"""
