"""The private corners of Hydra and Optuna this sweeper relies on, in one place.

Each function names what it reaches into; an upgrade of Hydra or Optuna that moves one of these
breaks here, and the tests that exercise the sweeper say so.
"""
from __future__ import annotations

from typing import Any


def override_text(value: Any) -> str:
    """A Python value as Hydra override text ("[1,2]", "{a:1}", "'x y'")."""
    from hydra.core.override_parser.types import Override

    return Override._get_value_element_as_str(value)  # private: Hydra's own renderer


def runs_in_process(launcher: Any) -> bool:
    """Hydra's basic launcher runs jobs inside the sweep process, one at a time."""
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher  # private module

    return isinstance(launcher, BasicLauncher)


def raw_value(node: Any, key: str) -> Any:
    """A config value before interpolation (tells ${oc.env:VAR} from a literal)."""
    child = node._get_node(key)  # private: OmegaConf node access
    return child._value() if child is not None else None


def job_error(job_return: Any) -> BaseException | None:
    """The exception a failed Hydra job raised (JobReturn.return_value re-raises it)."""
    return job_return._return_value  # private attribute of JobReturn


def trial_id(trial: Any) -> int:
    """The storage id of an Optuna trial (its number is per study; the id is per storage)."""
    return trial._trial_id  # private attribute of optuna.trial.Trial


def trial_from_id(study: Any, trial_id: int) -> Any:
    """A live Trial object for a trial another process asked for (to report intermediate values)."""
    import optuna

    return optuna.trial.Trial(study, trial_id)


def study_storage(study: Any) -> Any:
    """The storage object of an Optuna Study (no public accessor)."""
    return study._storage  # private attribute of optuna.study.Study


def has_heartbeat(storage: Any, trial_id: int) -> bool:
    """Whether an RDBStorage holds a heartbeat for the trial (Optuna has no public accessor;
    its own stale check skips trials without one)."""
    from optuna.storages._rdb import models  # private module
    from optuna.storages._rdb.storage import _create_scoped_session  # private helper

    storage = getattr(storage, "_backend", storage)  # a Study wraps RDBStorage in a cache
    with _create_scoped_session(storage.scoped_session) as session:
        query = session.query(models.TrialHeartbeatModel)
        return query.filter(models.TrialHeartbeatModel.trial_id == trial_id).count() > 0
