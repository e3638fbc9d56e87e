"""AppTest checks of the teaching pages: Compare, Predict's Grad-CAM, Insights (every section).

Three tiny runs are trained once for the module (CPU, 1 epoch): a scratch resnet18, a
resnet18 + mobilenet_v3_small fusion, and a transfer run (frozen body from the scratch
run) on other classes, which the Compare page must flag as not comparable.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import tiny_config
from transfer_core.training import run_training

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # first renders import torch; slow on a busy 2-core box


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny tensors, one thread


@pytest.fixture(scope="module")
def runs(module_tmp, one_torch_thread):
    root = module_tmp
    scratch = run_training(tiny_config(train__epochs=1), root).run
    fusion = run_training(tiny_config(
        method="fusion", backbones=[{"name": "resnet18"}, {"name": "mobilenet_v3_small"}],
        fusion={"mode": "sum", "shared_dim": 16, "learn_alpha": True}, train__epochs=1,
    ), root).run
    other = run_training(tiny_config(
        data__classes=[3, 4, 5], backbones=[{"name": "resnet18", "weights": f"run:{scratch.id}", "freeze": "all"}],
        train__epochs=1,
    ), root).run
    for r in (scratch, fusion, other):
        assert r.status()["state"] == "completed", r.status()
    return {"root": root, "scratch": scratch.id, "fusion": fusion.id, "other": other.id}


@pytest.fixture(autouse=True)
def _store(runs, _isolated_folders, monkeypatch):
    """Every test reads the module's runs (conftest points TRANSFER_LAB_RUNS at an empty folder first)."""
    monkeypatch.setenv("TRANSFER_LAB_RUNS", str(runs["root"]))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def chart(at: AppTest, key: str):
    import json

    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        if c.proto.id and key in c.proto.id:
            return spec
    raise AssertionError(f"no plotly chart with key {key}")


def chart_keys(at: AppTest) -> list[str]:
    return [c.proto.id for c in at.get("plotly_chart")]


def has_chart(at: AppTest, key: str) -> bool:
    return any(key in k for k in chart_keys(at))


# --------------------------------------------------------------------------- Compare


def test_compare_page_flags_runs_on_other_classes(runs):
    at = open_page("pages/compare.py")
    at.multiselect(key="cmp_runs").set_value([runs["scratch"], runs["fusion"], runs["other"]]).run()
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "Not comparable" in warnings[0] and runs["other"][-4:] in warnings[0]
    assert runs["scratch"][-4:] not in warnings[0]

    curves = chart(at, "cmp_curves")
    assert len(curves["data"]) == 6  # val acc + val loss per run
    kinds = {t["name"] for t in chart(at, "cmp_kinds")["data"]}
    assert kinds == {"scratch", "transfer", "fusion"}

    table = at.dataframe[0].value
    assert len(table) == 3 and set(table["kind"]) == {"scratch", "transfer", "fusion"}
    assert table.set_index("kind").loc["transfer", "comparable"] == False  # noqa: E712
    diff = at.dataframe[1].value
    assert {"method", "data.classes", "backbones.0.weights", "backbones.1.name"} <= set(diff.index)
    assert "train.lr" not in diff.index and "seed" not in diff.index  # identical settings are left out


def test_compare_page_comparable_runs_no_warning(runs):
    at = open_page("pages/compare.py")
    at.multiselect(key="cmp_runs").set_value([runs["scratch"], runs["fusion"]]).run()
    assert not at.exception, at.exception
    assert not at.warning
    assert {m.label for m in at.metric} >= {"Runs", "Best final val accuracy", "Best run"}


# --------------------------------------------------------------------------- Predict: Grad-CAM


def test_predict_page_shows_gradcam_per_backbone_and_contributions(runs):
    at = open_page("pages/predict.py")
    at.selectbox(key="pred_run").set_value(runs["fusion"]).run()
    at.radio(key="pred_source").set_value("Validation image").run()
    assert not at.exception, at.exception
    assert not at.warning, [w.value for w in at.warning]
    captions = [c for img in at.image for c in img.captions]
    assert any("resnet18 · layer layer3" in c for c in captions), captions
    assert any(c.startswith("mobilenet_v3_small · layer") for c in captions), captions
    contrib = chart(at, "pred_contrib")
    assert contrib["data"][0]["y"] == ["resnet18", "mobilenet_v3_small"]
    # explaining another class reruns Grad-CAM without errors
    at.selectbox(key="pred_cam_class").set_value(2).run()
    assert not at.exception, at.exception


# --------------------------------------------------------------------------- Insights


def test_insights_page_fusion_run_renders_every_section(runs):
    at = open_page("pages/insights.py")
    at.selectbox(key="ins_run").set_value(runs["fusion"]).run()
    assert not at.exception, at.exception

    # 1. embeddings: one map per backbone + the fused representation; a picked point shows its image
    assert all(has_chart(at, f"ins_emb_{i}") for i in range(3)), chart_keys(at)
    assert len(chart(at, "ins_emb_2")["data"]) == 3  # one trace per class
    at.session_state["ins_emb_pick"] = 0
    at.run()
    assert not at.exception, at.exception
    assert {"True class", "Predicted"} <= {m.label for m in at.metric}
    at.radio(key="ins_emb_method").set_value("tsne").run()
    assert not at.exception, at.exception

    # 2. fusion: alpha, contributions, ablation, disagreement
    at.segmented_control(key="ins_section").set_value("Fusion").run()
    assert not at.exception, at.exception
    for key in ("ins_alpha", "ins_contrib", "ins_ablation", "ins_disagree"):
        assert has_chart(at, key), (key, chart_keys(at))
    assert list(at.dataframe[0].value["model"]) == ["all backbones", "without resnet18", "without mobilenet_v3_small"]
    assert {"resnet18 alone", "mobilenet_v3_small alone", "All wrong"} <= {m.label for m in at.metric}

    # 3. errors: clickable confusion matrix, a cell gallery, top losses
    at.segmented_control(key="ins_section").set_value("Errors").run()
    assert not at.exception, at.exception
    assert has_chart(at, "ins_cm")
    at.selectbox(key="ins_cell_true").set_value(0).run()
    at.selectbox(key="ins_cell_pred").set_value(0).run()
    assert not at.exception, at.exception
    assert len(at.image) >= 8  # top losses at least

    # 4. learning-rate finder
    at.segmented_control(key="ins_section").set_value("Learning rate").run()
    at.button(key="ins_lrf_run").click().run()
    assert not at.exception, at.exception
    assert has_chart(at, "ins_lrf_chart") and "Suggested learning rate" in {m.label for m in at.metric}

    # 5. export: checkpoint and config at once; report and TorchScript after their buttons
    at.segmented_control(key="ins_section").set_value("Export").run()
    assert not at.exception, at.exception
    keys = {b.key for b in at.download_button}
    assert {"ins_dl_ckpt", "ins_dl_yaml"} <= keys and "ins_dl_report" not in keys
    at.button(key="ins_build_report").click().run()
    at.button(key="ins_export_torchscript").click().run()
    at.button(key="ins_export_onnx").click().run()  # ONNX/TorchScript parity: tests/test_export.py
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    keys = {b.key for b in at.download_button}
    assert {"ins_dl_ckpt", "ins_dl_yaml", "ins_dl_report", "ins_dl_torchscript", "ins_dl_onnx"} <= keys


def test_insights_page_single_backbone_run(runs):
    at = open_page("pages/insights.py")
    at.selectbox(key="ins_run").set_value(runs["other"]).run()
    at.segmented_control(key="ins_section").set_value("Errors").run()
    at.selectbox(key="ins_cell_true").set_value(2).run()
    # switching run forgets the picked cell and image of the previous one
    at.selectbox(key="ins_run").set_value(runs["scratch"]).run()
    assert not at.exception, at.exception
    at.segmented_control(key="ins_section").set_value("Fusion").run()
    assert not at.exception, at.exception
    assert any("need a fusion run" in i.value for i in at.info)
    at.segmented_control(key="ins_section").set_value("Embeddings").run()
    assert not at.exception, at.exception
    assert has_chart(at, "ins_emb_0") and not has_chart(at, "ins_emb_1")


def test_teaching_pages_without_runs(tmp_path, monkeypatch):
    """With an empty store each page says there is nothing to show yet, points to Train, and stops there."""
    monkeypatch.setenv("TRANSFER_LAB_RUNS", str(tmp_path / "empty"))
    expected = {
        "pages/compare.py": ("No run has finished an epoch yet", "cmp_runs"),
        "pages/insights.py": ("No completed run yet", "ins_run"),
    }
    for page, (text, picker) in expected.items():
        at = open_page(page)
        infos = [i.value for i in at.info]
        assert len(infos) == 1 and text in infos[0] and "Train page" in infos[0], (page, infos)
        assert not [w for w in (*at.selectbox, *at.multiselect) if w.key == picker], page  # stopped before the picker
        assert not at.get("plotly_chart"), page


# --------------------------------------------------------------------------- Results: galleries from the confusion matrix


def test_results_confusion_cell_opens_a_gallery_and_top_losses(runs):
    """AppTest cannot click plotly: the click's outcome (the picked cell in session state) is simulated;
    tests/test_insights.py::test_selection_to_confusion_cell_mapping covers selection -> cell,
    tests/test_e2e_demo.py the real click."""
    at = open_page("pages/results.py")
    at.selectbox(key="results_run").set_value(runs["scratch"]).run()
    assert not at.exception, at.exception
    cm = chart(at, "results_confusion")
    assert any(t.get("name") == "cells" for t in cm["data"])  # the clickable layer over the heatmap
    assert not at.get("image")  # nothing loaded before a click
    assert any("Click a cell" in c.value for c in at.caption)

    z = cm["data"][0]["z"]  # the fullest cell, so it has images
    t, p = max(((i, j) for i in range(len(z)) for j in range(len(z))), key=lambda ij: z[ij[0]][ij[1]])
    at.session_state["res_cell"] = (runs["scratch"], t, p)  # what a click on that cell stores
    at.run()
    assert not at.exception, at.exception
    texts = [m.value for m in at.markdown]
    assert any(f"**{z[t][p]} image" in x and "predicted as" in x for x in texts), texts
    caps = [c for img in at.image for c in img.captions]
    assert caps and all("%" in c for c in caps), caps  # each thumbnail shows predicted probabilities

    at.toggle(key="res_show_top_losses").set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.image) >= len(caps) + 8
    assert any("Top losses" in t for t in (m.value for m in at.markdown))

    # a cell picked on another run is ignored
    at.session_state["res_cell"] = (runs["fusion"], 0, 1)
    at.toggle(key="res_show_top_losses").set_value(False).run()
    assert not at.exception, at.exception
    assert not at.get("image")


# --------------------------------------------------------------------------- Train: LR finder


def test_train_page_lr_finder_sets_the_suggested_rate(runs):
    at = open_page("pages/train.py")
    at.session_state["draft_data"] = {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 12,
                                      "val_fraction": 0.1, "image_size": 32}
    at.run()
    at.button(key="train_lrf_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert has_chart(at, "train_lrf_chart")
    (res,) = at.session_state["train_lrf_results"].values()
    suggested = res["suggested"]
    assert 1e-7 <= suggested <= 10
    at.button(key="train_lrf_use").click().run()
    assert not at.exception, at.exception
    assert at.number_input(key="lr").value == pytest.approx(suggested)
    assert any("Learning rate set to" in s.value for s in at.success)


# --------------------------------------------------------------------------- Train: the guided transfer demo

TINY_DEMO = ("dataset=digits,source_classes=0-2,target_classes=3-5,source_per_class=20,target_per_class=5,"
             "source_epochs=1,target_epochs=2,source_batch_size=16,target_batch_size=8,device=cpu")


def test_transfer_demo_queues_the_triple_and_shows_the_comparison(tmp_path, monkeypatch):
    import time

    from transfer_core.runs import Run

    root = tmp_path / "demo_runs"
    monkeypatch.setenv("TRANSFER_LAB_RUNS", str(root))
    monkeypatch.setenv("TRANSFER_LAB_DEMO", TINY_DEMO)
    at = open_page("pages/train.py")
    assert any("10" not in m.value and "5 labels" in m.value for m in at.markdown), "sizes come from the env"
    at.button(key="demo_start").click().run()
    assert not at.exception, at.exception
    ids = at.session_state["demo_runs"]
    assert set(ids) == {"source", "transfer", "scratch"}
    assert str(at.query_params["demo"]) == ",".join(ids[r] for r in ("source", "transfer", "scratch"))
    assert Run(root / ids["transfer"]).config().backbones[0].weights == f"run:{ids['source']}"

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        states = [Run(root / r).status().get("state") for r in ids.values()]
        if all(s in ("completed", "failed", "stopped") for s in states):
            break
        time.sleep(1.0)
        at.run()  # a run_every fragment never ticks in AppTest
        assert not at.exception, at.exception
    assert states == ["completed"] * 3, states
    time.sleep(0.5)  # the worker marks the job done just after writing the status
    at.run()
    assert not at.exception, at.exception

    bars = chart(at, "demo_kinds")
    assert {t["name"] for t in bars["data"]} == {"transfer", "scratch"}
    assert {"1 · Source", "2 · Transfer", "3 · From scratch"} <= {m.label for m in at.metric}
    assert any("of validation accuracy on the target classes" in m.value for m in at.markdown)
    links = [pl for pl in at.get("page_link") if "compare" in pl.proto.page]
    assert links and ids["scratch"] in links[0].proto.query_string, [pl.proto for pl in at.get("page_link")]

    # the finished source is a weights source in the backbone picker (Train) and listed on Models
    assert any(o.startswith(f"run · {ids['source']}") for o in at.selectbox(key="bb0_weights").options)
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    listed = {r for df in at.dataframe if "Run" in df.value.columns for r in df.value["Run"]}
    assert ids["source"] in listed, listed

    # the Compare page opens with the three runs picked (the demo's link carries them)
    at.query_params["runs"] = ",".join(ids.values())
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert set(at.multiselect(key="cmp_runs").value) == set(ids.values())
    assert {t["name"] for t in chart(at, "cmp_kinds")["data"]} == {"transfer", "scratch"}
    assert any("Not comparable" in w.value for w in at.warning)  # the source learnt other digits
