"""Shared fixtures: compose configs with Hydra's compose API, run the real commands, raw CSVs."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from helpers import messy_frame, run_cli


@pytest.fixture
def make_cfg(tmp_path, monkeypatch):
    """compose(overrides) -> a config whose run directory is a fresh tmp dir, as in a real run."""
    monkeypatch.chdir(tmp_path)

    def _compose(*overrides: str, run: str = "run"):
        GlobalHydra.instance().clear()
        with initialize_config_module(config_module="launcher.conf", version_base="1.3"):
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
    HydraConfig.instance().cfg = None  # the next test is not inside this run


@pytest.fixture
def cli(tmp_path):
    def _run(*args: str, module: str = "launcher", **kw):
        return run_cli(*args, cwd=tmp_path, module=module, **kw)

    return _run


@pytest.fixture
def churn_csv(tmp_path) -> Path:
    path = tmp_path / "churn data.csv"
    messy_frame().to_csv(path, index=False)
    return path
