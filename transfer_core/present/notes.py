"""The presenter's edits, saved with the subject: slide titles, takeaways and their own notes.

``<subject folder>/present.json`` (the run's folder, the sweep's folder, or the comparison's
under ``<runs>/_present``), written atomically::

    {"subject": "run:<id>", "titles": {"answer": "..."}, "takeaways": ["...", ...] | null,
     "notes": "...", "updated": 1733222400.0}

``takeaways`` null means "the computed ones". The page writes it, every export reads it,
so an edit made on screen is in the file sent afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..runs_io import atomic_write_json, read_json

__all__ = ["NOTES_NAME", "load_notes", "save_notes", "empty_notes"]

NOTES_NAME = "present.json"
_MAX_TEXT = 4000  # per field: notes are sentences, not documents


def empty_notes() -> dict[str, Any]:
    return {"titles": {}, "takeaways": None, "notes": ""}


def load_notes(folder: str | Path) -> dict[str, Any]:
    """The saved edits of a subject (empty ones when there is no file or it is unreadable)."""
    try:
        raw = read_json(Path(folder) / NOTES_NAME)
    except Exception:  # noqa: BLE001 - a damaged file reads as no edits
        raw = None
    out = empty_notes()
    if not isinstance(raw, dict):
        return out
    titles = raw.get("titles")
    if isinstance(titles, dict):
        out["titles"] = {str(k): str(v)[:_MAX_TEXT] for k, v in titles.items() if str(v).strip()}
    takeaways = raw.get("takeaways")
    if isinstance(takeaways, list):
        out["takeaways"] = [str(t)[:_MAX_TEXT] for t in takeaways if str(t).strip()]
    if isinstance(raw.get("notes"), str):
        out["notes"] = raw["notes"][:_MAX_TEXT]
    return out


def save_notes(folder: str | Path, subject: str, titles: Mapping[str, str] | None = None,
               takeaways: Sequence[str] | None = None, notes: str | None = None,
               reset_takeaways: bool = False) -> dict[str, Any]:
    """Merge edits into the subject's ``present.json`` and return what is saved.

    A title equal to "" drops that slide's edit (back to the computed title); ``takeaways``
    replaces the list (``reset_takeaways``: back to the computed ones); ``notes`` replaces them.
    """
    folder = Path(folder)
    current = load_notes(folder)
    for k, v in (titles or {}).items():
        v = str(v).strip()
        if v:
            current["titles"][str(k)] = v[:_MAX_TEXT]
        else:
            current["titles"].pop(str(k), None)
    if reset_takeaways:
        current["takeaways"] = None
    elif takeaways is not None:
        current["takeaways"] = [str(t).strip()[:_MAX_TEXT] for t in takeaways if str(t).strip()]
    if notes is not None:
        current["notes"] = str(notes).strip()[:_MAX_TEXT]
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / NOTES_NAME, {"subject": subject, **current, "updated": time.time()})
    return current
