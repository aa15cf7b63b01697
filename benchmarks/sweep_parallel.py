"""A 16-trial scikit-learn Optuna sweep on 2 cores: joblib launcher (2 trials in flight) against
the same sweep run sequentially (Hydra's basic launcher). Prints wall times and the speed-up.

    python benchmarks/sweep_parallel.py [--trials 16] [--jobs 2]

Both sweeps use the same seeded random sampler, so they evaluate the same 16 configurations:
a random forest (one core per fit) on 6000 synthetic rows, about 3 s per trial. With the
joblib launcher the first trial runs alone (the launcher starts its workers), then two at once.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

SEARCH = [
    "model=random_forest", "data=synthetic", "data.size=6000", "data.features=30",
    "save_model=false", "plots=false",
    "hydra/sweeper=optuna", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0",
    "hydra.sweeper.direction=maximize", "hydra.sweeper.plots=false",
    "model.estimator.n_estimators=int(interval(250,350))",
    "model.estimator.min_samples_leaf=int(interval(1,4))",
]


def sweep(directory: Path, trials: int, jobs: int) -> float:
    command = [sys.executable, "-m", "launcher", "-m", f"hydra.sweep.dir={directory}",
               f"hydra.sweeper.n_trials={trials}", *SEARCH]
    if jobs > 1:
        command += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}", f"hydra.sweeper.n_jobs={jobs}"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=directory.parent)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    results = yaml.safe_load((directory / "optimization_results.yaml").read_text())
    assert results["trials"] == {"COMPLETE": trials}, results["trials"]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sequential = sweep(Path(tmp) / "sequential", args.trials, 1)
        parallel = sweep(Path(tmp) / "parallel", args.trials, args.jobs)
        # trials.csv is Optuna's trials_dataframe(): a "duration" column of pandas Timedeltas
        table = pd.read_csv(Path(tmp) / "sequential" / "trials.csv")
        durations = pd.to_timedelta(table["duration"]).dt.total_seconds().tolist()
    print(f"{args.trials} trials, mean trial {sum(durations) / len(durations):.2f}s (sequential run)")
    print(f"sequential (basic launcher):        {sequential:7.1f} s")
    print(f"joblib, {args.jobs} trials in flight:        {parallel:7.1f} s")
    print(f"speed-up:                           {sequential / parallel:7.2f}x")


if __name__ == "__main__":
    main()
