"""Where a dataset comes from: scikit-learn's built-in datasets, a user's CSV, synthetic data."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from launcher.core.errors import DataError, one_of
from launcher.data.audit import Note, audit
from launcher.data.dataset import Dataset
from launcher.data.target import clean_target, label_mode, normalize_labels
from launcher.io import Table, read_table

BUILTIN = ("iris", "wine", "breast_cancer", "digits", "diabetes")


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


def _option(cfg: Any, key: str) -> str | None:
    value = cfg.get(key)
    return None if value in (None, "", "auto") else str(value)


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


def _required(cfg: Any, key: str, example: str) -> str:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg) and OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
        raise DataError(f"data=csv needs data.{key}; add e.g. data.{key}={example}")
    return str(cfg.get(key))


def _load_csv(cfg: Any) -> Dataset:
    from launcher.core.paths import original_cwd

    path = Path(_required(cfg, "path", "churn.csv")).expanduser()
    target = _required(cfg, "target", "churned")
    if not path.is_absolute():
        path = original_cwd() / path
    table = read_table(path, "CSV file", "data.path", sep=_option(cfg, "sep"), encoding=_option(cfg, "encoding"),
                       decimal=_option(cfg, "decimal"), options="data.sep / data.encoding / data.decimal")
    frame = table.frame
    notes = [Note("read", [], note) for note in table.notes]
    if frame.empty:
        raise DataError(f"CSV file {path} has a header but no rows; it needs at least 10 data rows")
    if target not in frame.columns:
        raise DataError(
            f"target column {target!r} is not in {path.name}; set data.target to one of: "
            + ", ".join(repr(c) for c in frame.columns)
        )
    drop = [str(c) for c in (cfg.get("drop") or [])]
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise DataError(f"data.drop names columns not in {path.name}: {unknown}")
    _refuse_target_copies(table, target, drop, path)
    labels = label_mode(cfg.get("normalize_labels", "strip"))
    X = frame.drop(columns=[target, *drop])
    y, target_notes = clean_target(frame[target])
    y, label_notes = normalize_labels(y, labels)
    notes += target_notes + label_notes
    excluded = {c: "data.drop" for c in drop}
    if not cfg.get("shape"):  # a declared shape counts the columns: keep them all
        X, audit_notes = audit(X)
        notes += audit_notes
        for note in audit_notes:
            excluded.update(note.excluded)
    if X.shape[1] == 0:
        raise DataError(f"{path.name} has no usable feature columns besides the target {target!r}"
                        + (f" (left out: {excluded})" if excluded else ""))
    return Dataset(name=path.stem, X=X, y=y, task=str(cfg.get("task") or "auto"), notes=notes,
                   excluded=excluded, read=table.format.to_dict(), labels=labels)


def _refuse_target_copies(table: Table, target: str, drop: list[str], path: Path) -> None:
    """A header that names two columns like the target leaves one of them among the features:
    the answer in the inputs. Refused unless data.drop sets the others aside."""
    for name, columns in table.duplicates.items():
        others = [c for c in columns if c != target and c not in drop]
        if target in columns and others:
            where = ", ".join(f"column {table.frame.columns.get_loc(c) + 1} (read as {c!r})" for c in columns)
            raise DataError(f"{path.name} has {len(columns)} columns named {name!r}: {where}; the target "
                            f"{target!r} would have its namesake {others[0]!r} among the features. Rename one of "
                            f"them in the file, or set data.drop=[{','.join(others)}] if "
                            f"{'it is' if len(others) == 1 else 'they are'} not the target")


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
    return Dataset(name="synthetic", X=pd.DataFrame(X, columns=cols), y=pd.Series(y, name="target"), task=task,
                   synthetic=True)
