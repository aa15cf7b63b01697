"""Trials side by side with one thread each, against one trial at a time with every core.

The robot's searches run cross-validated trials of scikit-learn estimators. This measures the
same grid of trials (histogram gradient boosting and a random forest on the shared bench's wage
data, 5-fold CV, the run settings the robot uses) through the real launcher both ways, in the
same run, under the OpenMP wait policy the bench runners set (OMP_WAIT_POLICY=PASSIVE):

    processes  hydra/launcher=joblib, n_jobs = cores, trainer.num_threads=1
    threads    Hydra's basic launcher (one trial at a time), trainer.num_threads = cores

and the robot's final fit (one histogram gradient boosting fit on every row, trainer.refit)
with one thread against every core.

    python benchmarks/robot_threads.py [--repeats 2]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "data" / "wage" / "train.csv"
GRID = ["model=hist_gradient_boosting", "model.estimator.learning_rate=0.03,0.06,0.1",
        "model.estimator.max_iter=100,300", "model.estimator.max_leaf_nodes=4,16"]
FOREST = ["model=random_forest", "model.estimator.n_estimators=100,300", "model.estimator.min_samples_leaf=1,5,10"]


def run(grid: list[str], mode: str, cores: int, data: Path) -> float:
    common = ["data=csv", f"data.path={data}", "data.target=wage", "data.test_size=0", "data.val_size=0",
              "trainer.cv_folds=5", "save_model=false", "plots=false", "framework.n_jobs=1"]
    if mode == "processes":
        extra = ["trainer.num_threads=1", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={cores}"]
    else:
        extra = [f"trainer.num_threads={cores}"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "launcher", "-m", *grid, *common, *extra, f"hydra.sweep.dir={tmp}/s"],
                       check=True, capture_output=True, env=env)
        return time.perf_counter() - start


def final_fit(threads: int, data: Path) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "launcher", "data=csv", f"data.path={data}", "data.target=wage",
                        "model=hist_gradient_boosting", "model.estimator.max_iter=300", "trainer.refit=true",
                        "data.test_size=0", "data.val_size=0", "save_model=false", "plots=false",
                        f"trainer.num_threads={threads}", f"hydra.run.dir={tmp}/r"], check=True, capture_output=True,
                       env=env)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", type=Path, default=BENCH)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"{cores} cores, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}, data {args.data.name}")
    for name, grid in (("hist_gradient_boosting x12", GRID), ("random_forest x6", FOREST)):
        times: dict[str, float] = {}
        for _ in range(args.repeats):  # alternate, keep the best: robust to other load
            for mode in ("processes", "threads"):
                times[mode] = min(times.get(mode, 1e9), run(grid, mode, cores, args.data))
        print(f"{name}: {cores} processes x 1 thread {times['processes']:.1f}s | 1 process x {cores} threads "
              f"{times['threads']:.1f}s | threads/processes {times['threads'] / times['processes']:.2f}x")
    one = min(final_fit(1, args.data) for _ in range(args.repeats))
    every = min(final_fit(cores, args.data) for _ in range(args.repeats))
    print(f"final fit (hist_gradient_boosting, every row): 1 thread {one:.1f}s | {cores} threads {every:.1f}s | "
          f"{cores} threads/1 thread {every / one:.2f}x")


if __name__ == "__main__":
    main()
