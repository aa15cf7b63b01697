"""What a planner may know about a dataset: counts and shares, never the cells.

A profile holds rows, columns, the kinds of columns (numeric, categorical, date, ID-like),
the share of missing cells, the target's classes and imbalance (or its spread), and an image
shape when the data declares one. Column names reach it only quoted, stripped of control
characters and truncated (`safe_name`), because a planner may be an LLM and a column name is
text somebody else wrote.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_NAME = 40
MAX_COLUMNS_LISTED = 60
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def safe_name(name: Any) -> str:
    """A column name as data: control characters removed, at most 40 characters, quoted."""
    text = _CONTROL.sub(" ", str(name)).strip()
    text = re.sub(r"\s+", " ", text)
    if len(text) > MAX_NAME:
        text = text[: MAX_NAME - 1] + "…"
    return repr(text)


@dataclass
class DatasetProfile:
    rows: int
    columns: int  # features, the target excluded
    numeric: int = 0
    categorical: int = 0
    dates: int = 0
    empty: int = 0  # features with no value at all (the column audit normally drops them first)
    id_like: int = 0  # set aside, not features
    dropped: int = 0  # set aside, not features: data.drop, empty or constant columns
    missing_share: float = 0.0
    task: str | None = None  # what the data says, when a target is given
    classes: int | None = None
    majority_share: float | None = None  # classification: share of the largest class
    minority_share: float | None = None
    target_skew: float | None = None  # regression
    image_shape: list[int] | None = None
    categorical_levels: int = 0  # distinct values over all categorical columns
    column_names: list[str] = field(default_factory=list)  # safe_name()d
    synthetic: bool = False
    source: str = ""

    @property
    def imbalance(self) -> float | None:
        if self.majority_share and self.minority_share:
            return self.majority_share / self.minority_share
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["imbalance"] = self.imbalance
        return d

    def summary(self) -> str:
        """One line; its counts add up: the feature kinds to the feature columns, and the
        columns set aside (ID-like, dropped) are counted apart, as what they are: not features."""
        kinds = [f"{self.numeric} numeric", f"{self.categorical} categorical", _count(self.dates, "date")]
        kinds += [f"{self.empty} empty"] if self.empty else []
        parts = [f"{self.rows} rows", f"{_count(self.columns, 'feature column')} ({', '.join(kinds)})"]
        aside = self.id_like + self.dropped
        if aside:
            why = [f"{self.id_like} ID-like"] * bool(self.id_like) + [f"{self.dropped} dropped"] * bool(self.dropped)
            parts.append(f"{_count(aside, 'column')} set aside as not features ({', '.join(why)})")
        parts.append(f"{self.missing_share:.1%} missing")
        if self.classes and self.majority_share is not None and self.minority_share is not None:
            parts.append(f"{self.classes} classes (largest {self.majority_share:.0%}, smallest "
                         f"{self.minority_share:.1%})")
        elif self.classes:
            parts.append(f"{self.classes} classes")
        if self.image_shape:
            parts.append(f"image shape {self.image_shape}")
        if self.synthetic:
            parts.append("synthetic data")
        return ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def profile_dataset(dataset: Any, task: str | None = None) -> DatasetProfile:
    """The profile of a loaded launcher.data.Dataset (its features after the column audit)."""
    import pandas as pd

    from launcher.data.preprocessing import Preprocessor, looks_like_dates

    X, y = dataset.X, dataset.y
    numeric = categorical = dates = levels = empty = 0
    for name in X.columns:
        col = X[name]
        if col.isna().all():
            empty += 1
            continue
        kind = Preprocessor._kind(col)
        if kind == "numeric":
            numeric += 1
        elif kind == "datetime" or looks_like_dates(col.dropna()):
            dates += 1
        else:
            categorical += 1
            levels += int(col.nunique())
    excluded = dataset.excluded or {}
    profile = DatasetProfile(
        rows=len(X), columns=X.shape[1], numeric=numeric, categorical=categorical, dates=dates, empty=empty,
        id_like=sum(1 for why in excluded.values() if why.startswith("ID-like")),
        dropped=sum(1 for why in excluded.values() if not why.startswith("ID-like")),
        missing_share=float(X.isna().to_numpy().mean()) if X.size else 0.0,
        image_shape=list(dataset.shape) if dataset.shape else None, categorical_levels=levels,
        column_names=[safe_name(c) for c in list(X.columns)[:MAX_COLUMNS_LISTED]],
        synthetic=bool(getattr(dataset, "synthetic", False)), source=str(dataset.name),
    )
    if y is not None:
        values = y.dropna()
        if task is None:
            from launcher.data import infer_task

            task = infer_task(values)[0] if dataset.task not in ("classification", "regression") else dataset.task
        profile.task = task
        if task == "classification":
            shares = values.value_counts(normalize=True)
            profile.classes = int(len(shares))
            profile.majority_share = float(shares.iloc[0])
            profile.minority_share = float(shares.iloc[-1])
        elif task == "regression":
            numbers = pd.to_numeric(values, errors="coerce").dropna()
            skew = float(numbers.skew()) if len(numbers) > 2 else 0.0
            profile.target_skew = skew if math.isfinite(skew) else None
    return profile


def profile_from_shape(size: int, features: int, classes: int | None) -> DatasetProfile:
    """A profile from only a dataset's shape ({"size", "features", "classes"}): planning works,
    and a run uses synthetic data of that shape."""
    return DatasetProfile(rows=int(size), columns=int(features), numeric=int(features),
                          task="classification" if classes else "regression",
                          classes=int(classes) if classes else None,
                          majority_share=1 / classes if classes else None,
                          minority_share=1 / classes if classes else None,
                          synthetic=True, source="synthetic")
