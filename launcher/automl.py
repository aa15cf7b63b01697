"""The robot as a library: a DataFrame (or arrays) in, a fitted model and predictions out.

    from launcher import AutoML
    automl = AutoML(budget=60)
    automl.fit(train, target="churned")         # or fit(X, y) with arrays, Series, lists
    automl.predict(test); automl.predict_proba(test); automl.score(test, test["churned"])
    automl.leaderboard                          # a DataFrame, best first
    automl.save("churn_model"); AutoML.load("churn_model").predict(test)

The same engine as `python -m launcher.robot`: the table is written as a file inside the
AutoML's directory, the robot plans, searches and fits there (MLRobotMaker with that directory
as its project and experiment), and predictions come from the saved model through the path
`python -m launcher.predict` uses (SavedRun), on DataFrame rows in memory. Nothing is written
outside that directory: not the caller's ./conf, not ./outputs. The directory is the one given
(`directory=`), or a temporary one removed when the AutoML object is (its path in
`automl.directory`). `emit_configs_to=<project>` writes the robot's config files into that
project's conf/ instead, to commit and re-run them there.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from launcher.core.errors import ArtifactError, ConfigError, DataError, LauncherError

log = logging.getLogger("launcher")

SAVED = "automl.json"  # beside model/ in a saved AutoML: what predict needs besides the model
FORMAT_VERSION = 1
DESCRIPTION = "AutoML fit"  # the robot's task words: its slug names the emitted configs
ARRAY_TARGET = "target"  # the target's column name when y comes without a name
# How long a refit's fits may take at most (a refit has no budget of its own: it repeats fits
# whose durations the search measured).
REFIT_TIMEOUT = 3600.0


class AutoML:
    """Plans, searches and fits within `budget` seconds; then predicts, scores, saves.

    `metric`: the metric to select on (accuracy, roc_auc, r2, rmse, ...; default: the task's);
    `task`: classification or regression (default: inferred from the target, as the CLI does);
    `planner`: heuristic (offline), openai or anthropic, or a planner config mapping;
    `directory`: where everything is written (default: a temporary directory);
    `emit_configs_to`: a project whose conf/ receives the robot's config files."""

    def __init__(self, budget: float = 60, metric: str | None = None, task: str | None = None,
                 planner: str | Mapping[str, Any] = "heuristic", directory: str | Path | None = None, seed: int = 0,
                 emit_configs_to: str | Path | None = None) -> None:
        self.budget, self.metric, self.task, self.planner = budget, metric, task, planner
        self.seed, self.emit_configs_to = seed, emit_configs_to
        self._tmp: tempfile.TemporaryDirectory | None = None
        if directory is None:
            # Removed with the object (TemporaryDirectory's finalizer), or at interpreter exit.
            self._tmp = tempfile.TemporaryDirectory(prefix="launcher-automl-")
            directory = self._tmp.name
        self.directory = Path(directory).expanduser().absolute()
        self.experiment: Any = None  # the MLExperiment of the last fit (None after load)
        self._model: Any = None  # SavedRun or SavedEnsemble
        self._source: Path | None = None  # the model directory it predicts with
        self._info: dict[str, Any] = {}  # target, columns, array input, task, metric, leaderboard

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, X, y=None, *, target: str | None = None, task: str | None = None, budget: float | None = None,
            metric: str | None = None, requirements: Mapping[str, Any] | None = None) -> "AutoML":
        """Search for the best model of X (a DataFrame holding the `target` column, or features
        with y beside them) within the budget, and fit it on every row."""
        from launcher.robot.maker import RobotMaker

        frame, target_name, columns, array_input = training_table(X, y, target)
        budget = self.budget if budget is None else budget
        wanted = dict(requirements or {})
        chosen_metric = metric or self.metric
        if chosen_metric is not None:
            wanted.setdefault("metric", chosen_metric)
        run = self._next_run()
        data = write_table(frame, run / "data")
        maker = RobotMaker(self.planner, workdir=run / "experiment", project_dir=self._project(), seed=self.seed)
        log.info("AutoML: working in %s", run)
        try:
            experiment = maker.auto_ml_pipeline(task_description=DESCRIPTION,
                                                dataset_info={"path": str(data), "target": target_name},
                                                model_requirements=wanted, task_type=task or self.task, budget=budget)
        except LauncherError:
            # Refused before it ran (a bad budget, metric, task or target): nothing is left of
            # it. A run that started keeps its record (robot.json says how it ended).
            if not (run / "experiment" / "robot.json").is_file():
                shutil.rmtree(run, ignore_errors=True)
            raise
        self._adopt(experiment, target_name, columns, array_input)
        return self

    def _project(self) -> Path:
        """Where the robot's configs go (its conf/) and its commands run from."""
        return Path(self.emit_configs_to).expanduser().absolute() if self.emit_configs_to else self.directory

    def _next_run(self) -> Path:
        """A fresh folder per fit: fit_1, fit_2, ..."""
        self.directory.mkdir(parents=True, exist_ok=True)
        number = 1 + sum(1 for p in self.directory.glob("fit_*") if p.is_dir())
        while (self.directory / f"fit_{number}").exists():
            number += 1
        run = self.directory / f"fit_{number}"
        run.mkdir()
        return run

    def _adopt(self, experiment: Any, target: str, columns: list[str], array_input: bool) -> None:
        self.experiment = experiment
        self._use(Path(experiment.model_path))
        target_encoder = self._target()
        self._info = {
            "format_version": FORMAT_VERSION, "task": experiment.task.task_type, "metric": experiment.task.metric,
            "target": target, "columns": columns, "array_input": array_input,
            "classes": target_encoder.classes if target_encoder is not None else None,
            "final_model": final_name(experiment), "score": experiment.score,
            "selected_score": experiment.selected_score, "leaderboard": leaderboard_rows(experiment.leaderboard),
        }

    def _use(self, model: Path) -> None:
        """Predict with the saved model in `model` (verified against its checksums)."""
        from launcher.pipeline.predict import SavedRun

        self._model, self._source = SavedRun.load(model), Path(model)

    def refit(self, X, y=None, *, target: str | None = None) -> "AutoML":
        """The final model's configuration (each member's, for an ensemble) fitted again on
        new rows, by the same commands the robot ran for its final fit. The new table has the
        columns of the first one."""
        if self.experiment is None:
            raise ConfigError("refit needs the search this AutoML ran (its trials' configurations); a loaded "
                              "AutoML holds only the final model: fit() it on the new rows instead")
        names = self._info["columns"] if self._info["array_input"] else None  # arrays: the first fit's names
        frame, target_name, columns, _ = training_table(X, y, target or self._info["target"], names)
        if target_name != self._info["target"] or columns != self._info["columns"]:
            raise DataError(f"refit needs the columns of the first fit: {self._info['columns']} and the target "
                            f"{self._info['target']!r}; got {columns} and {target_name!r}")
        run = self._next_run()
        data = write_table(frame, run / "data")
        model = refit_members(self.experiment, self._project(), data, run / "experiment")
        self._use(model)
        return self

    # -- predicting --------------------------------------------------------------------------------
    @property
    def classes_(self) -> np.ndarray:
        """The class labels, in predict_proba's column order."""
        self._fitted()
        if self._info["task"] != "classification":
            raise ConfigError(f"classes_ is for classification; this AutoML does {self._info['task']}")
        return plain_array(self._info["classes"])

    def predict(self, X) -> np.ndarray:
        """Class labels as in the training target, or values in its units."""
        return plain_array(self._predictions(X).values)

    def predict_proba(self, X) -> np.ndarray:
        """(rows, classes) probabilities, columns in the order of `classes_`."""
        if self._fitted()["task"] != "classification":
            raise ConfigError(f"predict_proba is for classification; this AutoML does {self._info['task']} "
                              "(use predict)")
        return np.asarray(self._predictions(X).proba, dtype=float)

    def score(self, X, y=None) -> float:
        """The task's metric (the one selected on) of the predictions for X against y; with y
        left out, X holds the target column."""
        from launcher import metrics

        info = self._fitted()
        features = self._features(X)
        if y is None:
            if not isinstance(X, pd.DataFrame) or info["target"] not in X.columns:
                raise DataError(f"score needs y, or X with the target column {info['target']!r}")
            y = X[info["target"]]
        truth = pd.Series(np.asarray(y).reshape(-1) if not isinstance(y, pd.Series) else y.to_numpy(),
                          name=info["target"])
        if len(truth) != len(features):
            raise DataError(f"X has {len(features)} rows but y has {len(truth)}")
        predictions = self._model.predict(features)
        if info["task"] == "classification":
            try:
                encoded = predictions.target.encode(truth)
            except KeyError as exc:
                raise DataError(f"y holds the label {exc.args[0]!r}, which is not one of the classes the model "
                                f"was fitted on: {info['classes']}") from None
            return metrics.compute("classification", encoded, predictions.proba)[info["metric"]]
        return metrics.compute("regression", truth.to_numpy(dtype=float), predictions.values)[info["metric"]]

    def _predictions(self, X) -> Any:
        self._fitted()
        return self._model.predict(self._features(X))

    def _features(self, X) -> pd.DataFrame:
        """A DataFrame with the training columns (arrays get the names fit gave them)."""
        info = self._fitted()
        if isinstance(X, pd.DataFrame):
            frame = X.rename(columns=str)
            return frame.drop(columns=[info["target"]]) if info["target"] in frame.columns else frame
        if not info["array_input"]:
            raise DataError(f"this AutoML was fitted on a DataFrame; predict takes one with the columns "
                            f"{info['columns']}")
        values = _two_dimensional(X)
        if values.shape[1] != len(info["columns"]):
            raise DataError(f"X has {values.shape[1]} columns; the model was fitted on {len(info['columns'])}")
        return pd.DataFrame(values, columns=info["columns"])

    def _fitted(self) -> dict[str, Any]:
        if self._model is None:
            raise ConfigError("this AutoML is not fitted yet: call fit(X, y) (or fit(frame, target=...)) first, "
                              "or AutoML.load(path)")
        return self._info

    def _target(self) -> Any:
        return self._model.target if hasattr(self._model, "target") else self._model.members[0][0].target

    # -- what it found -----------------------------------------------------------------------------
    @property
    def leaderboard(self) -> pd.DataFrame:
        """Every trial, best first: rank, model, the metric, its spread over folds, seconds, state,
        parameters."""
        rows = self._fitted()["leaderboard"]
        board = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS[:3] + [self._info["metric"]] + LEADERBOARD_COLUMNS[3:])
        return board.astype({"rank": "Int64"})  # unfinished trials have no rank

    @property
    def best_model(self) -> str:
        """What the final model is: a learner's name (random_forest, ...) or "ensemble"."""
        return self._fitted()["final_model"]

    @property
    def best_score(self) -> float | None:
        """The final model's expected score (corrected for its selection), as the robot reports it."""
        return self._fitted()["score"]

    # -- saving ------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """`path`/model (the final model directory, checksummed, no pickle) and `path`/automl.json.
        `python -m launcher.predict run=<path>` reads it too. An existing saved AutoML at `path`
        is replaced; any other existing folder is refused."""
        from launcher.io import atomic_dir, write_json

        self._fitted()
        path = Path(path).expanduser().absolute()
        if path.exists() and not (path / SAVED).is_file() and (not path.is_dir() or any(path.iterdir())):
            raise ConfigError(f"{path} exists and is not a saved AutoML; save to a new folder")
        with atomic_dir(path) as tmp:
            shutil.copytree(self._source, tmp / "model")
            write_json(tmp / SAVED, self._info)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AutoML":
        """A saved AutoML, its model verified against its checksums; predicts and scores (refit
        needs the search, so fit again for that)."""
        path = Path(path).expanduser()
        try:
            info = json.loads((path / SAVED).read_text())
        except OSError:
            raise ArtifactError(f"{path} holds no saved AutoML ({SAVED} is missing); give the folder "
                                "AutoML.save wrote") from None
        except ValueError as exc:
            raise ArtifactError(f"{path / SAVED} is corrupted ({exc}); save the AutoML again") from None
        if not isinstance(info, dict) or info.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(f"{path / SAVED} is not a saved AutoML of this version (format "
                                f"{FORMAT_VERSION})")
        automl = cls()  # a later fit() works in a directory of its own, not in the saved folder
        automl._use(path / "model")
        automl._info = info
        return automl

    def __repr__(self) -> str:
        state = f"{self._info['final_model']}, {self._info['metric']}" if self._model is not None else "not fitted"
        return f"AutoML(budget={self.budget!r}, directory='{self.directory}') [{state}]"


LEADERBOARD_COLUMNS = ["rank", "model", "state", "cv_std", "seconds", "params", "search", "trial"]


def leaderboard_rows(board: Any) -> list[dict[str, Any]]:
    """The robot's leaderboard as plain rows (JSON, so a saved AutoML keeps it): finished
    trials best first, then the others."""
    finished = board.finished
    order = finished + [t for t in board.trials if t not in finished]
    return [{"rank": i + 1 if i < len(finished) else None, "model": t.model, "state": t.state,
             board.metric: t.score, "cv_std": t.cv_std, "seconds": t.seconds,
             "params": {k: v for k, v in t.params.items() if k != "model"}, "search": t.sweep, "trial": t.number}
            for i, t in enumerate(order)]


def final_name(experiment: Any) -> str:
    if experiment.ensembled:
        return "ensemble"
    return experiment.final.model if experiment.final is not None else "unknown"


# -- the training table ------------------------------------------------------------------------------
def training_table(X, y, target: str | None, array_columns: list[str] | None = None
                   ) -> tuple[pd.DataFrame, str, list[str], bool]:
    """(table with the target as a column, target name, feature columns, X was an array)."""
    if isinstance(X, pd.DataFrame):
        frame = X.rename(columns=str)
        array_input = False
    else:
        values = _two_dimensional(X)
        frame = pd.DataFrame(values, columns=array_columns or [f"x{i}" for i in range(values.shape[1])])
        array_input = True
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise DataError(f"X has several columns named {duplicated}; give each column its own name")
    if y is None:
        if target is None:
            raise DataError("fit needs a target: fit(frame, target='<column>') or fit(X, y)")
        if target not in frame.columns:
            raise DataError(f"target column {target!r} is not in X; expected one of: "
                            + ", ".join(repr(c) for c in frame.columns))
        columns = [c for c in frame.columns if c != target]
    else:
        if target is not None and target in frame.columns:
            raise DataError(f"give the target either as the column {target!r} of X or as y, not both")
        values = y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y)
        if values.ndim != 1 and not (values.ndim == 2 and values.shape[1] == 1):
            raise DataError(f"y must be one column of targets; got an array of shape {values.shape}")
        values = values.reshape(-1)
        if len(values) != len(frame):
            raise DataError(f"X has {len(frame)} rows but y has {len(values)}")
        name = target or (str(y.name) if isinstance(y, pd.Series) and y.name is not None else ARRAY_TARGET)
        if name in frame.columns:
            raise DataError(f"y's name {name!r} is also a column of X; give the target another name (target=...)")
        columns = list(frame.columns)
        frame = frame.assign(**{name: values})
        target = name
    if not columns:
        raise DataError("X has no feature columns besides the target")
    return frame, target, columns, array_input


def _two_dimensional(X) -> np.ndarray:
    values = np.asarray(X)
    if values.ndim == 1:
        raise DataError("X must be two-dimensional (rows, columns); for one feature use X.reshape(-1, 1)")
    if values.ndim != 2:
        raise DataError(f"X must be two-dimensional (rows, columns); got shape {values.shape}")
    return values


def write_table(frame: pd.DataFrame, stem: Path) -> Path:
    """The table as Parquet (column types kept) when pyarrow is installed, else CSV. A text
    column with other values in it (numbers beside words) is written as text, as a CSV would."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        path = stem.with_suffix(".csv")
        frame.to_csv(path, index=False)
        return path
    path = stem.with_suffix(".parquet")
    mixed = {c: frame[c].astype(str).where(frame[c].notna(), None) for c in frame.columns if frame[c].dtype == object}
    frame.assign(**mixed).to_parquet(path, index=False)
    return path


def plain_array(values: Any) -> np.ndarray:
    """Labels as the array numpy would make of them (ints, strings, bools), not object arrays."""
    return np.array(list(values))


# -- refit ---------------------------------------------------------------------------------------------
def refit_members(experiment: Any, project: Path, data: Path, out: Path) -> Path:
    """The final model's trials (one, or an ensemble's members) fitted again on the table at
    `data`: each trial's own overrides with the robot's final-fit settings (Invocation.final)
    and this table as data.path, run as the robot runs them; an ensemble keeps its weights.
    Returns the new model directory."""
    import time

    from launcher import artifacts
    from launcher.robot.commands import Invocation
    from launcher.robot.watch import Job

    model = Path(experiment.model_path)
    meta = artifacts.read_metadata(model)
    if meta.get("framework") == "ensemble":
        trials = {(t.sweep, t.number): t for t in experiment.leaderboard.trials}
        members = [(trials[(m["search"], m["trial"])], float(m["weight"])) for m in meta["members"]]
    elif experiment.final is not None:
        members = [(experiment.final, 1.0)]
    else:
        raise ConfigError("the final model names no trial to fit again; fit() on the new rows instead")
    inv = Invocation(project, max(1, os.cpu_count() or 1))
    path = hydra_value(inv.path(data))
    deadline = time.monotonic() + REFIT_TIMEOUT
    jobs = [Job(inv, inv.final([*trial.overrides(), f"data.path={path}"], out / str(i)), out / f"{i}.log")
            for i, (trial, _) in enumerate(members)]
    for i, job in enumerate(jobs):
        if not job.wait(deadline):
            for other in jobs:
                other.stop()
            raise ConfigError(f"the refit of {members[i][0].model} failed: {job.error_line()} (its log: {job.log_path})")
    if len(members) == 1:
        return out / "0" / "model"
    return artifacts.save_ensemble([(out / str(i) / "model", w) for i, (_, w) in enumerate(members)], out / "model",
                                   {key: meta[key] for key in ("task", "metric", "members") if key in meta})


def hydra_value(text: str) -> str:
    """`text` as a command-line override value Hydra reads back as exactly `text`: plain when
    it is a plain path, else quoted, with its quotes and interpolations escaped (Hydra keeps
    other backslashes as they are)."""
    import re

    if re.fullmatch(r"[A-Za-z0-9_./-]+", text):
        return text
    return "'" + text.replace("'", "\\'").replace("${", "\\${") + "'"
