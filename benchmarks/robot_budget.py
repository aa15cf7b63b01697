"""The robot's budget promise, measured: a model at every budget from 5 s, and the whole command
within budget + 5 s (BUDGET_MARGIN), interpreter start and final fits included.

For each budget and table size, the real command `python -m launcher.robot ... budget=B` runs
in a fresh directory on a generated churn-like table (numbers, a text category, a noisy label);
the baseline in the same run is the command's fixed cost, `python -m launcher.robot --help`
(the interpreter and Hydra starting, nothing planned). Printed per case: the wall time, the
robot's own clock (robot.json), wall - budget against the margin, and whether a model was left.

    python benchmarks/robot_budget.py [--budgets 5 10 20] [--rows 300 20000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

MARGIN = 5.0


def table(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"income": rng.normal(50, 15, rows).round(1), "plan": rng.choice(["a", "b", "c"], rows),
                       "age": rng.integers(18, 80, rows), "visits": rng.poisson(3, rows)})
    df["churned"] = np.where(df["income"] + 2 * df["visits"] + rng.normal(0, 8, rows) < 50, "yes", "no")
    df.to_csv(path, index=False)


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - started, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=float, nargs="+", default=[5, 10, 20])
    parser.add_argument("--rows", type=int, nargs="+", default=[300, 20000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fixed, _ = timed([sys.executable, "-m", "launcher.robot", "--help"], Path(tmp))
    print(f"fixed cost (python -m launcher.robot --help): {fixed:.2f}s")
    print(f"{'rows':>7} {'budget':>6} {'wall':>7} {'robot':>7} {'wall-budget':>11} {'within':>6} model")
    for rows in args.rows:
        for budget in args.budgets:
            with tempfile.TemporaryDirectory() as tmp:
                cwd = Path(tmp)
                table(cwd / "churn.csv", rows)
                wall, proc = timed([sys.executable, "-m", "launcher.robot", "task=Predict churn", "data=csv",
                                    "data.path=churn.csv", "data.target=churned", f"budget={budget:g}",
                                    "hydra.run.dir=exp"], cwd)
                record = json.loads((cwd / "exp" / "robot.json").read_text()) if (cwd / "exp" / "robot.json").is_file() else {}
                model = (cwd / "exp" / "model" / "metadata.json").is_file()
                over = wall - budget
                shown = (f"{record.get('best_model')} {record.get('best_score', float('nan')):.4f}" if model
                         else proc.stderr.strip().splitlines()[-1][:90] if proc.stderr.strip() else "none")
                print(f"{rows:>7} {budget:>6g} {wall:>6.1f}s {record.get('seconds', float('nan')):>6.1f}s "
                      f"{over:>+10.1f}s {'yes' if over <= MARGIN else 'NO':>6} {shown}", flush=True)


if __name__ == "__main__":
    main()
