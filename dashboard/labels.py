"""Words the pages show for a run's identifiers: its state, its kind and its method.

The identifiers ("completed", "scratch", "fusion", ...) stay what they are in the run store
and the configs; the tables and their translation live in the core (the decks use them
too): :func:`transfer_core.run_messages.state_label` and :func:`transfer_core.compare.kind_label`.
"""

from __future__ import annotations

from transfer_core.compare import KIND_LABELS, kind_label
from transfer_core.run_messages import STATE_LABELS, state_label, status_text

__all__ = ["STATE_LABELS", "KIND_LABELS", "state_label", "kind_label", "method_label", "status_text"]


def method_label(method: str) -> str:
    """A config method as shown ("fusion" -> "fusion" / "知识融合"); the methods are a subset of the kinds."""
    return kind_label(method)
