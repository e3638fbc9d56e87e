"""The guided transfer demo's core: the triple's configs, its sizes, queueing order and failure."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from transfer_core.config import ConfigError, load_yaml, to_dict
from transfer_core.demo import DEMO_ENV, DemoSizes, demo_sizes, queue_demo, source_config, target_configs
from transfer_core.jobs import JobManager
from transfer_core.runs import Run

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = ("dataset=digits,source_classes=0-2,target_classes=3-5,source_per_class=20,target_per_class=5,"
        "source_epochs=1,target_epochs=2,source_batch_size=16,target_batch_size=8,device=cpu")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _without_name(cfg) -> dict:
    d = to_dict(cfg)
    d.pop("name")
    return d


def test_default_demo_is_the_three_examples():
    src = source_config(DemoSizes())
    transfer, scratch = target_configs("source-mnist-0-4", DemoSizes())
    assert _without_name(src) == _without_name(load_yaml(EXAMPLES / "source_mnist_0-4.yaml"))
    assert _without_name(transfer) == _without_name(load_yaml(EXAMPLES / "target_mnist_5-9_transfer.yaml"))
    assert _without_name(scratch) == _without_name(load_yaml(EXAMPLES / "target_mnist_5-9_scratch.yaml"))
    # the twins differ only in where the body starts and what is frozen
    diff = {k for k, v in to_dict(transfer).items() if to_dict(scratch)[k] != v}
    assert diff == {"name", "backbones"}


def test_demo_sizes_from_the_environment(monkeypatch):
    monkeypatch.setenv(DEMO_ENV, "dataset=digits, source_classes=0-2; target_classes=3 5 7,target_epochs=2,freeze=all")
    s = demo_sizes()
    assert (s.dataset, s.source_classes, s.target_classes, s.target_epochs, s.freeze) == (
        "digits", (0, 1, 2), (3, 5, 7), 2, "all")
    assert s.source_epochs == DemoSizes().source_epochs
    assert demo_sizes("") == DemoSizes()
    with pytest.raises(ConfigError, match="epochz"):
        demo_sizes("epochz=3")


def test_demo_queues_source_then_transfer_from_it_then_scratch(runs_root):
    jm = JobManager(runs_root, threads=1)
    try:
        ids = queue_demo(jm, demo_sizes(TINY))
        assert list(ids) == ["source", "transfer", "scratch"]
        for rid in ids.values():
            assert jm.wait(rid, 300)
    finally:
        jm.shutdown()
    runs = {role: Run(runs_root / rid) for role, rid in ids.items()}
    assert all(r.status()["state"] == "completed" for r in runs.values()), {k: r.status() for k, r in runs.items()}
    transfer, scratch = runs["transfer"].config(), runs["scratch"].config()
    assert transfer.backbones[0].weights == f"run:{ids['source']}" and transfer.backbones[0].freeze == 3
    assert scratch.backbones[0].weights == "none" and scratch.backbones[0].freeze == 0
    assert transfer.data == scratch.data and transfer.seed == scratch.seed  # same split and seed
    assert runs["source"].config().data.classes == [0, 1, 2]
    # the jobs ran in order: the transfer run started after the source ended
    assert runs["transfer"].status()["started"] >= runs["source"].status()["ended"]


def test_transfer_fails_clearly_when_the_source_failed(runs_root):
    jm = JobManager(runs_root, threads=1)
    try:  # classes 41 and 42 pass validation (no data needed) but not data loading: the source fails
        ids = queue_demo(jm, demo_sizes("dataset=digits,source_classes=41 42,target_classes=3-5,target_per_class=4,"
                                        "target_epochs=1,device=cpu"))
        for rid in ids.values():
            assert jm.wait(rid, 300)
    finally:
        jm.shutdown()
    src, transfer, scratch = (Run(runs_root / ids[r]).status() for r in ("source", "transfer", "scratch"))
    assert src["state"] == "failed" and "41" in src["message"]
    assert transfer["state"] == "failed"
    assert f"run {ids['source']} is failed, only a completed run can be a source" in transfer["message"]
    assert scratch["state"] == "completed"  # the twin does not depend on the source


def test_invalid_demo_queues_nothing(runs_root):
    jm = JobManager(runs_root, threads=1)
    try:
        with pytest.raises(ConfigError):
            queue_demo(jm, demo_sizes("target_per_class=0"))
        assert jm.jobs() == [] and not list(runs_root.glob("*/config.yaml"))
    finally:
        jm.shutdown()
