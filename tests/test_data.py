"""Tests for transfer_core.data: sources, splits, decoding edge cases, safe zip import.

Fast, seeded, CPU-only and offline: torchvision datasets are replaced by fakes.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transfer_core import data as D
from transfer_core.data import builtin as data_builtin, preprocessing as data_prep
from transfer_core.config import ConfigError, DataConfig

# --------------------------------------------------------------------------- helpers


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    r = tmp_path / "data"
    r.mkdir(exist_ok=True)  # conftest may have made it already
    monkeypatch.setenv("TRANSFER_LAB_DATA", str(r))
    return r


def _snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _noise_png(path: Path, size: int = 24, seed: int = 0, tint: tuple[int, int, int] = (0, 0, 0)) -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 120, (size, size + 6, 3)).astype(np.uint8) + np.array(tint, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _make_folder(base: Path) -> Path:
    """cat: 6 PNG (2 nested), dog: 6 JPEG, empty/, + 4 unreadable files and 2 ignored ones."""
    for i in range(4):
        _noise_png(base / "cat" / f"c{i}.png", seed=i, tint=(130, 0, 0))
    _noise_png(base / "cat" / "sub" / "deeper" / "n0.png", seed=10, tint=(130, 0, 0))
    _noise_png(base / "cat" / "sub" / "n1.png", seed=11, tint=(130, 0, 0))
    (base / "dog").mkdir(parents=True)
    for i in range(6):
        arr = np.full((20, 30, 3), (10, 20, 200), np.uint8)
        Image.fromarray(arr).save(base / "dog" / f"d{i}.jpg", quality=95)
    (base / "empty").mkdir()
    # unreadable: random bytes, zero bytes, text named .jpg, truncated PNG
    (base / "cat" / "corrupt.png").write_bytes(np.random.default_rng(0).bytes(300))
    (base / "cat" / "zero.png").write_bytes(b"")
    (base / "dog" / "text.jpg").write_text("this is not a jpeg\n")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(buf, "PNG")
    (base / "dog" / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    # ignored without counting: not an image extension, hidden
    (base / "cat" / "notes.txt").write_text("hello")
    (base / "dog" / ".DS_Store").write_bytes(b"\x00\x01")
    return base


def _zip_folder(src: Path, zip_path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(src).as_posix())
    return zip_path


# --------------------------------------------------------------------------- built-in datasets


@pytest.mark.parametrize(
    "name,total,size",
    [("digits", 1797, 16), ("mnist5k", 5000, 20)],
)
def test_builtin_gray_datasets(name, total, size):
    b = D.build_data(DataConfig(dataset=name, image_size=size), seed=0, roots=[])
    assert b.classes == [str(i) for i in range(10)]
    assert len(b.train) + len(b.val) == total
    assert sum(b.info["train_counts"].values()) == len(b.train)
    assert sum(b.info["val_counts"].values()) == len(b.val)
    x, y = b.train[0]
    assert x.shape == (3, size, size) and x.dtype == torch.float32 and isinstance(y, int)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # gray repeated
    imgs = b.train.images
    assert imgs.dtype == torch.uint8 and imgs.shape == (len(b.train), 1, size, size)
    assert int(imgs.max()) >= 250  # full 0..255 range, not 0..16
    assert b.train.labels.dtype == torch.long and set(b.train.labels.tolist()) == set(range(10))
    assert b.preprocessing["source_mode"] == "L" and b.preprocessing["resize"] == "square"
    assert b.info["skipped"] == 0 and b.info["warnings"] == []


def test_mnist5k_split_counts():
    b = D.build_data(DataConfig(dataset="mnist5k", val_fraction=0.2), seed=1, roots=[])
    assert all(v == 100 for v in b.info["val_counts"].values())  # 500 per class
    assert all(v == 400 for v in b.info["train_counts"].values())


def test_shapes_dataset():
    cfg = DataConfig(dataset="shapes", shapes_classes=4, shapes_per_class=15, image_size=24)
    b = D.build_data(cfg, seed=0, roots=[])
    assert b.classes == ["circle", "square", "triangle", "star"]
    assert len(b.train) + len(b.val) == 60
    x, _ = b.val[0]
    assert x.shape == (3, 24, 24) and not torch.equal(x[0], x[1])  # colour
    assert b.preprocessing["source_mode"] == "RGB"
    # The dataset is fixed; the seed only changes the split.
    b2 = D.build_data(cfg, seed=5, roots=[])
    all1 = torch.cat([b.train.images, b.val.images]).float().sum()
    all2 = torch.cat([b2.train.images, b2.val.images]).float().sum()
    assert all1 == all2
    # Fewer classes reuse the same images (per-(class, index) seeding).
    small, _ = data_builtin._shapes_arrays(2, 15)
    big, _ = data_builtin._shapes_arrays(4, 15)
    assert torch.equal(small, big[:30])
    # Not trivial: images of one class differ a lot from each other.
    imgs = big[:15].float()
    assert (imgs - imgs.mean(0)).abs().mean() > 20


# --------------------------------------------------------------------------- classes, splits


def test_class_subset_and_remap():
    full = D.build_data(DataConfig(dataset="digits"), seed=0, roots=[])
    b = D.build_data(DataConfig(dataset="digits", classes=[3, "7", 1]), seed=0, roots=[])
    assert b.classes == ["3", "7", "1"]
    assert set(b.train.labels.tolist()) == {0, 1, 2}
    for k, name in enumerate(b.classes):
        assert b.info["train_counts"][name] == full.info["train_counts"][name]
        # the per-class split does not depend on which other classes are selected
        mine = b.val.images[b.val.labels == k]
        theirs = full.val.images[full.val.labels == int(name)]
        assert torch.equal(mine, theirs)


def test_unknown_class_is_config_error():
    with pytest.raises(ConfigError) as ei:
        D.build_data(DataConfig(dataset="digits", classes=[0, 11]), seed=0, roots=[])
    assert ei.value.field == "data.classes"
    assert "class '11' is not in digits (classes: 0, 1, 2" in str(ei.value)
    with pytest.raises(ConfigError, match="class 'cat' is not in digits"):
        D.build_data(DataConfig(dataset="digits", classes=["cat", 1]), seed=0, roots=[])
    with pytest.raises(ConfigError, match="twice"):
        D.build_data(DataConfig(dataset="digits", classes=[1, "1"]), seed=0, roots=[])


def test_few_shot_and_clamp_warning():
    b = D.build_data(DataConfig(dataset="digits", train_per_class=5), seed=0, roots=[])
    assert all(v == 5 for v in b.info["train_counts"].values()) and len(b.train) == 50
    assert b.info["warnings"] == []
    b = D.build_data(DataConfig(dataset="digits", classes=[0, 1], train_per_class=10_000), seed=0, roots=[])
    assert all(100 < v < 200 for v in b.info["train_counts"].values())
    assert len(b.info["warnings"]) == 1 and "train_per_class=10000" in b.info["warnings"][0]


def test_val_split_identical_across_train_per_class():
    runs = [D.build_data(DataConfig(dataset="digits", train_per_class=t), seed=3, roots=[]) for t in (None, 3, 20)]
    for other in runs[1:]:
        assert torch.equal(other.val.images, runs[0].val.images)
        assert torch.equal(other.val.labels, runs[0].val.labels)
    # the 3-shot training set is the start of the 20-shot one, class by class
    for k in range(10):
        few = runs[1].train.images[runs[1].train.labels == k]
        more = runs[2].train.images[runs[2].train.labels == k]
        assert torch.equal(few, more[:3])


def test_split_is_deterministic_per_seed():
    cfg = DataConfig(dataset="digits")
    a, b, c = (D.build_data(cfg, seed=s, roots=[]) for s in (7, 7, 8))
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.train.images, b.train.images)
    assert a.info["fingerprint"] == b.info["fingerprint"] != c.info["fingerprint"]
    assert a.info["val_counts"] == c.info["val_counts"]
    assert not torch.equal(a.val.images, c.val.images)


def test_augment_changes_train_items_only():
    b = D.build_data(DataConfig(dataset="digits", augment=True, image_size=16), seed=0, roots=[])
    torch.manual_seed(0)
    outs = [b.train[0][0] for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    assert torch.equal(b.val[0][0], b.val[0][0])
    assert b.train.augment and not b.val.augment


def test_small_classes_split_rounding(root):
    for cls, n in (("a", 1), ("b", 2), ("c", 3)):
        for i in range(n):
            _noise_png(root / "tiny" / cls / f"{i}.png", seed=i)
    b = D.build_data(DataConfig(dataset="tiny", val_fraction=0.2, image_size=8), seed=0)
    assert b.info["val_counts"] == {"a": 0, "b": 1, "c": 1}
    assert b.info["train_counts"] == {"a": 1, "b": 1, "c": 2}


# --------------------------------------------------------------------------- folders


def test_folder_dataset_with_bad_files(root):
    _make_folder(root / "pets")
    b = D.build_data(DataConfig(dataset="pets", image_size=16, val_fraction=0.34), seed=0)
    assert b.classes == ["cat", "dog"]
    assert b.info["skipped"] == 4
    assert len(b.info["skipped_files"]) == 4
    assert any("empty" in w for w in b.info["warnings"])
    assert any("skipped 4" in w for w in b.info["warnings"])
    counts = {k: b.info["train_counts"][k] + b.info["val_counts"][k] for k in b.classes}
    assert counts == {"cat": 6, "dog": 6}  # nested images count for their top folder
    assert b.preprocessing["resize"] == "shorter_side_center_crop"
    assert b.info["source"].startswith("folder:") and b.info["in_memory"]
    # labels are right: cat images are red, dog images are blue
    imgs, labels = b.train.images.float(), b.train.labels
    assert (imgs[labels == 0, 0].mean() > imgs[labels == 0, 2].mean())
    assert (imgs[labels == 1, 2].mean() > imgs[labels == 1, 0].mean())
    assert b.train[0][0].shape == (3, 16, 16)
    # subset by name
    b2 = D.build_data(DataConfig(dataset="pets", classes=["dog", "cat"], image_size=16), seed=0)
    assert b2.classes == ["dog", "cat"]
    assert D.dataset_classes("pets") == ["cat", "dog"]


def test_folder_needs_two_classes(root):
    for i in range(3):
        _noise_png(root / "one" / "only" / f"{i}.png", seed=i)
    (root / "one" / "empty").mkdir()
    with pytest.raises(D.DataError, match="at least 2 class folders"):
        D.build_data(DataConfig(dataset="one"), seed=0)


def test_lazy_folder_matches_in_memory(root, monkeypatch):
    _make_folder(root / "pets")
    cfg = DataConfig(dataset="pets", image_size=12)
    mem = D.build_data(cfg, seed=2)
    monkeypatch.setattr(data_prep, "MEMORY_BUDGET_BYTES", 100)
    lazy = D.build_data(cfg, seed=2)
    assert lazy.train.images is None and not lazy.info["in_memory"]
    assert lazy.info["skipped"] == 4
    assert len(lazy.train) == len(mem.train)
    for i in range(len(mem.train)):
        assert torch.equal(lazy.train[i][0], mem.train[i][0])
    assert torch.equal(lazy.train.labels, mem.train.labels)
    # preprocess_image on the very file gives the training tensor
    p = lazy.train.paths[0]
    assert torch.equal(D.preprocess_image(p, lazy.preprocessing), lazy.train[0][0])


def test_in_memory_over_budget_resizes_per_item(monkeypatch):
    cfg = DataConfig(dataset="digits", image_size=16)
    ref = D.build_data(cfg, seed=0, roots=[])
    monkeypatch.setattr(data_prep, "MEMORY_BUDGET_BYTES", 1000)
    b = D.build_data(cfg, seed=0, roots=[])
    assert b.train.images is None
    for i in (0, 5, 100):
        assert torch.equal(b.train[i][0], ref.train[i][0])


def test_symlinked_file_outside_root_is_skipped(root, tmp_path):
    _make_folder(root / "pets")
    secret = tmp_path / "secret.png"
    _noise_png(secret)
    (root / "pets" / "cat" / "link.png").symlink_to(secret)
    b = D.build_data(DataConfig(dataset="pets", image_size=8), seed=0)
    assert b.info["skipped"] == 5
    assert any("outside the data folders" in s for s in b.info["skipped_files"])


def test_many_tiny_images_load(root):
    for c in range(3):
        folder = root / "many" / f"k{c}"
        folder.mkdir(parents=True)
        for i in range(100):
            Image.new("L", (10, 10), c * 80 + i % 50).save(folder / f"{i}.png")
    b = D.build_data(DataConfig(dataset="many", image_size=8), seed=0)
    assert len(b.train) + len(b.val) == 300 and b.info["skipped"] == 0
    assert b.info["load_seconds"] < 10


# --------------------------------------------------------------------------- image decoding


def _truncated(fmt: str) -> bytes:
    """A real JPEG/PNG of noise with its last third cut off: valid headers, missing pixel data."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(buf, fmt)
    return buf.getvalue()[: len(buf.getvalue()) * 2 // 3]


def test_truncated_images_are_not_loaded_silently(root):
    """Truncated files in a class folder are skipped and counted (README), never padded with grey."""
    for c in ("cat", "dog"):
        for i in range(3):
            _noise_png(root / "pets" / c / f"{i}.png", seed=i)
    (root / "pets" / "cat" / "cut.jpg").write_bytes(_truncated("JPEG"))
    (root / "pets" / "dog" / "cut.png").write_bytes(_truncated("PNG"))
    for rel in ("cat/cut.jpg", "dog/cut.png"):
        with Image.open(root / "pets" / rel) as im:
            assert im.size == (64, 64)  # the header is intact: only the pixel data is missing
        with pytest.raises(D.DataError, match="cannot read image"):
            D.load_image(root / "pets" / rel)
    b = D.build_data(DataConfig(dataset="pets", image_size=16, val_fraction=0.34), seed=0)
    assert b.info["skipped"] == 2
    assert sorted(s.split(":")[0] for s in b.info["skipped_files"]) == ["cat/cut.jpg", "dog/cut.png"]
    assert any("skipped 2 unreadable" in w for w in b.info["warnings"])
    assert b.info["train_counts"]["cat"] + b.info["val_counts"]["cat"] == 3
    assert b.info["train_counts"]["dog"] + b.info["val_counts"]["dog"] == 3


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_load_image_garbage_is_data_error(content):
    with pytest.raises(D.DataError) as ei:
        D.load_image(content)
    assert "\n" not in str(ei.value) and str(ei.value).startswith("cannot read image")


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # left half red
    arr[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(p, quality=95, exif=exif.tobytes())
    im = D.load_image(p)
    assert im.size == (20, 40)  # width, height swapped
    a = np.asarray(im).astype(int)
    assert a[5, 10, 0] > 200 and a[5, 10, 2] < 60  # top is red
    assert a[35, 10, 2] > 200 and a[35, 10, 0] < 60  # bottom is blue


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    vals = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16).repeat(4, 0)
    p = tmp_path / "deep.png"
    Image.fromarray(vals).save(p)
    with Image.open(p) as raw:
        assert raw.mode.startswith("I")
    a = np.asarray(D.load_image(p))
    assert a.shape == (4, 4, 3)
    assert a[0, :, 0].tolist() == [0, 4, 128, 255]


@pytest.mark.parametrize(
    "mode,values,expected",
    [("I", [0, 256, 65535], [0, 1, 255]), ("F", [0.0, 0.5, 1.0], [0, 128, 255]), ("F", [-2.0, 0.0, 2.0], [0, 128, 255])],
)
def test_int_and_float_images(tmp_path, mode, values, expected):
    arr = np.array([values], dtype=np.int32 if mode == "I" else np.float32).repeat(2, 0)
    p = tmp_path / "x.tif"
    Image.fromarray(arr, mode).save(p)
    a = np.asarray(D.load_image(p))[0, :, 0].astype(int)
    assert np.abs(a - np.array(expected)).max() <= 1


def test_cmyk_jpeg(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (255, 0, 0, 0)).save(p, quality=95)  # pure cyan
    a = np.asarray(D.load_image(p)).astype(int)
    assert a[8, 8, 0] < 40 and a[8, 8, 1] > 215 and a[8, 8, 2] > 215


def test_palette_png_with_transparency(tmp_path):
    im = Image.new("P", (8, 8), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (4, 0, 8, 8))
    p = tmp_path / "pal.png"
    im.save(p, transparency=1)
    a = np.asarray(D.load_image(p)).astype(int)
    assert a[0, 0].tolist() == [255, 0, 0]
    assert a[0, 7].tolist() == [255, 255, 255]  # transparent -> white, not blue or black


def test_rgba_and_la_composite_on_white(tmp_path):
    p = tmp_path / "rgba.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 128)).save(p)
    a = np.asarray(D.load_image(p)).astype(int)[0, 0]
    assert a[0] == 255 and abs(a[1] - 127) <= 2 and abs(a[2] - 127) <= 2
    q = tmp_path / "la.png"
    Image.new("LA", (4, 4), (0, 0)).save(q)
    assert np.asarray(D.load_image(q))[0, 0].tolist() == [255, 255, 255]


# --------------------------------------------------------------------------- preprocessing


def test_preprocess_image_matches_training_tensors(tmp_path):
    for cfg in (DataConfig(dataset="digits", image_size=16), DataConfig(dataset="shapes", image_size=20, shapes_per_class=6)):
        b = D.build_data(cfg, seed=0, roots=[])
        prep = b.preprocessing
        json.dumps(prep)  # stored with the run: must be plain data
        for i in (0, 3):
            u8 = b.val.images[i]
            p = tmp_path / f"{cfg.dataset}{i}.png"
            Image.fromarray(u8[0].numpy() if u8.shape[0] == 1 else u8.permute(1, 2, 0).numpy()).save(p)
            want = b.val[i][0]
            assert torch.equal(D.preprocess_image(p, prep), want)
            assert torch.equal(D.preprocess_image(p.read_bytes(), prep), want)
            with Image.open(p) as im:
                assert torch.equal(D.preprocess_image(im, prep), want)


def test_preprocessing_format_and_resize_modes(tmp_path):
    prep = D.build_data(DataConfig(dataset="digits", image_size=12), seed=0, roots=[]).preprocessing
    for key in ("image_size", "resize", "grayscale_to_rgb", "source_mode", "invert"):
        assert key in prep
    assert prep["image_size"] == 12 and prep["grayscale_to_rgb"] is True and prep["invert"] is False
    # a wide photo: square squashes, the folder mode crops the centre
    arr = np.zeros((30, 90, 3), np.uint8)
    arr[:, 30:60] = 255
    p = tmp_path / "wide.png"
    Image.fromarray(arr).save(p)
    crop = D.preprocess_image(p, {**prep, "resize": "shorter_side_center_crop", "source_mode": "RGB"})
    assert crop.shape == (3, 12, 12) and float(crop[:, :, 2:-2].min()) > 0.99  # edges: antialias bleed
    sq = D.preprocess_image(p, {**prep, "source_mode": "RGB"})
    assert float(sq[:, :, 0].max()) < 0.01 and float(sq[:, :, 6].min()) > 0.99
    inv = D.preprocess_image(p, {**prep, "invert": True})
    assert torch.allclose(inv, 1 - sq, atol=1 / 255 + 1e-6)


def test_sample_grid():
    b = D.build_data(DataConfig(dataset="shapes", shapes_classes=3, shapes_per_class=8, image_size=16), seed=0, roots=[])
    grid = D.sample_grid(b, per_class=7)
    assert list(grid) == b.classes
    for imgs in grid.values():
        assert len(imgs) == 7  # 6 train + 1 from val
        assert imgs[0].shape == (16, 16, 3) and imgs[0].dtype == np.uint8
    g = D.sample_grid(D.build_data(DataConfig(dataset="digits", image_size=8), seed=0, roots=[]), per_class=2)
    assert g["0"][0].shape == (8, 8, 3)


# --------------------------------------------------------------------------- zips


def test_good_zip_extracts_once_and_builds(root, tmp_path):
    src = _make_folder(tmp_path / "src")
    _zip_folder(src, root / "pets.zip", prefix="pets/")  # a wrapper folder inside, as zips often have
    assert D.dataset_classes("pets.zip") == ["cat", "dog"]
    assert not (root / "pets").exists()  # listing classes does not extract
    b = D.build_data(DataConfig(dataset="pets.zip", image_size=8), seed=0)
    assert b.classes == ["cat", "dog"] and b.info["skipped"] == 4
    assert b.info["source"].startswith("zip:")
    marker = root / "pets" / D.ZIP_MARKER
    mtime = marker.stat().st_mtime_ns
    b2 = D.build_data(DataConfig(dataset="pets.zip", image_size=8), seed=0)
    assert marker.stat().st_mtime_ns == mtime  # not extracted again
    assert torch.equal(b.train.images, b2.train.images)
    choices = D.list_dataset_choices()
    assert "pets.zip" in choices["folders"] and "pets" not in choices["folders"]
    assert not any(p.name.startswith(".pets") for p in root.iterdir())  # no temp folder left


def test_changed_zip_is_extracted_again(root, tmp_path):
    src = _make_folder(tmp_path / "src")
    z = _zip_folder(src, root / "pets.zip")
    dest = D.safe_extract_zip(z, root / "pets")
    (src / "dog" / "d0.jpg").unlink()
    os.utime(z, ns=(1, 1))
    _zip_folder(src, z)
    D.safe_extract_zip(z, dest)
    assert not (dest / "dog" / "d0.jpg").exists()


def test_zip_never_overwrites_a_user_folder(root, tmp_path):
    z = _zip_folder(_make_folder(tmp_path / "src"), root / "pets.zip")
    (root / "pets").mkdir()
    (root / "pets" / "mine.txt").write_text("keep")
    with pytest.raises(D.DataError, match="already exists"):
        D.build_data(DataConfig(dataset="pets.zip"), seed=0)
    assert (root / "pets" / "mine.txt").read_text() == "keep"


def _write_zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, payload in members:
            zf.writestr(info, payload)
    return path


def _symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _lying_zip(path: Path) -> Path:
    """A member whose headers claim 1000 bytes while it inflates to 2 MB."""
    _write_zip(path, [("a/big.bin", b"\x00" * 2_000_000)])
    raw = bytearray(path.read_bytes())
    lo = raw.find(b"PK\x03\x04")
    raw[lo + 22 : lo + 26] = (1000).to_bytes(4, "little")
    cd = raw.find(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (1000).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize(
    "case,limit,pattern",
    [
        ("slip", None, "points outside"),
        ("slip_nested", None, "points outside"),
        ("absolute", None, "absolute path"),
        ("symlink", None, "symbolic link"),
        ("bomb", 1_000_000, "zip bomb"),
        ("lying", 100_000, "cannot extract|zip bomb"),
        ("members", None, "more than the limit"),
        ("notzip", None, "not a zip"),
    ],
)
def test_bad_zips_are_refused(tmp_path, case, limit, pattern):
    box = tmp_path / "box"
    box.mkdir()
    z = box / "bad.zip"
    ok = ("a/ok.txt", b"fine")
    if case == "slip":
        _write_zip(z, [ok, ("../evil.txt", b"pwned")])
    elif case == "slip_nested":
        _write_zip(z, [ok, ("a/../../evil.txt", b"pwned")])
    elif case == "absolute":
        _write_zip(z, [ok, (zipfile.ZipInfo(str(tmp_path / "evil.txt")), b"pwned")])
    elif case == "symlink":
        _write_zip(z, [ok, (_symlink_info("a/link.png"), b"/etc/passwd")])
    elif case == "bomb":
        _write_zip(z, [ok, ("a/zeros.bin", b"\x00" * 5_000_000)])  # ~5 KB compressed
        assert z.stat().st_size < 50_000
    elif case == "lying":
        _lying_zip(z)
    elif case == "members":
        _write_zip(z, [(f"a/{i}.txt", b"x") for i in range(20)])
    elif case == "notzip":
        z.write_text("PK but not really a zip")
    before = _snapshot(tmp_path)
    kwargs = {"max_members": 10}
    if limit:
        kwargs["max_total_bytes"] = limit
    with pytest.raises(D.DataError, match=pattern) as ei:
        D.safe_extract_zip(z, box / "out", **kwargs)
    assert "\n" not in str(ei.value)
    assert _snapshot(tmp_path) == before  # nothing extracted, no temp folder, nothing outside
    assert not (tmp_path / "evil.txt").exists()


def test_bad_zip_through_build_data(root):
    _write_zip(root / "evil.zip", [("cat/a.png", b"x"), ("../escape.png", b"x")])
    with pytest.raises(D.DataError, match="points outside"):
        D.build_data(DataConfig(dataset="evil.zip"), seed=0)
    assert sorted(p.name for p in root.iterdir()) == ["evil.zip"]


# --------------------------------------------------------------------------- paths and choices


def test_paths_outside_the_data_root_are_refused(root, tmp_path):
    outside = tmp_path / "elsewhere"
    _make_folder(outside)
    with pytest.raises(D.DataError, match="outside the data folders"):
        D.build_data(DataConfig(dataset=str(outside)), seed=0)
    with pytest.raises(D.DataError, match="outside the data folders"):
        D.resolve_dataset_path("../elsewhere")
    (root / "sneaky").symlink_to(outside)
    with pytest.raises(D.DataError, match="outside the data folders"):
        D.resolve_dataset_path("sneaky")
    with pytest.raises(D.DataError, match="not built-in"):
        D.build_data(DataConfig(dataset="nosuchthing"), seed=0)
    # absolute paths inside a root are fine
    _make_folder(root / "pets")
    assert D.resolve_dataset_path(str(root / "pets")) == (root / "pets").resolve()


def test_several_roots_and_choices(tmp_path, monkeypatch):
    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    _make_folder(r1 / "pets")
    _make_folder(r2 / "birds")
    (r2 / "pets").mkdir()
    (r1 / "torchvision").mkdir()
    (r1 / ".hidden").mkdir()
    (r2 / "stuff.zip").write_bytes(b"")
    (r2 / "readme.txt").write_text("x")
    monkeypatch.setenv("TRANSFER_LAB_DATA", os.pathsep.join([str(r1), str(r2)]))
    ch = D.list_dataset_choices()
    assert ch["builtin"] == list(D.BUILTIN) and ch["torchvision"] == list(D.TORCHVISION)
    assert ch["folders"] == ["pets", "birds", "stuff.zip"]
    assert D.resolve_dataset_path("birds") == (r2 / "birds").resolve()
    assert D.resolve_dataset_path("pets") == (r1 / "pets").resolve()  # first root wins


def test_dataset_classes_cheap():
    assert D.dataset_classes("digits") == [str(i) for i in range(10)]
    assert D.dataset_classes("shapes", DataConfig(shapes_classes=3)) == ["circle", "square", "triangle"]
    assert len(D.dataset_classes("cifar100")) == 100
    assert D.dataset_classes("cifar10")[0] == "airplane"


# --------------------------------------------------------------------------- torchvision (offline)


def test_torchvision_offline_is_data_error(root, monkeypatch):
    import torchvision.datasets

    calls = []

    class Offline:
        def __init__(self, root, train=True, download=False, **kw):
            calls.append(download)
            raise RuntimeError("Dataset not found.\nYou can use download=True to download it")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    with pytest.raises(D.DataError) as ei:
        D.build_data(DataConfig(dataset="cifar10"), seed=0)
    msg = str(ei.value)
    assert msg.startswith(f"cifar10 is not in {root / 'torchvision' / 'cifar10'} and could not be downloaded (no network?)")
    assert "\n" not in msg
    assert True in calls  # a download was attempted (and failed, as offline)


def test_torchvision_fakes_convert(root, monkeypatch):
    import torchvision.datasets

    rng = np.random.default_rng(0)

    class FakeCifar:
        def __init__(self, root, train=True, download=False):
            self.data = rng.integers(0, 255, (40, 32, 32, 3)).astype(np.uint8)
            self.targets = [i % 10 for i in range(40)]
            self.classes = D.dataset_classes("cifar10")

    class FakeMnist:
        def __init__(self, root, train=True, download=False):
            self.data = torch.randint(0, 255, (30, 28, 28), dtype=torch.uint8)
            self.targets = torch.arange(30) % 10
            self.classes = [f"{i} - x" for i in range(10)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCifar)
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMnist)
    b = D.build_data(DataConfig(dataset="cifar10", image_size=16, classes=["cat", "dog"]), seed=0)
    assert b.classes == ["cat", "dog"] and b.train.images.shape[1:] == (3, 16, 16)
    assert b.info["source"] == "torchvision:cifar10"
    m = D.build_data(DataConfig(dataset="mnist", image_size=16), seed=0)
    assert m.classes == [str(i) for i in range(10)] and m.preprocessing["source_mode"] == "L"
    assert m.train[0][0].shape == (3, 16, 16)
