#!/usr/bin/env bash
# GPU benchmark in one command (see bench/bench_gpu.py):
#   bench/gpu.sh              resnet50 fine-tuning throughput + frozen-cache speed-up
#   bench/gpu.sh --quick      fewer images
#   bench/gpu.sh --compile    also measure train.compile: true
# Fails with exit code 2 and one "error:" line when no CUDA GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PY" bench/bench_gpu.py "$@"
