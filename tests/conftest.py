"""Shared fixtures: compose configs with Hydra's compose API, and run the real CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from launcher.paths import CONFIG_DIR

HEAVY = ("torch", "tensorflow", "jax", "lightning", "keras", "flax", "optax", "openai", "anthropic", "optuna")


@pytest.fixture
def make_cfg(tmp_path, monkeypatch):
    """compose(overrides) -> a config whose run directory is a fresh tmp dir, as in a real run."""
    monkeypatch.chdir(tmp_path)

    def _compose(*overrides: str, run: str = "run"):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        out = tmp_path / run
        out.mkdir(parents=True, exist_ok=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(out)
            cfg.hydra.runtime.cwd = str(tmp_path)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


def run_cli(*args: str, cwd: Path, module: str = "launcher", timeout: int = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` for real, as a user would."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


@pytest.fixture
def cli(tmp_path):
    def _run(*args: str, module: str = "launcher", **kw) -> subprocess.CompletedProcess:
        return run_cli(*args, cwd=tmp_path, module=module, **kw)

    return _run


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


@pytest.fixture
def churn_csv(tmp_path) -> Path:
    path = tmp_path / "churn data.csv"
    messy_frame().to_csv(path, index=False)
    return path
