"""How the data package words things for the user: one-line messages and human sizes.

Every :class:`~transfer_core.errors.DataError` is one line; exceptions from PIL, zipfile or
torchvision are squeezed into one with :func:`one_line`.
"""
from __future__ import annotations

__all__ = ["one_line", "human_size"]


def one_line(exc: BaseException | str, limit: int = 240) -> str:
    """The text of ``exc`` on one line, at most ``limit`` characters."""
    text = str(exc).strip() or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def human_size(n: float) -> str:
    """Bytes as ``512 B``, ``1.5 MB``, ``4.0 GB``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover
