"""The built-in datasets' decoded arrays are kept on disk: a later process reads them back
unchanged instead of decoding again, and anything wrong with the file only costs a decode."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from transfer_core.data import builtin
from transfer_core.data.decoded_cache import decoded_arrays, decoded_file


def _fresh():
    for fn in (builtin._digits_arrays, builtin._mnist5k_arrays, builtin._shapes_arrays):
        fn.cache_clear()


@pytest.fixture(autouse=True)
def _no_memory_cache():
    _fresh()
    yield
    _fresh()


def _refuse(*_a, **_k):
    raise AssertionError("decoded again although the cache holds the arrays")


@pytest.mark.parametrize("name, call, decoder", [
    ("digits", lambda: builtin._digits_arrays(), "_decode_digits"),
    ("mnist5k", lambda: builtin._mnist5k_arrays(), "_decode_mnist5k"),
    ("shapes", lambda: builtin._shapes_arrays(3, 4), "_render_shapes"),
])
def test_a_later_process_reads_the_same_arrays_without_decoding(name, call, decoder, monkeypatch, tmp_path):
    first_imgs, first_labels = call()
    files = list((tmp_path / "cache" / "datasets").glob(f"{name}-*.npz"))
    assert len(files) == 1
    _fresh()  # as a new process: nothing in memory
    monkeypatch.setattr(builtin, decoder, _refuse)
    imgs, labels = call()
    assert imgs.dtype == first_imgs.dtype == torch.uint8 and labels.dtype == np.int64
    assert torch.equal(imgs, first_imgs) and np.array_equal(labels, first_labels)


def test_a_damaged_file_is_decoded_again_and_replaced(tmp_path):
    imgs, labels = builtin._shapes_arrays(2, 3)
    path = next((tmp_path / "cache" / "datasets").glob("shapes-*.npz"))
    path.write_bytes(path.read_bytes()[:100])  # truncated
    _fresh()
    again, again_labels = builtin._shapes_arrays(2, 3)
    assert torch.equal(again, imgs) and np.array_equal(again_labels, labels)
    with np.load(path, allow_pickle=False) as z:  # rewritten whole
        assert np.array_equal(z["images"], imgs.numpy())


def test_a_file_holding_pickled_objects_is_never_unpickled(tmp_path):
    path = decoded_file("shapes", (builtin.SHAPES_SEED, 2, 3, 64))
    path.parent.mkdir(parents=True)
    np.savez(path, images=np.array([object()], dtype=object), labels=np.zeros(1, dtype=np.int64))
    imgs, labels = builtin._shapes_arrays(2, 3)
    assert imgs.shape == (6, 3, 64, 64) and labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_a_changed_source_file_gets_a_new_key(tmp_path):
    src = tmp_path / "source.csv"
    src.write_text("1,2\n")
    before = decoded_file("x", (), [src])
    os.utime(src, ns=(1, 1))
    assert decoded_file("x", (), [src]) != before
    assert decoded_file("x", (1,), [src]) != decoded_file("x", (2,), [src])


def test_a_read_only_cache_folder_only_costs_the_decode(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(blocked))
    calls = []

    def decode():
        calls.append(1)
        return torch.zeros(2, 1, 4, 4, dtype=torch.uint8), np.array([0, 1], dtype=np.int64)

    for _ in range(2):
        imgs, labels = decoded_arrays("tiny", decode)
        assert imgs.shape == (2, 1, 4, 4) and labels.tolist() == [0, 1]
    assert len(calls) == 2
