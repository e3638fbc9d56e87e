"""Folder and zip datasets: a folder of class sub-folders (or a zip of one, extracted beside
itself), its class-folder rules (a lone wrapper folder is looked through, empty classes are
ignored with a warning), and decoding the selected classes once into a :class:`Pool`.

Unreadable files (corrupt, empty, truncated, not an image) are skipped and counted, never
fatal; a class left with no readable image is dropped with a warning, or refused when the
user named it in ``data.classes``.
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from ..i18n import _
from .images import hidden, is_image_name
from .locations import inside
from .pool import Pool
from .preprocessing import file_to_uint8, fits_in_memory, preprocessing_dict
from .safe_zip import safe_extract_zip
from .splits import select_classes
from .text import one_line

__all__ = ["zip_dest", "zip_folder", "class_names", "zip_class_names", "folder_pool"]

log = logging.getLogger(__name__)

_MAX_SKIPPED_LISTED = 50
_DECODE_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))
_THREAD_DECODE_ABOVE_S = 0.002  # mean decode time per file above which a thread pool pays off


def zip_dest(zip_path: Path) -> Path:
    """Where a zip is extracted: beside it, named without ``.zip``."""
    return zip_path.with_name(zip_path.name[: -len(zip_path.suffix)] if zip_path.suffix else zip_path.name + ".d")


def zip_folder(zip_path: Path) -> Path:
    """The zip extracted beside itself (reused when up to date); limits read at call time."""
    return safe_extract_zip(zip_path, zip_dest(zip_path))


class _Tree:
    """Tiny directory tree (real folder or zip listing) for the class-folder rules."""

    def __init__(self) -> None:
        self.dirs: dict[str, _Tree] = {}
        self.images: list[str] = []  # relative paths of image files directly here

    def child(self, name: str) -> "_Tree":
        return self.dirs.setdefault(name, _Tree())

    def count(self) -> int:
        return len(self.images) + sum(d.count() for d in self.dirs.values())

    def all_images(self) -> list[str]:
        out = list(self.images)
        for d in self.dirs.values():
            out.extend(d.all_images())
        return out


def _unwrap(tree: _Tree, prefix: list[str]) -> tuple[_Tree, list[str]]:
    """A lone wrapper folder (``pets.zip`` -> ``pets/cat, pets/dog``) is looked through.

    Only a folder that holds sub-folders is a wrapper: a lone folder of images is one
    class (so "one class only" is reported as such, not as "found 0").
    """
    while len(tree.dirs) == 1 and not tree.images and next(iter(tree.dirs.values())).dirs:
        (name, sub), = tree.dirs.items()
        tree, prefix = sub, prefix + [name]
    return tree, prefix


def _zip_tree(zip_path: Path) -> _Tree:
    root = _Tree()
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataError(_("{zip} is not a valid zip file: {error}").format(zip=zip_path.name, error=one_line(exc))) from None
    for n in names:
        parts = [p for p in n.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or any(p == ".." or hidden(p) for p in parts):
            continue
        is_dir = n.endswith("/")
        node = root
        for p in parts[:-1]:
            node = node.child(p)
        if is_dir:
            node.child(parts[-1])
        elif is_image_name(parts[-1]):
            node.images.append("/".join(parts))
    return root


def _folder_tree(folder: Path) -> _Tree:
    root = _Tree()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not hidden(d))
        rel = Path(dirpath).relative_to(folder).parts
        node = root
        for p in rel:
            node = node.child(p)
        for d in dirnames:
            node.child(d)
        for f in sorted(filenames):
            if is_image_name(f):
                node.images.append("/".join((*rel, f)))
    return root


def _class_dirs(tree: _Tree) -> tuple[_Tree, list[str], list[str], list[str]]:
    """(tree, prefix, non-empty class names, empty class names) after unwrapping."""
    tree, prefix = _unwrap(tree, [])
    names = sorted(tree.dirs)
    full = [n for n in names if tree.dirs[n].count() > 0]
    empty = [n for n in names if tree.dirs[n].count() == 0]
    return tree, prefix, full, empty


def class_names(folder: Path) -> list[str]:
    """The class folders with images of a dataset folder, without decoding anything."""
    return _class_dirs(_folder_tree(folder))[2]


def zip_class_names(zip_path: Path) -> list[str]:
    """The class folders with images of a zip, from its listing (nothing extracted)."""
    return _class_dirs(_zip_tree(zip_path))[2]


def _decode_into(paths: list[Path], prep: dict, keep: bool) -> tuple[torch.Tensor | None, list[str | None]]:
    """Decode and resize files (``keep``: into one uint8 tensor); errors come back as strings.

    Why adaptive: for small files Python overhead dominates and threads only fight over the
    GIL, so files are decoded in order; once decoding proves slow (big photos, where PIL
    releases the GIL) the rest goes to a thread pool.
    """
    size = int(prep["image_size"])
    c = 1 if prep["source_mode"] == "L" else 3
    out = np.empty((len(paths), c, size, size), dtype=np.uint8) if keep else None
    errors: list[str | None] = [None] * len(paths)

    def work(i: int) -> None:
        try:
            t = file_to_uint8(paths[i], prep)
            if out is not None:
                out[i] = t.numpy()
        except DataError as exc:  # an unreadable image: its reason alone (see open_image)
            errors[i] = getattr(exc, "reason", None) or str(exc)
        except Exception as exc:  # never let one odd file stop the build
            errors[i] = one_line(exc)

    t0 = time.perf_counter()
    n_seq = min(len(paths), 16)
    for i in range(n_seq):
        work(i)
    rest = range(n_seq, len(paths))
    if len(rest) and (time.perf_counter() - t0) / max(n_seq, 1) > _THREAD_DECODE_ABOVE_S:
        with concurrent.futures.ThreadPoolExecutor(max_workers=_DECODE_WORKERS) as ex:
            list(ex.map(work, rest))
    else:
        for i in rest:
            work(i)
    return (torch.from_numpy(out) if out is not None else None), errors


def folder_pool(folder: Path, cfg: DataConfig, roots: list[Path], source: str, origin: str) -> Pool:
    """Class sub-folders of ``folder``; selected classes decoded once (or validated, if too big)."""
    real_roots = [r.resolve() for r in roots]
    tree, prefix, full, empty = _class_dirs(_folder_tree(folder))
    base = folder.joinpath(*prefix)
    warnings: list[str] = []
    for name in empty:
        warnings.append(_("class folder '{name}' has no images; ignored").format(name=name))
    if tree.images:
        warnings.append(_("{n} image(s) directly in {folder} are not in a class folder; ignored").format(
            n=len(tree.images), folder=base.name or base))
    if len(full) < 2:
        if full:
            msg = _("{origin} needs at least 2 class folders with images, found {n} ({names}); "
                    "put each class's images in its own sub-folder")
        else:
            msg = _("{origin} needs at least 2 class folders with images, found {n}; "
                    "put each class's images in its own sub-folder")
        raise DataError(msg.format(origin=origin, n=len(full), names=", ".join(full)))
    order = select_classes(cfg.classes, full, cfg.dataset)
    size = int(cfg.image_size)
    prep = preprocessing_dict(size, "shorter_side_center_crop", "RGB")

    paths: list[Path] = []
    rels: list[str] = []
    labels_l: list[int] = []
    skipped_files: list[str] = []
    for k, ci in enumerate(order):
        for rel in tree.dirs[full[ci]].all_images():  # relative to ``folder``, wrapper prefix included
            p = folder / rel
            shown = p.relative_to(base).as_posix()
            if not inside(p.resolve(), real_roots):  # a symlink leading out of the data folders
                skipped_files.append(_("{file}: points outside the data folders").format(file=shown))
                continue
            paths.append(p)
            rels.append(shown)
            labels_l.append(k)
    keep = fits_in_memory(len(paths) * 3 * size * size)
    if not keep:
        log.info("%d images at %dpx exceed the memory budget: decoding per item", len(paths), size)
    images, errors = _decode_into(paths, prep, keep)
    good = [i for i, e in enumerate(errors) if e is None]
    for i, e in enumerate(errors):
        if e is not None:
            skipped_files.append(f"{rels[i]}: {e}")
    labels = np.asarray(labels_l, dtype=np.int64)[good]
    names = [full[ci] for ci in order]
    present = sorted(set(labels.tolist()))
    if len(present) != len(names):
        missing = [names[k] for k in range(len(names)) if k not in present]
        if cfg.classes is not None:
            raise DataError(_("class '{name}' of {origin} has no readable images").format(name=missing[0], origin=origin))
        for m in missing:
            warnings.append(_("class folder '{name}' has no readable images; ignored").format(name=m))
        remap = {old: new for new, old in enumerate(present)}
        labels = np.asarray([remap[v] for v in labels.tolist()], dtype=np.int64)
        names = [names[k] for k in present]
        if len(names) < 2:
            raise DataError(_("{origin} needs at least 2 class folders with readable images, found {n}").format(
                origin=origin, n=len(names)))
    if skipped_files:
        warnings.append(_("skipped {n} unreadable image(s), e.g. {example}").format(n=len(skipped_files), example=skipped_files[0]))
        log.warning("skipped %d unreadable images in %s", len(skipped_files), origin)
    identity = [
        [rels[i], *_stat_id(paths[i])] for i in good
    ]
    pool = Pool(
        names, labels, "RGB", "shorter_side_center_crop", source,
        skipped=len(skipped_files), skipped_files=skipped_files[:_MAX_SKIPPED_LISTED],
        warnings=warnings, location=str(base), identity=identity, available=list(full),
    )
    if keep:
        assert images is not None
        pool.images = images[torch.as_tensor(good, dtype=torch.long)] if len(good) != len(paths) else images
    else:
        pool.paths = [paths[i] for i in good]
    return pool


def _stat_id(p: Path) -> list[int]:
    try:
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [0, 0]
