"""Present: any run, comparison, experiment or distillation as a short slide story.

The rooms: :mod:`.subject` (what a story is about, from text like ``run:<id>``),
:mod:`.story` (the slides as plain data: titles, numbers, sentences, figure specs,
pictures, speaker notes; told by :mod:`.story_run`, :mod:`.story_compare`, :mod:`.story_sweep`
and :mod:`.story_distill` from the shared :mod:`.slides` and :mod:`.method_slide`), :mod:`.sentences`
and :mod:`.figures` / :mod:`.figures_sweeps` (the wording and the figures, shared with the
dashboard's pages and the HTML report),
:mod:`.images` (the sample grid and top-loss gallery as PNGs), :mod:`.notes` (the
presenter's edits, saved with the subject), :mod:`.render` (charts as PNGs: kaleido driving
Chromium, time-limited), :mod:`.pptx` and :mod:`.html_deck` (the decks), :mod:`.decks`
(writing them) and :mod:`.command` (``python -m transfer_core present``). The Present page
(``pages/present.py``) draws the same story. No Streamlit here; nothing heavy is imported
by importing this package.
"""

from __future__ import annotations

__all__ = ["build_story", "parse_subject", "write_deck"]


def __getattr__(name: str):  # lazy: the CLI parser imports this package without torch or plotly
    if name == "build_story":
        from .story import build_story

        return build_story
    if name == "parse_subject":
        from .subject import parse_subject

        return parse_subject
    if name == "write_deck":
        from .decks import write_deck

        return write_deck
    raise AttributeError(name)
