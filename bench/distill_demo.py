"""The distillation demo of README, over seeds: does a small student taught by a transfer (or a
fusion) teacher, with the unlabeled images, beat the same student alone?

    python bench/distill_demo.py [--seeds 0 1 2] [--runs-dir DIR]

Runs, from the configs in examples/: the two sources on digits 0-4 (once), then per seed the
transfer teacher and the fusion teacher on 5-9 with 10 labels per class, and the student
(mobilenet_v3_small, random weights) alone, distilled from the 50 labeled images only,
distilled with the unlabeled images too, and distilled from the fusion teacher. Teachers are
given by run id, so each student learns from the teacher of its own seed (same split). Prints
mean ± 95 % interval over the seeds per variant, the paired gaps, parameters and wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transfer_core.config import apply_overrides, from_dict, parse_yaml_text  # noqa: E402
from transfer_core.distill.student import inference_parameters  # noqa: E402
from transfer_core.predict import load_run_model  # noqa: E402
from transfer_core.sweeps.stats import mean_ci, paired_stats  # noqa: E402
from transfer_core.training import run_training  # noqa: E402

EX = ROOT / "examples"


def _cfg(name: str, *sets: str):
    data = parse_yaml_text((EX / name).read_text(), name)
    return from_dict(apply_overrides(data, list(sets)))


def _train(cfg, root: Path, log: list[dict]) -> dict:
    t0 = time.perf_counter()
    res = run_training(cfg, root)
    if res.state != "completed":
        raise SystemExit(f"{cfg.name} seed {cfg.seed}: {res.state}: {res.message}")
    row = {"name": cfg.name, "seed": cfg.seed, "run": res.run.id, "val_acc": res.metrics[-1]["val_acc"],
           "wall_s": round(time.perf_counter() - t0, 1)}
    log.append(row)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs-dir", default="runs")
    args = ap.parse_args()
    root = Path(args.runs_dir)
    os.environ.setdefault("TRANSFER_LAB_CACHE", str(root / "_cache"))  # the caches go with the runs
    log: list[dict] = []
    src = _train(_cfg("source_mnist_0-4.yaml"), root, log)["run"]
    src_shuffle = _train(_cfg("source_mnist_0-4_shufflenet.yaml"), root, log)["run"]
    acc: dict[str, dict[int, float]] = {}
    ids: dict[str, dict[int, str]] = {}
    for seed in args.seeds:
        s = f"seed={seed}"
        teacher = _train(_cfg("target_mnist_5-9_transfer.yaml", s, f"backbones.0.weights=run:{src}"), root, log)
        fusion = _train(_cfg("fusion_mnist_5-9.yaml", s, f"backbones.0.weights=run:{src}",
                             f"backbones.1.weights=run:{src_shuffle}"), root, log)
        t = f"distill.teachers=[run:{teacher['run']}]"
        variants = {
            "teacher (transfer, resnet18)": teacher,
            "teacher (fusion, resnet18+shufflenet)": fusion,
            "student alone": _train(_cfg("student_alone.yaml", s), root, log),
            "distilled, labeled only": _train(_cfg("distill.yaml", s, t, "distill.unlabeled=false", "train.epochs=40",
                                                   "train.batch_size=16", "name=student-distilled-labeled"), root, log),
            "distilled + unlabeled": _train(_cfg("distill.yaml", s, t), root, log),
            "distilled + unlabeled, fusion teacher": _train(
                _cfg("distill.yaml", s, f"distill.teachers=[run:{fusion['run']}]", "name=student-distilled-fusion"), root, log),
        }
        for k, row in variants.items():
            acc.setdefault(k, {})[seed] = row["val_acc"]
            ids.setdefault(k, {})[seed] = row["run"]
    print("\nvariant                                   val acc over seeds (mean ± 95 % CI)   per seed        params")
    for k, per in acc.items():
        m = mean_ci(per.values())
        half = (m["ci_high"] - m["mean"]) * 100 if m["ci_high"] is not None else float("nan")
        params = inference_parameters(load_run_model(next(iter(ids[k].values())), root).model)
        print(f"{k:<42}{m['mean'] * 100:6.1f} ± {half:4.1f} %   "
              f"{' '.join(f'{v * 100:.1f}' for v in per.values()):<28}{params / 1e6:6.2f} M")
    seeds = list(args.seeds)

    def gap(a: str, b: str) -> str:
        p = paired_stats([acc[a][s] - acc[b][s] for s in seeds])
        half = (p["ci_high"] - p["mean_diff"]) * 100 if p["ci_high"] is not None else float("nan")
        return f"{a} − {b}: {p['mean_diff'] * 100:+.1f} ± {half:.1f} points (wins {p['wins']} of {p['n']})"

    print()
    print(gap("distilled + unlabeled", "student alone"))
    print(gap("distilled + unlabeled", "teacher (transfer, resnet18)"))
    print(gap("distilled, labeled only", "student alone"))
    print(gap("distilled + unlabeled, fusion teacher", "student alone"))
    print(gap("distilled + unlabeled, fusion teacher", "teacher (fusion, resnet18+shufflenet)"))
    print(f"\nwall time per run (s): " + ", ".join(
        f"{k}: {sum(r['wall_s'] for r in log if r['run'] in ids[k].values()) / len(seeds):.0f}" for k in acc))


if __name__ == "__main__":
    main()
