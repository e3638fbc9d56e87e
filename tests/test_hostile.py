"""Hostile and broken input, case by case, through the CLI and the dashboard.

Each case of the issue "Reliability and security: hostile inputs, ..." has a row in one
of the tables below, so the coverage is visible in the test ids:

* ``test_cli_case[<id>]`` runs ``python -m transfer_core train`` with ``--set``
  overrides: bad input exits 2 with exactly one ``error: ...`` line naming the field,
  no traceback, no run folder, and nothing written outside the runs and data folders;
  skipped files and clamps finish (exit 0) with what was skipped or clamped recorded;
  training failures exit 1 with the run marked failed.
* ``test_ui_*`` do the same through AppTest (Data page upload ``zip_upload``, Models
  page upload ``weights_upload``): no exception, a one-line ``st.error``, the app keeps
  working, nothing left behind.
* image decoding, the 10k-image folder and the safe-default checks are in-process.

Why the CLI cases fork: a real ``python -m transfer_core`` costs seconds of import per
case (torch, torchvision) and there are ~40 cases. One driver process imports the
package once, then forks a child per case that runs ``transfer_core.__main__`` exactly
as ``python -m`` would (argv, stdout/stderr to files, exit code via ``sys.exit``). Real
``python -m transfer_core`` subprocesses are still used in test_cli.py and
test_crash_resume.py.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- hostile files


def _png(color=(200, 30, 30), size=(12, 12), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def _noise_png(seed: int = 0, size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3)).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def bad_images() -> dict[str, bytes]:
    """The four unreadable kinds: skipped and counted, never fatal."""
    good = _noise_png(1)
    return {
        "corrupt.png": np.random.default_rng(0).bytes(300),
        "zero.jpg": b"",
        "text.jpg": b"this is not a jpeg\n",
        "truncated.png": good[: len(good) // 2],
    }


def exif_rotated_jpeg() -> bytes:
    """Stored 20x10, left half red / right half blue, EXIF orientation 6 (display: rotate 90 CW)."""
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = (230, 20, 20)
    arr[:, 10:] = (20, 20, 230)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue()


def png16() -> bytes:
    """16-bit gray: 32768 of 65535 must come out mid-grey, not clipped to white."""
    buf = io.BytesIO()
    Image.fromarray(np.full((12, 12), 32768, np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def cmyk_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("CMYK", (12, 12), (0, 255, 255, 0)).save(buf, "JPEG", quality=95)  # red
    return buf.getvalue()


def palette_png() -> bytes:
    """Palette image, index 0 transparent (-> white), index 1 green."""
    im = Image.new("P", (12, 12), 0)
    im.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    for x in range(6, 12):
        for y in range(12):
            im.putpixel((x, y), 1)
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=0)
    return buf.getvalue()


def alpha_png() -> bytes:
    """RGBA: left half fully transparent (-> white), right half opaque blue."""
    arr = np.zeros((12, 12, 4), np.uint8)
    arr[:, 6:] = (0, 0, 220, 255)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, "PNG")
    return buf.getvalue()


ODD_FORMATS: dict[str, Callable[[], bytes]] = {
    "exif_rotated.jpg": exif_rotated_jpeg,
    "gray16.png": png16,
    "cmyk.jpg": cmyk_jpeg,
    "palette.png": palette_png,
    "alpha.png": alpha_png,
}


def class_folder_members(extra_a: dict[str, bytes] | None = None, n: int = 6, prefix: str = "") -> dict[str, bytes]:
    """Two classes of small solid images (a red, b blue), plus extra files in class a."""
    members = {}
    for i in range(n):
        members[f"{prefix}a/{i}.png"] = _png((200 + i, 30, 30))
        members[f"{prefix}b/{i}.png"] = _png((30, 30, 200 + i))
    for name, data in (extra_a or {}).items():
        members[f"{prefix}a/{name}"] = data
    return members


def write_tree(base: Path, members: dict[str, bytes]) -> Path:
    for rel, data in members.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return base


def make_zip(members: list[tuple[Any, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return buf.getvalue()


def _symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    return info


def claim_size(payload: bytes, member: str, claimed: int) -> bytes:
    """The zip with the local and central headers of ``member`` claiming ``claimed`` uncompressed bytes."""
    raw = bytearray(payload)
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = -1
        while True:
            pos = raw.find(sig, pos + 1)
            if pos < 0:
                break
            name_len = int.from_bytes(raw[pos + (26 if sig == b"PK\x03\x04" else 28): pos + (28 if sig == b"PK\x03\x04" else 30)], "little")
            name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
            if raw[name_at: name_at + name_len] == member.encode():
                raw[pos + off: pos + off + 4] = claimed.to_bytes(4, "little")
    return bytes(raw)


def lying_zip(real_size: int = 3_000_000, claimed: int = 1000) -> bytes:
    """A member whose headers claim ``claimed`` bytes while it inflates to ``real_size``."""
    return claim_size(make_zip([("a/0.png", _png()), ("b/0.png", _png()), ("a/big.png", b"\x00" * real_size)]), "a/big.png", claimed)


def hostile_zips(outside: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (zip bytes, expected message fragment). ``outside`` is the absolute-path target."""
    two = [(n, d) for n, d in class_folder_members(n=2).items()]
    return {
        "slip": (make_zip(two + [("../../escaped.png", _png())]), "points outside the folder"),
        "slip_nested": (make_zip(two + [("a/../../escaped.png", _png())]), "points outside the folder"),
        "absolute": (make_zip(two + [(str(outside / "escaped.png"), _png())]), "absolute path"),
        "symlink": (make_zip(two + [(_symlink_info("a/link.png"), b"/etc/passwd")]), "symbolic link"),
        # 5 MB of zeros deflates to ~5 KB: refused on the declared size (limit set to 1 MB)
        "bomb_declared": (make_zip(two + [("a/zeros.png", b"\x00" * 5_000_000)]), "zip bomb"),
        # headers claim 1000 bytes, it inflates to 3 MB: refused while extracting (limit 1 MB)
        "bomb_actual": (lying_zip(), "cannot extract"),  # Bad CRC-32: zipfile reads only the declared size
        # default limits: 8 MiB of zeros deflates ~1000:1, no image does that: refused from the headers
        "bomb_member": (make_zip(two + [("a/zeros.png", bytes(8 * 2**20))]), "a/zeros.png"),
        "not_a_zip": (b"just some text, named .zip\n", "not a zip file"),
    }


BOMB_LIMIT = 1_000_000


class _Evil:
    """Unpickling this runs ``touch <marker>``: it must never happen."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@functools.lru_cache(maxsize=1)
def _state_bytes() -> tuple[bytes, bytes]:
    """torch.save'd state dicts of a resnet18 body and of a mobilenet_v3_small body."""
    import torch

    from transfer_core.backbones import build_body

    blobs = []
    for name in ("resnet18", "mobilenet_v3_small"):
        buf = io.BytesIO()
        torch.save(build_body(name).state_dict(), buf)
        blobs.append(buf.getvalue())
    return blobs[0], blobs[1]


def weights_files(folder: Path, marker: Path) -> dict[str, Path]:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    good, other = _state_bytes()
    out = {}
    out["pickle_plain"] = folder / "evil_plain.pt"
    out["pickle_plain"].write_bytes(pickle.dumps({"conv1.weight": _Evil(str(marker))}))
    out["pickle_torch_save"] = folder / "evil_torch.pt"
    torch.save({"conv1.weight": _Evil(str(marker))}, out["pickle_torch_save"])
    out["wrong_arch"] = folder / "mobilenet.pt"
    out["wrong_arch"].write_bytes(other)
    out["truncated"] = folder / "cut.pt"
    out["truncated"].write_bytes(good[: len(good) // 3])
    out["good"] = folder / "resnet18.pt"
    out["good"].write_bytes(good)
    return out


WEIGHTS_EXPECT = {
    "pickle_plain": "contains Python objects",
    "pickle_torch_save": "contains Python objects",
    "wrong_arch": "does not fit resnet18",
    "truncated": "truncated or not a PyTorch checkpoint",
}


# --------------------------------------------------------------------------- the CLI, forked per case

_DRIVER = r"""
import json, os, runpy, sys, traceback
cases = json.loads(sys.stdin.read())
import transfer_core.cli, transfer_core.training  # the heavy imports, once, before forking

def snapshot(root, skip):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        top = rel.split(os.sep)[0]
        if top in skip:
            dirnames[:] = []
            continue
        for f in filenames:
            p = os.path.join(dirpath, f)
            try:
                st = os.lstat(p)
                out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
            except OSError:
                pass
    return out

results = {}
root = os.getcwd()
for case in cases:
    before = snapshot(root, {"runs", "data", "io"})
    tmp_before = set(os.listdir("/tmp"))
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fo = os.open(case["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fe = os.open(case["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fo, 1); os.dup2(fe, 2)
            exec(case.get("pre") or "", {"__name__": "pre"})
            sys.argv = ["python -m transfer_core", *case["args"]]
            try:
                runpy.run_module("transfer_core", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 1
        finally:
            try:
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    after = snapshot(root, {"runs", "data", "io"})
    changed = sorted(k for k in after if before.get(k) != after[k])
    new_tmp = sorted(set(os.listdir("/tmp")) - tmp_before)
    results[case["id"]] = {"rc": os.waitstatus_to_exitcode(status), "outside": changed, "new_tmp": new_tmp}
print(json.dumps(results))
"""

PRE_OOM = """
import torch
from transfer_core import models
def _oom(self, x):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 8.00 GiB total capacity)")
models.TransferModel.forward = _oom
"""

# Disk full while the checkpoint of epoch 2 is flushed: the first checkpoint.pt write works.
PRE_DISK_FULL = """
import errno, os
_real, _n = os.fsync, [0]
def _fsync(fd):
    if ".checkpoint.pt." in os.readlink(f"/proc/self/fd/{fd}"):
        _n[0] += 1
        if _n[0] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
    return _real(fd)
os.fsync = _fsync
"""

PRE_ZIP_LIMIT = f"import transfer_core.data.safe_zip as Z; Z.ZIP_MAX_BYTES = {BOMB_LIMIT}\n"


@dataclass
class CliCase:
    id: str
    sets: list[str] = field(default_factory=list)
    rc: int = 2
    needles: tuple[str, ...] = ()  # all must be in the error line (rc 2) or in stderr (rc 1); "a|b": either
    config: str = "tiny.yaml"
    pre: str = ""
    check: Callable[[Path, dict], None] | None = None  # (run dir, status) for rc 0 / 1 cases


def _data_info(run_dir: Path) -> dict:
    return json.loads((run_dir / "data_info.json").read_text())


def _warnings(status: dict, *needles: str) -> None:
    ws = status.get("warnings") or []
    for n in needles:
        assert any(n in w for w in ws), (n, ws)


def _check_skipped(run_dir: Path, st: dict) -> None:
    info = _data_info(run_dir)
    assert info["skipped"] == 4, info
    assert sorted(s.split(":")[0] for s in info["skipped_files"]) == sorted(f"a/{n}" for n in bad_images())
    _warnings(st, "skipped 4 unreadable")


def _check_odd_formats(run_dir: Path, st: dict) -> None:
    info = _data_info(run_dir)
    assert info["skipped"] == 0, info["skipped_files"]
    assert info["train_counts"]["a"] + info["val_counts"]["a"] == 6 + len(ODD_FORMATS)


def _check_empty_class(run_dir: Path, st: dict) -> None:
    assert _data_info(run_dir)["classes"] == ["a", "b"]
    _warnings(st, "class folder 'empty' has no images")


def _check_nested(run_dir: Path, st: dict) -> None:
    info = _data_info(run_dir)
    assert info["classes"] == ["a", "b"]
    assert info["train_counts"]["a"] + info["val_counts"]["a"] == 6 + 2  # the nested ones count for 'a'


def _check_zip_extracted(run_dir: Path, st: dict) -> None:
    info = _data_info(run_dir)
    assert info["source"].startswith("zip:") and info["classes"] == ["a", "b"]
    assert Path(info["location"]).is_relative_to(Path(run_dir).parents[2] / "data")  # beside the zip


def _check_batch_clamped(run_dir: Path, st: dict) -> None:
    _warnings(st, "batch size 4096 is larger than the")


def _check_tpc_clamped(run_dir: Path, st: dict) -> None:
    _warnings(st, "train_per_class=5000 is more than the training images")
    assert sum(_data_info(run_dir)["train_counts"].values()) < 3 * 5000


def _check_diverged(run_dir: Path, st: dict) -> None:
    assert st["state"] == "failed" and st["message"].startswith("diverged at epoch")


def _check_oom(run_dir: Path, st: dict) -> None:
    assert st["state"] == "failed" and "out of GPU memory" in st["message"] and "smaller batch" in st["message"]


def _check_disk_full(run_dir: Path, st: dict) -> None:
    import torch

    assert st["state"] == "failed" and "could not write the checkpoint of epoch 2" in st["message"]
    ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1  # the previous checkpoint, intact and loadable
    assert not list(run_dir.glob(".checkpoint.pt.*")), "temp file left behind"


def _check_second_root(run_dir: Path, st: dict) -> None:
    assert "root2" in _data_info(run_dir)["location"]


FUSION = ["method=fusion", "backbones.1.name=resnet18"]
CLI_CASES = [
    # --- images: unreadable ones are skipped and counted; odd formats load
    CliCase("images-corrupt-zero-text-truncated-skipped", ["data.dataset=badimgs"], rc=0, check=_check_skipped),
    CliCase("images-exif-16bit-cmyk-palette-alpha-load", ["data.dataset=oddimgs"], rc=0, check=_check_odd_formats),
    # --- folders
    CliCase("folder-one-class-only", ["data.dataset=oneclass"], needles=("oneclass", "at least 2 class folders", "found 1 (a)")),
    CliCase("folder-empty-class-folder-ignored", ["data.dataset=withempty"], rc=0, check=_check_empty_class),
    CliCase("folder-nested-folders-count-for-their-class", ["data.dataset=nested"], rc=0, check=_check_nested),
    # --- archives (a .zip in the data root, extracted beside it)
    CliCase("zip-good-extracted-beside-it", ["data.dataset=good.zip"], rc=0, check=_check_zip_extracted),
    CliCase("zip-slip-dotdot", ["data.dataset=slip.zip"], needles=("slip.zip", "points outside the folder")),
    CliCase("zip-slip-nested-dotdot", ["data.dataset=slip_nested.zip"], needles=("points outside the folder",)),
    CliCase("zip-absolute-member", ["data.dataset=absolute.zip"], needles=("absolute path",)),
    CliCase("zip-symlink-member", ["data.dataset=symlink.zip"], needles=("symbolic link",)),
    CliCase("zip-bomb-declared-size", ["data.dataset=bomb_declared.zip"], pre=PRE_ZIP_LIMIT, needles=("would expand to", "zip bomb")),
    # the headers lie: zipfile stops at the declared size and fails its CRC check, before the byte count trips
    CliCase("zip-bomb-actual-size", ["data.dataset=bomb_actual.zip"], pre=PRE_ZIP_LIMIT,
            needles=("bomb_actual.zip", "zip bomb|cannot extract")),
    CliCase("zip-bomb-member-ratio", ["data.dataset=bomb_member.zip"], needles=("bomb_member.zip: a/zeros.png", "zip bomb")),
    CliCase("zip-not-a-zip", ["data.dataset=not_a_zip.zip"], needles=("not_a_zip.zip is not a zip file",)),
    # --- weights files
    CliCase("weights-malicious-pickle-plain", ["backbones.0.weights=file:{pickle_plain}"], needles=("backbones.0.weights", "contains Python objects")),
    CliCase("weights-malicious-pickle-torch-save", ["backbones.0.weights=file:{pickle_torch_save}"], needles=("backbones.0.weights", "contains Python objects")),
    CliCase("weights-wrong-architecture", ["backbones.0.weights=file:{wrong_arch}"], needles=("backbones.0.weights", "does not fit resnet18", "missing keys")),
    CliCase("weights-truncated-file", ["backbones.0.weights=file:{truncated}"], needles=("backbones.0.weights", "truncated")),
    # --- config
    CliCase("config-unknown-backbone-suggests", ["backbones.0.name=resnet19"], needles=("backbones.0.name", "did you mean", "resnet18")),
    CliCase("config-freeze-beyond-groups", ["backbones.0.freeze=6"], needles=("backbones.0.freeze", "5 layer groups")),
    CliCase("config-alpha-negative", FUSION + ["fusion.alpha=[-0.5,1.5]"], needles=("fusion.alpha", "negative")),
    CliCase("config-alpha-nan", FUSION + ["fusion.alpha=[.nan,1]"], needles=("fusion.alpha", "finite")),
    CliCase("config-alpha-all-zero", FUSION + ["fusion.alpha=[0,0]"], needles=("fusion.alpha", "all be zero")),
    CliCase("config-alpha-wrong-length", FUSION + ["fusion.alpha=[0.2,0.3,0.5]"], needles=("fusion.alpha", "one value per backbone")),
    CliCase("config-shared-dim-0", FUSION + ["fusion.shared_dim=0"], needles=("fusion.shared_dim",)),
    CliCase("config-epochs-0", ["train.epochs=0"], needles=("train.epochs",)),
    CliCase("config-unknown-key-suggests", ["train.epoch=3"], needles=("train.epoch", "unknown key", "epochs")),
    CliCase("config-unknown-top-level-key", ["colour=red"], needles=("colour", "unknown key")),
    CliCase("config-classes-not-in-dataset", ["data.classes=[0,11]"], needles=("data.classes", "'11'")),
    CliCase("config-classes-not-in-folder", ["data.dataset=withempty", "data.classes=[a,zebra]"], needles=("data.classes", "zebra")),
    CliCase("config-unparsable-yaml", [], config="broken.yaml", needles=("broken.yaml", "not valid YAML at line 3")),
    CliCase("config-batch-size-above-data-clamped", ["train.batch_size=4096"], rc=0, check=_check_batch_clamped),
    CliCase("config-train-per-class-above-data-clamped", ["data.train_per_class=5000", "train.batch_size=128"], rc=0,
            check=_check_tpc_clamped),
    # --- training failures
    CliCase("train-nan-loss-diverged", ["train.lr=1e6", "train.epochs=3"], rc=1, needles=("diverged at epoch",), check=_check_diverged),
    CliCase("train-cuda-oom-suggests-smaller-batch", [], rc=1, pre=PRE_OOM, needles=("out of GPU memory", "smaller batch"), check=_check_oom),
    CliCase("train-disk-full-keeps-previous-checkpoint", ["train.epochs=3"], rc=1, pre=PRE_DISK_FULL,
            needles=("could not write the checkpoint of epoch 2", "No space left", "previous checkpoint is intact"), check=_check_disk_full),
    # --- safe defaults: datasets must lie under a data root (several roots, os.pathsep)
    CliCase("root-absolute-path-outside-refused", ["data.dataset={outside}"], needles=("outside the data folders",)),
    CliCase("root-dotdot-outside-refused", ["data.dataset=../outside/pets"], needles=("outside the data folders",)),
    CliCase("root-symlink-leading-outside-refused", ["data.dataset=sneaky"], needles=("outside the data folders",)),
    CliCase("root-second-data-root-is-searched", ["data.dataset=insecond"], rc=0, check=_check_second_root),
]


@pytest.fixture(scope="module")
def cli_results(module_tmp):
    """Build the inputs, run every CLI case (forked), return {id: result} with stdout/stderr."""
    base = module_tmp
    data, root2, inputs, io_dir = base / "data", base / "root2", base / "inputs", base / "io"
    for d in (data, root2, inputs, io_dir, base / "runs"):
        d.mkdir()
    outside = base / "outside"
    write_tree(outside / "pets", class_folder_members(n=3))
    marker = base / "PWNED"

    write_tree(data / "badimgs", class_folder_members(bad_images()))
    write_tree(data / "oddimgs", class_folder_members({k: f() for k, f in ODD_FORMATS.items()}))
    write_tree(data / "oneclass", {f"a/{i}.png": _png() for i in range(4)})
    write_tree(data / "withempty", class_folder_members())
    (data / "withempty" / "empty").mkdir()
    write_tree(data / "nested", class_folder_members({"deep/er/n0.png": _png(), "deep/n1.png": _png()}))
    (data / "good.zip").write_bytes(make_zip(list(class_folder_members(prefix="good/").items())))
    for name, (payload, _) in hostile_zips(outside).items():
        (data / f"{name}.zip").write_bytes(payload)
    (data / "sneaky").symlink_to(outside / "pets")
    write_tree(root2 / "insecond", class_folder_members())
    weights = weights_files(inputs, marker)

    tiny = {
        "seed": 0,
        "data": {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 8, "val_fraction": 0.2, "image_size": 32},
        "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}],
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu", "threads": 1},
    }
    (inputs / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    (inputs / "broken.yaml").write_text("seed: 0\ntrain: {epochs: [1, 2\n")
    fmt = {**{k: str(v) for k, v in weights.items()}, "outside": str(outside / "pets")}

    cases = []
    for c in CLI_CASES:
        args = ["train", str(inputs / c.config), "--runs-dir", str(base / "runs" / c.id), "-q"]
        sets = [s.format(**fmt) for s in c.sets]
        if any(s.startswith("data.dataset=") for s in sets):
            args += ["--set", "data.classes=null", "--set", "data.train_per_class=null"]  # folders: all of them
        for s in sets:
            args += ["--set", s]
        cases.append({"id": c.id, "args": args, "pre": c.pre,
                      "out": str(io_dir / f"{c.id}.out"), "err": str(io_dir / f"{c.id}.err")})
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT), TRANSFER_LAB_DATA=os.pathsep.join([str(data), str(root2)]),
        TRANSFER_LAB_RUNS=str(base / "runs" / "_default"), TRANSFER_LAB_CACHE=str(base / "runs" / "_cache"),
        TORCH_HOME=str(base / "runs" / "_torch_home"), OMP_NUM_THREADS="1",
    )
    data_before = {str(p.relative_to(data)) for p in data.rglob("*")}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(cases), cwd=base, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for c in cases:
        r = results[c["id"]]
        r["stdout"] = Path(c["out"]).read_text()
        r["stderr"] = Path(c["err"]).read_text()
    print(f"{len(cases)} CLI cases in {time.monotonic() - t0:.1f}s")
    return {"results": results, "base": base, "data_before": data_before, "marker": marker, "outside": outside}


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_case(cli_results, case: CliCase):
    r = cli_results["results"][case.id]
    base: Path = cli_results["base"]
    err = r["stderr"]
    assert "Traceback" not in err, err
    assert r["rc"] == case.rc, f"exit {r['rc']}, stderr:\n{err}"
    assert r["outside"] == [], f"written outside the runs and data folders: {r['outside']}"
    assert not [n for n in r["new_tmp"] if "escaped" in n or "PWNED" in n], r["new_tmp"]
    assert not cli_results["marker"].exists(), "a pickle ran code"
    assert not (cli_results["outside"] / "escaped.png").exists()
    runs = base / "runs" / case.id
    made = [p for p in runs.iterdir() if (p / "config.yaml").is_file()] if runs.is_dir() else []
    if case.rc == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        for n in case.needles:
            assert any(alt in lines[0] for alt in n.split("|")), (n, lines[0])
        assert made == [], "bad input must not create a run folder"
        assert r["stdout"].strip() == ""
        return
    assert len(made) == 1 and r["stdout"].strip().splitlines()[-1] == str(made[0])
    for n in case.needles:
        assert n in err, (n, err)
    if case.rc == 1:
        assert err.strip().splitlines()[-1].startswith("error: "), err
    st = json.loads((made[0] / "status.json").read_text())
    assert st["state"] == ("completed" if case.rc == 0 else "failed"), st
    if case.check:
        case.check(made[0], st)


def test_every_checkpoint_read_is_weights_only():
    """weights_only=True everywhere: every torch.load / hub download in the app and the core says so."""
    import ast

    calls = []
    for path in [ROOT / "app.py", *sorted((ROOT / "transfer_core").rglob("*.py")), *sorted((ROOT / "dashboard").rglob("*.py")),
                 *sorted((ROOT / "pages").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                owner = ast.unparse(node.func.value)
                if (owner, name) in (("torch", "load"), ("torch.hub", "load_state_dict_from_url"),
                                     ("torch.utils.model_zoo", "load_url"), ("model_zoo", "load_url")):
                    kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                    calls.append((f"{path.name}:{node.lineno}", kw.get("weights_only")))
                if name in ("load", "loads", "Unpickler") and ast.unparse(node.func.value) in ("pickle", "cPickle", "dill"):
                    calls.append((f"{path.name}:{node.lineno}", "plain pickle"))
    assert calls, "no torch.load found: the scan is broken"
    bad = [c for c in calls if c[1] != "True"]
    assert not bad, f"reads that could run pickled code: {bad}"


def test_cli_refused_archives_extract_nothing(cli_results):
    """Refused zips leave the data root as it was: only the good zip's folder (and its marker) appeared."""
    data = cli_results["base"] / "data"
    now = {str(p.relative_to(data)) for p in data.rglob("*")}
    added = now - cli_results["data_before"]
    assert added and all(a == "good" or a.startswith("good/") for a in added), sorted(added)
    assert not [p for p in data.iterdir() if p.name.startswith(".")], "temp extraction folders left behind"


# --------------------------------------------------------------------------- zip bombs, in process


def _write_zeros(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """Stream ``size`` zero bytes into a member: they never sit in memory or on disk uncompressed."""
    with zf.open(name, "w") as out:
        for _ in range(size // 2**20):
            out.write(bytes(2**20))


def _refused_before_writing(monkeypatch, payload_path: Path, dest: Path) -> str:
    """Extract, expecting a one-line DataError raised before any member was read or anything written."""
    from transfer_core.data import DataError, safe_extract_zip

    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(zf: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(name))
        return real_open(zf, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    before = sorted(p.name for p in dest.parent.iterdir())
    with pytest.raises(DataError) as ei:
        safe_extract_zip(payload_path, dest)
    assert opened == [], f"members were decompressed before the refusal: {opened}"
    assert sorted(p.name for p in dest.parent.iterdir()) == before, "something was written beside the zip"
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(f"{payload_path.name}: ")
    return msg


def test_zip_member_over_the_image_cap_is_refused_before_writing(tmp_path, monkeypatch):
    """The cap set low by TRANSFER_LAB_MAX_IMAGE_BYTES: a stored (uncompressed) 3 MiB member is over it."""
    monkeypatch.setenv("TRANSFER_LAB_MAX_IMAGE_BYTES", str(2**20))
    zp = tmp_path / "big.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_STORED) as zf:
        for name, data in class_folder_members(n=2).items():
            zf.writestr(name, data)
        _write_zeros(zf, "a/huge.png", 3 * 2**20)
    msg = _refused_before_writing(monkeypatch, zp, tmp_path / "big")
    assert "a/huge.png would expand to 3.0 MB" in msg and "TRANSFER_LAB_MAX_IMAGE_BYTES" in msg, msg


def test_zip_of_two_600mb_members_is_refused_under_the_default_cap(tmp_path, monkeypatch):
    """The issue's bomb: a tiny zip whose two members declare 600 MB each (default limits, 4 GiB total)."""
    monkeypatch.delenv("TRANSFER_LAB_MAX_IMAGE_BYTES", raising=False)
    payload = make_zip(list(class_folder_members(n=2).items()) + [("a/z0.png", bytes(2**20)), ("b/z1.png", bytes(2**20))])
    for member in ("a/z0.png", "b/z1.png"):
        payload = claim_size(payload, member, 600_000_000)
    zp = tmp_path / "bomb.zip"
    zp.write_bytes(payload)
    assert len(payload) < 100_000
    msg = _refused_before_writing(monkeypatch, zp, tmp_path / "bomb")
    assert "a/z0.png would expand to 572.2 MB, more than the 256.0 MB an image may be" in msg, msg


def test_zip_member_compressed_like_a_bomb_is_refused_before_writing(tmp_path, monkeypatch):
    """Default limits: 8 MiB of zeros (well under the cap) deflates ~1000:1, which no image does."""
    monkeypatch.delenv("TRANSFER_LAB_MAX_IMAGE_BYTES", raising=False)
    zp = tmp_path / "ratio.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:  # the weakest level: ~230:1
        for name, data in class_folder_members(n=2).items():
            zf.writestr(name, data)
        _write_zeros(zf, "b/flat.bmp", 8 * 2**20)
    msg = _refused_before_writing(monkeypatch, zp, tmp_path / "ratio")
    assert "b/flat.bmp expands" in msg and "far beyond what images do" in msg and "zip bomb" in msg, msg


def test_zip_of_big_real_images_is_extracted(tmp_path, monkeypatch):
    """The bomb checks let real images through: a 4.6 MB BMP of noise and a flat 3 MB BMP (~500:1)."""
    from transfer_core.data import safe_extract_zip

    monkeypatch.delenv("TRANSFER_LAB_MAX_IMAGE_BYTES", raising=False)
    members = class_folder_members(n=2)
    for name, arr in (("a/flat.bmp", np.full((1024, 1024, 3), 250, np.uint8)),
                      ("b/photo.bmp", np.random.default_rng(0).integers(0, 255, (1100, 1400, 3)).astype(np.uint8))):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "BMP")
        members[name] = buf.getvalue()
    zp = tmp_path / "real.zip"
    zp.write_bytes(make_zip(list(members.items())))
    dest = safe_extract_zip(zp, tmp_path / "real")
    assert {p.relative_to(dest).as_posix() for p in dest.rglob("*.bmp")} == {"a/flat.bmp", "b/photo.bmp"}


# --------------------------------------------------------------------------- decoding, in process


@pytest.mark.parametrize("name", list(bad_images()))
def test_unreadable_image_is_a_one_line_data_error(name):
    from transfer_core.data import DataError, load_image

    with pytest.raises(DataError) as ei:
        load_image(bad_images()[name])
    assert "\n" not in str(ei.value) and str(ei.value).startswith("cannot read image")


def _px(img: Image.Image, x: int, y: int) -> tuple[int, ...]:
    return img.getpixel((x, y))


@pytest.mark.parametrize("name", list(ODD_FORMATS))
def test_odd_image_formats_load_correctly(name):
    from transfer_core.data import load_image

    img = load_image(ODD_FORMATS[name]())
    assert img.mode == "RGB"
    if name == "exif_rotated.jpg":
        assert img.size == (10, 20)  # turned upright: 10 wide, 20 tall
        top, bottom = _px(img, 5, 3), _px(img, 5, 16)
        assert top[0] > 180 and top[2] < 80, top  # the stored left (red) half is on top
        assert bottom[2] > 180 and bottom[0] < 80, bottom
    elif name == "gray16.png":
        assert all(abs(c - 128) <= 1 for c in _px(img, 3, 3)), _px(img, 3, 3)
    elif name == "cmyk.jpg":
        r, g, b = _px(img, 6, 6)
        assert r > 200 and g < 60 and b < 60, (r, g, b)
    elif name == "palette.png":
        assert _px(img, 1, 1) == (255, 255, 255) and _px(img, 9, 1) == (0, 200, 0)
    elif name == "alpha.png":
        assert _px(img, 1, 1) == (255, 255, 255) and _px(img, 9, 1) == (0, 0, 220)


def test_folder_of_10k_tiny_images_loads_fast(tmp_path):
    """10,000 8x8 PNGs in two classes: listed, decoded and split in a few seconds."""
    from transfer_core.config import DataConfig
    from transfer_core.data import build_data

    root = tmp_path / "data"
    blobs = [[_png((c * 200 + 20, 40, i * 20), size=(8, 8)) for i in range(8)] for c in range(2)]
    for c in range(2):
        folder = root / "many" / f"k{c}"
        folder.mkdir(parents=True)
        for i in range(5000):
            (folder / f"{i:05d}.png").write_bytes(blobs[c][i % 8])
    t0 = time.perf_counter()
    b = build_data(DataConfig(dataset="many", image_size=8), seed=0)
    took = time.perf_counter() - t0
    assert len(b.train) + len(b.val) == 10_000 and b.info["skipped"] == 0
    assert b.info["in_memory"] and b.train.images is not None
    # ~2 s on an idle 2-core machine; generous for a shared, loaded CI box
    assert took < 45, f"loading 10k tiny images took {took:.1f}s"
    print(f"10k tiny images loaded in {took:.2f}s")


# --------------------------------------------------------------------------- the dashboard (AppTest)

APP = str(ROOT / "app.py")
UI_TIMEOUT = 240


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]
    return at


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _outside(tmp_path: Path) -> set[str]:
    """Files under the test's tmp folder that are not in its runs or data folders.

    ``cache`` is $TRANSFER_LAB_CACHE of conftest (by default it is <runs>/_cache).
    """
    keep = (tmp_path / "runs", tmp_path / "data", tmp_path / "cache")
    return {str(p) for p in tmp_path.rglob("*") if p.is_file() and not any(p.is_relative_to(k) for k in keep)}


@pytest.fixture(scope="module")
def data_page():
    """One Data page session for every upload case (each case uploads a new file)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=UI_TIMEOUT).run()
    _ok(at)
    _ok(at.switch_page("pages/data.py").run())
    yield at
    st.cache_data.clear()
    st.cache_resource.clear()


def _upload_zip(at, name: str, payload: bytes):
    # Each test has its own data root: start from the built-in digits, not an earlier test's upload.
    at.session_state["dataset"] = "digits"
    at.session_state["draft_data"] = {}
    at.file_uploader(key="zip_upload").set_value((name, payload, "application/zip"))
    return _ok(at.run())


UI_ZIP_REFUSED = ["slip", "slip_nested", "absolute", "symlink", "bomb_declared", "bomb_actual", "bomb_member", "not_a_zip",
                  "one_class"]


@pytest.mark.parametrize("case", UI_ZIP_REFUSED)
def test_ui_zip_upload_refused(data_page, tmp_path, monkeypatch, case):
    from dashboard import widgets

    if case != "bomb_member":  # that one is refused under the default limits
        monkeypatch.setattr(widgets, "ZIP_EXTRACT_MAX_BYTES", BOMB_LIMIT)
    outside = tmp_path / "outside"
    outside.mkdir()
    zips = hostile_zips(outside)
    if case == "one_class":
        payload, expected = make_zip([(f"cats/{i}.png", _png()) for i in range(3)]), "at least 2 class folders with images, found 1"
    else:
        payload, expected = zips[case]
    before = _outside(tmp_path)
    at = _upload_zip(data_page, f"{case}.zip", payload)
    errs = _errors(at)
    assert len(errs) == 1 and expected in errs[0] and "\n" not in errs[0], errs
    assert _outside(tmp_path) == before, "an upload wrote outside the data folder"
    assert not list(tmp_path.rglob("escaped.png"))
    uploads = tmp_path / "data" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == [], list(uploads.iterdir())
    assert "Classes" in _metrics(at), "the page keeps working on its current dataset"


@pytest.mark.parametrize("case", ["bad_images_skipped", "odd_formats_loaded", "empty_class_ignored", "nested_counted"])
def test_ui_zip_upload_images_and_folders(data_page, tmp_path, case):
    if case == "bad_images_skipped":
        members, skipped, total_a = class_folder_members(bad_images()), 4, 6
    elif case == "odd_formats_loaded":
        members, skipped, total_a = class_folder_members({k: f() for k, f in ODD_FORMATS.items()}), 0, 6 + len(ODD_FORMATS)
    elif case == "empty_class_ignored":
        members, skipped, total_a = class_folder_members(), 0, 6
    else:
        members, skipped, total_a = class_folder_members({"deep/er/n0.png": _png(), "deep/n1.png": _png()}), 0, 8
    entries: list[tuple[Any, bytes]] = [(f"set/{k}", v) for k, v in members.items()]
    if case == "empty_class_ignored":
        entries.append((zipfile.ZipInfo("set/empty/"), b""))
    at = _upload_zip(data_page, f"{case}.zip", make_zip(entries))
    assert not _errors(at), _errors(at)
    assert at.selectbox(key="dataset").value == f"uploads/{case}.zip"
    m = _metrics(at)
    assert m["Classes"] == "2" and m["Skipped files"] == str(skipped), m
    assert int(m["Training images"].replace(",", "")) + int(m["Validation images"].replace(",", "")) == total_a + 6
    warns = [w.value for w in at.warning]
    if case == "bad_images_skipped":
        assert any("skipped 4 unreadable" in w for w in warns), warns
    if case == "empty_class_ignored":
        assert any("'empty' has no images" in w for w in warns), warns
    # extracted beside the uploaded zip, inside the data root
    assert (tmp_path / "data" / "uploads" / f"{case}.zip").is_file()
    assert (tmp_path / "data" / "uploads" / case / "set" / "a").is_dir()


def test_ui_zip_upload_over_the_size_limit(data_page, tmp_path, monkeypatch):
    from dashboard import widgets

    monkeypatch.setattr(widgets, "ZIP_UPLOAD_MAX_MB", 1)
    _ok(data_page.run())  # the uploader is re-made with its new limit (a widget parameter)
    big = make_zip([("a/x.png", os.urandom(700_000)), ("b/y.png", os.urandom(700_000))], zipfile.ZIP_STORED)
    at = _upload_zip(data_page, "big.zip", big)
    errs = _errors(at)
    assert len(errs) == 1 and "1 MB upload limit" in errs[0], errs
    assert not (tmp_path / "data" / "uploads").exists() or not any((tmp_path / "data" / "uploads").iterdir())


def test_ui_dataset_outside_the_data_root_is_refused(tmp_path):
    """A config made elsewhere (CLI) that names a folder outside the data root: refused on the Data page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    outside = write_tree(tmp_path / "elsewhere", class_folder_members(n=2))
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=UI_TIMEOUT)
    at.session_state["draft_data"] = {"dataset": str(outside)}
    _ok(at.run())
    _ok(at.switch_page("pages/data.py").run())
    errs = _errors(at)
    assert len(errs) == 1 and "outside the data folders" in errs[0], errs


@pytest.fixture(scope="module")
def models_page():
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=UI_TIMEOUT).run()
    _ok(at)
    at.switch_page("pages/models.py")
    _ok(at.run())
    yield at
    st.cache_resource.clear()


@pytest.mark.parametrize("case", [*WEIGHTS_EXPECT, "over_size_limit"])
def test_ui_weights_upload_refused(models_page, tmp_path, monkeypatch, case):
    from dashboard import widgets

    marker = tmp_path / "PWNED"
    files = weights_files(tmp_path / "inputs", marker)
    if case == "over_size_limit":
        monkeypatch.setattr(widgets, "WEIGHTS_UPLOAD_MAX_MB", 1)
        _ok(models_page.run())  # the uploader is re-made with its new limit (a widget parameter)
        name, payload, expected = "resnet18.pt", files["good"].read_bytes(), "1 MB upload limit"
    else:
        name, payload, expected = files[case].name, files[case].read_bytes(), WEIGHTS_EXPECT[case]
    before = _outside(tmp_path)
    at = models_page
    at.file_uploader(key="weights_upload").set_value((name, payload, "application/octet-stream"))
    _ok(at.run())
    at.selectbox(key="wi_backbone").set_value("resnet18")
    _ok(at.button(key="wi_import").click().run())
    errs = _errors(at)
    assert len(errs) == 1 and expected in errs[0] and name in errs[0] and "\n" not in errs[0], errs
    assert not marker.exists(), "the pickle ran code"
    wdir = tmp_path / "runs" / "_weights"
    assert not list(wdir.glob("*.pt")) and not list(wdir.glob(".*")), "nothing is saved, no temp file left"
    assert _outside(tmp_path) == before
    assert _metrics(at)["Backbones"] == "16", "the page keeps working"


# --------------------------------------------------------------------------- safe defaults


def test_streamlit_config_listens_on_localhost_and_limits_uploads():
    import tomllib

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert 0 < cfg["server"]["maxUploadSize"] <= 200
    from dashboard import widgets

    # the widgets may only lower the server's cap
    assert widgets.ZIP_UPLOAD_MAX_MB <= cfg["server"]["maxUploadSize"]
    assert widgets.WEIGHTS_UPLOAD_MAX_MB <= cfg["server"]["maxUploadSize"]
    assert widgets.IMAGE_UPLOAD_MAX_MB <= cfg["server"]["maxUploadSize"]
    for page in ("pages/data.py", "pages/models.py", "pages/predict.py"):
        assert "max_upload_size=" in (ROOT / page).read_text(), page


def test_readme_says_how_to_share_on_a_lan():
    text = (ROOT / "README.md").read_text()
    assert "127.0.0.1" in text and "--server.address 0.0.0.0" in text


def _listening(port: int) -> list[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    out = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state = parts[1], parts[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(addr)
                if width == 8:
                    out.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    out.append(socket.inet_ntop(socket.AF_INET6, words))
    return out


def test_server_without_flags_binds_localhost_only(tmp_path):
    """``streamlit run app.py`` with no --server.address: only 127.0.0.1 listens (config.toml)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_utils import free_port, stop_server, wait_health

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(TRANSFER_LAB_RUNS=str(tmp_path / "runs"), TRANSFER_LAB_DATA=str(tmp_path / "data"),
               STREAMLIT_SERVER_PORT=str(port))  # the port only: a free one, not a flag
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_health(f"http://127.0.0.1:{port}", proc, 180), (tmp_path / "server.log").read_text()[-2000:]
        addrs = _listening(port)
        assert addrs and set(addrs) == {"127.0.0.1"}, addrs
    finally:
        stop_server(proc)
        log.close()
