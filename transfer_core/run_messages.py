"""What a run folder says in words: its state, and its stored messages, translated when shown.

``status.json`` is data: its ``message`` and ``warnings`` are written in English by whatever
thread trains (which never translates), the same for every reader. A page shows them through
:func:`status_text`: a fixed message marked for translation anywhere in the code comes back
in the session's language, and so does one made from a template below (or one added with
:func:`register_templates`), its values kept; anything else is shown as stored.
:func:`state_label` is a run state (``"queued"``, ``"completed"``, ...) in words.
"""

from __future__ import annotations

import re
from typing import Iterable

from .i18n import N_, _

__all__ = [
    "STATE_LABELS", "state_label", "status_text", "register_templates", "MISSING_STATUS", "INTERRUPTED_RUNNING",
    "INTERRUPTED_QUEUED", "QUEUED_TO_RESUME", "RESUME_ONE_PROCESS", "RESUME_TORCHRUN", "REMOVED_FROM_QUEUE",
    "SERVER_SHUT_DOWN", "RESUMING", "RESUMING_TORCHRUN", "STARTING_TORCHRUN", "TORCHRUN_FAILED", "TEACHER_SPLIT",
]

STATE_LABELS = {
    "queued": N_("queued"), "running": N_("running"), "completed": N_("completed"), "failed": N_("failed"),
    "stopped": N_("stopped"), "interrupted": N_("interrupted"),
}

MISSING_STATUS = N_("status.json is missing or unreadable")
INTERRUPTED_RUNNING = N_("the process that was running it stopped (crash, kill or server restart); resume it")
INTERRUPTED_QUEUED = N_("it was queued when the process that owned the queue stopped; resume it to start it")
QUEUED_TO_RESUME = N_("queued to resume")
RESUME_ONE_PROCESS = N_("queued to resume in one process (it ran on {world} GPUs; {gpus} visible now)")
RESUME_TORCHRUN = N_("queued to resume under torchrun with {world} processes ({backend})")
REMOVED_FROM_QUEUE = N_("removed from the queue before it started")
SERVER_SHUT_DOWN = N_("the server shut down before it started")
RESUMING = N_("resuming")
RESUMING_TORCHRUN = N_("resuming torchrun with {n} processes")
STARTING_TORCHRUN = N_("starting torchrun with {n} processes")
TORCHRUN_FAILED = N_("could not start torchrun: {error}")
TEACHER_SPLIT = N_("teacher {name} used another dataset, seed or val_fraction: it may have trained on some of this "
                   "run's validation images, which would flatter the student's validation accuracy")

_TEMPLATES: list[tuple[str, re.Pattern[str]]] = []


def register_templates(templates: Iterable[str]) -> None:
    """Stored messages made with ``template.format(name=...)`` (English, named placeholders, no
    format specs) that :func:`status_text` should translate too."""
    for t in templates:
        if "{" in t and all(t != known for known, _p in _TEMPLATES):
            parts = re.split(r"\{(\w+)\}", t)
            rx = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
            _TEMPLATES.append((t, re.compile(rx, re.S)))


register_templates([RESUME_ONE_PROCESS, RESUME_TORCHRUN, RESUMING_TORCHRUN, STARTING_TORCHRUN, TORCHRUN_FAILED,
                    TEACHER_SPLIT])


def state_label(state: object) -> str:
    """A run state in words (an unknown one as given)."""
    return _(STATE_LABELS[state]) if state in STATE_LABELS else str(state)


def status_text(message: object) -> str:
    """A stored (English) run message or warning in the current language, values kept."""
    text = "" if message is None else str(message)
    if not text:
        return text
    shown = _(text)
    if shown != text:
        return shown
    for template, rx in _TEMPLATES:
        m = rx.fullmatch(text)
        if m:
            return _(template).format(**m.groupdict())
    return text
