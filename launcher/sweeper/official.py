"""Where this sweeper meets hydra-optuna-sweeper: the same plugin installed next to it, its
deprecated ``search_space`` key, and the differences kept on purpose (the README's table
"Differences from hydra-optuna-sweeper"), each logged once at the start of a sweep where it
changes what the sweep does.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

log = logging.getLogger(__name__)

DOCS = "https://hydra.cc/docs/upgrades/1.1_to_1.2/changes_to_sweeper_config/"


def official_plugin_message() -> str | None:
    """A message when the hydra-optuna-sweeper package is installed here, else None.

    Its files are a package directory, hydra_plugins/hydra_optuna_sweeper/, in some portion of
    the hydra_plugins namespace; launcher's stand-in for its names is a module file beside it
    (hydra_plugins/hydra_optuna_sweeper.py), which this does not count."""
    import importlib.metadata
    import importlib.util
    from pathlib import Path

    try:
        namespace = importlib.util.find_spec("hydra_plugins")
    except (ImportError, ValueError):
        namespace = None
    portions = list(namespace.submodule_search_locations or []) if namespace else []
    packages = [Path(p) / "hydra_optuna_sweeper" for p in portions]
    found = [p for p in packages if p.is_dir() and any(p.glob("*.py"))]
    if not found:
        return None
    where = str(found[0])
    versions = {}
    for name in ("hydra-optuna-sweeper", "optuna"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown version"
    return (
        f"hydra-optuna-sweeper ({versions['hydra-optuna-sweeper']}, {where}) is installed next "
        "to launcher's Optuna sweeper: both register hydra/sweeper=optuna and the class "
        "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper, so which one runs "
        "depends on the order of Hydra's plugin scan; that plugin also needs an older Optuna "
        f"(1.2.0: optuna<3; installed: {versions['optuna']}). launcher runs its configs "
        "unchanged: pip uninstall hydra-optuna-sweeper"
    )


def search_space_distributions(search_space: Any, params: Any) -> dict[str, Any]:
    """hydra-optuna-sweeper's handling of the deprecated ``search_space`` key: with ``params``
    too, params wins (a warning says so); alone, it still works, with a deprecation warning."""
    from launcher.sweeper.search_space import distribution_from_config

    if search_space is None:
        return {}
    if params is not None:
        warnings.warn(
            "Both hydra.sweeper.params and hydra.sweeper.search_space are configured."
            f"\nHydra will use hydra.sweeper.params for defining search space.\n{DOCS}",
            UserWarning, stacklevel=2,
        )
        return {}
    warnings.warn(
        "`hydra.sweeper.search_space` is deprecated and will be removed in the next major "
        f"release.\nPlease configure with `hydra.sweeper.params`.\n{DOCS}",
        UserWarning, stacklevel=2,
    )
    return {str(name): distribution_from_config(str(name), spec)
            for name, spec in search_space.items()}


@dataclass
class SweepStart:
    """What the sweep found when it started, for ``log_differences``."""

    in_memory_default: bool  # storage and storage_env unset: optuna.db in the sweep dir
    derived_name: bool  # study_name unset: derived from the command
    counted: int  # trials the study already counts toward n_trials
    scope: str  # n_trials_scope
    n_jobs: int
    in_process: bool  # the basic launcher: one trial at a time
    max_failure_rate: float
    reseeded: tuple[Any, Any] | None  # (seed given, seed used) when the sampler was reseeded


def log_differences(start: SweepStart) -> None:
    """One line per difference from hydra-optuna-sweeper that changes this sweep's results."""
    notes = []
    if start.counted and start.in_memory_default:
        notes.append("storage: null keeps the study in optuna.db in the sweep directory, so "
                     "this run continues the study found there (hydra-optuna-sweeper: a new "
                     "in-memory study)")
    if start.counted and start.derived_name:
        notes.append("study_name: null names the study after the command, so this run "
                     "continues it (hydra-optuna-sweeper: a new, randomly named study)")
    if start.counted and start.scope == "study":
        notes.append("n_trials counts the whole study, earlier runs included "
                     "(hydra-optuna-sweeper: n_trials more per run; set "
                     "hydra.sweeper.n_trials_scope=invocation for that)")
    if start.reseeded:
        notes.append(f"the sampler's seed {start.reseeded[0]} becomes {start.reseeded[1]}, "
                     "derived from the study's trials, so the resumed run does not replay the "
                     "proposals of the first (hydra-optuna-sweeper replays them)")
    if start.n_jobs > 1:
        how = ("runs one trial at a time in this process" if start.in_process
               else f"keeps {start.n_jobs} trials in flight")
        notes.append(f"n_jobs={start.n_jobs}: each trial is asked when the previous one is "
                     f"told, and the launcher {how} (hydra-optuna-sweeper asks batches of "
                     f"{start.n_jobs} and waits for the whole batch)")
    if 0.0 < start.max_failure_rate < 1.0:
        notes.append(f"max_failure_rate={start.max_failure_rate:g} is a fraction of n_trials "
                     "over the sweep (hydra-optuna-sweeper: of each batch of n_jobs)")
    for note in notes:
        log.info("Differs from hydra-optuna-sweeper: %s", note)


def check_overlap(trial: Any, fixed: Mapping[str, Any]) -> None:
    """custom_search_space must not suggest a parameter fixed by params or the command line
    (hydra-optuna-sweeper refuses it too)."""
    from launcher.core.errors import ConfigError

    overlap = sorted(set(trial.params) & set(fixed))
    if overlap:
        raise ConfigError(
            f"custom_search_space suggested {overlap}, which params or the command line fix "
            f"({', '.join(f'{k}={fixed[k]}' for k in overlap)}); drop the fixed value or the "
            "suggestion"
        )
