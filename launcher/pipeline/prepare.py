"""Everything a run checks and loads before it fits: the adapter, the settings, the data, the
task and its metric, the target's encoding, the splits. Bad input fails here, in a second."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from launcher import data as datamod
from launcher import metrics
from launcher.core.adapter import Adapter
from launcher.core.errors import ConfigError, one_of
from launcher.core.paths import config_file, config_options
from launcher.core.trainer import TrainerSettings
from launcher.core.types import TASKS, DataSchema, Splits
from launcher.frameworks import registry

log = logging.getLogger("launcher")


@dataclass
class Prepared:
    """A validated run: adapter, settings, task and metric, and the loaded data; nothing fitted."""

    adapter: Adapter
    spec: dict[str, Any]
    settings: TrainerSettings
    task: str
    metric: str
    dataset: datamod.Dataset
    target: datamod.TargetEncoder | None
    y: np.ndarray | None
    parts: datamod.Parts


# -- validation -----------------------------------------------------------------------------
def models_for(adapter: Adapter, task: str) -> list[str]:
    """The model options this framework can use for `task`."""
    return [name for name in config_options("model")
            if task in adapter.model_tasks(OmegaConf.to_container(OmegaConf.load(config_file("model", name))))]


def resolve_task(cfg: DictConfig, adapter: Adapter, spec: dict[str, Any], dataset: datamod.Dataset) -> str:
    explicit = cfg.task.get("name")
    tasks = adapter.model_tasks(spec)
    if explicit and explicit != "auto":
        task = explicit
    else:
        if tasks == {"clustering"}:
            task, why = "clustering", f"model={spec.get('name')} clusters"
        elif dataset.task in TASKS:
            task, why = dataset.task, f"the dataset {dataset.name} declares it"
        else:
            task, why = datamod.infer_task(dataset.y)
        log.info("task=auto: %s (%s)", task, why)
    if task not in tasks:
        raise ConfigError(
            f"model={spec.get('name')} cannot do {task} with framework={adapter.name} (it does "
            f"{', '.join(sorted(tasks)) or 'nothing'}); for {task} pick one of: {one_of(models_for(adapter, task))}"
        )
    return task


def prepare(cfg: DictConfig) -> Prepared:
    """Validate the whole run and load the data; nothing is fitted yet."""
    settings = TrainerSettings.from_config(OmegaConf.to_container(cfg.trainer, resolve=True), cfg.get("seed", 0))
    adapter = registry.instantiate(cfg.framework)
    spec = OmegaConf.to_container(cfg.model, resolve=True)
    model_type = spec.get("type")
    if not adapter.supports(model_type):
        others = [f for f in registry.supporting(model_type) if f != adapter.name]
        raise ConfigError(
            f"framework={adapter.name} cannot build model={spec.get('name')}; "
            f"frameworks that support it: {', '.join(others) or 'none'}"
        )
    dataset = datamod.load(cfg.data)
    for note in dataset.notes:  # what loading changed, before anything else is said
        log.warning("%s", note.message)
    task = resolve_task(cfg, adapter, spec, dataset)
    metric = metrics.check_metric(task, cfg.task.get("metric"))
    target, y = None, None
    notes_before = len(dataset.notes)
    if dataset.y is not None:
        if task != "clustering":
            dataset = datamod.drop_missing_target(dataset)
        label_task = "classification" if task == "clustering" else task
        if task == "clustering" and dataset.y.isna().any():
            dataset.y = None  # labels are only used to score clusters; partial labels cannot be
        else:
            target = datamod.TargetEncoder.fit(dataset.y, label_task, labels=dataset.labels)
            y = target.encode(dataset.y)
    parts = datamod.split_indices(y, len(dataset.X), "classification" if target and target.classes else task,
                                  float(cfg.data.test_size), float(cfg.data.val_size), settings.seed)
    if target is not None and task == "regression":  # scale with the training rows only
        y = target.fit_scale(dataset.y.iloc[parts.train]).encode(dataset.y)
    for note in dataset.notes[notes_before:]:  # rows left out for a missing target
        log.warning("%s", note.message)
    return Prepared(adapter, spec, settings, task, metric, dataset, target, y, parts)


def make_splits(p: Prepared, train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray
                ) -> tuple[datamod.Preprocessor, Splits]:
    """Preprocessing fitted on `train_idx`, and the splits it makes. A model option may ask for
    its categories as it handles them best (categorical: native, histogram gradient boosting)."""
    pre = datamod.Preprocessor(categorical=str(p.spec.get("categorical") or "onehot")).fit(p.dataset.X.iloc[train_idx])
    X = pre.transform(p.dataset.X)
    classes = p.target.classes if p.target is not None and p.task != "regression" else None
    schema = DataSchema(p.task, X.shape[1], pre.feature_names, classes, p.dataset.shape,
                        categorical_features=pre.native_categorical or None)
    splits = datamod.make_splits(X, p.y, datamod.Parts(train_idx, val_idx, test_idx), schema)
    if p.task == "regression" and p.target is not None:
        splits.target_scale = p.target.std
    return pre, splits
