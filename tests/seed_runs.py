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


def fake_sweep(root: Path, experiment: str = "labels", size: str = "quick") -> Path:
    """A finished built-in experiment's folder (sweep.yaml, trials/summary/paired CSVs, state) whose trials
    are :func:`fake_run` runs: transfer ahead of the probe, the probe ahead of scratch, more labels better,
    a little noise per seed. Its folder."""
    from transfer_core.config import to_dict
    from transfer_core.sweeps import builtin
    from transfer_core.sweeps.folder import init_folder, sweep_dir, write_state, write_tables

    spec = builtin.load_builtin(experiment, size)
    path = init_folder(spec, sweep_dir(spec, root))
    bonus = {"transfer": 0.25, "probe": 0.15, "scratch": 0.0}
    rows = []
    for trial, point in enumerate(spec.points()):
        for seed in spec.seeds:
            labels = float(point.get("data.train_per_class", 10))
            acc = min(0.99, 0.35 + bonus.get(str(point.get("variant")), 0.1) + 0.05 * len(str(int(labels)))
                      + 0.01 * ((seed * 7 + trial) % 3))
            rid = fake_run(root, to_dict(spec.trial_config(point, seed)), acc)
            rows.append({"trial": trial, **point, "seed": seed, "run_id": rid, "state": "completed", "val_acc": acc,
                         "best_val_acc": acc, "train_s": 2.0 + labels / 10, "wall_s": 3.0 + labels / 10})
    write_tables(path, spec, rows)
    write_state(path, "completed", "done")
    return path


def seed_demo_runs(root: Path) -> dict[str, Any]:
    """The guided demo's runs written without training, and a finished experiment: a source (digits 0–2),
    two transfer and two scratch targets (seeds 0 and 1) and the quick labels sweep.
    ``{"root", "transfer": [ids], "scratch": [ids], "sweep": folder}``."""
    import os

    from transfer_core.sweeps import builtin

    saved = os.environ.pop(builtin.EXPERIMENT_ENV, None)  # the built-in experiment, not a test's override
    try:
        src = fake_run(root, {**demo_cfg(0, "scratch"), "name": "source",
                              "data": {"dataset": "digits", "classes": [0, 1, 2], "image_size": 32}}, 0.95)
        transfer = [fake_run(root, demo_cfg(s, "transfer", source=f"run:{src}"), a) for s, a in enumerate([0.8, 0.9])]
        scratch = [fake_run(root, demo_cfg(s, "scratch"), a) for s, a in enumerate([0.6, 0.7])]
        sweep = fake_sweep(root)
    finally:
        if saved is not None:
            os.environ[builtin.EXPERIMENT_ENV] = saved
    return {"root": root, "transfer": transfer, "scratch": scratch, "sweep": sweep}
