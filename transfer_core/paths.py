"""Where things live on disk: the run store, the data roots and the cache.

Each is read from the environment at call time, never at import, so tests and the app can
change it: ``$TRANSFER_LAB_RUNS`` (default ``./runs``), ``$TRANSFER_LAB_DATA`` (several
folders separated by ``os.pathsep``, default ``./data``), ``$TRANSFER_LAB_CACHE`` (default
``<runs>/_cache``).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["runs_dir", "data_roots", "cache_dir"]


def runs_dir(override: str | os.PathLike | None = None) -> Path:
    """Where runs live: the explicit override, else ``$TRANSFER_LAB_RUNS``, else ``./runs``."""
    if override:
        return Path(override)
    return Path(os.environ.get("TRANSFER_LAB_RUNS") or "runs")


def data_roots() -> list[Path]:
    """Data roots: ``$TRANSFER_LAB_DATA`` (several, separated by ``os.pathsep``), else ``./data``."""
    raw = os.environ.get("TRANSFER_LAB_DATA") or "data"
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


def cache_dir(runs_root: str | os.PathLike | None = None) -> Path:
    """The cache root: ``$TRANSFER_LAB_CACHE``, else ``<runs>/_cache``."""
    env = os.environ.get("TRANSFER_LAB_CACHE")
    return Path(env) if env else runs_dir(runs_root) / "_cache"
