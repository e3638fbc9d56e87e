"""Extracting a user-supplied zip safely: every member is checked before anything is written
(zip slip, symlinks, special files, encryption, member count, total size, and zip bombs: a
member bigger than any image should be, or one that compresses far better than images do),
bytes are counted again while streaming (headers can lie), and the result appears atomically.

Limits: :data:`ZIP_MAX_BYTES` and :data:`ZIP_MAX_MEMBERS` for the whole archive; per member
at most ``$TRANSFER_LAB_MAX_IMAGE_BYTES`` (default :data:`MAX_IMAGE_BYTES`, 256 MiB: more
than an uncompressed 80-megapixel RGB TIFF) and, above :data:`ZIP_RATIO_FROM_BYTES`, a
compression ratio of at most :data:`ZIP_MAX_RATIO`:1 (PNG and JPEG barely compress, a BMP photo
about 5:1, a scanned text page 150:1; zeros deflate 230:1 at the fastest level and 1000:1 at the
default). All are read at call time, so they can be changed.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

from ..errors import DataError
from ..i18n import _
from .text import human_size, one_line

__all__ = [
    "ZIP_MAX_BYTES",
    "ZIP_MAX_MEMBERS",
    "ZIP_MARKER",
    "MAX_IMAGE_BYTES",
    "ZIP_MAX_RATIO",
    "ZIP_RATIO_FROM_BYTES",
    "max_image_bytes",
    "zip_stamp",
    "read_marker",
    "safe_extract_zip",
]

log = logging.getLogger(__name__)

ZIP_MAX_BYTES = 4 * 1024**3  # uncompressed total an imported zip may expand to
ZIP_MAX_MEMBERS = 200_000
ZIP_MARKER = ".transfer_lab_zip.json"  # written into an extracted folder: what it came from
MAX_IMAGE_BYTES = 256 * 1024**2  # per member, unless $TRANSFER_LAB_MAX_IMAGE_BYTES says otherwise
ZIP_MAX_RATIO = 200  # uncompressed / compressed size a member above ZIP_RATIO_FROM_BYTES may have
ZIP_RATIO_FROM_BYTES = 4 * 1024**2  # smaller members may compress well (flat icons, small BMPs)
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
Plan = list[tuple[zipfile.ZipInfo, list[str]]]


def max_image_bytes() -> int:
    """The per-member cap: ``$TRANSFER_LAB_MAX_IMAGE_BYTES`` (bytes), else :data:`MAX_IMAGE_BYTES`."""
    raw = os.environ.get("TRANSFER_LAB_MAX_IMAGE_BYTES", "").strip()
    if not raw:
        return MAX_IMAGE_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(_("TRANSFER_LAB_MAX_IMAGE_BYTES must be a positive whole number of bytes, got {value!r}").format(value=raw))
    return value


def zip_stamp(zip_path: Path) -> dict:
    """What identifies a zip's content cheaply: name, size, modification time."""
    st = zip_path.stat()
    return {"zip": zip_path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "version": 1}


def read_marker(folder: Path) -> dict | None:
    """The stamp of the zip ``folder`` was extracted from, or None (not extracted by us)."""
    try:
        return json.loads((folder / ZIP_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _member_parts(zip_name: str, member: str) -> list[str]:
    """Safe relative path components of a zip member; DataError for absolute or ``..`` names."""
    n = member.replace("\\", "/")
    if "\x00" in n:
        raise DataError(_("{zip} has a member with a NUL byte in its name; refusing to extract it").format(zip=zip_name))
    if n.startswith("/") or _DRIVE.match(n):
        raise DataError(_("{zip} has a member with an absolute path ({member}); refusing to extract it").format(
            zip=zip_name, member=member))
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise DataError(_("{zip} has a member that points outside the folder ({member}); refusing to extract it").format(
            zip=zip_name, member=member))
    return parts


def _check_member_size(zname: str, info: zipfile.ZipInfo, max_member: int) -> None:
    """Refuse a member bigger than an image may be, or compressed far better than images are."""
    size, packed = int(info.file_size), int(info.compress_size)
    if size > max_member:
        raise DataError(
            _("{zip}: {member} would expand to {size}, more than the {limit} an image may be "
              "(TRANSFER_LAB_MAX_IMAGE_BYTES); refusing to extract it (zip bomb?)").format(
                zip=zname, member=info.filename, size=human_size(size), limit=human_size(max_member))
        )
    if size > ZIP_RATIO_FROM_BYTES and size > ZIP_MAX_RATIO * max(packed, 1):
        raise DataError(
            _("{zip}: {member} expands {ratio:.0f}:1 ({packed} to {size}), far beyond what images do "
              "(at most {max_ratio}:1 above {from_size}); refusing to extract it (zip bomb?)").format(
                zip=zname, member=info.filename, ratio=size / max(packed, 1), packed=human_size(packed),
                size=human_size(size), max_ratio=ZIP_MAX_RATIO, from_size=human_size(ZIP_RATIO_FROM_BYTES))
        )


def _plan(zf: zipfile.ZipFile, zname: str, max_total: int, max_members: int, max_member: int) -> Plan:
    """Every member checked from the headers alone: what to extract, or DataError."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise DataError(_("{zip} has {n} entries, more than the limit of {limit}").format(zip=zname, n=len(infos), limit=max_members))
    plan: Plan = []
    declared = 0
    for info in infos:
        parts = _member_parts(zname, info.filename)
        ftype = stat.S_IFMT((info.external_attr >> 16) & 0xFFFF)
        if ftype == stat.S_IFLNK:
            raise DataError(_("{zip} contains a symbolic link ({member}); refusing to extract it").format(
                zip=zname, member=info.filename))
        if ftype not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise DataError(_("{zip} contains a special file ({member}); refusing to extract it").format(
                zip=zname, member=info.filename))
        if info.flag_bits & 0x1:
            raise DataError(_("{zip} is encrypted ({member}); unzip it yourself and use the folder").format(
                zip=zname, member=info.filename))
        if not parts or parts[0] == "__MACOSX":
            continue
        declared += max(0, int(info.file_size))
        plan.append((info, parts))
    if declared > max_total:
        raise DataError(_("{zip} would expand to {size}, more than the limit of {limit} (zip bomb?)").format(
            zip=zname, size=human_size(declared), limit=human_size(max_total)))
    for info, _parts in plan:
        if not info.is_dir():
            _check_member_size(zname, info, max_member)
    return plan


def _extract(zf: zipfile.ZipFile, zname: str, plan: Plan, tmp: Path, max_total: int) -> int:
    """Stream the planned members into ``tmp``, counting real bytes; returns the bytes written."""
    written = 0
    real_tmp = tmp.resolve()
    for info, parts in plan:
        target = tmp.joinpath(*parts)
        if not target.parent.resolve().is_relative_to(real_tmp):  # defence in depth
            raise DataError(_("{zip} has a member that points outside the folder ({member})").format(zip=zname, member=info.filename))
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        member = 0
        with zf.open(info) as src, open(target, "xb") as out:
            while chunk := src.read(_CHUNK):
                member += len(chunk)
                written += len(chunk)
                if member > info.file_size:  # zipfile stops at the declared size; never trust that alone
                    raise DataError(_("{zip}: {member} is bigger than its header says (zip bomb?)").format(
                        zip=zname, member=info.filename))
                if written > max_total:
                    raise DataError(_("{zip} expands beyond the limit of {limit} (zip bomb?)").format(
                        zip=zname, limit=human_size(max_total)))
                out.write(chunk)
    return written


def _move_into_place(tmp: Path, dest: Path, zname: str, stamp: dict) -> None:
    (tmp / ZIP_MARKER).write_text(json.dumps(stamp), encoding="utf-8")
    if dest.exists():
        if read_marker(dest) is None:
            raise DataError(_("{folder} already exists and was not extracted from {zip}").format(folder=dest, zip=zname))
        shutil.rmtree(dest)
    try:
        os.rename(tmp, dest)
    except OSError:
        if read_marker(dest) == stamp:  # another thread extracted it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            return
        raise


def safe_extract_zip(
    zip_path: str | os.PathLike,
    dest_dir: str | os.PathLike,
    max_total_bytes: int | None = None,
    max_members: int | None = None,
    max_member_bytes: int | None = None,
) -> Path:
    """Extract a user-supplied zip into ``dest_dir`` safely and atomically; returns ``dest_dir``.

    Refuses (DataError naming the member, nothing written): files that are not zips, more
    than ``max_members`` entries, absolute or ``..`` member names (zip slip), symlinks and
    other special files, encrypted members, a declared total above ``max_total_bytes``, a
    member declared above ``max_member_bytes`` or compressed beyond :data:`ZIP_MAX_RATIO`:1.
    While streaming, a member longer than its header or a total above the limit stops the
    extraction (nothing left behind). Extraction goes to a hidden temp folder beside
    ``dest_dir`` that is renamed into place only when complete. A marker file records which
    zip (size, mtime) the folder came from: an up-to-date folder is reused, a stale one
    replaced, and a folder without the marker (the user's own data) is never overwritten.
    Limits left as None are read from this module (and the environment) at call time.
    """
    max_total = ZIP_MAX_BYTES if max_total_bytes is None else int(max_total_bytes)
    max_count = ZIP_MAX_MEMBERS if max_members is None else int(max_members)
    max_member = max_image_bytes() if max_member_bytes is None else int(max_member_bytes)
    zp, dest = Path(zip_path), Path(dest_dir)
    zname = zp.name
    try:
        stamp = zip_stamp(zp)
    except OSError as exc:
        raise DataError(_("cannot read {zip}: {error}").format(zip=zname, error=exc.strerror or one_line(exc))) from None
    if dest.exists():
        marker = read_marker(dest)
        if marker == stamp:
            return dest
        if marker is None:
            raise DataError(_("{folder} already exists and was not extracted from {zip}; rename or remove one of them").format(
                folder=dest, zip=zname))
        log.info("%s changed since it was extracted; extracting again", zname)
    if not zipfile.is_zipfile(zp):
        raise DataError(_("{zip} is not a zip file").format(zip=zname))
    try:
        zf = zipfile.ZipFile(zp)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise DataError(_("{zip} is not a valid zip file: {error}").format(zip=zname, error=one_line(exc))) from None
    with zf:
        plan = _plan(zf, zname, max_total, max_count, max_member)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
        except OSError as exc:
            raise DataError(_("cannot create a folder beside {folder}: {error}").format(
                folder=dest, error=exc.strerror or one_line(exc))) from None
        try:
            written = _extract(zf, zname, plan, tmp, max_total)
            _move_into_place(tmp, dest, zname, stamp)
        except DataError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except Exception as exc:  # bad CRC, truncated data, unsupported compression, disk full, ...
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(_("cannot extract {zip}: {error}").format(zip=zname, error=one_line(exc))) from None
    log.info("extracted %s into %s (%s)", zname, dest, human_size(written))
    return dest
