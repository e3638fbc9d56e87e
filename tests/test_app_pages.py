"""AppTest checks of the Data, Models and Predict pages (no browser, CPU, offline).

Every test gets fresh runs/data folders (conftest) and empty Streamlit caches, so a
cached preview or model of one test never leaks into the next.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP_PAGES = ("pages/data.py", "pages/models.py", "pages/train.py", "pages/results.py", "pages/predict.py")
TIMEOUT = 240  # first renders import torch and read 16 backbone specs; slow on a busy 2-core box


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(page: str) -> AppTest:
    """The page as the app shows it: app.py, then switch_page (the page file alone while app.py's pages are missing)."""
    if (ROOT / "app.py").is_file() and all((ROOT / p).is_file() for p in APP_PAGES):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
        assert not at.exception, at.exception
        at.switch_page(page).run()
    else:
        at = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _png(color: tuple[int, int, int], size: int = 20) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _files_outside(tmp_path: Path, inside: Path) -> set[str]:
    return {str(p) for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(inside)}


# --------------------------------------------------------------------------- Data


def test_data_page_digits_shows_counts_and_saves_draft():
    at = open_page("pages/data.py")
    m = metrics(at)
    assert m["Classes"] == "10"
    assert m["Training images"] == "1,438" and m["Validation images"] == "359"
    assert m["Skipped files"] == "0"
    assert at.get("plotly_chart"), "class-count chart missing"
    assert len(at.get("image")) >= 10, "one sample row per class"
    assert at.session_state["draft_data"] == {
        "dataset": "digits", "classes": None, "train_per_class": None, "val_fraction": 0.2, "image_size": 32,
    }


def test_data_page_shapes_subset_and_few_shot():
    at = open_page("pages/data.py")
    at.selectbox(key="dataset").set_value("shapes").run()
    assert not at.exception
    assert metrics(at)["Classes"] == "6"
    at.multiselect(key="classes").set_value(["circle", "star"]).run()
    at.number_input(key="train_per_class").set_value(10).run()
    at.select_slider(key="image_size").set_value(48).run()
    assert not at.exception
    m = metrics(at)
    assert m["Classes"] == "2" and m["Training images"] == "20"
    draft = at.session_state["draft_data"]
    assert draft["dataset"] == "shapes" and draft["classes"] == ["circle", "star"]
    assert draft["train_per_class"] == 10 and draft["image_size"] == 48


def test_data_page_needs_two_classes():
    at = open_page("pages/data.py")
    at.multiselect(key="classes").set_value(["3"]).run()
    assert not at.exception
    assert any("at least two classes" in e for e in errors(at))


def test_data_page_torchvision_offline_is_a_clear_error(monkeypatch):
    from transfer_core import data as core_data
    from transfer_core.data import bundle as core_bundle

    def offline(name, roots):
        raise core_data.DataError(f"{name} is not in the data folder and could not be downloaded (no network?)")

    monkeypatch.setattr(core_bundle, "torchvision_pool", offline)  # never touch the network in tests
    at = open_page("pages/data.py")
    at.selectbox(key="dataset").set_value("cifar10").run()
    assert not at.exception
    at.button(key="data_load_tv").click().run()
    assert not at.exception
    assert any("could not be downloaded" in e for e in errors(at))


@pytest.mark.parametrize(
    "name, payload, expected",
    [
        ("notes.zip", b"just some text, not a zip", "is not a zip file"),
        ("evil.zip", _zip({"cat/a.png": _png((255, 0, 0)), "../../../escaped.txt": b"owned"}), "outside the folder"),
        ("one.zip", _zip({"cat/a.png": _png((255, 0, 0)), "cat/b.png": _png((0, 255, 0))}), "at least 2 class folders"),
    ],
    ids=["text-named-zip", "zip-slip", "one-class"],
)
def test_bad_zip_upload_is_refused_and_leaves_nothing(tmp_path, name, payload, expected):
    data_root = tmp_path / "data"
    at = open_page("pages/data.py")
    before = _files_outside(tmp_path, data_root)
    at.file_uploader(key="zip_upload").set_value((name, payload, "application/zip")).run()
    assert not at.exception
    errs = errors(at)
    assert len(errs) == 1 and expected in errs[0] and "\n" not in errs[0]
    assert _files_outside(tmp_path, data_root) == before, "an upload wrote outside the data folder"
    assert not list(tmp_path.rglob("escaped.txt"))
    leftovers = [p for p in (data_root / "uploads").rglob("*")] if (data_root / "uploads").exists() else []
    assert leftovers == [], leftovers
    assert at.selectbox(key="dataset").value == "digits"  # the app keeps working on its dataset
    assert metrics(at)["Classes"] == "10"


def test_too_big_zip_upload_is_refused(tmp_path, monkeypatch):
    from dashboard import widgets

    monkeypatch.setattr(widgets, "ZIP_UPLOAD_MAX_MB", 1)
    big = _zip({"a/x.bin": os.urandom(600_000), "b/y.bin": os.urandom(600_000)})
    at = open_page("pages/data.py")
    at.file_uploader(key="zip_upload").set_value(("big.zip", big, "application/zip")).run()
    assert not at.exception
    assert any("1 MB upload limit" in e for e in errors(at))
    assert not (tmp_path / "data" / "uploads").exists() or not any((tmp_path / "data" / "uploads").iterdir())


def test_good_zip_upload_becomes_the_dataset(tmp_path):
    members = {}
    for cls, color in (("cat", (220, 40, 40)), ("dog", (40, 40, 220)), ("owl", (40, 200, 40))):
        for i in range(6):
            members[f"pets/{cls}/{i}.png"] = _png(color)
    members["pets/dog/broken.png"] = b"not really a png"
    at = open_page("pages/data.py")
    at.file_uploader(key="zip_upload").set_value(("pets.zip", _zip(members), "application/zip")).run()
    assert not at.exception, at.exception
    assert not errors(at)
    assert at.selectbox(key="dataset").value == "uploads/pets.zip"
    m = metrics(at)
    assert m["Classes"] == "3" and m["Skipped files"] == "1"
    assert int(m["Training images"]) + int(m["Validation images"]) == 18
    assert at.session_state["draft_data"]["dataset"] == "uploads/pets.zip"
    uploads = tmp_path / "data" / "uploads"
    assert (uploads / "pets.zip").is_file() and (uploads / "pets" / "pets" / "cat").is_dir()
    # A rerun does not import the same upload again.
    at.run()
    assert sorted(p.name for p in uploads.iterdir()) == ["pets", "pets.zip"]


# --------------------------------------------------------------------------- Models


def test_models_page_table_and_freeze_slider():
    at = open_page("pages/models.py")
    assert metrics(at)["Backbones"] == "16"
    table = at.dataframe[0].value
    row = table[table["Backbone"] == "resnet18"].iloc[0]
    assert row["Feature dim"] == 512 and row["Layer groups"] == 5
    assert at.selectbox(key="mb_backbone").value == "resnet18"
    assert metrics(at)["Trainable parameters"] == "11.2M"
    at.slider(key="mb_freeze").set_value(4).run()
    assert not at.exception
    m = metrics(at)
    assert m["Trainable parameters"] == "8.4M" and m["Trainable share"] == "75%"
    at.slider(key="mb_freeze").set_value(5).run()
    assert metrics(at)["Trainable parameters"] == "0"


def test_models_page_shows_the_feature_cache_and_clears_it(runs_root):
    from conftest import tiny_config
    from transfer_core.training import cache_size_bytes
    from transfer_core.training import run_training

    cfg = tiny_config(backbones=[{"name": "resnet18", "weights": "none", "freeze": "all"}])
    res = run_training(cfg, runs_root)
    assert res.state == "completed"
    size = cache_size_bytes(runs_root=runs_root)
    assert size > 0, "a fully frozen run fills the cache"
    at = open_page("pages/models.py")
    shown = metrics(at)["Size on disk"]
    assert shown.endswith("KB") or shown.endswith("MB")
    at.button(key="mb_clear_cache").click().run()
    assert not at.exception
    assert cache_size_bytes(runs_root=runs_root) == 0
    assert metrics(at)["Size on disk"] == "0 B"
    assert any("Freed" in s.value for s in at.success)
    assert at.button(key="mb_clear_cache").disabled


def _state_bytes(state) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def test_weights_import_mismatch_refused_good_saved(runs_root):
    from transfer_core.backbones import build_body, load_weights_file

    good = build_body("resnet18").state_dict()
    bad = dict(good)
    bad.pop("layer4.1.bn2.weight")
    bad["extra.weight"] = good["fc.weight"] if "fc.weight" in good else good["conv1.weight"]
    at = open_page("pages/models.py")
    at.file_uploader(key="weights_upload").set_value(("mine.pt", _state_bytes(bad), "application/octet-stream")).run()
    at.button(key="wi_import").click().run()
    assert not at.exception
    errs = errors(at)
    assert len(errs) == 1 and "1 missing keys" in errs[0] and "1 unexpected keys" in errs[0] and "mine.pt" in errs[0]
    wdir = runs_root / "_weights"
    assert not list(wdir.glob("*.pt")) and not list(wdir.glob(".*"))

    at.file_uploader(key="weights_upload").set_value(("my weights.pt", _state_bytes(good), "application/octet-stream")).run()
    at.button(key="wi_import").click().run()
    assert not at.exception and not errors(at)
    saved = wdir / "resnet18-my_weights.pt"
    assert saved.is_file() and len(load_weights_file(saved)) == len(good)
    assert json.loads(saved.with_suffix(".json").read_text())["backbone"] == "resnet18"
    assert [s.value for s in at.success] and metrics(at)["Imported weight files"] == "1"
    assert not list(wdir.glob(".*")), "temp files left behind"


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/transfer_lab_pwned",))


def test_weights_import_refuses_code_and_truncated_files(runs_root):
    at = open_page("pages/models.py")
    evil = pickle.dumps({"conv1.weight": _Evil()})
    for name, payload in (("evil.pt", evil), ("cut.pt", b"PK\x03\x04 truncated")):
        at.file_uploader(key="weights_upload").set_value((name, payload, "application/octet-stream")).run()
        at.button(key="wi_import").click().run()
        assert not at.exception
        errs = errors(at)
        assert len(errs) == 1 and name in errs[0] and "\n" not in errs[0]
    assert not Path("/tmp/transfer_lab_pwned").exists()
    assert not list((runs_root / "_weights").glob("*.pt"))


# --------------------------------------------------------------------------- Predict


def test_predict_page_without_runs_says_so():
    at = open_page("pages/predict.py")
    assert any("No completed run" in i.value for i in at.info)


@pytest.fixture
def tiny_run(runs_root):
    from conftest import tiny_config
    from transfer_core.training import run_training

    result = run_training(tiny_config(train__epochs=1, data__train_per_class=15), runs_root)
    assert result.state == "completed"
    return result.run


def test_predict_page_top_k_after_upload(tiny_run):
    at = open_page("pages/predict.py")
    assert at.selectbox(key="pred_run").value == tiny_run.id
    at.file_uploader(key="pred_upload").set_value(("digit.png", _png((255, 255, 255), 40), "image/png")).run()
    assert not at.exception and not errors(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    bars = spec["data"][0]
    assert bars["orientation"] == "h" and sorted(bars["y"]) == ["0", "1", "2"]
    assert abs(sum(bars["x"]) - 1.0) < 1e-3  # top-3 of 3 classes: all the probability
    assert metrics(at)["Prediction"] == bars["y"][-1]  # most likely class is on top

    at.file_uploader(key="pred_upload").set_value(("broken.png", b"\x89PNG not really", "image/png")).run()
    assert not at.exception
    errs = errors(at)
    assert len(errs) == 1 and "broken.png" in errs[0]
    assert not at.get("plotly_chart")

    at.radio(key="pred_source").set_value("Validation image").run()
    assert not at.exception
    assert "True class" in metrics(at) and len(at.get("plotly_chart")) == 1


# --------------------------------------------------------------------------- run pickers stay fresh

PICKERS = {  # page -> (widget kind, key) of its run picker
    "pages/results.py": ("selectbox", "results_run"),
    "pages/predict.py": ("selectbox", "pred_run"),
    "pages/insights.py": ("selectbox", "ins_run"),
    "pages/compare.py": ("multiselect", "cmp_runs"),
    "pages/train.py": ("selectbox", "bb0_weights"),  # a completed run is a backbone's weights source
}


def _picker_options(at: AppTest, page: str) -> list[str]:
    kind, key = PICKERS[page]
    at.switch_page(page).run()
    assert not at.exception, (page, at.exception)
    return list(getattr(at, kind)(key=key).options)


def _lists(options: list[str], run_id: str) -> bool:
    return any(run_id in o or o.endswith(run_id[-4:]) or f"· {run_id[-4:]} " in o for o in options)


def test_every_run_picker_lists_a_run_finished_after_it_was_drawn(runs_root):
    """A run finished after the pickers were drawn is listed on the next draw, in the same tab and in a
    new one, without clearing any Streamlit cache (they were st.cache_resource'd: only a restart showed it)."""
    from conftest import tiny_config
    from transfer_core.training import run_training

    first = run_training(tiny_config(train__epochs=1), runs_root).run
    at = open_page("pages/results.py")
    before = {page: _picker_options(at, page) for page in PICKERS}
    for page, options in before.items():
        assert _lists(options, first.id) and len(options) >= 1, (page, options)

    second = run_training(tiny_config(train__epochs=1, name="second"), runs_root).run
    assert second.status()["state"] == "completed"
    for page in PICKERS:  # the same tab, drawn again
        options = _picker_options(at, page)
        assert _lists(options, second.id), (page, options)
        assert len(options) == len(before[page]) + 1, (page, before[page], options)
    for page in ("pages/predict.py", "pages/insights.py"):  # a new tab
        fresh = open_page("pages/results.py")
        assert _lists(_picker_options(fresh, page), second.id), page
