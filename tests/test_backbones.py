"""Tests for the backbone registry, layer groups and weight loading.

CPU only, seeded, no network: every test runs with torch.hub's downloader replaced by
one that raises, and with the hub cache pointed at a temporary folder where needed.
Large bodies are checked on the meta device (shapes only) to keep the module fast.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import pickle
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

import transfer_core
from transfer_core import backbones as bb
from transfer_core.backbones import groups as groups_mod
from transfer_core.backbones import spec as spec_mod
from transfer_core.backbones import (
    WeightsError,
    build_body,
    frozen_groups,
    get_backbone,
    group_index_of,
    imagenet_weights_info,
    input_size,
    list_backbones,
    load_imagenet_state,
    load_state_into_body,
    load_weights_file,
    register_backbone,
    trainable_params,
)

ALL = list_backbones()
CURATED = list_backbones(curated_only=True)
CPU_FORWARD_MAX_PARAMS = 12_000_000  # bigger curated bodies are forward-checked on meta
FIXED_SIZE_FAMILIES = ("vit", "maxvit")
NEEDS_MORE_THAN_32 = {"alexnet": 64, "inception_v3": 75}  # their strides leave nothing at 32 px


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> object:
    """Tiny CPU forwards are fastest single-threaded; on a busy 2-core box, threads thrash."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the internet: the hub's downloader and urlopen raise."""

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(torch.hub, "urlopen", offline, raising=False)


@pytest.fixture
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub folder for this test (TORCH_HOME, and no set_dir override)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    hub = Path(torch.hub.get_dir())
    assert hub.is_relative_to(tmp_path)
    return hub


def _owners(spec: bb.BackboneSpec, param_name: str) -> list[int]:
    return [
        i
        for i, g in enumerate(spec.groups)
        if any(param_name == p or param_name.startswith(p + ".") for p in g.prefixes)
    ]


def _meta_body(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return build_body(name)


def _assert_groups_cover(spec: bb.BackboneSpec, body: torch.nn.Module) -> None:
    per_group = [0] * len(spec.groups)
    total = 0
    for pname, p in body.named_parameters():
        owners = _owners(spec, pname)
        assert len(owners) == 1, f"{spec.name}: {pname} owned by groups {owners}"
        assert group_index_of(spec, pname) == owners[0]
        per_group[owners[0]] += p.numel()
        total += p.numel()
    assert per_group == [g.num_params for g in spec.groups]
    assert spec.num_params == total


# --------------------------------------------------------------------------- registry


def test_registry_holds_every_torchvision_classifier_sorted() -> None:
    assert len(ALL) >= 80
    assert ALL == sorted(ALL)
    assert set(ALL) == set(torchvision.models.list_models(module=torchvision.models))


def test_curated_list() -> None:
    assert CURATED == sorted(CURATED)
    assert set(CURATED) <= set(ALL)
    for name in ("resnet18", "vgg16", "mobilenet_v3_small", "squeezenet1_1", "vit_b_16", "convnext_tiny"):
        assert name in CURATED
    assert len(CURATED) >= 14


def test_register_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("resnet18")
    assert ALL == list_backbones()


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(ValueError, match=r"unknown backbone 'resnt18' \(did you mean resnet18"):
        get_backbone("resnt18")
    with pytest.raises(ValueError, match="unknown backbone"):
        build_body("no_such_net")
    assert get_backbone(" ResNet18 ").name == "resnet18"


def test_listing_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("list_backbones must not build a model")

    monkeypatch.setattr(torchvision.models, "get_model", boom)
    assert len(list_backbones()) == len(ALL)
    assert list_backbones(curated_only=True) == CURATED


# --------------------------------------------------------------------------- curated specs


@pytest.mark.parametrize("name", CURATED)
def test_curated_spec(name: str) -> None:
    spec = get_backbone(name)
    assert spec.name == name and spec.curated
    assert spec.family and spec.feature_dim > 0 and spec.num_params > 0
    assert 3 <= len(spec.groups) <= 8
    assert spec.groups[0].name == "stem"
    assert len({g.name for g in spec.groups}) == len(spec.groups)
    assert all(g.num_params > 0 and g.prefixes for g in spec.groups)
    assert sum(g.num_params for g in spec.groups) == spec.num_params
    assert len(spec.mean) == 3 and len(spec.std) == 3
    assert all(0 < v < 1 for v in spec.mean + spec.std)
    assert spec.weights_enum == imagenet_weights_info(name)["weights"]
    assert spec.weights_enum.split(".")[0].endswith("_Weights")
    if spec.family in FIXED_SIZE_FAMILIES:
        assert spec.fixed_size == spec.min_size == 224
    else:
        assert spec.fixed_size is None
        assert spec.min_size <= NEEDS_MORE_THAN_32.get(name, 32)

    _assert_groups_cover(spec, _meta_body(name))

    k = len(spec.groups)
    counts = [trainable_params(spec, n) for n in range(k + 1)]
    assert counts[0] == spec.num_params
    assert all(a > b for a, b in zip(counts, counts[1:]))  # every group holds parameters
    assert counts[-1] == 0 == trainable_params(spec, "all")
    assert frozen_groups(spec, "all") == k
    for bad in (-1, k + 1, "some", True, 1.5):
        with pytest.raises(ValueError):
            frozen_groups(spec, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", CURATED)
def test_curated_body_forward(name: str) -> None:
    """The body maps B x 3 x S x S to B x feature_dim at the size input_size() picks."""
    spec = get_backbone(name)
    side = input_size(spec, 32)
    if spec.num_params <= CPU_FORWARD_MAX_PARAMS:
        torch.manual_seed(0)
        body = build_body(name)
        x = torch.rand(2, 3, side, side)
    else:
        body = _meta_body(name)
        x = torch.empty(2, 3, side, side, device="meta")
    assert not any(k == spec.head_path or k.startswith(spec.head_path + ".") for k in body.state_dict()), (
        "the replaced head must not keep parameters"
    )
    body.eval()
    with torch.no_grad():
        y = body(x)
    assert isinstance(y, torch.Tensor) and tuple(y.shape) == (2, spec.feature_dim)
    if not y.is_meta:
        assert torch.isfinite(y).all()


def test_smallest_sizes_really_work_on_cpu() -> None:
    """min_size is found on meta; check it on real tensors for small bodies (train mode too)."""
    torch.manual_seed(0)
    for name in ("squeezenet1_1", "densenet121", "resnet18"):
        spec = get_backbone(name)
        body = build_body(name).train()
        y = body(torch.rand(2, 3, spec.min_size, spec.min_size))
        assert tuple(y.shape) == (2, spec.feature_dim)


def test_known_specs() -> None:
    r18 = get_backbone("resnet18")
    assert (r18.family, r18.feature_dim, r18.head_path) == ("resnet", 512, "fc")
    assert [g.name for g in r18.groups] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert r18.groups[0].prefixes == ("conv1", "bn1")
    assert r18.mean == pytest.approx((0.485, 0.456, 0.406)) and r18.std == pytest.approx((0.229, 0.224, 0.225))
    assert input_size(r18, 28) == max(28, r18.min_size) and input_size(r18, 96) == 96

    vgg = get_backbone("vgg16")
    assert (vgg.feature_dim, vgg.head_path, vgg.groups[-1].name) == (4096, "classifier.6", "classifier")
    assert len(vgg.groups) == 6  # five conv blocks split at max-pools + fc6/fc7

    mnv3 = get_backbone("mobilenet_v3_large")
    assert (mnv3.feature_dim, mnv3.head_path, mnv3.groups[-1].name) == (1280, "classifier.3", "classifier")

    sq = get_backbone("squeezenet1_1")
    assert (sq.feature_dim, sq.head_path) == (512, "classifier")

    vit = get_backbone("vit_b_16")
    assert (vit.fixed_size, vit.head_path, vit.feature_dim) == (224, "heads.head", 768)
    assert input_size(vit, 32) == 224
    assert set(vit.groups[0].prefixes) >= {"class_token", "conv_proj", "encoder.pos_embedding"}
    assert group_index_of(vit, "class_token") == 0
    assert group_index_of(vit, "encoder.ln.weight") == len(vit.groups) - 1
    with pytest.raises(KeyError):
        group_index_of(vit, "heads.head.weight")


def test_auxiliary_heads_disabled() -> None:
    """GoogLeNet / Inception bodies return one tensor in train mode too."""
    for name in ("googlenet", "inception_v3"):
        spec = get_backbone(name)
        body = _meta_body(name).train()
        side = input_size(spec, 32)
        y = body(torch.empty(2, 3, side, side, device="meta"))
        assert isinstance(y, torch.Tensor) and tuple(y.shape) == (2, spec.feature_dim)


# --------------------------------------------------------------------------- whole registry


@pytest.mark.parametrize("name", ALL)
def test_every_registered_backbone(name: str) -> None:
    """Light check over the whole registry, on the meta device."""
    spec = get_backbone(name)
    assert 3 <= len(spec.groups) <= 8 and spec.groups[0].name == "stem"
    assert spec.feature_dim > 0
    _assert_groups_cover(spec, _meta_body(name))
    if spec.family in FIXED_SIZE_FAMILIES:
        assert spec.fixed_size is not None and spec.fixed_size == spec.min_size
    else:
        assert spec.fixed_size is None and spec.min_size <= NEEDS_MORE_THAN_32.get(name, 32)


def test_generic_layout_covers_other_architectures() -> None:
    """The fallback layout (for a future family without its own) still covers every parameter."""
    for name in ("resnet18", "vit_b_16", "densenet121", "regnet_y_400mf", "vgg11"):
        body = _meta_body(name)
        groups = groups_mod.make_groups(body, groups_mod.generic_layout(body))
        assert 3 <= len(groups) <= 8 and groups[0].name == "stem"
        spec = get_backbone(name)
        fake = bb.BackboneSpec(**{**spec.__dict__, "groups": groups})
        _assert_groups_cover(fake, body)


def _spy_spec_work(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[torch.nn.Module]]:
    """Count real spec computations (bypassing the in-process lru cache) and record every model built."""
    computed: list[str] = []
    built: list[torch.nn.Module] = []
    raw_compute = spec_mod._compute_spec.__wrapped__
    real_get_model = torchvision.models.get_model

    def compute(name: str) -> bb.BackboneSpec:
        computed.append(name)
        return raw_compute(name)

    def get_model(*args: object, **kwargs: object) -> torch.nn.Module:
        model = real_get_model(*args, **kwargs)
        built.append(model)
        return model

    monkeypatch.setattr(spec_mod, "_compute_spec", compute)
    monkeypatch.setattr(torchvision.models, "get_model", get_model)
    return computed, built


def test_spec_is_cached_and_cheap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Computed once per process, read back from disk by a new process, and only ever on meta tensors."""
    cache = tmp_path / "speccache"
    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(cache))
    computed, built = _spy_spec_work(monkeypatch)

    first = get_backbone("resnet18")
    assert computed == ["resnet18"] and len(built) == 1
    params = list(built[0].parameters())
    assert params and all(p.is_meta for p in params), "a spec must be computed without real weights"
    assert all(b.is_meta for b in built[0].buffers())

    assert get_backbone("resnet18") is first and get_backbone(" ResNet18 ") is first
    assert computed == ["resnet18"] and len(built) == 1, "a second get_backbone must not recompute"
    assert [p.name for p in cache.glob("backbone_specs-*.json")], "the spec must be written to the disk cache"

    # A fresh process (a server restart) must answer from the disk cache without building anything.
    script = (
        "import dataclasses, json, torchvision\n"
        "from transfer_core.backbones import get_backbone, spec\n"
        "def boom(*a, **k):\n"
        "    raise SystemExit('rebuilt: ' + repr(a))\n"
        "torchvision.models.get_model = boom\n"
        "spec._compute_spec = boom\n"
        "print(json.dumps(dataclasses.asdict(get_backbone('resnet18'))))\n"
    )
    env = {**os.environ, "TRANSFER_LAB_CACHE": str(cache), "PYTHONPATH": str(Path(transfer_core.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == json.loads(json.dumps(dataclasses.asdict(first)))


def test_spec_cache_key_covers_every_spec_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing any module that shapes a spec (registry, build, groups, spec) names a new cache file."""
    names = {Path(p).name for p in spec_mod._SPEC_SOURCES}
    assert names == {"registry.py", "build.py", "groups.py", "spec.py"}
    assert all(Path(p).parent == Path(spec_mod.__file__).parent for p in spec_mod._SPEC_SOURCES)
    before = spec_mod._spec_cache_file()
    real_read = Path.read_bytes
    for edited in spec_mod._SPEC_SOURCES:
        monkeypatch.setattr(Path, "read_bytes", lambda self, e=edited: real_read(self) + (b"#" if str(self) == e else b""))
        assert spec_mod._spec_cache_file() != before, f"editing {edited} keeps the old cache"
    monkeypatch.setattr(Path, "read_bytes", real_read)
    assert spec_mod._spec_cache_file() == before


# --------------------------------------------------------------------------- ImageNet weights


def test_imagenet_info_and_cached_state(hub_dir: Path) -> None:
    info = imagenet_weights_info("resnet18")
    weights = torchvision.models.get_model_weights("resnet18").DEFAULT
    assert info["weights"] == f"ResNet18_Weights.{weights.name}"
    assert info["url"] == weights.url
    assert info["filename"] == os.path.basename(weights.url) and info["filename"].startswith("resnet18")
    assert info["cache_dir"] == str(hub_dir / "checkpoints")
    assert info["cached"] is False

    torch.manual_seed(0)
    full = torchvision.models.resnet18(weights=None).state_dict()
    (hub_dir / "checkpoints").mkdir(parents=True)
    torch.save(full, hub_dir / "checkpoints" / info["filename"])
    assert imagenet_weights_info("resnet18")["cached"] is True

    state = load_imagenet_state("resnet18")
    assert state.keys() == full.keys()
    assert all(torch.equal(state[k], full[k]) for k in full)

    body = build_body("resnet18")
    load_state_into_body(body, get_backbone("resnet18"), state, "ImageNet ResNet18_Weights")
    assert torch.equal(body.conv1.weight, full["conv1.weight"])
    assert torch.equal(body.layer4[1].bn2.running_var, full["layer4.1.bn2.running_var"])


def test_imagenet_offline_and_not_cached(hub_dir: Path) -> None:
    info = imagenet_weights_info("resnet18")
    with pytest.raises(WeightsError) as err:
        load_imagenet_state("resnet18")
    message = str(err.value)
    assert info["filename"] in message and info["cache_dir"] in message
    assert "not cached" in message and "network disabled" in message
    assert "\n" not in message


def test_imagenet_corrupt_cache_file(hub_dir: Path) -> None:
    info = imagenet_weights_info("squeezenet1_1")
    (hub_dir / "checkpoints").mkdir(parents=True)
    (hub_dir / "checkpoints" / info["filename"]).write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=info["filename"]):
        load_imagenet_state("squeezenet1_1")


# --------------------------------------------------------------------------- weights files


def test_weights_file_round_trip(tmp_path: Path) -> None:
    spec = get_backbone("resnet18")
    torch.manual_seed(1)
    source = build_body("resnet18")
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)

    torch.manual_seed(2)
    target = build_body("resnet18")
    assert not torch.equal(target.conv1.weight, source.conv1.weight)
    load_state_into_body(target, spec, load_weights_file(path), f"file {path}")
    for (k, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module_prefix", "other_head"])
def test_weights_file_wrappers(tmp_path: Path, wrap: str) -> None:
    """Checkpoint dicts, DataParallel prefixes and a differently sized head are accepted."""
    spec = get_backbone("squeezenet1_1")  # small, and its head is a conv inside "classifier"
    torch.manual_seed(3)
    state = build_body("squeezenet1_1").state_dict()
    if wrap == "module_prefix":
        obj: object = {f"module.{k}": v for k, v in state.items()}
    elif wrap == "other_head":
        obj = {**state, "classifier.1.weight": torch.zeros(10, 512, 1, 1), "classifier.1.bias": torch.zeros(10)}
    else:
        obj = {wrap: state, "epoch": 3}
    torch.save(obj, tmp_path / "w.pt")
    body = build_body("squeezenet1_1")
    load_state_into_body(body, spec, load_weights_file(tmp_path / "w.pt"), "file w.pt")
    assert torch.equal(body.features[0].weight, state["features.0.weight"])


def test_weights_of_another_architecture_do_not_fit(tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.save(build_body("mobilenet_v3_small").state_dict(), tmp_path / "mnv3.pt")
    body = build_body("resnet18")
    before = body.conv1.weight.clone()
    with pytest.raises(WeightsError) as err:
        load_state_into_body(body, get_backbone("resnet18"), load_weights_file(tmp_path / "mnv3.pt"), "file mnv3.pt")
    message = str(err.value)
    assert message.startswith("weights file mnv3.pt does not fit resnet18:")
    assert "missing keys" in message and "unexpected keys" in message and "e.g." in message
    assert "\n" not in message
    assert torch.equal(body.conv1.weight, before)  # nothing loaded


def test_shape_mismatch_is_reported_and_nothing_loaded() -> None:
    spec = get_backbone("resnet18")
    state = build_body("resnet18").state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    body = build_body("resnet18")
    before = {k: v.clone() for k, v in body.state_dict().items()}
    with pytest.raises(WeightsError, match=r"1 shape mismatches \(layer1.0.conv1.weight"):
        load_state_into_body(body, spec, state, "file x.pt")
    assert all(torch.equal(before[k], v) for k, v in body.state_dict().items())


def test_missing_truncated_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights_file(tmp_path / "nope.pt")

    good = tmp_path / "good.pt"
    torch.save(build_body("squeezenet1_1").state_dict(), good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated.pt") as err:
        load_weights_file(truncated)
    assert "\n" not in str(err.value)

    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(WeightsError, match="notes.pt"):
        load_weights_file(text)

    scalars = tmp_path / "scalars.pt"
    torch.save({"epoch": 3, "lr": 0.1}, scalars)
    with pytest.raises(WeightsError, match="not a state_dict"):
        load_weights_file(scalars)


class _Payload:
    """Unpickling this runs code that writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("fmt", ["pickle", "torch_save"])
def test_malicious_pickle_is_refused(tmp_path: Path, fmt: str) -> None:
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(control)))
    assert control.exists(), "the payload must really execute code when unpickled naively"

    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    if fmt == "pickle":
        path.write_bytes(pickle.dumps({"conv1.weight": _Payload(marker)}))
    else:
        torch.save({"conv1.weight": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match="evil.pt") as err:
        load_weights_file(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def _imports_streamlit(tree: ast.AST) -> list[int]:
    """Lines of a module that import streamlit: any ``import``/``from`` statement, or a dynamic import."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            names = [str(node.args[0].value)] if func.endswith(("import_module", "__import__")) else []
        else:
            continue
        if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
            lines.append(node.lineno)
    return lines


def test_core_does_not_import_streamlit() -> None:
    """No module of transfer_core imports streamlit, at top level or inside a function."""
    root = Path(transfer_core.__file__).parent
    modules = sorted(root.rglob("*.py"))
    assert root / "backbones" / "spec.py" in modules and len(modules) >= 15, "the walk missed the package"
    probe = ast.parse("def f():\n    from streamlit.runtime import x\nimport streamlit as st\n")
    assert sorted(_imports_streamlit(probe)) == [2, 3], "the checker itself must see both forms"
    offenders = {
        str(path.relative_to(root)): lines
        for path in modules
        if (lines := _imports_streamlit(ast.parse(path.read_text(encoding="utf-8"), str(path))))
    }
    assert not offenders, f"transfer_core must never import streamlit: {offenders}"


def test_importing_core_leaves_streamlit_unloaded() -> None:
    """In a fresh interpreter, importing transfer_core and each submodule never loads streamlit."""
    root = Path(transfer_core.__file__).parent
    names = sorted(
        ".".join(("transfer_core", *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        for p in root.rglob("*.py")
        if p.name != "__main__.py"
    )
    assert names[0] == "transfer_core" and "transfer_core.backbones.weights" in names
    script = (
        "import importlib, importlib.util, sys\n"
        "assert importlib.util.find_spec('streamlit') is not None, 'streamlit not installed: the check would be empty'\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'streamlit' in sys.modules:\n"
        "        raise SystemExit('importing ' + name + ' loaded streamlit')\n"
        "print('imported', len(sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(transfer_core.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("imported ")


def test_specs_persist_on_disk_and_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path / "speccache"))
    spec_mod._DISK.clear()
    fresh = bb.get_backbone("resnet18")
    files = list((tmp_path / "speccache").glob("backbone_specs-*.json"))
    assert len(files) == 1
    spec_mod._DISK.clear()  # as after a server restart
    assert bb.get_backbone("resnet18") == fresh == spec_mod._compute_spec("resnet18")
    files[0].write_text("{broken")  # a damaged cache is ignored, never fatal
    spec_mod._DISK.clear()
    assert bb.get_backbone("resnet18") == fresh
