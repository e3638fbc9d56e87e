"""Figures of the Experiments page: a sweep's summary with every finished trial as a faint dot.

They live in :mod:`transfer_core.present.figures_sweeps` and
:mod:`transfer_core.present.figures_compress` (no Streamlit), so an experiment's Present story
and its decks draw the very figure this page draws; re-exported here.
"""

from transfer_core.present.figures_compress import COMPRESS_COLORS, TEACHER_COLOR, compress_figure
from transfer_core.present.figures_sweeps import (
    VARIANT_COLORS,
    alpha_figure,
    freeze_figure,
    generic_figure,
    labels_figure,
    parts_figure,
    sweep_figure,
)

__all__ = ["sweep_figure", "labels_figure", "freeze_figure", "alpha_figure", "parts_figure", "generic_figure",
           "compress_figure", "VARIANT_COLORS", "COMPRESS_COLORS", "TEACHER_COLOR"]
