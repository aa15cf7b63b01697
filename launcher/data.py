"""Data: built-in, CSV and synthetic sources; target encoding; seeded splits.

The flow every framework shares:

    dataset = load(cfg.data)                  # raw features + raw target, validated
    task = resolve_task(...)                  # classification | regression | clustering
    target = TargetEncoder.fit(dataset.y, task)
    parts = split_indices(target.encoded, task, ...)
    pre = Preprocessor().fit(dataset.X.iloc[parts.train])   # fitted on train only

Preprocessing itself lives in `launcher.preprocessing`; its fitted state is JSON saved with
every model.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from launcher.errors import DataError, one_of
from launcher.frameworks.base import DataSchema, Splits

log = logging.getLogger(__name__)

TASK_NAMES = ("classification", "regression", "clustering")
BUILTIN = ("iris", "wine", "breast_cancer", "digits", "diabetes")
# A numeric CSV target with at most this many distinct integer values is taken as classes.
MAX_INFERRED_CLASSES = 20


@dataclass
class Dataset:
    name: str
    X: pd.DataFrame
    y: pd.Series | None
    task: str  # as declared by the source: classification | regression | auto
    shape: tuple[int, ...] | None = None


# -- sources ------------------------------------------------------------------------------
def load(cfg: Any) -> Dataset:
    """Load the dataset a `data` config describes; raise DataError with a fix on bad input."""
    source = cfg.get("source")
    shape = tuple(int(s) for s in cfg.shape) if cfg.get("shape") else None
    if source == "builtin":
        ds = _load_builtin(cfg.name)
    elif source == "csv":
        ds = _load_csv(cfg)
    elif source == "synthetic":
        ds = _load_synthetic(cfg)
    else:
        raise DataError(f"data.source={source!r} is unknown; expected one of: builtin, csv, synthetic")
    ds.shape = shape or ds.shape
    if ds.task == "auto" and cfg.get("task") not in (None, "auto"):
        ds.task = cfg.task
    return ds


def _load_builtin(name: str) -> Dataset:
    import sklearn.datasets as skd

    if name not in BUILTIN:
        raise DataError(f"no built-in dataset {name!r}; expected one of: {one_of(BUILTIN)}")
    bunch = getattr(skd, f"load_{name}")()
    X = pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names])
    y = pd.Series(bunch.target, name="target")
    task = "regression" if name == "diabetes" else "classification"
    names = getattr(bunch, "target_names", None)
    if task == "classification" and names is not None and name != "digits":
        y = pd.Series(np.asarray(names)[bunch.target], name="target")  # readable labels
    shape = (1, 8, 8) if name == "digits" else None
    return Dataset(name=name, X=X, y=y, task=task, shape=shape)


def _load_csv(cfg: Any) -> Dataset:
    path = Path(str(cfg.path)).expanduser()
    if not path.is_absolute():
        from launcher.paths import original_cwd

        path = original_cwd() / path
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}; set data.path to an existing .csv file")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"CSV file {path} is empty; it needs a header row and at least 10 data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"CSV file {path} could not be parsed: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"CSV file {path} has a header but no rows; it needs at least 10 data rows")
    target = str(cfg.target)
    if target not in frame.columns:
        raise DataError(
            f"target column {target!r} is not in {path.name}; set data.target to one of: "
            + ", ".join(repr(c) for c in frame.columns)
        )
    drop = [str(c) for c in (cfg.get("drop") or [])]
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise DataError(f"data.drop names columns not in {path.name}: {unknown}")
    X = frame.drop(columns=[target, *drop])
    if X.shape[1] == 0:
        raise DataError(f"{path.name} has no feature columns besides the target {target!r}")
    return Dataset(name=path.stem, X=X, y=frame[target], task=str(cfg.get("task") or "auto"))


def _load_synthetic(cfg: Any) -> Dataset:
    from sklearn.datasets import make_classification, make_regression

    n, features, classes = int(cfg.size), int(cfg.features), int(cfg.get("classes") or 0)
    if n < 20 or features < 1:
        raise DataError(f"data=synthetic needs size >= 20 and features >= 1, got size={n}, features={features}")
    informative = int(cfg.get("informative") or max(2, features // 2))
    informative = min(informative, features)
    seed = int(cfg.get("seed", 0) or 0)
    if classes >= 2:
        informative = max(informative, math.ceil(math.log2(classes * 2)))
        if informative > features:
            raise DataError(f"data=synthetic with {classes} classes needs at least {informative} features")
        X, y = make_classification(
            n_samples=n, n_features=features, n_informative=informative,
            n_redundant=min(features - informative, features // 4), n_classes=classes,
            flip_y=float(cfg.get("noise", 0.1)) / 10, random_state=seed,
        )
        task = "classification"
    else:
        X, y = make_regression(n_samples=n, n_features=features, n_informative=informative,
                               noise=float(cfg.get("noise", 0.1)) * 10, random_state=seed)
        task = "regression"
    cols = [f"x{i}" for i in range(features)]
    return Dataset(name="synthetic", X=pd.DataFrame(X, columns=cols), y=pd.Series(y, name="target"), task=task)


# -- task ---------------------------------------------------------------------------------
def infer_task(y: pd.Series) -> str:
    values = y.dropna()
    if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == bool \
            or pd.api.types.is_string_dtype(values.dtype):
        return "classification"
    integral = np.all(np.mod(values.to_numpy(dtype=float), 1) == 0)
    if integral and values.nunique() <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


# -- target -------------------------------------------------------------------------------
class TargetEncoder:
    """Maps a raw target to model targets and back; its state is JSON.

    Classes become indices into `classes`. A regression target is standardised with the
    training rows' mean and spread, so every model (an SVR, a network) sees a well-scaled
    target; predictions are mapped back before any metric or output file sees them.
    """

    def __init__(self, task: str, classes: list[Any] | None = None, name: str = "target",
                 mean: float = 0.0, std: float = 1.0):
        self.task, self.classes, self.name = task, classes, name
        self.mean, self.std = mean, std

    def fit_scale(self, y: pd.Series) -> "TargetEncoder":
        """Standardise a regression target with these (training) rows' statistics."""
        if self.task == "regression":
            values = pd.to_numeric(y).to_numpy(dtype=float)
            self.mean = float(values.mean())
            self.std = float(values.std()) or 1.0
        return self

    @classmethod
    def fit(cls, y: pd.Series, task: str) -> "TargetEncoder":
        name = str(y.name)
        if task == "classification":
            values = y.dropna()
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                as_float = values.to_numpy(dtype=float)
                if np.all(np.mod(as_float, 1) == 0):
                    values = values.astype("int64")
            classes = sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v))
            classes = [_native(c) for c in classes]
            if len(classes) < 2:
                raise DataError(
                    f"target {name!r} has only one class ({classes[0]!r} in every row); "
                    "classification needs at least two classes"
                )
            return cls(task, classes, name)
        if task == "regression":
            numeric = pd.to_numeric(y, errors="coerce")
            bad = y[numeric.isna() & y.notna()]
            if len(bad):
                raise DataError(
                    f"target {name!r} has non-numeric values (e.g. {bad.iloc[0]!r}) and cannot be a "
                    "regression target; use task=classification, or a numeric column"
                )
            return cls(task, None, name)
        return cls(task, None, name)

    def encode(self, y: pd.Series) -> np.ndarray:
        if self.task == "classification":
            index = {c: i for i, c in enumerate(self.classes)}
            values = y.to_numpy()
            if pd.api.types.is_numeric_dtype(y) and all(isinstance(c, int) for c in self.classes):
                values = values.astype("int64")
            return np.array([index[_native(v)] for v in values], dtype=np.int64)
        return ((pd.to_numeric(y).to_numpy(dtype=float) - self.mean) / self.std).astype(np.float32)

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(self.classes, dtype=object)[np.asarray(encoded, dtype=int)]
        return np.asarray(encoded, dtype=float).reshape(-1) * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "classes": self.classes, "name": self.name, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TargetEncoder":
        return cls(d["task"], d.get("classes"), d.get("name", "target"), d.get("mean", 0.0), d.get("std", 1.0))


def _native(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def drop_missing_target(ds: Dataset) -> Dataset:
    missing = ds.y.isna()
    if missing.all():
        raise DataError(f"target {ds.y.name!r} is empty in every row")
    if missing.any():
        log.warning("dropping %d rows whose target %r is missing", int(missing.sum()), ds.y.name)
        ds.X, ds.y = ds.X[~missing.to_numpy()], ds.y[~missing.to_numpy()]
    return ds


# -- splits -------------------------------------------------------------------------------
@dataclass
class Parts:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _strata(y: np.ndarray | None, task: str) -> np.ndarray | None:
    """Stratification labels; classes too rare to stratify are pooled so splitting never fails."""
    if task != "classification" or y is None:
        return None
    values, counts = np.unique(y, return_counts=True)
    rare = set(values[counts < 3].tolist())
    strata = np.array([-1 if v in rare else v for v in y])
    _, pooled = np.unique(strata, return_counts=True)
    return strata if pooled.min() >= 2 else None


def split_indices(y: np.ndarray | None, n: int, task: str, test_size: float, val_size: float,
                  seed: int) -> Parts:
    from sklearn.model_selection import train_test_split

    if n < 10:
        raise DataError(f"the dataset has {n} usable rows; at least 10 are needed to train and evaluate")
    for name, size in (("test_size", test_size), ("val_size", val_size)):
        if not 0 < size < 0.5:
            raise DataError(f"data.{name}={size} is out of range; expected a fraction in (0, 0.5)")
    idx = np.arange(n)
    rest, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=_strata(y, task))
    ry = None if y is None else y[rest]
    train, val = train_test_split(rest, test_size=val_size / (1 - test_size), random_state=seed,
                                  stratify=_strata(ry, task))
    return Parts(train=np.sort(train), val=np.sort(val), test=np.sort(test))


def cv_folds(y: np.ndarray | None, indices: np.ndarray, task: str, k: int, seed: int
             ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """k (train, validation) folds over `indices`, stratified for classification."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if k < 2:
        raise DataError(f"trainer.cv_folds={k} is invalid; expected an integer >= 2 (or null for no CV)")
    strata = _strata(None if y is None else y[indices], task)
    if strata is not None and np.unique(strata, return_counts=True)[1].min() >= k:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = splitter.split(indices, strata)
    else:
        folds = KFold(n_splits=k, shuffle=True, random_state=seed).split(indices)
    for tr, va in folds:
        yield indices[tr], indices[va]


def make_splits(X: np.ndarray, y: np.ndarray | None, parts: Parts, schema: DataSchema) -> Splits:
    take = (lambda a, i: None if a is None else a[i])
    return Splits(X[parts.train], take(y, parts.train), X[parts.val], take(y, parts.val),
                  X[parts.test], take(y, parts.test), schema)


def synthetic_splits(n: int = 200, features: int = 4, classes: int = 2, seed: int = 0) -> Splits:
    """Small ready-made splits (health checks, API examples)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features)).astype(np.float32)
    if classes:
        y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) % classes
        schema = DataSchema("classification", features, [f"x{i}" for i in range(features)], list(range(classes)))
    else:
        y = (X @ rng.normal(size=features)).astype(np.float32)
        schema = DataSchema("regression", features, [f"x{i}" for i in range(features)])
    parts = Parts(np.arange(0, n // 2), np.arange(n // 2, 3 * n // 4), np.arange(3 * n // 4, n))
    return make_splits(X, y, parts, schema)
