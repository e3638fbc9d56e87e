"""Where datasets are found: the data roots, resolving a dataset name to a folder or zip
inside them (and refusing anything outside), and the choices the dataset select box offers.

The app may be reachable by others, so it must not read arbitrary paths: a name resolves
only to something that, after following symlinks, lies inside a data root.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence, Union

from ..errors import DataError
from ..i18n import _
from ..paths import data_roots
from .builtin import BUILTIN
from .images import hidden
from .safe_zip import ZIP_MARKER
from .torchvision_sets import TORCHVISION

__all__ = ["RootsArg", "roots_list", "inside", "resolve_dataset_path", "list_dataset_choices"]

RootsArg = Union[Sequence[Union[str, os.PathLike]], None]


def roots_list(roots: RootsArg) -> list[Path]:
    """The given roots, or the configured data roots when None."""
    return [Path(r).expanduser() for r in (data_roots() if roots is None else roots)]


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(str(r) for r in roots) or _("(none)")


def inside(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def resolve_dataset_path(name: str, roots: RootsArg = None) -> Path:
    """Find a folder or zip named ``name`` under the data roots; refuse anything outside them.

    Relative names are looked up under each root in order. Absolute paths (and relative ones
    with ``..`` or symlinks) are accepted only if, after resolving symlinks, they lie inside
    a root: the app may be reachable by others, so it must not read arbitrary paths.
    """
    rts = roots_list(roots)
    real_roots = [r.resolve() for r in rts]
    text = (name or "").strip()
    if not text:
        raise DataError(_("no dataset given"))
    p = Path(text).expanduser()
    outside = _("{name} is outside the data folders ({roots}): move it into one of them or add its parent to TRANSFER_LAB_DATA").format(
        name=text, roots=_roots_text(rts))
    if p.is_absolute():
        real = p.resolve()
        if not inside(real, real_roots):
            raise DataError(outside)
        if not real.exists():
            raise DataError(_("{name} does not exist").format(name=text))
        return real
    for root, real_root in zip(rts, real_roots):
        cand = (root / p).resolve()
        if not inside(cand, [real_root]):
            raise DataError(outside)
        if cand.exists():
            return cand
    raise DataError(
        _("dataset {name!r} is not built-in ({builtin}), not a torchvision dataset ({torchvision}) "
          "and not a folder or .zip in the data folders ({roots})").format(
            name=text, builtin=", ".join(BUILTIN), torchvision=", ".join(TORCHVISION), roots=_roots_text(rts))
    )


def list_dataset_choices(roots: RootsArg = None) -> dict[str, list[str]]:
    """What the dataset select box offers: built-ins, torchvision names, folders/zips in the roots.

    Folder entries are names relative to their root (first root wins on duplicates, as in
    :func:`resolve_dataset_path`). A folder extracted from a zip that still exists is listed
    only as the zip; the ``torchvision`` download folder and hidden entries are left out.
    """
    folders: list[str] = []
    seen: set[str] = set()
    for root in roots_list(roots):
        try:
            entries = sorted(root.iterdir())
        except OSError:
            continue
        for p in entries:
            if hidden(p.name) or p.name == "torchvision":
                continue
            try:
                if p.is_dir():
                    if (p / ZIP_MARKER).exists() and any(
                        q.is_file() for q in (p.with_name(p.name + ".zip"), p.with_name(p.name + ".ZIP"))
                    ):
                        continue
                elif not (p.is_file() and p.suffix.lower() == ".zip"):
                    continue
            except OSError:
                continue
            if p.name not in seen:
                seen.add(p.name)
                folders.append(p.name)
    return {"builtin": list(BUILTIN), "torchvision": list(TORCHVISION), "folders": folders}
