"""The checkpoint policy: a frozen body written once, checkpoints at most every N seconds,
always for a new best, the last epoch and Stop; a kill between two checkpoints loses only
the epochs since the last one, and the resume says so; a run folder stays self-contained."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from transfer_core.checkpoint_files import read_checkpoint
from transfer_core.predict import load_run_model
from transfer_core.runs import Run, RunStore
from transfer_core.training import checkpoint as ckpt_mod
from transfer_core.training import resume_training, run_training
from transfer_core.training.callbacks import Callback

PROBE = [{"name": "resnet18", "weights": "none", "freeze": "all"}]
PARTIAL = [{"name": "resnet18", "weights": "none", "freeze": 3}]  # stem, layer1, layer2: 2.7 MB


@pytest.fixture
def writes(monkeypatch):
    """Every file the Checkpointer writes, by name, in order."""
    seen: list[str] = []
    real = ckpt_mod.atomic_write_bytes

    def counting(path, data):
        seen.append(Path(path).name)
        real(path, data)

    monkeypatch.setattr(ckpt_mod, "atomic_write_bytes", counting)
    return seen


class Capture(Callback):
    """The model's state at the end of the fit (what a whole checkpoint must hold)."""

    def on_fit_end(self, trainer):
        self.state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _same_state(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_linear_probe_writes_the_frozen_body_once_and_only_the_head_each_epoch(runs_root, writes):
    cap = Capture()
    res = run_training(tiny_config(backbones=PROBE, train__epochs=3, train__checkpoint_every_s=0), runs_root,
                       callbacks=[cap])
    assert res.state == "completed"
    counts = Counter(writes)
    assert counts == {"frozen-e0.pt": 1, "checkpoint.pt": 3}, counts
    raw = torch.load(res.run.checkpoint_path, weights_only=True)
    assert raw["model_parts"] == ["frozen-e0.pt"]
    params = {k for k, v in raw["model"].items() if "running_" not in k and "num_batches" not in k}
    assert params == {"head.weight", "head.bias"}, "of the parameters, only the head's are rewritten"
    assert res.run.checkpoint_path.stat().st_size < (res.run.dir / "frozen-e0.pt").stat().st_size / 100
    _same_state(read_checkpoint(res.run.checkpoint_path)["model"], cap.state)


def test_run_folder_alone_predicts_resumes_and_serves_as_a_source(runs_root, tmp_path):
    res = run_training(tiny_config(backbones=PARTIAL, train__epochs=2), runs_root)
    assert [p.name for p in res.run.dir.glob("frozen-e*.pt")] == ["frozen-e0.pt"]
    moved = tmp_path / "elsewhere"
    shutil.copytree(res.run.dir, moved / res.run.id)  # only the folder: no cache, no other run
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a = load_run_model(res.run).model(x)
        b = load_run_model(Run(moved / res.run.id)).model(x)
    assert torch.equal(a, b)
    src = run_training(tiny_config(backbones=[{"name": "resnet18", "weights": f"run:{res.run.id}", "freeze": "all"}],
                                   train__epochs=1), moved)
    assert src.state == "completed", src.message
    whole = read_checkpoint(res.run.best_path)["model"]
    assert "backbone.body.conv1.weight" in whole and "head.weight" in whole


def test_a_frozen_tensor_changed_after_its_part_was_written_is_saved_with_the_checkpoint(runs_root):
    class Nudge(Callback):  # after epoch 1's checkpoint (callbacks run after the run's own)
        def on_epoch_end(self, trainer, epoch, metrics):
            if epoch == 1:
                with torch.no_grad():
                    trainer.model.backbone.body.conv1.weight.add_(1.0)

    cap = Capture()
    res = run_training(tiny_config(backbones=PARTIAL, train__epochs=2, train__checkpoint_every_s=0), runs_root,
                       callbacks=[Nudge(), cap])
    raw = torch.load(res.run.checkpoint_path, weights_only=True)
    assert "backbone.body.conv1.weight" in raw["model"]
    _same_state(read_checkpoint(res.run.checkpoint_path)["model"], cap.state)


def test_checkpoints_wait_for_the_interval_but_not_for_a_best_or_the_last_epoch(runs_root, writes):
    # lr so small that val accuracy never improves after epoch 1: only epochs 1 (best) and 4 (last) are written
    res = run_training(tiny_config(backbones=PROBE, train__epochs=4, train__lr=1e-12, train__checkpoint_every_s=3600), runs_root)
    assert res.state == "completed"
    assert Counter(writes)["checkpoint.pt"] == 2
    assert read_checkpoint(res.run.checkpoint_path)["epoch"] == 4
    assert read_checkpoint(res.run.best_path)["epoch"] == 1


def test_stop_writes_the_epoch_held_since_the_last_checkpoint(runs_root):
    stop = threading.Event()

    class StopAfter2(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            if epoch == 2:
                stop.set()  # the trainer stops at the next batch, in epoch 3

    res = run_training(tiny_config(backbones=PROBE, train__epochs=4, train__lr=1e-12, train__checkpoint_every_s=3600), runs_root,
                       stop_event=stop, callbacks=[StopAfter2()])
    assert res.state == "stopped"
    assert read_checkpoint(res.run.checkpoint_path)["epoch"] == 2
    again = resume_training(res.run.id, runs_root)
    assert again.state == "completed" and [r["epoch"] for r in again.metrics] == [1, 2, 3, 4]
    assert not any("not saved" in w for w in again.run.status().get("warnings", []))
    from transfer_core.checkpoint_files import parts_of

    needed = set(parts_of(again.run.checkpoint_path)) | set(parts_of(again.run.best_path))
    assert needed == {"frozen-e0.pt", "frozen-e2.pt"}  # best.pt is epoch 1's (first fit), the last is the resumed fit's
    assert {p.name for p in again.run.dir.glob("frozen-e*.pt")} == needed, "an unused part was left behind"
    assert read_checkpoint(again.run.best_path)["epoch"] == 1 and read_checkpoint(again.run.checkpoint_path)["epoch"] == 4


def test_kill_9_between_checkpoints_loses_only_the_epochs_since_the_last_and_says_so(runs_root):
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import tiny_config
        from transfer_core.training import run_training
        from transfer_core.training.callbacks import Callback

        class Kill(Callback):
            def on_epoch_end(self, trainer, epoch, metrics):
                if epoch == 3:  # epochs 2 and 3 were held in memory, not written
                    os.kill(os.getpid(), signal.SIGKILL)

        PROBE = [{{"name": "resnet18", "weights": "none", "freeze": "all"}}]
        run_training(tiny_config(backbones=PROBE, train__epochs=4, train__lr=1e-12, train__checkpoint_every_s=3600),
                     {str(runs_root)!r}, callbacks=[Kill()])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    (run,) = RunStore(runs_root).list()
    assert [r["epoch"] for r in Run(run.dir).metrics()] == [1, 2, 3]
    assert read_checkpoint(Run(run.dir).checkpoint_path)["epoch"] == 1
    res = resume_training(run.id, runs_root)
    assert res.state == "completed" and [r["epoch"] for r in res.metrics] == [1, 2, 3, 4]
    warnings = res.run.status().get("warnings", [])
    assert any("epochs 2–3 finished after it but were not saved" in w for w in warnings), warnings


def test_checkpoint_every_s_must_be_a_non_negative_number():
    from transfer_core.config import ConfigError, validate

    with pytest.raises(ConfigError, match="train.checkpoint_every_s"):
        validate(tiny_config(train__checkpoint_every_s=-1))
    with pytest.raises(ConfigError, match="train.checkpoint_every_s"):
        validate(tiny_config(train__checkpoint_every_s=float("nan")))


def test_a_missing_frozen_part_is_a_one_line_weights_error(runs_root):
    from transfer_core.errors import WeightsError

    res = run_training(tiny_config(backbones=PROBE, train__epochs=1), runs_root)
    (res.run.dir / "frozen-e0.pt").unlink()
    with pytest.raises(WeightsError, match="needs frozen-e0.pt beside it, which is missing"):
        load_run_model(res.run)


def test_a_completed_runs_checkpoint_drops_the_optimizer_and_still_predicts_and_is_a_source(runs_root):
    res = run_training(tiny_config(train__epochs=2, train__checkpoint_every_s=0), runs_root)
    assert res.state == "completed"
    final = read_checkpoint(res.run.checkpoint_path)
    assert "optimizer" not in final and final["epoch"] == 2  # nothing is left to resume after the last epoch
    assert load_run_model(res.run).model is not None
    child = run_training(tiny_config(backbones=[{"name": "resnet18", "weights": f"run:{res.run.id}", "freeze": 2}],
                                     train__epochs=1), runs_root)
    assert child.state == "completed"


def test_checkpoint_best_off_writes_no_best_file_and_only_the_final_epoch(runs_root, writes):
    res = run_training(tiny_config(train__epochs=3, train__checkpoint_best=False), runs_root)
    assert res.state == "completed"
    assert not res.run.best_path.exists()
    assert Counter(writes)["checkpoint.pt"] == 1  # the default 60 s interval never fell due in a 1 s run
    assert read_checkpoint(res.run.checkpoint_path)["epoch"] == 3
