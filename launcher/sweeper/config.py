"""The sweeper's settings (``hydra.sweeper.*``) and the sampler/pruner presets, as Hydra configs.

The grammar is hydra-optuna-sweeper's, so a search config written for it works after
``override /hydra/sweeper: optuna``; the keys after ``params`` are this project's additions.
Importing this module never imports Optuna.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

SWEEPER_TARGET = "hydra_plugins.launcher_sweeper.optuna_sweeper.OptunaSweeper"

# Sampler presets: hydra/sweeper/sampler=<name>. Plain dicts, so a search config may add any
# keyword argument of the Optuna class (e.g. n_startup_trials: 5).
SAMPLERS: Dict[str, Dict[str, Any]] = {
    "tpe": {"_target_": "optuna.samplers.TPESampler", "seed": None},
    "random": {"_target_": "optuna.samplers.RandomSampler", "seed": None},
    "cmaes": {"_target_": "optuna.samplers.CmaEsSampler", "seed": None},
    "nsgaii": {"_target_": "optuna.samplers.NSGAIISampler", "seed": None},
    "qmc": {"_target_": "optuna.samplers.QMCSampler", "seed": None},
    "grid": {"_target_": "optuna.samplers.GridSampler", "seed": None},
}

# Pruner presets: hydra/sweeper/pruner=<name>. "nop" (the default) never prunes.
PRUNERS: Dict[str, Dict[str, Any]] = {
    "nop": {"_target_": "optuna.pruners.NopPruner"},
    "median": {
        "_target_": "optuna.pruners.MedianPruner",
        "n_startup_trials": 5,
        "n_warmup_steps": 2,
        "interval_steps": 1,
    },
    "successive_halving": {
        "_target_": "optuna.pruners.SuccessiveHalvingPruner",
        "min_resource": "auto",
        "reduction_factor": 3,
        "min_early_stopping_rate": 0,
    },
    "hyperband": {
        "_target_": "optuna.pruners.HyperbandPruner",
        "min_resource": 1,
        "max_resource": "auto",
        "reduction_factor": 3,
    },
}


@dataclass
class OptunaSweeperConf:
    _target_: str = SWEEPER_TARGET
    # The sweeper instantiates sampler and pruner itself (the pruner's config also travels
    # to each job, which reopens the trial to report intermediate scores).
    _recursive_: bool = False
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "nop"}])

    # {_target_: optuna.samplers.<Sampler>, seed: ..., <its keyword arguments>}
    sampler: Any = MISSING
    # "minimize" | "maximize", or a list of them for a multi-objective study.
    direction: Any = "minimize"
    # Any SQLAlchemy URL. null: SQLite file optuna.db in the sweep directory.
    # A URL with a password belongs in the environment: use storage_env.
    storage: Optional[str] = None
    # Name of an environment variable holding the storage URL; wins over storage.
    storage_env: Optional[str] = None
    # null: "<job name>_<hash of the command's overrides and the search space>", so running
    # the same command against the same storage continues the same study.
    study_name: Optional[str] = None
    # Trials in the study in total (finished ones from earlier or concurrent sweeps count).
    n_trials: int = 20
    # Trials running at once. The basic (in-process) launcher runs one at a time.
    n_jobs: int = 2
    # Stop (non-zero exit) once more than this fraction of n_trials has failed.
    max_failure_rate: float = 0.5
    # Seconds; no new trial starts once spent (running ones finish). null: no limit.
    timeout: Optional[float] = None
    # {_target_: optuna.pruners.<Pruner>, ...}; null or NopPruner: no pruning.
    pruner: Any = MISSING
    # Warm-start points evaluated first: a list of {param: value} (a subset of params).
    enqueue_trials: List[Any] = field(default_factory=list)
    # The search space: {override key: grammar expression or fixed value}.
    params: Optional[Dict[str, Any]] = None
    # Dotted path of a function (cfg, trial) -> None that suggests further (conditional) params.
    custom_search_space: Optional[str] = None
    # Intermediate values are read from metrics["val_<metric>"] by launcher.sweeper.pruning;
    # null: the job's task.metric.
    metric: Optional[str] = None
    # Seconds between liveness records of running trials; a trial whose sweep process died is
    # marked FAIL (and its parameters queued again) after grace_period (null: 2 x interval).
    heartbeat_interval: int = 10
    grace_period: Optional[int] = None
    # Write optimization_history.png and param_importances.png at the end of the sweep.
    plots: bool = True


def register_configs() -> None:
    """Store the sweeper and its sampler/pruner presets in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="launcher")
    for name, node in SAMPLERS.items():
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="launcher")
    for name, node in PRUNERS.items():
        store.store(group="hydra/sweeper/pruner", name=name, node=node, provider="launcher")
