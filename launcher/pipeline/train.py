"""The one training entry point: validate -> data -> adapter -> fit -> evaluate -> save.

`train(cfg)` returns the objective (the validation score of the task's metric, or its
cross-validation mean) so Hydra multirun and the Optuna sweeper can optimise it. Everything
that can be checked before training is checked first, so bad input fails in a second with one
clear message instead of after an hour of fitting.
"""
from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from launcher import data as datamod
from launcher import metrics
from launcher.artifacts import git_commit, save_model
from launcher.core.adapter import Adapter
from launcher.core.errors import ConfigError, Interrupted, one_of
from launcher.core.paths import config_file, config_options, original_cwd, run_dir
from launcher.core.trainer import TrainerSettings, TrainingInterrupted
from launcher.core.types import TASKS, DataSchema, History, Splits
from launcher.frameworks import registry
from launcher.io import write_json

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
            target = datamod.TargetEncoder.fit(dataset.y, label_task)
            y = target.encode(dataset.y)
    parts = datamod.split_indices(y, len(dataset.X), "classification" if target and target.classes else task,
                                  float(cfg.data.test_size), float(cfg.data.val_size), settings.seed)
    if target is not None and task == "regression":  # scale with the training rows only
        y = target.fit_scale(dataset.y.iloc[parts.train]).encode(dataset.y)
    for note in dataset.notes[notes_before:]:  # rows left out for a missing target
        log.warning("%s", note.message)
    return Prepared(adapter, spec, settings, task, metric, dataset, target, y, parts)


# -- the run --------------------------------------------------------------------------------
def _seed_global_rngs(seed: int) -> None:
    """Python's and NumPy's global generators, for estimators that draw from them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _splits(p: Prepared, train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray
            ) -> tuple[datamod.Preprocessor, Splits]:
    pre = datamod.Preprocessor().fit(p.dataset.X.iloc[train_idx])
    X = pre.transform(p.dataset.X)
    classes = p.target.classes if p.target is not None and p.task != "regression" else None
    schema = DataSchema(p.task, X.shape[1], pre.feature_names, classes, p.dataset.shape)
    splits = datamod.make_splits(X, p.y, datamod.Parts(train_idx, val_idx, test_idx), schema)
    if p.task == "regression" and p.target is not None:
        splits.target_scale = p.target.std
    return pre, splits


def _evaluate(p: Prepared, model, X: np.ndarray, y: np.ndarray | None,
              output: np.ndarray | None = None) -> dict[str, float]:
    output = p.adapter.predict(model, X) if output is None else output
    if p.task == "regression":  # metrics in the target's own units
        output, y = p.target.decode(output), p.target.decode(y)
    return metrics.compute(p.task, y, output, X=X)


def cross_validate(p: Prepared) -> dict[str, Any]:
    k = p.settings.cv_folds
    pool = np.concatenate([p.parts.train, p.parts.val])
    folds = []
    for i, (tr, va) in enumerate(datamod.cv_folds(p.y, pool, p.task if p.y is not None else "regression",
                                                  k, p.settings.seed)):
        _, splits = _splits(p, tr, va, va)
        if i == 0:
            p.adapter.check(p.spec, splits.schema, p.settings)
        model = p.adapter.build(p.spec, splits.schema)
        p.adapter.fit(model, splits, p.settings)
        folds.append(_evaluate(p, model, splits.X_val, splits.y_val))
        log.info("fold %d/%d: %s %.4f", i + 1, k, p.metric, folds[-1].get(p.metric, float("nan")))
    return metrics.summarize_folds(folds)


def train(cfg: DictConfig) -> float:
    """Train, evaluate and save one model; return the objective."""
    start = time.perf_counter()
    out = run_dir()
    p = prepare(cfg)
    _seed_global_rngs(p.settings.seed)
    log.info("%s | framework=%s model=%s task=%s | %d rows, %d columns",
             p.dataset.name, p.adapter.name, p.spec.get("name"), p.task, len(p.dataset.X), p.dataset.X.shape[1])

    cv = cross_validate(p) if p.settings.cv_folds else None
    pre, splits = _splits(p, p.parts.train, p.parts.val, p.parts.test)
    dates = pre.describe().get("datetime")
    if dates:
        p.dataset.notes.append(datamod.Note("dates", dates, f"parsed {len(dates)} date column(s) into year, month, "
                                                           "day, weekday, hour and days since 1970: "
                                                           + ", ".join(repr(d) for d in dates)))
        log.warning("%s", p.dataset.notes[-1].message)
    if cv is None:
        p.adapter.check(p.spec, splits.schema, p.settings)
    model = p.adapter.build(p.spec, splits.schema)
    try:
        history = p.adapter.fit(model, splits, p.settings, workdir=out, report=_sweep_reporter(cfg, p.metric))
    except TrainingInterrupted as stop:
        raise Interrupted(f"interrupted at epoch {stop.epoch}/{p.settings.max_epochs}; its checkpoint is in "
                          f"{stop.path.parent}. Resume with: {resume_command(out)}") from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; no checkpoint was written, nothing was saved in {out}") from None
    val = _evaluate(p, model, splits.X_val, splits.y_val)
    test_output = p.adapter.predict(model, splits.X_test)
    test = _evaluate(p, model, splits.X_test, splits.y_test, test_output)

    if cv is not None:
        name, value = f"cv/{p.metric}_mean", cv.get(f"{p.metric}_mean", float("nan"))
    else:
        name, value = f"val/{p.metric}", val.get(p.metric, float("nan"))
    if not history.writer:
        # Several GPUs: every process runs train() in the one run directory; the first writes.
        return float(value)
    record = {
        "objective": {"name": name, "value": value, "direction": metrics.DIRECTION[p.metric]},
        "task": p.task, "framework": p.adapter.name, "model": p.spec.get("name"), "data": p.dataset.name,
        "device": history.device, "seed": p.settings.seed,
        "val": val, "test": test, **({"cv": cv} if cv else {}),
        "rows": {"train": len(p.parts.train), "val": len(p.parts.val), "test": len(p.parts.test)},
        "epochs": len(history.epochs), "best_epoch": history.best_epoch,
        "seconds": round(time.perf_counter() - start, 3),
    }
    data_record = {"notes": [n.message for n in p.dataset.notes], "excluded": p.dataset.excluded,
                   "read": p.dataset.read}
    record["data_notes"] = data_record["notes"]
    if cfg.get("save_model", True):
        save_model(p.adapter, model, out / "model", files={
            "preprocessing.json": {"features": pre.to_dict(),
                                   "target": p.target.to_dict() if p.target else {"task": p.task}},
        }, metadata={
            "task": p.task, "model": p.spec.get("name"), "data": p.dataset.name,
            "config": OmegaConf.to_container(cfg, resolve=True),
            "features": {"input_columns": pre.input_columns, "kinds": pre.describe(),
                         "n_features": splits.schema.n_features, "shape": splits.schema.to_dict()["input_shape"],
                         "excluded": p.dataset.excluded},
            "target": p.target.to_dict() if p.target else None,
            "metrics": {"val": val, "test": test, **({"cv": cv} if cv else {})},
            "device": history.device,
            "training": history.extra,
            "data": data_record,
            "git_commit": git_commit(original_cwd()),
        })
    record["seconds"] = round(time.perf_counter() - start, 3)
    write_json(out / "metrics.json", record)
    _plots(cfg, p, history, test_output, splits, out)
    _summary(p, val, test, cv, record, out)
    return float(value)


def resume_command(out: Path) -> str:
    """The command that continues this run from its checkpoint: the same overrides, plus resume_from."""
    import shlex

    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    overrides = [o for o in overrides if not o.startswith(("trainer.resume_from=", "hydra.run.dir="))]
    return " ".join(["python -m launcher", *map(shlex.quote, overrides),
                     shlex.quote(f"trainer.resume_from={out}")])


def _sweep_reporter(cfg: DictConfig, metric: str):
    """Per-epoch reporting to the Optuna trial that runs this job (None outside a sweep: the
    sweeper hands a job its trial through the job's environment, see launcher.sweeper.pruning).
    It raises optuna.TrialPruned, which leaves train() so the sweeper records the prune."""
    from launcher.sweeper.pruning import reporter

    return reporter(cfg, metric=metric)


def _plots(cfg: DictConfig, p: Prepared, history: History, test_output: np.ndarray, splits: Splits,
           out: Path) -> None:
    """Learning curve and confusion matrix for runs that train in epochs (plots=auto), or all."""
    wanted = cfg.get("plots", "auto")
    if wanted is False or (wanted == "auto" and len(history.epochs) < 2):
        return
    from launcher import plots

    if history.epochs:
        plots.learning_curve(history, out / "learning_curve.png")
    if p.task == "classification" and splits.y_test is not None:
        pred = metrics.labels_from(p.task, test_output)
        plots.confusion_matrix(splits.y_test, pred, [str(c) for c in splits.schema.classes],
                               out / "confusion_matrix.png")


def _summary(p: Prepared, val, test, cv, record, out: Path) -> None:
    m = p.metric
    parts = [f"val {m} {val.get(m, float('nan')):.4f}", f"test {m} {test.get(m, float('nan')):.4f}"]
    if cv:
        parts.insert(0, f"cv {m} {cv[f'{m}_mean']:.4f} ± {cv[f'{m}_std']:.4f} ({cv['folds']} folds)")
    log.info("%s | %.1fs | %s", " | ".join(parts), record["seconds"], out)
    if not math.isfinite(record["objective"]["value"]):
        log.warning("the objective %s is not finite", record["objective"]["name"])
