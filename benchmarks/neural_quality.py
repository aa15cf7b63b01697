"""Quality of the neural frameworks with default settings (20 epochs at most, early stopping).

Targets: on digits MLP >= 0.95 test accuracy, CNN >= 0.97, RNN and Transformer >= 0.90; on
diabetes the MLP's test R2 within 0.05 of scikit-learn's Ridge (model=logistic_regression),
fitted in the same run. Each run is the real command in a subprocess; exits non-zero when a
target is missed.

    python benchmarks/neural_quality.py [--frameworks pytorch tensorflow jax] [--seeds 42 0 1]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"mlp": 0.95, "cnn": 0.97, "rnn": 0.90, "transformer": 0.90}


def run(workdir: Path, name: str, *args: str) -> dict:
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "launcher", *args, "device=cpu", f"hydra.run.dir={name}"],
                         cwd=workdir, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    record = json.loads((workdir / name / "metrics.json").read_text())
    record["wall"] = time.perf_counter() - start
    return record


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--frameworks", nargs="+", default=["pytorch"])
    args = parser.parse_args()
    seeds, frameworks = args.seeds, args.frameworks
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed in seeds:
            ridge = run(work, f"ridge-{seed}", "framework=sklearn", "model=logistic_regression", "data=diabetes",
                        f"seed={seed}")["test"]["r2"]
            for fw in frameworks:
                for model, target in TARGETS.items():
                    r = run(work, f"{fw}-{model}-{seed}", f"framework={fw}", f"model={model}", "data=digits",
                            f"seed={seed}")
                    acc = r["test"]["accuracy"]
                    ok &= acc >= target
                    print(f"{fw:10s} digits    {model:12s} seed={seed:<3d} test accuracy {acc:.4f} (target >= "
                          f"{target:.2f}) epochs {r['epochs']:2d} best {r['best_epoch']}  {r['wall']:.1f}s  "
                          f"{'ok' if acc >= target else 'MISSED'}")
                r = run(work, f"{fw}-mlp-diabetes-{seed}", f"framework={fw}", "model=mlp", "data=diabetes",
                        f"seed={seed}")
                r2 = r["test"]["r2"]
                ok &= r2 >= ridge - 0.05
                print(f"{fw:10s} diabetes  mlp          seed={seed:<3d} test R2 {r2:.4f} vs Ridge {ridge:.4f} "
                      f"(target >= {ridge - 0.05:.4f}) epochs {r['epochs']:2d}  {r['wall']:.1f}s  "
                      f"{'ok' if r2 >= ridge - 0.05 else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
