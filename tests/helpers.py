"""Helpers for the tests: run the real commands in subprocesses, make raw CSVs, read studies."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

# Importing launcher must not import these; a scikit-learn run neither.
HEAVY = ("torch", "tensorflow", "jax", "lightning", "lightning_fabric", "keras", "flax", "optax", "openai",
         "anthropic", "optuna")

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "sweeper_app" / "app.py"
PYTHON = sys.executable


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out.pop("LAUNCHER_OPTUNA_STORAGE", None)
    out.update({"PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"})
    out.update(extra)
    return out


def run_cli(*args: str, cwd: Path, module: str = "launcher", timeout: int = 300,
            env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m <module> args...` for real, as a user runs it."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env(**(env_extra or {})))


def app_command(sweep_dir: Path, *overrides: str) -> list[str]:
    return [PYTHON, str(APP), "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]


def launcher_command(sweep_dir: Path, *overrides: str) -> list[str]:
    """A launcher multirun whose sweep directory is `sweep_dir`."""
    return [PYTHON, "-m", "launcher", "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]


def run(command: list[str], cwd: Path, timeout: float = 120, check: bool = True, **env_extra: str):
    proc = subprocess.run(command, cwd=cwd, env=env(**env_extra), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def results(sweep_dir: Path) -> dict:
    return yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())


def trials_csv(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def study_trials(url: str, study_name: str | None = None):
    """All trials of the (only, or named) study in the storage, read with Optuna directly."""
    import optuna

    storage = optuna.storages.RDBStorage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    name = study_name or (names[0] if len(names) == 1 else None)
    assert name, f"expected one study, found {names}"
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def states(trials) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def messy_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """A raw CSV as users have them: text, gaps, dates, spaces in names, a rare class."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 15_000, n).round(2)
    plan = rng.choice(["basic", "premium", "family"], n)
    signup = pd.date_range("2021-01-01", periods=n, freq="7D").strftime("%Y-%m-%d")
    age = rng.integers(18, 80, n).astype(float)
    age[rng.choice(n, 10, replace=False)] = np.nan
    plan = plan.astype(object)
    plan[rng.choice(n, 5, replace=False)] = None
    churn = np.where((income < 45_000) ^ (plan == "premium"), "yes", "no").astype(object)
    churn[:2] = "unsure"  # a rare class: two rows
    return pd.DataFrame({"monthly income": income, "plan type": plan, "signup date": signup,
                         "age": age, "churned": churn})


# -- the neural adapters' tests share these: a CPU device, two quick epochs, tiny data --------
CPU = {"name": "cpu", "accelerator": "cpu", "devices": 1, "strategy": "auto"}
FAST = {"max_epochs": 2, "batch_size": 32, "lr": 0.01, "early_stopping": {"enabled": False}}


def settings(seed=0, **trainer):
    """TrainerSettings for FAST with `trainer` keys changed (early stopping off unless given)."""
    from launcher.core.trainer import TrainerSettings

    stopping = trainer.pop("early_stopping", FAST["early_stopping"])
    return TrainerSettings.from_config({**FAST, **trainer, "early_stopping": stopping}, seed)


def image_splits_3x():
    """16 features declared as 1x4x4 images, 3 classes."""
    from dataclasses import replace

    from launcher.data import synthetic_splits

    splits = synthetic_splits(n=240, features=16, classes=3, seed=0)
    splits.schema = replace(splits.schema, input_shape=(1, 4, 4))
    return splits


def fit(adapter, splits, spec, workdir=None, report=None, seed=0, **trainer):
    """Build `spec` with `adapter` and fit it: (model, history)."""
    model = adapter.build(spec, splits.schema)
    history = adapter.fit(model, splits, settings(seed, **trainer), workdir=workdir, report=report)
    return model, history


def held_out_classes(features: int, classes: int, informative: int, seed: int = 0, train: int = 600,
                     test: int = 300):
    """(X_train, y_train, X_test, y_test): classes a network can learn from `informative` of the
    `features` columns, and rows it never saw to score it on (a net that only memorised its
    training rows scores the majority share there, about 1/classes)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=train + test, n_features=features, n_informative=informative,
                               n_redundant=0, n_classes=classes, class_sep=2.0, random_state=seed)
    X = X.astype(np.float32)
    return X[:train], y[:train], X[train:], y[train:]
