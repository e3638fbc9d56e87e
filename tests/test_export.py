"""Exports agree with PyTorch: TorchScript and ONNX (onnxruntime), transfer and fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_config
from transfer_core.export import export_run
from transfer_core.predict import load_run_model, predict_images
from transfer_core.training import run_training


@pytest.fixture(scope="module")
def runs(module_tmp):
    root = module_tmp
    transfer = run_training(tiny_config(train__epochs=1), root)
    fusion = run_training(
        tiny_config(
            method="fusion",
            backbones=[{"name": "resnet18"}, {"name": "mobilenet_v3_small"}],
            fusion={"mode": "sum", "shared_dim": 16, "learn_alpha": True},
            train__epochs=1,
        ),
        root,
    )
    assert transfer.state == fusion.state == "completed"
    return root, {"transfer": transfer.run, "fusion": fusion.run}


@pytest.mark.parametrize("kind", ["transfer", "fusion"])
def test_torchscript_and_onnx_match_pytorch(runs, kind):
    root, by_kind = runs
    run = by_kind[kind]
    loaded = load_run_model(run)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = loaded.model(x).numpy()

    ts_path = export_run(run.dir, "torchscript", root)
    ts = torch.jit.load(str(ts_path))
    np.testing.assert_allclose(ts(x).detach().numpy(), ref, atol=1e-4)

    import onnxruntime as ort

    onnx_path = export_run(run.dir, "onnx", root)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(out, ref, atol=1e-3)


def test_predict_uses_the_runs_preprocessing(runs, tmp_path):
    from PIL import Image

    root, by_kind = runs
    loaded = load_run_model(by_kind["transfer"])
    img = Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype("uint8"))
    top = predict_images(loaded, [img], top_k=3)[0]
    assert len(top) == 3 and abs(sum(t["prob"] for t in top) - 1.0) < 1e-4  # 3 classes: all of them
    assert loaded.preprocessing["image_size"] == 32
