"""Writing the run store's files so a crash never leaves half of one, and reading them back.

Every file of a run folder is written to a temp file in the same folder, fsynced and
swapped in with ``os.replace``; best.pt is a hard link to the checkpoint where the
filesystem has them. JSON is strict (``allow_nan=False``): a non-finite number is an
error here, never a file other tools cannot parse.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_link_or_write",
    "atomic_write_text",
    "atomic_write_json",
    "json_default",
    "read_json",
]


@contextlib.contextmanager
def _removed_on_failure(tmp: str | Path) -> Iterator[None]:
    """Delete the temp file ``tmp`` if the block fails: a failed write leaves no ``.tmp`` behind."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then ``os.replace``.

    A crash or a full disk leaves the previous file intact, never half a file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with _removed_on_failure(tmp):
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def atomic_link_or_write(src: Path, dst: Path, data: bytes) -> None:
    """Make ``dst`` the same file as ``src`` (``data`` are its bytes), swapped in atomically.

    best.pt is usually the epoch just written to checkpoint.pt. A hard link costs no disk
    (a resnet18 checkpoint with Adam state is ~130 MB) and stays right when checkpoint.pt
    is next replaced, because ``os.replace`` gives that name a new file and the link keeps
    the old one. Where the filesystem has no hard links, ``data`` is written instead.
    """
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        atomic_write_bytes(dst, data)
        return
    with _removed_on_failure(tmp):
        os.replace(tmp, dst)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=False, default=json_default))


def json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
