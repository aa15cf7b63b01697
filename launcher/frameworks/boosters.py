"""LightGBM, XGBoost and CatBoost inside the scikit-learn adapter: what they do differently.

They are built from `model.estimator` like any scikit-learn estimator (their scikit-learn
APIs: LGBMClassifier, XGBClassifier, CatBoostClassifier and the regressors); what differs is
kept here, once per library:
  - threads, seed and quiet output each have their own argument name;
  - text columns reach them as category codes (model.categorical: native) that each splits on
    natively, told to it the way it wants (a fit argument, feature types, or int columns);
  - early stopping on a hold-out carved from the training rows (`EarlyStopping`);
  - skops cannot save them: each is saved in its library's own format (text, JSON, CatBoost's
    binary model) and loaded from it, with no pickle anywhere.
The libraries are imported only when a run uses one; none is needed otherwise.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from launcher.core.errors import ArtifactError, ConfigError
from launcher.core.types import DataSchema


@dataclass(frozen=True)
class Library:
    """One library's names for the same things."""

    name: str
    threads: str  # constructor argument for the thread count
    all_threads: Any  # its value for "every core" (framework.n_jobs=-1)
    seed: str
    quiet: Mapping[str, Any]  # arguments that silence it, unless the user set one of `loud`
    loud: tuple[str, ...]
    model_file: str  # the native file the model is saved to


LIBRARIES = {
    "lightgbm": Library("lightgbm", "n_jobs", -1, "random_state", {"verbosity": -1}, ("verbosity", "verbose"),
                        "model.lightgbm.txt"),
    "xgboost": Library("xgboost", "n_jobs", None, "random_state", {"verbosity": 0}, ("verbosity",),
                       "model.xgboost.json"),
    "catboost": Library("catboost", "thread_count", -1, "random_seed",
                        {"verbose": False}, ("verbose", "silent", "logging_level", "verbose_eval"),
                        "model.catboost.cbm"),
}
BOOSTER_FILE = "booster.json"


def library_of(obj: Any) -> str | None:
    """'lightgbm', 'xgboost' or 'catboost' for a class or instance of theirs (or a LightGBM
    model loaded from its file); None for anything else."""
    cls = obj if isinstance(obj, type) else type(obj)
    if issubclass(cls, LightGBMBooster):
        return "lightgbm"
    top = cls.__module__.partition(".")[0]
    return top if top in LIBRARIES else None


@dataclass(frozen=True)
class EarlyStopping:
    """Early stopping on a hold-out of the training rows, never on the rows the run is scored on.

    The run's validation split, and in cross-validation each fold's held-out rows, are what
    the objective is computed on; stopping on them would choose the number of trees on the
    scored rows. A refit on every row has no unseen rows at all. A hold-out carved from the
    rows being fitted works the same in all three cases. `auto` stops early from 10,000
    training rows, scikit-learn's threshold for its own histogram boosting: below it, a 10%
    hold-out is too few rows to stop on, and the full number of trees is fitted."""

    mode: str = "auto"  # auto | true | false
    fraction: float = 0.1
    rounds: int = 20
    AUTO_ROWS = 10_000

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> "EarlyStopping":
        name = spec.get("name")
        mode = spec.get("early_stopping", "auto")
        mode = {True: "true", False: "false"}.get(mode, mode)
        if mode not in ("auto", "true", "false"):
            raise ConfigError(f"model.early_stopping={mode!r} is invalid for model={name}; expected auto, true "
                              "or false")
        fraction = spec.get("validation_fraction", 0.1)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 0.5:
            raise ConfigError(f"model.validation_fraction={fraction!r} is invalid for model={name}; expected a "
                              "number between 0 and 0.5 (the share of training rows held out to stop on)")
        rounds = spec.get("early_stopping_rounds", 20)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ConfigError(f"model.early_stopping_rounds={rounds!r} is invalid for model={name}; expected a "
                              "positive integer (rounds without improvement before stopping)")
        return cls(mode, float(fraction), rounds)

    def applies(self, rows: int) -> bool:
        return self.mode == "true" or (self.mode == "auto" and rows >= self.AUTO_ROWS)


@dataclass(frozen=True)
class BoosterOptions:
    """What the adapter keeps from the model config for fitting one of these libraries."""

    library: str
    stopping: EarlyStopping
    user_threads: bool  # model.estimator set the thread count: trainer.num_threads leaves it
    user_seed: bool


# -- build -----------------------------------------------------------------------------------
def configure(library: str, params: dict[str, Any], schema: DataSchema, n_jobs: int | None) -> dict[str, Any]:
    """Constructor arguments: the user's, plus quiet output, framework.n_jobs threads and the
    native categorical columns in the library's own terms (unless the user set them)."""
    lib = LIBRARIES[library]
    out = dict(params)
    if not any(k in out for k in lib.loud):
        out.update(lib.quiet)
    if n_jobs is not None and lib.threads not in out:
        out[lib.threads] = lib.all_threads if n_jobs == -1 else n_jobs
    categorical = list(schema.categorical_features or [])
    if library == "xgboost" and categorical:
        out.setdefault("enable_categorical", True)
        out.setdefault("tree_method", "hist")  # the tree method that splits on categories
        out.setdefault("feature_types", ["c" if i in categorical else "q" for i in range(schema.n_features)])
    if library == "catboost":
        if categorical:
            out.setdefault("cat_features", categorical)
        out.setdefault("allow_writing_files", False)  # else it writes catboost_info/ into the working directory
    return out


def options(library: str, spec: Mapping[str, Any], params: Mapping[str, Any]) -> BoosterOptions:
    lib = LIBRARIES[library]
    return BoosterOptions(library, EarlyStopping.from_spec(spec), user_threads=lib.threads in params,
                          user_seed=lib.seed in params or "random_state" in params)


# -- fit / predict ---------------------------------------------------------------------------
def fit(estimator: Any, opts: BoosterOptions, X: np.ndarray, y: np.ndarray, schema: DataSchema,
        seed: int, num_threads: int | None) -> tuple[dict[str, Any], np.ndarray | None]:
    """Fit `estimator` (early stopping on a hold-out of X when it applies). Returns the facts for
    the run record (library, version, trees kept, rows held out) and, for classification, the
    class indices the model's probability columns stand for."""
    lib = LIBRARIES[opts.library]
    classes = np.unique(y) if schema.task == "classification" else None
    if classes is not None and opts.library == "xgboost":
        # XGBoost wants the classes it is shown numbered 0..k-1; a training split can lack one
        # of the data's classes (a rare one), so they are renumbered and mapped back by `classes`.
        y = np.searchsorted(classes, y)
    if not opts.user_seed:
        estimator.set_params(**{lib.seed: seed})
    if num_threads and not opts.user_threads:  # the trial's share of the machine
        estimator.set_params(**{lib.threads: num_threads})
    kwargs: dict[str, Any] = {}
    held_out = 0
    if opts.stopping.applies(len(X)):
        fit_rows, stop_rows = holdout(y, schema.task, opts.stopping.fraction, seed)
        X_stop, y_stop = inputs(estimator, X[stop_rows], schema), y[stop_rows]
        X, y, held_out = X[fit_rows], y[fit_rows], len(stop_rows)
        kwargs.update(_stopping_arguments(estimator, opts, X_stop, y_stop))
    if opts.library == "lightgbm" and schema.categorical_features:
        kwargs["categorical_feature"] = list(schema.categorical_features)
    try:
        estimator.fit(inputs(estimator, X, schema), y, **kwargs)
    except (TypeError, ValueError, *_library_errors(opts.library)) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{opts.library} refused to fit ({first}); check model.estimator.* against "
                          f"{type(estimator).__name__}'s parameters") from None
    if classes is not None and opts.library != "xgboost":
        classes = np.asarray(estimator.classes_, dtype=int)  # the library's own column order
    return {"library": opts.library, "version": _version(opts.library), "trees": trees(estimator),
            "early_stopping": bool(held_out), "stopping_rows": held_out}, classes


def _stopping_arguments(estimator: Any, opts: BoosterOptions, X_stop: Any, y_stop: np.ndarray) -> dict[str, Any]:
    rounds = opts.stopping.rounds
    if opts.library == "lightgbm":
        import inspect

        import lightgbm

        # eval_X/eval_y from LightGBM 4.6 on (eval_set is deprecated there); eval_set before
        evals = {"eval_X": (X_stop,), "eval_y": (y_stop,)} if "eval_X" in inspect.signature(estimator.fit).parameters \
            else {"eval_set": [(X_stop, y_stop)]}
        return {**evals, "callbacks": [lightgbm.early_stopping(rounds, verbose=False)]}
    if opts.library == "xgboost":
        estimator.set_params(early_stopping_rounds=rounds)  # a constructor argument since XGBoost 2
        return {"eval_set": [(X_stop, y_stop)], "verbose": False}
    return {"eval_set": (X_stop, y_stop), "early_stopping_rounds": rounds}  # CatBoost keeps the best model


def holdout(y: np.ndarray, task: str, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows to fit, rows to stop on): a seeded `fraction` of the rows, stratified by class for
    classification; a class with a single row stays in the fitted part, so every class the
    stopping rows hold is one the model knows."""
    rng = np.random.default_rng(seed)
    if task != "classification":
        order = rng.permutation(len(y))
        cut = max(1, int(round(fraction * len(y))))
        return np.sort(order[cut:]), np.sort(order[:cut])
    stop = []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        if len(rows) >= 2:
            stop.append(rows[:min(len(rows) - 1, max(1, int(round(fraction * len(rows)))))])
    stop_rows = np.sort(np.concatenate(stop)) if stop else np.zeros(0, dtype=int)
    return np.setdiff1d(np.arange(len(y)), stop_rows), stop_rows


def inputs(estimator: Any, X: np.ndarray, schema: DataSchema) -> Any:
    """The features as the library takes them: CatBoost wants its categorical columns as
    integers (NaN, missing or unseen, as its own category -1); the others take the float codes."""
    if library_of(estimator) != "catboost" or not schema.categorical_features:
        return X
    import pandas as pd

    frame = pd.DataFrame(X, columns=[str(i) for i in range(X.shape[1])])
    for i in schema.categorical_features:
        codes = X[:, i]
        frame[str(i)] = np.where(np.isnan(codes), -1, codes).astype(np.int64)
    return frame


def trees(estimator: Any) -> int | None:
    """Boosting rounds the fitted model uses (after early stopping)."""
    library = library_of(estimator)
    if library == "lightgbm":
        return int(estimator.booster_.best_iteration or estimator.booster_.current_iteration())
    if library == "xgboost":
        best = getattr(estimator, "best_iteration", None) if estimator.get_params().get("early_stopping_rounds") \
            else None
        return int(best) + 1 if best is not None else int(estimator.get_booster().num_boosted_rounds())
    return int(estimator.tree_count_)


def _library_errors(library: str) -> tuple[type[BaseException], ...]:
    if library == "lightgbm":
        from lightgbm.basic import LightGBMError

        return (LightGBMError,)
    if library == "xgboost":
        from xgboost.core import XGBoostError

        return (XGBoostError,)
    from catboost import CatBoostError

    return (CatBoostError,)


def _version(library: str) -> str | None:
    try:
        return importlib_metadata.version(library)
    except importlib_metadata.PackageNotFoundError:
        return None


# -- persistence -----------------------------------------------------------------------------
class LightGBMBooster:
    """A LightGBM model read from its text file, predicting as LGBMClassifier/LGBMRegressor did
    (LightGBM's scikit-learn classes cannot be rebuilt from a saved model: only its Booster)."""

    def __init__(self, booster: Any):
        self.booster = booster

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self.booster.predict(X)
        return np.vstack((1.0 - p, p)).T if p.ndim == 1 else p  # binary: the positive class's probability

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X)


def save(estimator: Any, classes: np.ndarray | None, directory: Path) -> None:
    """The model in its library's own format, and booster.json saying which library wrote it
    and which classes its probability columns stand for."""
    library = library_of(estimator)
    path = Path(directory) / LIBRARIES[library].model_file
    if library == "lightgbm":
        booster = estimator.booster if isinstance(estimator, LightGBMBooster) else estimator.booster_
        booster.save_model(str(path))  # the best iteration's trees when it stopped early
    else:
        estimator.save_model(str(path))
    (Path(directory) / BOOSTER_FILE).write_text(json.dumps(
        {"library": library, "version": _version(library),
         "classes": None if classes is None else [int(c) for c in classes]}))


def saved(directory: Path) -> bool:
    return (Path(directory) / BOOSTER_FILE).is_file()


def load(directory: Path, schema: DataSchema) -> tuple[Any, np.ndarray | None]:
    """(model, classes) as saved by `save`: each library parses its own format; nothing is
    unpickled and no class named in a file is imported (the library comes from a fixed list)."""
    directory = Path(directory)
    info = json.loads((directory / BOOSTER_FILE).read_text())
    library = info.get("library") if isinstance(info, dict) else None
    if library not in LIBRARIES:
        raise ArtifactError(f"{directory / BOOSTER_FILE} names library {library!r}; expected one of: "
                            f"{', '.join(LIBRARIES)}")
    try:
        module = importlib.import_module(library)
    except ImportError:
        raise ArtifactError(f"this model was trained with {library}, which is not installed here: "
                            f"pip install {library}" + (f"=={info['version']}" if info.get("version") else "")) from None
    path = str(directory / LIBRARIES[library].model_file)
    classify = schema.task == "classification"
    classes = info.get("classes")
    if classify and (not isinstance(classes, list) or not all(isinstance(c, int) for c in classes)):
        raise ArtifactError(f"{directory / BOOSTER_FILE} lists no classes for a classifier")
    classes = np.asarray(classes, dtype=int) if classify else None
    try:
        if library == "lightgbm":
            return LightGBMBooster(module.Booster(model_file=path)), classes
        if library == "xgboost":
            model = module.XGBClassifier() if classify else module.XGBRegressor()
        else:
            model = module.CatBoostClassifier() if classify else module.CatBoostRegressor()
        model.load_model(path)
    except _library_errors(library) as exc:  # a file its library cannot parse: not one it wrote
        raise ValueError(f"{library} cannot read {path}: {str(exc).strip().splitlines()[0]}") from exc
    return model, classes
