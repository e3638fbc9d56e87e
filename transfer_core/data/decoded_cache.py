"""The built-in datasets' decoded arrays, kept on disk so a new process does not decode them again.

Parsing mnist5k's CSV costs ~0.13 s and rendering the shapes ~0.5 s in every process (a CLI
run, a sweep worker); reading the arrays back from one ``.npz`` file costs a few
milliseconds. The file lives under ``<cache>/datasets/`` and its name is a digest of
everything the arrays depend on: the dataset and its parameters, the source files' path,
size and modification time, and the code that decodes them (``builtin.py``), so a change
to any of them decodes afresh. A file that cannot be read (truncated, wrong shape or
dtype) is decoded again and replaced; a cache folder that cannot be written only costs
the decoding. Arrays are read with ``allow_pickle=False``: the file holds numbers only.
"""
from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..paths import cache_dir
from ..runs_io import atomic_write_bytes

__all__ = ["decoded_arrays", "decoded_file"]

log = logging.getLogger(__name__)

_VERSION = 1  # bump when the file's layout changes
_CODE = Path(__file__).with_name("builtin.py")


def _digest(name: str, params: Sequence[object], sources: Sequence[Path]) -> str:
    h = hashlib.sha256(f"{_VERSION}|{name}|{list(params)!r}".encode())
    h.update(_CODE.read_bytes())
    for src in sources:
        st = Path(src).stat()
        h.update(f"|{Path(src).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def decoded_file(name: str, params: Sequence[object] = (), sources: Sequence[Path] = ()) -> Path:
    """Where the decoded arrays of ``name`` with ``params``, read from ``sources``, are kept."""
    return cache_dir() / "datasets" / f"{name}-{_digest(name, params, sources)}.npz"


def _read(path: Path) -> tuple[torch.Tensor, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.debug("decoded dataset %s unreadable (%s): decoding again", path, exc)
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or labels.dtype != np.int64 or labels.shape != (len(images),):
        log.debug("decoded dataset %s has an unexpected layout: decoding again", path)
        return None
    return torch.from_numpy(images), labels


def _write(path: Path, images: torch.Tensor, labels: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, images=images.numpy(), labels=labels)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:  # a read-only or full cache folder only costs the decoding
        log.debug("could not keep decoded dataset in %s: %s", path, exc)


def decoded_arrays(
    name: str,
    decode: Callable[[], tuple[torch.Tensor, np.ndarray]],
    params: Sequence[object] = (),
    sources: Sequence[Path] = (),
) -> tuple[torch.Tensor, np.ndarray]:
    """``decode()``'s (uint8 images N×C×H×W, int64 labels), from the cache file when it holds them."""
    try:
        path = decoded_file(name, params, sources)
    except OSError as exc:  # a source vanished: decode() says what is wrong
        log.debug("no decoded-dataset key for %s: %s", name, exc)
        return decode()
    kept = _read(path)
    if kept is not None:
        return kept
    images, labels = decode()
    _write(path, images, labels)
    return images, labels
