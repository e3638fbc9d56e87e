#!/usr/bin/env bash
# DDP on GPUs under torchrun with nccl, checked in one command (issue 7):
#   bench/ddp_gpu.sh            1 GPU: torchrun --nproc_per_node=1, nccl
#   NPROC=2 bench/ddp_gpu.sh    as many ranks as GPUs you name (one GPU each)
# Checks, each printing "ok ..." or failing with one "error:" line:
#   1. fine-tuning (images through DDP-wrapped resnet18) completes on cuda:0 with nccl,
#      metrics written once, run folder complete; val_acc printed next to a
#      single-process run of the same seeded config;
#   2. a linear probe (feature cache extracted and gathered with nccl) completes, and
#      its cache matches a single-process one (max abs difference printed);
#   3. stop-free resume: the fine-tune run, told to go 1 epoch further, resumes under
#      torchrun and ends with every epoch once.
# Exit code 2 and one "error:" line when no CUDA GPU is visible; 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
NPROC="${NPROC:-1}"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "error: no CUDA GPU is visible (torch.cuda.is_available() is False): this check needs at least one GPU; on the CPU run tests/test_ddp.py (gloo) instead" >&2
  exit 2
fi
NGPU="$("$PY" -c 'import torch; print(torch.cuda.device_count())')"
if [ "$NPROC" -gt "$NGPU" ]; then
  echo "error: NPROC=$NPROC but only $NGPU GPU(s) are visible" >&2
  exit 2
fi
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

WORK="$(mktemp -d /tmp/ddp_gpu.XXXXXX)"
export TRANSFER_LAB_DATA="${TRANSFER_LAB_DATA:-$WORK/data}" TORCH_HOME="${TORCH_HOME:-$WORK/torch_home}"
mkdir -p "$TRANSFER_LAB_DATA"
echo "work folder: $WORK  (python: $PY, torch $("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)'), nproc $NPROC)"

cat > "$WORK/finetune.yaml" <<'EOF'
seed: 0
data: {dataset: digits, train_per_class: 60, val_fraction: 0.2, image_size: 32}
backbones: [{name: resnet18, weights: none, freeze: 0}]
train: {epochs: 3, batch_size: 64, lr: 0.001, device: cuda}
EOF
cat > "$WORK/probe.yaml" <<'EOF'
seed: 0
data: {dataset: digits, train_per_class: 60, val_fraction: 0.2, image_size: 32}
backbones: [{name: resnet18, weights: none, freeze: all}]
train: {epochs: 5, batch_size: 64, lr: 0.01, device: cuda}
EOF

torchrun() {
  "$PY" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m transfer_core "$@" --dist-backend nccl
}

t0=$(date +%s)
SINGLE_FT="$(TRANSFER_LAB_CACHE="$WORK/cache_single" "$PY" -m transfer_core train "$WORK/finetune.yaml" --runs-dir "$WORK/single" -q | tail -1)"
DDP_FT="$(TRANSFER_LAB_CACHE="$WORK/cache_ddp" torchrun train "$WORK/finetune.yaml" --runs-dir "$WORK/ddp" -q | tail -1)"
SINGLE_PR="$(TRANSFER_LAB_CACHE="$WORK/cache_single" "$PY" -m transfer_core train "$WORK/probe.yaml" --runs-dir "$WORK/single" -q | tail -1)"
DDP_PR="$(TRANSFER_LAB_CACHE="$WORK/cache_ddp" torchrun train "$WORK/probe.yaml" --runs-dir "$WORK/ddp" -q | tail -1)"
# resume under torchrun: the completed fine-tune, given one more epoch, is marked stopped and resumed
"$PY" - "$DDP_FT" <<'EOF'
import sys, yaml
from transfer_core.runs import Run
run = Run(sys.argv[1]); cfg = yaml.safe_load(run.config_path.read_text()); cfg["train"]["epochs"] += 1
run.config_path.write_text(yaml.safe_dump(cfg)); run.set_status("stopped", "extended by bench/ddp_gpu.sh")
EOF
TRANSFER_LAB_CACHE="$WORK/cache_ddp" torchrun resume "$DDP_FT" -q >/dev/null
echo "runs took $(( $(date +%s) - t0 ))s"

"$PY" - "$SINGLE_FT" "$DDP_FT" "$SINGLE_PR" "$DDP_PR" "$WORK" "$NPROC" <<'EOF'
import sys
from pathlib import Path
import torch
from transfer_core.runs import Run
single_ft, ddp_ft, single_pr, ddp_pr = (Run(Path(p)) for p in sys.argv[1:5])
work, nproc = Path(sys.argv[5]), int(sys.argv[6])
fail = []
def check(ok, msg):
    print(("ok    " if ok else "FAIL  ") + msg)
    ok or fail.append(msg)
files = ("config.yaml", "status.json", "metrics.jsonl", "confusion.json", "per_class.json", "checkpoint.pt", "best.pt")
for name, run, epochs in (("fine-tune", ddp_ft, 4), ("probe", ddp_pr, 5)):
    st = run.status()
    check(st["state"] == "completed", f"{name}: DDP run completed ({st['state']}: {st['message']})")
    check(st.get("device") == "cuda:0", f"{name}: rank 0 trained on {st.get('device')}")
    check([r["epoch"] for r in run.metrics()] == list(range(1, epochs + 1)), f"{name}: metrics once per epoch ({len(run.metrics())} rows)")
    check(all((run.dir / f).is_file() for f in files), f"{name}: run folder complete")
    conf = run.confusion() or {"matrix": []}
    n_val = sum(map(sum, conf["matrix"]))
    check(n_val == sum(map(sum, (Run(single_ft.dir).confusion() or {"matrix": []})["matrix"])), f"{name}: confusion counts {n_val} validation images, as one process")
for name, a, b in (("fine-tune", single_ft, ddp_ft), ("probe", single_pr, ddp_pr)):
    print(f"      {name}: val_acc single {a.metrics()[-1]['val_acc']:.4f} vs {nproc}-rank nccl {b.metrics()[-1]['val_acc']:.4f}"
          + (" (the DDP fine-tune has one extra, resumed epoch)" if name == "fine-tune" else ""))
d = abs(single_pr.metrics()[-1]["val_acc"] - ddp_pr.metrics()[-1]["val_acc"])
check(d <= 0.1, f"probe: |val_acc difference| {d:.4f} <= 0.1")
ca, cb = sorted((work / "cache_single").rglob("*.pt")), sorted((work / "cache_ddp").rglob("*.pt"))
check([p.name for p in ca] == [p.name for p in cb] and len(ca) == 2, f"feature cache: same files ({[p.name for p in cb]})")
for pa, pb in zip(ca, cb):
    x, y = torch.load(pa, weights_only=True), torch.load(pb, weights_only=True)
    diff = (x["features"] - y["features"]).abs().max().item() if x["features"].shape == y["features"].shape else float("inf")
    check(torch.equal(x["labels"], y["labels"]) and diff <= 1e-4, f"feature cache {pa.name}: labels equal, max |diff| {diff:.2e} (bitwise equal: {diff == 0})")
if fail:
    print(f"error: {len(fail)} check(s) failed: {'; '.join(fail)}", file=sys.stderr)
    sys.exit(1)
print("all DDP GPU checks passed")
EOF
