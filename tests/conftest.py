"""Shared fixtures: every test gets its own runs/data/cache folders, nothing touches ./runs."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session", autouse=True)
def _session_folders(tmp_path_factory) -> Iterator[None]:
    """The same folders for what runs before a test's own (module-scoped fixtures train runs
    before ``_isolated_folders``): without these, the backbone-spec cache went to ./runs/_cache."""
    base = tmp_path_factory.mktemp("session-folders")
    mp = pytest.MonkeyPatch()
    for key, sub in (("TRANSFER_LAB_RUNS", "runs"), ("TRANSFER_LAB_DATA", "data"), ("TRANSFER_LAB_CACHE", "cache"),
                     ("TORCH_HOME", "torch_home")):
        mp.setenv(key, str(base / sub))
    yield
    mp.undo()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_folders(tmp_path, monkeypatch):
    """Runs, data and the torch hub cache go to the test's tmp folder (read lazily by the core)."""
    monkeypatch.setenv("TRANSFER_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("TRANSFER_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    (tmp_path / "data").mkdir()
    yield


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory, request) -> Iterator[Path]:
    """One folder for a module's shared runs, removed when the module is done.

    pytest keeps module-scoped folders until the session ends; runs weigh 100+ MB each,
    so without this the suite's peak disk use grows with every module (CI once filled its disk).
    """
    path = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    yield path
    shutil.rmtree(path, ignore_errors=True)


def tiny_config(**overrides):
    """A run that trains in about a second: 3 digit classes, 12 images each, resnet18 at 32 px."""
    from transfer_core.config import from_dict

    data = {
        "seed": 0,
        "method": "transfer",
        "data": {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 12, "val_fraction": 0.1, "image_size": 32},
        "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}],
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.003, "device": "cpu"},
    }
    for key, value in overrides.items():
        node = data
        parts = key.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return from_dict(data)


@pytest.fixture
def runs_root(tmp_path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny-tensor tests: a second thread only adds
    spin-waiting on a busy 2-core box (measured 8x slower there)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
