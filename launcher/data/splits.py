"""Seeded, stratified splits into train / validation / test, and cross-validation folds."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from launcher.core.errors import DataError
from launcher.core.types import DataSchema, Splits


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
        if not 0 <= size < 0.5:
            raise DataError(f"data.{name}={size} is out of range; expected a fraction in [0, 0.5) (0: no such "
                            "split: evaluate on a separate file, or select by cross-validation)")
    idx = np.arange(n)
    empty = np.array([], dtype=idx.dtype)
    if test_size > 0:
        rest, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=_strata(y, task))
    else:
        rest, test = idx, empty
    if val_size > 0:
        ry = None if y is None else y[rest]
        train, val = train_test_split(rest, test_size=val_size / (1 - test_size), random_state=seed,
                                      stratify=_strata(ry, task))
    else:
        train, val = rest, empty
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
