"""The headless CLI: exit codes, last line, one-line errors, every subcommand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env_extra=None, timeout=300):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "transfer_core", *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def tiny_yaml(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump({
        "seed": 1,
        "data": {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 15, "image_size": 32},
        "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}],
        "train": {"epochs": 1, "batch_size": 16, "device": "cpu"},
    }))
    return p


def _assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_train_runs_list_predict_export(tiny_yaml, tmp_path, runs_root):
    proc = cli("train", tiny_yaml, "--runs-dir", runs_root, "--set", "train.epochs=2")
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.parent == runs_root and (run_dir / "checkpoint.pt").exists()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert "epoch 2/2" in proc.stderr  # progress

    listing = cli("runs", "--runs-dir", runs_root)
    assert listing.returncode == 0 and run_dir.name in listing.stdout and "completed" in listing.stdout

    img = tmp_path / "digit.png"
    Image.fromarray((np.random.default_rng(0).random((20, 20)) * 255).astype("uint8")).save(img)
    pred = cli("predict", run_dir, img, "--top-k", "2")
    assert pred.returncode == 0, pred.stderr
    out = json.loads(pred.stdout)
    assert out[0]["image"] == str(img) and len(out[0]["top"]) == 2
    assert {t["class"] for t in out[0]["top"]} <= {"0", "1", "2"}

    ts = cli("export", run_dir, "--format", "torchscript")
    assert ts.returncode == 0, ts.stderr
    assert Path(ts.stdout.strip()).exists()


def test_env_runs_dir_and_flag_precedence(tiny_yaml, tmp_path):
    env_dir = tmp_path / "env_runs"
    proc = cli("train", tiny_yaml, "-q", env_extra={"TRANSFER_LAB_RUNS": str(env_dir)})
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip().splitlines()[-1]).parent == env_dir
    flag_dir = tmp_path / "flag_runs"
    proc = cli("train", tiny_yaml, "-q", "--runs-dir", flag_dir, env_extra={"TRANSFER_LAB_RUNS": str(env_dir)})
    assert Path(proc.stdout.strip().splitlines()[-1]).parent == flag_dir


def test_runs_dir_flag_takes_the_caches_along(tiny_yaml, tmp_path):
    """With --runs-dir and no $TRANSFER_LAB_CACHE, nothing lands in the working folder's ./runs:
    the backbone-spec cache went to ./runs/_cache while the runs went to the flag's folder."""
    work, flag_dir = tmp_path / "cwd", tmp_path / "flag_runs"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFER_LAB_CACHE", "TRANSFER_LAB_RUNS")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "transfer_core", "train", str(tiny_yaml), "-q", "--runs-dir", str(flag_dir)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (work / "runs").exists(), list((work / "runs").rglob("*"))
    assert list((flag_dir / "_cache").glob("backbone_specs-*.json"))


@pytest.mark.parametrize(
    "overrides, needles",
    [
        (["backbones.0.name=resnt18"], ["backbones.0.name", "resnet18"]),
        (["train.epochs=0"], ["train.epochs"]),
        (["train.epoch=3"], ["train.epoch", "epochs"]),
        (["data.classes=[0,11]"], ["data.classes", "11"]),
        (["backbones.0.freeze=42"], ["backbones.0.freeze"]),
        (["backbones.0.weights=file:/nonexistent.pt"], ["backbones.0.weights"]),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny_yaml, runs_root, overrides, needles):
    args = ["train", tiny_yaml, "--runs-dir", runs_root]
    for o in overrides:
        args += ["--set", o]
    _assert_one_line_error(cli(*args), *needles)
    assert not runs_root.exists() or not any(runs_root.iterdir())  # nothing written


def test_unparsable_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    _assert_one_line_error(cli("train", bad), "YAML")
    _assert_one_line_error(cli("train", tmp_path / "nope.yaml"), "nope.yaml")


def test_offline_imagenet_is_a_one_line_error(tiny_yaml, tmp_path):
    # TORCH_HOME points to an empty tmp cache; the download is blocked by a tiny sitecustomize.
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(
        "import urllib.request, urllib.error\n"
        "def _no(*a, **k):\n    raise urllib.error.URLError('network is unreachable')\n"
        "urllib.request.urlopen = _no\n"
    )
    proc = cli("train", tiny_yaml, "--set", "backbones.0.weights=imagenet",
               env_extra={"PYTHONPATH": str(block), "TORCH_HOME": str(tmp_path / "th")})
    _assert_one_line_error(proc, "resnet18-", str(tmp_path / "th"))


def test_diverged_run_exits_1(tiny_yaml, runs_root):
    proc = cli("train", tiny_yaml, "--runs-dir", runs_root, "-q", "--set", "train.lr=1e6", "--set", "train.optimizer=sgd", "--set", "train.epochs=3")
    assert proc.returncode == 1, proc.stderr
    assert "diverged at epoch" in proc.stderr and "Traceback" not in proc.stderr


def test_validation_divergence_fails_cleanly(tmp_path, runs_root):
    """Issue 11, defect 2: 50 few-shot images in one batch at lr 1e6. Epoch 1's training loss is
    taken before the step (finite), its validation loss is not: a failed run, exit 1, the
    'diverged' line, no traceback, and only strict JSON in the run folder."""
    cfg = tmp_path / "fewshot.yaml"
    cfg.write_text(yaml.safe_dump({
        "seed": 0,
        "data": {"dataset": "digits", "classes": [0, 1, 2, 3, 4], "train_per_class": 10, "image_size": 32},
        "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}],
        "train": {"epochs": 2, "batch_size": 64, "device": "cpu"},
    }))
    proc = cli("train", cfg, "--runs-dir", runs_root, "--set", "train.lr=1e6")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "JSON" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: diverged at epoch 1: the validation loss is") and "lower the learning rate" in last, last
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["message"] == last[len("error: "):]

    def refuse(constant):
        raise ValueError(f"non-finite number {constant}")

    files = [p for p in run_dir.iterdir() if p.suffix in (".json", ".jsonl")]
    assert {"status.json", "progress.json", "data_info.json"} <= {p.name for p in files}
    for p in files:
        for line in p.read_text().splitlines() if p.suffix == ".jsonl" else [p.read_text()]:
            json.loads(line, parse_constant=refuse)


def test_unknown_run_and_backbones_listing(runs_root):
    _assert_one_line_error(cli("predict", "no-such-run", "x.png", "--runs-dir", runs_root), "no run")
    b = cli("backbones")
    assert b.returncode == 0 and "resnet18" in b.stdout and "vit_b_16" in b.stdout
    ball = cli("backbones", "--all")
    assert len(ball.stdout.splitlines()) > 80
