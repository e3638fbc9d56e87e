"""Write a story as a deck file: ``pptx`` (PowerPoint) or ``html`` (a self-contained page).

Both the CLI (``python -m transfer_core present``) and the Present page's download
buttons come through here; by default a deck is saved in the subject's folder
(``deck.pptx`` / ``deck.html``), where the run's HTML report links to it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..i18n import _
from .story import Story

__all__ = ["FORMATS", "MIME", "deck_bytes", "write_deck", "deck_path", "check_format", "check_writable"]

FORMATS = ("pptx", "html")
MIME = {"pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "html": "text/html"}


def check_format(fmt: str | None) -> str:
    """The format, lower-cased; ValueError (one line) for anything but pptx or html."""
    f = (fmt or "").strip().lower().lstrip(".")
    if f not in FORMATS:
        raise ValueError(_("unknown format {fmt}: use --format pptx or --format html").format(fmt=repr(fmt)) if fmt
                         else _("choose a format: --format pptx or --format html"))
    return f


def deck_path(story: Story, fmt: str) -> Path:
    """Where a deck goes by default: ``deck.<fmt>`` in the subject's folder."""
    return Path(story.folder) / f"deck.{check_format(fmt)}"


def check_writable(path: str | os.PathLike) -> Path:
    """``path`` if a file can be written there (its folder exists and is writable); else ValueError (one line)."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(_("cannot write {path}: it is a folder (give a file name)").format(path=p))
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(_("cannot write {path}: the folder {folder} does not exist").format(path=p, folder=parent))
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(_("cannot write {path}: permission denied").format(path=p))
    return p


def deck_bytes(story: Story, fmt: str) -> bytes:
    """The deck's bytes (``pptx`` renders its charts: :class:`~.render.RenderError` when that fails)."""
    fmt = check_format(fmt)
    if fmt == "pptx":
        from .pptx import pptx_bytes

        return pptx_bytes(story)
    from .html_deck import html_deck

    return html_deck(story).encode("utf-8")


def write_deck(story: Story, fmt: str, out: str | os.PathLike | None = None) -> Path:
    """Write the deck (atomically) to ``out`` or to :func:`deck_path`, and return the path."""
    from ..runs_io import atomic_write_bytes

    fmt = check_format(fmt)
    path = Path(out) if out else deck_path(story, fmt)
    if not out:
        path.parent.mkdir(parents=True, exist_ok=True)
    check_writable(path)
    data = deck_bytes(story, fmt)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise ValueError(_("cannot write {path}: {why}").format(path=path, why=exc.strerror or exc)) from None
    return path
