"""The sweeper's settings (``hydra.sweeper.*``) and the sampler/pruner presets, as Hydra configs.

The grammar and the defaults are hydra-optuna-sweeper's, so a search config written for it runs
unchanged; the keys after ``custom_search_space`` are this project's additions, all off or
neutral by default. Sampler and pruner presets are typed with the real keyword arguments of the
Optuna class (``hydra.sweeper.sampler.n_startup_trials=5`` needs no ``+``); ``null`` means
Optuna's own default. Importing this module never imports Optuna.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

SWEEPER_TARGET = "hydra_plugins.launcher_sweeper.optuna_sweeper.OptunaSweeper"
# The class name configs written for hydra-optuna-sweeper give (lightning-hydra-template's
# hparams_search/*.yaml among them); hydra_plugins/launcher_sweeper registers it for this sweeper.
OFFICIAL_MODULE = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper"
OFFICIAL_TARGET = f"{OFFICIAL_MODULE}.OptunaSweeper"
# hydra-optuna-sweeper's motpe preset (its HEAD, for Optuna 4): a target that raises this message.
MOTPE_TARGET = "hydra_plugins.hydra_optuna_sweeper.config.raise_motpe_removed"
MOTPE_REMOVED = ("The 'motpe' sampler was removed in Optuna 4.0. Use 'hydra/sweeper/sampler=tpe' "
                 "instead. TPESampler now handles multi-objective optimization.")
# The environment variable that carries a job's trial (see pruning.py).
TRIAL_ENV = "LAUNCHER_OPTUNA_TRIAL"


class Direction(Enum):
    """hydra-optuna-sweeper's enum; ``direction`` also takes the plain strings."""

    minimize = 1
    maximize = 2


def raise_motpe_removed(*args: Any, **kwargs: Any) -> None:
    """The motpe preset's target, as in hydra-optuna-sweeper's HEAD (the sweeper refuses the
    preset before it gets here; this keeps the message where the target is instantiated directly)."""
    raise ValueError(MOTPE_REMOVED)


# -- samplers -----------------------------------------------------------------------------------
# Every key hydra-optuna-sweeper's presets declare (1.2.0 and its HEAD) is here with its default,
# so its users' configs compose; keys that take an object (independent_sampler, mutation,
# crossover) take a config with a _target_, and ones that take a function (constraints_func) a
# {_target_: my.module.fn, _partial_: true}; the sweeper instantiates them with the sampler.
@dataclass
class SamplerConfig:
    _target_: str = MISSING
    # true: the sweeper completes the call (the grid sampler gets its grid from params).
    _partial_: bool = False


@dataclass
class TPESamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    # hydra-optuna-sweeper's false (univariate TPE); null: Optuna 5's choice (true for one objective).
    multivariate: Optional[bool] = False
    group: bool = False
    # false: hydra-optuna-sweeper's (and Optuna < 5's) default; Optuna 5 defaults to true. Measured
    # with 4 trials in flight it found worse optima (README, "Differences"), so false everywhere.
    constant_liar: bool = False
    # Optuna 5 deprecates it for TPE (use trial.set_constraint); declared for configs that set it.
    constraints_func: Optional[Any] = None
    # Deprecated by Optuna 4.3-4.9 (setting one logs Optuna's FutureWarning); null: Optuna's value.
    consider_prior: Optional[bool] = None
    prior_weight: Optional[float] = None
    consider_magic_clip: Optional[bool] = None
    consider_endpoints: Optional[bool] = None
    warn_independent_sampling: Optional[bool] = None


@dataclass
class RandomSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = None


@dataclass
class CmaEsSamplerConfig(SamplerConfig):
    """Needs the ``cmaes`` package (a dependency of this project)."""

    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: Optional[int] = None
    x0: Optional[Dict[str, Any]] = None
    sigma0: Optional[float] = None
    n_startup_trials: int = 1
    # null: Optuna's RandomSampler for the parameters CMA-ES does not handle (categorical ones).
    independent_sampler: Optional[Any] = None
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    # "ipop" | "bipop" | null; Optuna 4.4+ ignores it (with a FutureWarning): CMA-ES restarts
    # moved to OptunaHub.
    restart_strategy: Optional[str] = None
    popsize: Optional[int] = None
    # hydra-optuna-sweeper: 2; Optuna 4.4+ ignores it with the restarts (setting one warns).
    inc_popsize: int = -1
    use_separable_cma: bool = False
    with_margin: bool = False
    lr_adapt: bool = False
    # Warm start from another study's trials (a list of FrozenTrial: set from Python, not YAML).
    source_trials: Optional[Any] = None


@dataclass
class NSGAIISamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Optional[int] = None
    population_size: int = 50
    # {_target_: optuna.samplers.nsgaii.PolynomialMutation, ...}; null: uniform resampling.
    mutation: Optional[Any] = None
    mutation_prob: Optional[float] = None
    # {_target_: optuna.samplers.nsgaii.SBXCrossover, ...}; null: UniformCrossover.
    crossover: Optional[Any] = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    constraints_func: Optional[Any] = None


@dataclass
class NSGAIIISamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.NSGAIIISampler"
    seed: Optional[int] = None
    population_size: int = 50
    # {_target_: optuna.samplers.nsgaii.PolynomialMutation, ...}; null: uniform resampling.
    mutation: Optional[Any] = None
    mutation_prob: Optional[float] = None
    # {_target_: optuna.samplers.nsgaii.SBXCrossover, ...}; null: UniformCrossover.
    crossover: Optional[Any] = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    constraints_func: Optional[Any] = None
    dividing_parameter: int = 3


@dataclass
class QMCSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.QMCSampler"
    seed: Optional[int] = None
    qmc_type: str = "sobol"
    scramble: bool = False
    independent_sampler: Optional[Any] = None
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class GPSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.GPSampler"
    seed: Optional[int] = None
    independent_sampler: Optional[Any] = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    constraints_func: Optional[Any] = None
    warn_independent_sampling: bool = True


@dataclass
class GridSamplerConfig(SamplerConfig):
    """The grid comes from ``params`` at run time, hence the partial (as hydra-optuna-sweeper)."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True
    seed: Optional[int] = None


@dataclass
class MOTPESamplerConfig(SamplerConfig):
    """Optuna 4 removed MOTPESampler: hydra-optuna-sweeper's target that says so (MOTPE_REMOVED);
    the sweeper refuses it in one line before the sweep starts."""

    _target_: str = MOTPE_TARGET
    # hydra-optuna-sweeper 1.2.0's keys, so that a config written for it composes and gets the
    # message above instead of "Key 'seed' not in 'MOTPESamplerConfig'".
    seed: Optional[int] = None
    consider_prior: bool = True
    prior_weight: float = 1.0
    consider_magic_clip: bool = True
    consider_endpoints: bool = False
    n_startup_trials: int = 10
    n_ehvi_candidates: int = 24


SAMPLERS: Dict[str, Any] = {
    "tpe": TPESamplerConfig,
    "random": RandomSamplerConfig,
    "cmaes": CmaEsSamplerConfig,
    "nsgaii": NSGAIISamplerConfig,
    "nsgaiii": NSGAIIISamplerConfig,
    "qmc": QMCSamplerConfig,
    "gp": GPSamplerConfig,
    "grid": GridSamplerConfig,
    "motpe": MOTPESamplerConfig,
}


# -- pruners ------------------------------------------------------------------------------------
@dataclass
class NopPrunerConfig:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class PercentilePrunerConfig:
    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class SuccessiveHalvingPrunerConfig:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandPrunerConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


PRUNERS: Dict[str, Any] = {
    "nop": NopPrunerConfig,
    "median": MedianPrunerConfig,
    "percentile": PercentilePrunerConfig,
    "successive_halving": SuccessiveHalvingPrunerConfig,
    "hyperband": HyperbandPrunerConfig,
}


@dataclass
class OptunaSweeperConf:
    _target_: str = SWEEPER_TARGET
    # The sweeper instantiates sampler and pruner itself (it derives the grid and the resume
    # seed first; the pruner's config also travels to each job).
    _recursive_: bool = False
    defaults: List[Any] = field(
        default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "nop"}, {"job_env": "trial"},
                                 {"trial_log": "file"}]
    )

    # -- hydra-optuna-sweeper's keys, with its defaults --
    # {_target_: optuna.samplers.<Sampler>, seed: ..., <its keyword arguments>}
    sampler: Any = MISSING
    # minimize | maximize, or a list of them for a multi-objective study.
    direction: Any = Direction.minimize
    # A SQLAlchemy URL. null: SQLite file optuna.db in the sweep directory (hydra-optuna-sweeper:
    # in memory). A URL with a password belongs in the environment: use storage_env.
    storage: Optional[Any] = None
    # null: "<job name>_<hash of the command's overrides and the search space>", so the same
    # command against the same storage continues the same study.
    study_name: Optional[str] = None
    n_trials: int = 20
    # Trials in flight at once (the basic launcher runs one at a time, in this process).
    n_jobs: int = 2
    # The sweep stops (non-zero exit) once failed trials exceed this fraction of n_trials.
    max_failure_rate: float = 0.0
    # hydra-optuna-sweeper's deprecated {name: {type, low, high, step, log, choices}} form.
    search_space: Optional[Dict[str, Any]] = None
    # The search space: {override key: grammar expression or fixed value}.
    params: Optional[Dict[str, Any]] = None
    # Dotted path of a function (cfg, trial) -> None that suggests further (conditional) params.
    custom_search_space: Optional[str] = None

    # -- this project's additions --
    # study: n_trials is the study's size, trials from earlier runs count (a rerun resumes);
    # invocation: each run adds n_trials (hydra-optuna-sweeper's behaviour).
    n_trials_scope: str = "study"
    # Name of an environment variable holding the storage URL; wins over storage.
    storage_env: Optional[str] = None
    # Seconds; no new trial starts once spent (running ones finish). null: no limit.
    timeout: Optional[float] = None
    # {_target_: optuna.pruners.<Pruner>, ...}; nop: no pruning.
    pruner: Any = MISSING
    # Warm-start points evaluated first: a list of {param: value} (a subset of params).
    enqueue_trials: List[Any] = field(default_factory=list)
    # Intermediate values are read from metrics["val_<metric>"] by launcher.sweeper.pruning;
    # null: the job's task.metric.
    metric: Optional[str] = None
    # Seconds between liveness records of running trials. A trial whose sweep process is gone
    # is failed and queued again: at once when that process ran on this machine, otherwise
    # after grace_period without a heartbeat (null: 2 x heartbeat_interval).
    heartbeat_interval: int = 10
    grace_period: Optional[int] = None
    # Write optimization_history.png and param_importances.png at the end of the sweep.
    plots: bool = False


def is_preset_default(key: str, value: Any) -> bool:
    """Is this a sampler preset's default for that key? (A config that switches a preset's
    _target_ to another sampler class keeps the preset's other keys.)"""
    from dataclasses import MISSING as NO_DEFAULT, fields

    for preset in SAMPLERS.values():
        for item in fields(preset):
            if item.name == key and item.default is not NO_DEFAULT and item.default == value:
                return True
    return False


def register_configs() -> None:
    """Store the sweeper and its sampler/pruner presets in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="launcher")
    for name, node in SAMPLERS.items():
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="launcher")
    for name, node in PRUNERS.items():
        store.store(group="hydra/sweeper/pruner", name=name, node=node, provider="launcher")
    # Declares the job environment variable that carries each job's trial, empty outside a
    # trial: the sweeper then sets it per job with a plain hydra.job.env_set.<VAR>=... override,
    # which Hydra keeps out of the job's config, its override_dirname and its "Launching" line.
    store.store(group="hydra/sweeper/job_env", name="trial", node={TRIAL_ENV: ""},
                package="_global_.hydra.job.env_set", provider="launcher")
    # A Hydra callback that writes a failed trial's traceback into the trial's own log, in the
    # job's process (launcher.sweeper.failures): the console gets one line per failed trial.
    store.store(group="hydra/sweeper/trial_log", name="file",
                node={"launcher_trial_log": {"_target_": "launcher.sweeper.failures.TrialLog"}},
                package="_global_.hydra.callbacks", provider="launcher")
