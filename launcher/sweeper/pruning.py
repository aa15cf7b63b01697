"""The link between a sweep's trial and the job that runs it, for pruning.

The sweeper hands each job its trial through the job's environment, never through its config:
it adds ``hydra.job.env_set.LAUNCHER_OPTUNA_TRIAL=<JSON>`` to the job's overrides. Hydra files
that override under ``hydra.overrides.hydra``, so the job's config, its ``override_dirname`` and
the launcher's "Launching" line stay exactly what the user wrote; every launcher (basic, joblib,
submitit, ray) runs the job through Hydra's ``run_job``, which sets ``hydra.job.env_set`` for
the task function. The JSON holds:

    study       the study name
    trial       the trial number (also the job's number in the sweep directory)
    trial_id    the trial's id in the storage
    storage     a reference to the storage, never a URL with a password (see storage.py)
    direction   "minimize" | "maximize" (null for a multi-objective study: no pruning)
    metric      which score to report (null: the job's task.metric)
    pruner      the pruner's config ({_target_: ..., ...}) or null

In the job, ``report = reporter(cfg)`` is None outside a sweep; inside one, call
``report(epoch, {"val_loss": ..., "val_accuracy": ...})`` after each epoch. It reports
``metrics["val_<metric>"]`` to the trial (falling back to ``val_loss``, negated when the study
maximizes) and raises ``optuna.TrialPruned`` when the pruner says so; let that exception leave
the task function, and the sweeper records the trial as PRUNED.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from typing import Any, Callable, Mapping

from launcher.sweeper.config import TRIAL_ENV

log = logging.getLogger(__name__)

Report = Callable[[int, Mapping[str, float]], None]


def trial_override(link: Mapping[str, Any]) -> str:
    """The ``hydra.job.env_set`` override that gives one job its trial (see the docstring)."""
    # "$" as JSON's \u0024, so no ${...} interpolation can appear in the text.
    text = json.dumps(dict(link), sort_keys=True).replace("$", "\\u0024")
    # Hydra's quoted value: a quote is escaped, and so is a run of backslashes before a quote
    # or the end; other backslashes stay as they are.
    text = re.sub(r"(\\+)('|$)", lambda m: m.group(1) * 2 + m.group(2), text)
    quoted = text.replace("'", "\\'")
    return f"hydra.job.env_set.{TRIAL_ENV}='{quoted}'"


def current_trial() -> dict[str, Any] | None:
    """This job's trial link, or None outside an Optuna sweep."""
    text = os.environ.get(TRIAL_ENV)
    return json.loads(text) if text else None


def reporter(cfg: Any, metric: str | None = None) -> Report | None:
    """A callable reporting per-epoch validation scores to this job's trial, or None when the
    job is not part of an Optuna sweep or the study has several objectives (Optuna prunes
    single-objective studies only). ``metric`` names the task metric when the caller knows it
    better than the config (task.metric: null)."""
    link = current_trial()
    if not link or not link.get("direction"):
        return None
    import optuna

    from launcher.sweeper.compat import trial_from_id
    from launcher.sweeper.storage import open_storage, url_from_reference

    storage = open_storage(url_from_reference(str(link["storage"])))
    study = optuna.load_study(
        study_name=str(link["study"]),
        storage=storage,
        sampler=optuna.samplers.RandomSampler(),
        pruner=make_pruner(link.get("pruner")),
    )
    trial = trial_from_id(study, int(link["trial_id"]))
    name = link.get("metric") or metric or _get(_get(cfg, "task"), "metric")
    maximize = link["direction"] == "maximize"
    warned: list[bool] = []

    def report(epoch: int, metrics: Mapping[str, float]) -> None:
        key, value = _score(metrics, name, maximize)
        if value is None or math.isnan(value):
            if not warned:
                warned.append(True)
                log.warning("pruning: no val_%s or val_loss in %s; nothing reported", name, sorted(metrics))
            return
        trial.report(value, step=int(epoch))
        if trial.should_prune():
            raise optuna.TrialPruned(f"trial {trial.number} pruned at epoch {epoch} ({key}={value:.6g})")

    return report


def _score(metrics: Mapping[str, float], name: str | None, maximize: bool) -> tuple[str, float | None]:
    for key in (f"val_{name}", f"val/{name}", str(name)) if name else ():
        if key in metrics and metrics[key] is not None:
            return key, float(metrics[key])
    if metrics.get("val_loss") is not None:
        loss = float(metrics["val_loss"])
        return "val_loss", -loss if maximize else loss
    return "", None


def make_pruner(spec: Any) -> Any:
    """The Optuna pruner a config names ({_target_: ..., ...}); none or no _target_: NopPruner."""
    import optuna

    if not spec or not _get(spec, "_target_"):
        return optuna.pruners.NopPruner()
    from hydra.utils import instantiate

    return instantiate(spec)


def _get(node: Any, key: str) -> Any:
    if node is None:
        return None
    if isinstance(node, Mapping):
        return node.get(key)
    try:
        return node.get(key)
    except Exception:
        return getattr(node, key, None)
