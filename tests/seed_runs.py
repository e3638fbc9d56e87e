"""Run folders made without training (config.yaml, status.json, metrics.jsonl, as RunStore writes
them), for tests about what pages say over seeds. Import: ``from seed_runs import fake_run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transfer_core.config import from_dict
from transfer_core.runs import RunStore


def fake_run(root: Path, cfg: dict[str, Any], val_acc: float, state: str = "completed", epochs: int = 2) -> str:
    """A run of ``cfg`` (validated and resolved like a real one) whose last epoch scored ``val_acc``; its id."""
    run = RunStore(root).create(from_dict(cfg), state="running")
    for e in range(1, epochs + 1):
        acc = val_acc if e == epochs else max(0.0, val_acc - 0.1)
        run.append_metrics({"epoch": e, "train_loss": 1.0 / e, "train_acc": acc, "val_loss": 1.0 / e, "val_acc": acc,
                            "seconds": 0.5})
    run.set_status(state, "" if state == "completed" else "it failed")
    return run.id


def demo_cfg(seed: int, kind: str, source: str = "run:source-x", **data: Any) -> dict[str, Any]:
    """A target config of the guided demo's shape: transfer (from ``source``, freeze 3) or scratch."""
    bb = {"name": "resnet18", "weights": source, "freeze": 3} if kind == "transfer" else \
        {"name": "resnet18", "weights": "none", "freeze": 0}
    return {"seed": seed, "name": f"target-{kind}", "method": "transfer",
            "data": {"dataset": "digits", "classes": [3, 4, 5], "train_per_class": 5, "image_size": 32, **data},
            "backbones": [bb], "train": {"epochs": 2, "batch_size": 8, "lr": 0.001, "device": "cpu"}}
