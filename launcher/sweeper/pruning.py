"""The link between a sweep's trial and the job that runs it, for pruning.

The sweeper gives each job the override ``++sweep_trial={...}``:

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

import logging
import math
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

Report = Callable[[int, Mapping[str, float]], None]


def trial_link(
    study: str,
    trial_number: int,
    trial_id: int,
    storage_reference: str,
    direction: str | None,
    metric: str | None,
    pruner: Mapping[str, Any] | None,
) -> str:
    """The ``++sweep_trial=...`` override for one trial."""
    from launcher.sweeper.compat import override_text

    link = {
        "study": study,
        "trial": trial_number,
        "trial_id": trial_id,
        "storage": storage_reference,
        "direction": direction,
        "metric": metric,
        "pruner": dict(pruner) if pruner else None,
    }
    return "++sweep_trial=" + override_text(link)


def reporter(cfg: Any, metric: str | None = None) -> Report | None:
    """A callable reporting per-epoch validation scores to this job's trial, or None when the
    job is not part of an Optuna sweep (cfg.sweep_trial is null) or the study has several
    objectives (Optuna prunes single-objective studies only). ``metric`` names the task metric
    when the caller knows it better than the config (task.metric: null)."""
    link = _get(cfg, "sweep_trial")
    if not link or not _get(link, "direction"):
        return None
    import optuna

    from launcher.sweeper.compat import trial_from_id
    from launcher.sweeper.storage import open_storage, url_from_reference

    storage = open_storage(url_from_reference(str(_get(link, "storage"))))
    study = optuna.load_study(
        study_name=str(_get(link, "study")),
        storage=storage,
        sampler=optuna.samplers.RandomSampler(),
        pruner=make_pruner(_get(link, "pruner")),
    )
    trial = trial_from_id(study, int(_get(link, "trial_id")))
    name = _get(link, "metric") or metric or _get(_get(cfg, "task"), "metric")
    maximize = _get(link, "direction") == "maximize"
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
