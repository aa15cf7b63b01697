"""The one training entry point: validate -> data -> adapter -> fit -> evaluate -> save.

`train(cfg)` returns the objective (the validation score of the task's metric, or its
cross-validation mean) so Hydra multirun and the Optuna sweeper can optimise it. Everything
that can be checked before training is checked first (launcher.pipeline.prepare), so bad input
fails in a second with one clear message instead of after an hour of fitting.

Two settings serve selecting and shipping a model:
  trainer.cv_folds  the objective is the cross-validated mean over train+validation rows; the
                    out-of-fold predictions are kept (cv_predictions.npz) for ensembling
  trainer.refit     after evaluation, the same settings are fitted again on all non-test rows
                    (a network for its best epoch count) and that model is the one saved
and `data.test_size=0` / `data.val_size=0` (with cross-validation) use every row for them.
"""
from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from launcher import data as datamod
from launcher import metrics
from launcher.artifacts import git_commit, recorded_config, save_model, slurm_job
from launcher.core.errors import ConfigError, Interrupted
from launcher.core.paths import original_cwd, run_dir
from launcher.core.trainer import TrainingInterrupted
from launcher.core.types import History, Report, Splits
from launcher.io import atomic_write, remove_stale_partials, write_json
from launcher.pipeline.prepare import Prepared, make_splits, prepare
from launcher.tracking import Tracker, open_tracker

log = logging.getLogger("launcher")
OOF_FILE = "cv_predictions.npz"


@dataclass
class Fitted:
    """A fitted model with the preprocessing and splits it was fitted with."""

    model: Any
    pre: datamod.Preprocessor
    splits: Splits
    history: History


def train(cfg: DictConfig) -> float:
    """Train, evaluate and save one model; return the objective. The `logger` group's writers
    are checked first (package, server) and record the run as it goes (launcher.tracking)."""
    with open_tracker(cfg, run_dir()) as tracker:
        return _train(cfg, tracker)


def _train(cfg: DictConfig, tracker: Tracker) -> float:
    start = time.perf_counter()
    out = run_dir()
    _remove_killed_writes(out)
    p = prepare(cfg)
    _seed_global_rngs(p.settings.seed)
    log.info("%s | framework=%s model=%s task=%s | %d rows, %d columns",
             p.dataset.name, p.adapter.name, p.spec.get("name"), p.task, len(p.dataset.X), p.dataset.X.shape[1])
    if not len(p.parts.val) and not p.settings.cv_folds and not p.settings.refit:
        raise ConfigError("data.val_size=0 leaves nothing to score the model on; set trainer.cv_folds (the "
                          "objective is then the cross-validated mean), a data.val_size above 0, or "
                          "trainer.refit=true to fit on every row unscored")
    if not len(p.parts.val) and p.adapter.trains_in_epochs:
        raise ConfigError(f"framework={p.adapter.name} picks its best epoch on validation rows: set "
                          "data.val_size above 0")
    tracker.start(cfg, framework=p.adapter.name, model=p.spec.get("name"), task=p.task, dataset=p.dataset.name)

    cv, oof = cross_validate(p) if p.settings.cv_folds else (None, None)
    refit = None
    if p.settings.refit and (cv is not None or not len(p.parts.val)) and not p.adapter.trains_in_epochs:
        # Cross-validation has scored these settings (or nothing is to score them): fit once,
        # on every non-test row.
        if cv is None:
            log.info("no validation rows and no cross-validation: the refit model is not scored")
        fitted = refit = _refit(p, None)
        val: dict[str, float] = {}
    else:
        fitted = _fit(p, p.parts.train, p.parts.val, cfg, out, on_epoch=tracker.epoch if tracker else None)
        val = _evaluate(p, fitted.model, fitted.splits.X_val, fitted.splits.y_val) if len(p.parts.val) else {}
    _note_dates(p, fitted.pre)
    if cv is not None:
        name, value = f"cv/{p.metric}_mean", cv.get(f"{p.metric}_mean", float("nan"))
    else:
        name, value = f"val/{p.metric}", val.get(p.metric, float("nan"))
    if not fitted.history.writer:
        # Several GPUs: every process runs train() in the one run directory; the first writes.
        return float(value)
    if p.settings.refit and refit is None:
        fitted = refit = _refit(p, fitted)
    test_output = p.adapter.predict(fitted.model, fitted.splits.X_test) if len(p.parts.test) else None
    test = _evaluate(p, fitted.model, fitted.splits.X_test, fitted.splits.y_test, test_output) \
        if test_output is not None else {}
    record = {
        "objective": {"name": name, "value": value, "direction": metrics.DIRECTION[p.metric]},
        "task": p.task, "framework": p.adapter.name, "model": p.spec.get("name"), "data": p.dataset.name,
        "device": fitted.history.device, "seed": p.settings.seed,
        "val": val, "test": test, **({"cv": cv} if cv else {}),
        "rows": {"train": len(p.parts.train), "val": len(p.parts.val), "test": len(p.parts.test)},
        "epochs": len(fitted.history.epochs), "best_epoch": fitted.history.best_epoch,
        **({"refit": {"rows": len(fitted.splits.X_train), "epochs": len(fitted.history.epochs)}} if refit else {}),
        "data_notes": [n.message for n in p.dataset.notes],
    }
    if job := slurm_job():  # a job on a SLURM cluster: its id, node and allocation
        record["slurm"] = job
    if oof is not None:
        _write_oof(out / OOF_FILE, oof)
    if cfg.get("save_model", True):
        _save(p, fitted, cfg, out, {"val": val, "test": test, **({"cv": cv} if cv else {})}, bool(refit))
    record["seconds"] = round(time.perf_counter() - start, 3)
    write_json(out / "metrics.json", record)
    _plots(cfg, p, fitted.history, test_output, fitted.splits, out)
    tracker.final({"val": val, "test": test, **({"cv": cv} if cv else {})}, step=len(fitted.history.epochs))
    tracker.artifacts([out / "metrics.json", *sorted(out.glob("*.png"))],
                      out / "model" if cfg.get("save_model", True) else None)
    _summary(p, val, test, cv, record, out)
    return float(value)


def _remove_killed_writes(out: Path) -> None:
    """A run killed while it saved (its model, a checkpoint) cannot remove its temporary
    sibling (.model.partial-<host>.<pid>.*), and nothing writes into its directory again: the
    next run beside it (the same day's outputs, the same sweep) removes those whose process is
    gone. Only run directories (Hydra's .hydra/ in them) are looked into; writes in progress
    and other machines' files are left alone (io.remove_stale_partials)."""
    try:
        runs = [entry for entry in out.parent.iterdir() if (entry / ".hydra").is_dir()]
    except OSError:
        return
    removed = [path for run in runs for folder in (run, run / "checkpoints") for path in remove_stale_partials(folder)]
    if removed:
        log.info("removed %d unfinished file(s) left by runs killed while saving: %s", len(removed),
                 ", ".join(str(path.relative_to(out.parent)) for path in removed[:3])
                 + (" ..." if len(removed) > 3 else ""))


def _seed_global_rngs(seed: int) -> None:
    """Python's and NumPy's global generators, for estimators that draw from them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _fit(p: Prepared, train_idx: np.ndarray, val_idx: np.ndarray, cfg: DictConfig | None, out: Path | None,
         settings: Any = None, on_epoch: Report | None = None) -> Fitted:
    settings = settings or p.settings
    pre, splits = make_splits(p, train_idx, val_idx, p.parts.test)
    p.adapter.check(p.spec, splits.schema, settings)
    model = p.adapter.build(p.spec, splits.schema)
    report = _in_turn(on_epoch, _sweep_reporter(cfg, p.metric) if cfg is not None else None)
    try:
        history = p.adapter.fit(model, splits, settings, workdir=out, report=report)
    except TrainingInterrupted as stop:
        raise Interrupted(f"interrupted at epoch {stop.epoch}/{settings.max_epochs}; its checkpoint is in "
                          f"{stop.path.parent}. Resume with: {resume_command(out)}") from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; no checkpoint was written, nothing was saved in {out}") from None
    return Fitted(model, pre, splits, history)


def _in_turn(first: Report | None, then: Report | None) -> Report | None:
    """One per-epoch report from two: the tracker's, then the sweep's (whose pruning may end
    the fit: the pruned epoch is recorded first)."""
    if first is None or then is None:
        return first or then

    def report(epoch: int, row: Any) -> None:
        first(epoch, row)
        then(epoch, row)

    return report


def _refit(p: Prepared, fitted: Fitted | None) -> Fitted:
    """The same settings on every non-test row; a network trains for the epochs that were best."""
    rows = np.sort(np.concatenate([p.parts.train, p.parts.val]))
    settings = p.settings
    if p.adapter.trains_in_epochs and fitted is not None:
        epochs = fitted.history.best_epoch or len(fitted.history.epochs) or settings.max_epochs
        settings = replace(settings, max_epochs=int(epochs), early_stopping=False, resume_from=None)
    log.info("refit on all %d non-test rows%s", len(rows),
             f" for {settings.max_epochs} epochs" if p.adapter.trains_in_epochs else "")
    # The validation rows stay as they were (now also trained on): a network's epoch log needs
    # some; the scores reported are the ones measured before the refit.
    return _fit(p, rows, p.parts.val if len(p.parts.val) else rows[:1], None, None, settings)


def _evaluate(p: Prepared, model, X: np.ndarray, y: np.ndarray | None,
              output: np.ndarray | None = None) -> dict[str, float]:
    output = p.adapter.predict(model, X) if output is None else output
    if p.task == "regression":  # metrics in the target's own units
        output, y = p.target.decode(output), p.target.decode(y)
    return metrics.compute(p.task, y, output, X=X)


def cross_validate(p: Prepared) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Scores over k folds of the train+validation rows, and the out-of-fold predictions (in the
    target's units for regression; class probabilities for classification)."""
    k = p.settings.cv_folds
    pool = np.concatenate([p.parts.train, p.parts.val])
    folds, index, outputs = [], [], []
    for i, (tr, va) in enumerate(datamod.cv_folds(p.y, pool, p.task if p.y is not None else "regression",
                                                  k, p.settings.seed)):
        fitted = _fit(p, tr, va, None, None)
        output = p.adapter.predict(fitted.model, fitted.splits.X_val)
        folds.append(_evaluate(p, fitted.model, fitted.splits.X_val, fitted.splits.y_val, output))
        index.append(va)
        outputs.append(p.target.decode(output) if p.task == "regression" else np.asarray(output))
        log.info("fold %d/%d: %s %.4f", i + 1, k, p.metric, folds[-1].get(p.metric, float("nan")))
    order = np.concatenate(index)
    oof = {"index": order, "output": np.concatenate(outputs)}
    if p.y is not None:
        oof["y"] = p.target.decode(p.y[order]) if p.task == "regression" else p.y[order]
    return metrics.summarize_folds(folds), oof


def _write_oof(path: Path, oof: dict[str, np.ndarray]) -> None:
    """Plain arrays (np.savez): read back with allow_pickle=False."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in oof.items()})

    atomic_write(path, write)


def _note_dates(p: Prepared, pre: datamod.Preprocessor) -> None:
    dates = pre.describe().get("datetime")
    if dates:
        p.dataset.notes.append(datamod.Note("dates", dates, f"parsed {len(dates)} date column(s) into year, month, "
                                                           "day, weekday, hour and days since 1970: "
                                                           + ", ".join(repr(d) for d in dates)))
        log.warning("%s", p.dataset.notes[-1].message)


def _save(p: Prepared, fitted: Fitted, cfg: DictConfig, out: Path, scores: dict[str, Any], refit: bool) -> None:
    save_model(p.adapter, fitted.model, out / "model", files={
        "preprocessing.json": {"features": fitted.pre.to_dict(),
                               "target": p.target.to_dict() if p.target else {"task": p.task}},
    }, metadata={
        "task": p.task, "model": p.spec.get("name"),
        "config": recorded_config(cfg),
        "features": {"input_columns": fitted.pre.input_columns, "kinds": fitted.pre.describe(),
                     "n_features": fitted.splits.schema.n_features,
                     "shape": fitted.splits.schema.to_dict()["input_shape"], "excluded": p.dataset.excluded},
        "target": p.target.to_dict() if p.target else None,
        "metrics": scores,
        "device": fitted.history.device,
        "training": fitted.history.extra,
        "refit": {"rows": len(fitted.splits.X_train)} if refit else None,
        "data": {"name": p.dataset.name, "notes": [n.message for n in p.dataset.notes],
                 "excluded": p.dataset.excluded, "read": p.dataset.read},
        "git_commit": git_commit(original_cwd()),
    })


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


def _plots(cfg: DictConfig, p: Prepared, history: History, test_output: np.ndarray | None, splits: Splits,
           out: Path) -> None:
    """Learning curve and confusion matrix for runs that train in epochs (plots=auto), or all."""
    wanted = cfg.get("plots", "auto")
    if wanted is False or (wanted == "auto" and len(history.epochs) < 2):
        return
    from launcher import plots

    if history.epochs:
        plots.learning_curve(history, out / "learning_curve.png")
    if p.task == "classification" and splits.y_test is not None and test_output is not None:
        pred = metrics.labels_from(p.task, test_output)
        plots.confusion_matrix(splits.y_test, pred, [str(c) for c in splits.schema.classes],
                               out / "confusion_matrix.png")


def _summary(p: Prepared, val, test, cv, record, out: Path) -> None:
    m = p.metric
    parts = []
    if cv:
        parts.append(f"cv {m} {cv[f'{m}_mean']:.4f} ± {cv[f'{m}_std']:.4f} ({cv['folds']} folds)")
    if val:
        parts.append(f"val {m} {val.get(m, float('nan')):.4f}")
    if test:
        parts.append(f"test {m} {test.get(m, float('nan')):.4f}")
    if "refit" in record:
        parts.append(f"refit on {record['refit']['rows']} rows")
    log.info("%s | %.1fs | %s", " | ".join(parts), record["seconds"], out)
    if not math.isfinite(record["objective"]["value"]):
        log.warning("the objective %s is not finite", record["objective"]["name"])
