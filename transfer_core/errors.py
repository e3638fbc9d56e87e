"""Every error the user can fix, in one place: each message is one line that names what to change.

``USER_ERRORS`` is what the CLI prints as ``error: …`` (exit 2) and the dashboard shows as
one line; anything else is a bug and keeps its traceback. :class:`PeerFailed` (another
torchrun rank failed first) is here too, so the CLI can catch it without importing
``torch.distributed``.
"""
from __future__ import annotations

__all__ = ["ConfigError", "DataError", "WeightsError", "USER_ERRORS", "PeerFailed"]


class ConfigError(ValueError):
    """An invalid configuration value. ``field`` is the dotted path, e.g. ``train.epochs``."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class DataError(ValueError):
    """A data problem the user can fix (missing folder, bad zip, unreadable image); one line."""


class WeightsError(ValueError):
    """Weights that cannot be obtained or do not fit; the message is one user-facing line."""


USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, DataError, WeightsError)


class PeerFailed(RuntimeError):
    """Another rank failed before training started; that rank reports the error itself."""

    def __init__(self, message: str, user_error: bool = False):
        super().__init__(message)
        self.user_error = user_error
