"""Safe imports of uploads for the Data, Models and Predict pages: image zips and weight files.

Why here and not in the pages: the upload paths must be right in one place (size limits,
names that cannot escape their folder, temp file + rename so no half-written file is
ever listed). Pages stay thin: widget values in, one call, draw what comes back.

Nothing here imports torch; the core does the heavy lifting.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from transfer_core.backbones import WeightsError, build_body, get_backbone, load_state_into_body, load_weights_file
from transfer_core.config import data_roots, runs_dir
from transfer_core.data import DataError, dataset_classes, list_dataset_choices, safe_extract_zip
from transfer_core.i18n import _

__all__ = [
    "ZIP_UPLOAD_MAX_MB",
    "ZIP_EXTRACT_MAX_BYTES",
    "ZIP_MAX_MEMBERS",
    "WEIGHTS_UPLOAD_MAX_MB",
    "IMAGE_UPLOAD_MAX_MB",
    "UPLOADS",
    "safe_name",
    "uploads_dir",
    "dataset_options",
    "import_zip",
    "weights_dir",
    "list_imported_weights",
    "import_weights",
]

# Upload limits. The server's own cap (.streamlit/config.toml server.maxUploadSize) is
# 200 MB; a widget may only lower it, and the browser enforces the widget's value, so the
# page checks the size again on the server side (AppTest and scripts bypass the browser).
ZIP_UPLOAD_MAX_MB = 200  # a zip of class folders
ZIP_EXTRACT_MAX_BYTES = 1024**3  # what an uploaded zip may expand to (zip-bomb guard)
ZIP_MAX_MEMBERS = 50_000
WEIGHTS_UPLOAD_MAX_MB = 200  # resnet50 is ~100 MB; vgg16 (~530 MB) must be copied in by hand
IMAGE_UPLOAD_MAX_MB = 20  # one image on the Predict page
UPLOADS = "uploads"  # sub-folder of the first data root that uploaded zips go to

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, default: str = "upload", limit: int = 60) -> str:
    """A file-name stem that cannot leave its folder: [A-Za-z0-9._-], no leading dot."""
    stem = _UNSAFE.sub("_", Path(str(text).replace("\\", "/")).name).strip("._-")
    return (stem[:limit].rstrip("._-") or default)


# --------------------------------------------------------------------------- datasets


def uploads_dir() -> Path:
    """<first data root>/uploads: where uploaded zips and their extracted folders live."""
    roots = data_roots()
    if not roots:
        raise DataError(_("no data folder is configured (TRANSFER_LAB_DATA is empty)"))
    return roots[0] / UPLOADS


def dataset_options() -> list[tuple[str, str]]:
    """(value for DataConfig.dataset, kind) for every dataset the select box offers.

    kind is "built-in", "torchvision", "folder" or "upload". Uploaded zips are listed
    as ``uploads/<name>.zip`` (the core resolves that under the first data root).
    """
    choices = list_dataset_choices()
    out = [(n, "built-in") for n in choices["builtin"]]
    out += [(n, "torchvision") for n in choices["torchvision"]]
    out += [(n, "folder") for n in choices["folders"] if n != UPLOADS]
    try:
        up = uploads_dir()
    except DataError:
        return out
    if up.is_dir():
        out += [(f"{UPLOADS}/{n}", "upload") for n in list_dataset_choices([up])["folders"]]
    return out


def _unique_stem(folder: Path, stem: str) -> str:
    """A stem for which neither <stem>.zip nor the folder <stem> exists yet."""
    cand, i = stem, 1
    while (folder / f"{cand}.zip").exists() or (folder / cand).exists():
        i += 1
        cand = f"{stem}-{i}"
    return cand


def import_zip(filename: str, data: bytes) -> str:
    """Save an uploaded zip of class folders under the data root and extract it safely.

    Returns the dataset name to put in ``DataConfig.dataset`` (``uploads/<stem>.zip``).
    Raises DataError with a one-line message and leaves nothing behind when the upload is
    too big, not a zip, unsafe (zip slip, symlink, bomb) or has fewer than 2 class folders.
    An existing upload with identical bytes is reused; other name clashes get a suffix,
    so a zip that earlier runs were trained on is never replaced.
    """
    shown = Path(str(filename)).name or "upload.zip"
    if len(data) > ZIP_UPLOAD_MAX_MB * 1024 * 1024:
        raise DataError(_("{file} is {size:.0f} MB, more than the {limit} MB upload limit").format(
            file=shown, size=len(data) / 1024**2, limit=ZIP_UPLOAD_MAX_MB))
    if not data or not zipfile.is_zipfile(io.BytesIO(data)):
        raise DataError(_("{file} is not a zip file: upload a .zip with one folder of images per class").format(
            file=shown))
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_name(Path(shown).stem)
    same = folder / f"{stem}.zip"
    if same.is_file() and same.stat().st_size == len(data) and same.read_bytes() == data:
        safe_extract_zip(same, folder / stem, ZIP_EXTRACT_MAX_BYTES, ZIP_MAX_MEMBERS)  # reuses a good extraction
        return f"{UPLOADS}/{same.name}"
    tmp = folder / f".{stem}.{uuid.uuid4().hex[:8]}.part"
    final: Path | None = None
    try:
        tmp.write_bytes(data)
        for _attempt in range(100):  # link() refuses to replace: two sessions never get one name
            final = folder / f"{_unique_stem(folder, stem)}.zip"
            try:
                os.link(tmp, final)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover
            raise DataError(_("could not find a free name for {file} in {folder}").format(file=shown, folder=folder))
        dest = final.with_suffix("")
        try:
            safe_extract_zip(final, dest, ZIP_EXTRACT_MAX_BYTES, ZIP_MAX_MEMBERS)
            name = f"{UPLOADS}/{final.name}"
            classes = dataset_classes(name)
            if len(classes) < 2:
                raise DataError(_("{file} needs at least 2 class folders with images, found {n} — put each class's "
                                  "images in its own sub-folder").format(file=shown, n=len(classes)))
        except BaseException as exc:
            if dest.is_dir():
                shutil.rmtree(dest, ignore_errors=True)
            final.unlink(missing_ok=True)
            if isinstance(exc, DataError) and final.name != shown:  # the user's name, not ours
                raise DataError(str(exc).replace(final.name, shown)) from None
            raise
        return name
    except OSError as exc:
        raise DataError(_("cannot save {file} in {folder}: {error}").format(
            file=shown, folder=folder, error=exc.strerror or exc)) from None
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- weights


def weights_dir() -> Path:
    """<runs root>/_weights: imported weight files, offered to pickers as ``file:<path>``."""
    return runs_dir() / "_weights"


def list_imported_weights() -> list[dict[str, Any]]:
    """One dict per ``_weights/*.pt``: name, path, source value, size, backbone (from the sidecar)."""
    folder = weights_dir()
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.glob("*.pt")):
        try:
            meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        try:
            size = p.stat().st_size
        except OSError:
            continue
        out.append({
            "name": p.name,
            "path": str(p),
            "source": f"file:{p}",
            "size_mb": round(size / 1024**2, 1),
            "backbone": meta.get("backbone", "?"),
            "original": meta.get("original", ""),
        })
    return out


def import_weights(filename: str, data: bytes, backbone: str) -> Path:
    """Check an uploaded weights file and save it into ``_weights`` if it fits ``backbone``.

    The file is read with ``weights_only=True`` (a pickle with code is refused), then
    loaded into a fresh ``backbone`` body; any missing/unexpected/mis-shaped key raises
    WeightsError and nothing is saved. Accepted files are renamed into place atomically
    as ``<backbone>-<name>.pt`` with a small JSON sidecar naming the backbone.
    """
    shown = Path(str(filename)).name or "weights.pt"
    if len(data) > WEIGHTS_UPLOAD_MAX_MB * 1024 * 1024:
        raise WeightsError(_("{file} is {size:.0f} MB, more than the {limit} MB upload limit").format(
            file=shown, size=len(data) / 1024**2, limit=WEIGHTS_UPLOAD_MAX_MB))
    if not data:
        raise WeightsError(_("{file} is empty").format(file=shown))
    spec = get_backbone(backbone)
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".upload-{uuid.uuid4().hex[:8]}.part"
    try:
        tmp.write_bytes(data)
        try:
            state = load_weights_file(tmp)
        except WeightsError as exc:  # name the user's file, not our temp file
            raise WeightsError(str(exc).replace(str(tmp), shown)) from None
        load_state_into_body(build_body(spec.name), spec, state, _("file {name}").format(name=shown))
        stem = safe_name(Path(shown).stem, default="weights")
        if not stem.startswith(spec.name):
            stem = f"{spec.name}-{stem}"
        final, i = folder / f"{stem}.pt", 1
        while final.exists():
            i += 1
            final = folder / f"{stem}-{i}.pt"
        sidecar = {
            "backbone": spec.name,
            "original": shown,
            "tensors": len(state),
            "params": int(sum(int(v.numel()) for v in state.values())),
            "imported": time.time(),
        }
        side_tmp = folder / f".{final.stem}.{uuid.uuid4().hex[:8]}.json.part"
        side_tmp.write_text(json.dumps(sidecar), encoding="utf-8")
        os.replace(side_tmp, final.with_suffix(".json"))
        os.replace(tmp, final)
        return final
    except OSError as exc:
        raise WeightsError(_("cannot save {file} in {folder}: {error}").format(
            file=shown, folder=folder, error=exc.strerror or exc)) from None
    finally:
        tmp.unlink(missing_ok=True)
