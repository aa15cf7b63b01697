"""Feature preprocessing fitted on the training split and saved, as JSON, with the model.

Raw columns are typed once at fit time:
  numeric     -> median imputation (+ a missing indicator when train had gaps), standardised
  datetime    -> year, month, day, weekday, hour, days since 1970, then as numeric
  categorical -> one-hot of the categories seen at least `min_frequency` times in train
                 (at most `max_categories`), plus "missing"; unseen values get all zeros;
                 or, with categorical="native" (for models that split on categories
                 themselves: histogram gradient boosting), one column of category codes 0..k-1
                 (at most 250 categories), missing and unseen values NaN, not standardised
Standardising everything keeps one code path: tree models are indifferent to it, and linear
models, SVMs, kNN and networks need it. The state is plain JSON, so loading a model never
unpickles anything.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from launcher.core.errors import DataError

DATE_PARTS = ("year", "month", "day", "weekday", "hour", "epoch_days")


def looks_like_dates(values: pd.Series) -> bool:
    sample = values.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).mean() > 0.9:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() > 0.9


def _to_datetime(values: pd.Series) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values.astype("string"), errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_convert(None)


def _date_features(values: pd.Series) -> pd.DataFrame:
    dt = _to_datetime(values)
    epoch = (dt - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return pd.DataFrame({
        "year": dt.dt.year, "month": dt.dt.month, "day": dt.dt.day,
        "weekday": dt.dt.day_of_week, "hour": dt.dt.hour, "epoch_days": epoch,
    }).astype(float)


class Preprocessor:
    MODES = ("onehot", "native")
    NATIVE_MAX = 250  # HistGradientBoosting's categories must fit its 255 bins

    def __init__(self, min_frequency: int = 2, max_categories: int = 50, categorical: str = "onehot"):
        if categorical not in self.MODES:
            raise DataError(f"model.categorical={categorical!r} is unknown; expected one of: onehot, native")
        self.min_frequency = min_frequency
        self.max_categories = max_categories if categorical == "onehot" else self.NATIVE_MAX
        self.categorical = categorical
        self.columns: list[dict[str, Any]] = []
        self.input_columns: list[str] = []

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame) -> "Preprocessor":
        self.input_columns = [str(c) for c in X.columns]
        self.columns = []
        for name in self.input_columns:
            col = X[name]
            if col.isna().all():
                self.columns.append({"name": name, "kind": "dropped", "reason": "empty in every training row"})
                continue
            kind = self._kind(col)
            if kind == "numeric":
                self.columns.append(self._fit_numeric(name, pd.to_numeric(col, errors="coerce")))
            elif kind == "datetime":
                parts = _date_features(col)
                stats = [self._fit_numeric(f"{name}.{p}", parts[p]) for p in DATE_PARTS]
                self.columns.append({"name": name, "kind": "datetime", "parts": stats})
            else:
                self.columns.append(self._fit_categorical(name, col))
        if not self.feature_names:
            raise DataError("no usable feature columns: every column is empty in the training rows")
        return self

    @staticmethod
    def _kind(col: pd.Series) -> str:
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            return "numeric"
        if pd.api.types.is_datetime64_any_dtype(col):
            return "datetime"
        present = col.dropna()
        if pd.to_numeric(present, errors="coerce").notna().mean() > 0.95:
            return "numeric"
        return "datetime" if looks_like_dates(present) else "categorical"

    @staticmethod
    def _fit_numeric(name: str, values: pd.Series) -> dict[str, Any]:
        values = values.astype(float).replace([np.inf, -np.inf], np.nan)
        median = float(values.median()) if values.notna().any() else 0.0
        filled = values.fillna(median)
        std = float(filled.std(ddof=0))
        return {"name": name, "kind": "numeric", "median": median, "mean": float(filled.mean()),
                "std": std if std > 0 else 1.0, "indicator": bool(values.isna().any())}

    def _fit_categorical(self, name: str, col: pd.Series) -> dict[str, Any]:
        counts = col.dropna().astype(str).str.strip().value_counts()
        keep = counts[counts >= self.min_frequency].head(self.max_categories)
        if keep.empty:  # every value is rare (an id-like column): keep the most frequent few
            keep = counts.head(min(self.max_categories, 10))
        kind = "native" if self.categorical == "native" else "categorical"
        return {"name": name, "kind": kind, "categories": sorted(keep.index.tolist()),
                "missing": bool(col.isna().any())}

    # -- transform ---------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for c in self.columns:
            if c["kind"] == "numeric":
                names += [c["name"]] + ([f"{c['name']}.missing"] if c["indicator"] else [])
            elif c["kind"] == "datetime":
                for p in c["parts"]:
                    names += [p["name"]] + ([f"{p['name']}.missing"] if p["indicator"] else [])
            elif c["kind"] == "categorical":
                names += [f"{c['name']}={v}" for v in c["categories"]]
                names += [f"{c['name']}.missing"] if c["missing"] else []
            elif c["kind"] == "native":
                names.append(c["name"])
        return names

    @property
    def native_categorical(self) -> list[int]:
        """Output columns holding category codes (categorical="native")."""
        out, i = [], 0
        for c, width in zip(self.columns, self._widths()):
            if c["kind"] == "native":
                out.append(i)
            i += width
        return out

    def _widths(self) -> list[int]:
        widths = []
        for c in self.columns:
            if c["kind"] == "numeric":
                widths.append(1 + int(c["indicator"]))
            elif c["kind"] == "datetime":
                widths.append(sum(1 + int(p["indicator"]) for p in c["parts"]))
            elif c["kind"] == "categorical":
                widths.append(len(c["categories"]) + int(c["missing"]))
            elif c["kind"] == "native":
                widths.append(1)
            else:
                widths.append(0)
        return widths

    def check_columns(self, X: pd.DataFrame, allow: tuple[str, ...] = (), hint: str = "") -> None:
        given = [str(c) for c in X.columns]
        missing = [c for c in self.input_columns if c not in given]
        extra = [c for c in given if c not in self.input_columns and c not in allow]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing columns {missing}")
            if extra:
                parts.append(f"unexpected columns {extra}")
            raise DataError(
                f"the input does not match the training columns: {'; '.join(parts)}. "
                f"Expected: {self.input_columns}" + (f"; {hint}" if hint and extra else "")
            )

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        self.check_columns(X, allow=tuple(str(c) for c in X.columns if c not in self.input_columns))
        blocks: list[np.ndarray] = []
        for c in self.columns:
            if c["kind"] == "numeric":
                blocks += self._numeric(c, pd.to_numeric(X[c["name"]], errors="coerce"))
            elif c["kind"] == "datetime":
                parts = _date_features(X[c["name"]])
                for p, stat in zip(DATE_PARTS, c["parts"]):
                    blocks += self._numeric(stat, parts[p])
            elif c["kind"] == "categorical":
                values = X[c["name"]].astype("string").str.strip()
                for v in c["categories"]:
                    blocks.append((values == v).fillna(False).to_numpy(dtype=np.float32))
                if c["missing"]:
                    blocks.append(X[c["name"]].isna().to_numpy(dtype=np.float32))
            elif c["kind"] == "native":
                codes = {v: float(i) for i, v in enumerate(c["categories"])}
                values = X[c["name"]].astype("string").str.strip()
                blocks.append(values.map(codes).astype("float64").to_numpy(dtype=np.float32, na_value=np.nan))
        return np.column_stack(blocks).astype(np.float32) if blocks else np.zeros((len(X), 0), np.float32)

    @staticmethod
    def _numeric(stat: dict[str, Any], values: pd.Series) -> list[np.ndarray]:
        raw = values.astype(float).to_numpy()
        missing = ~np.isfinite(raw)  # an infinite value is treated as missing, as in training
        filled = np.where(missing, stat["median"], raw)
        out = [((filled - stat["mean"]) / stat["std"]).astype(np.float32)]
        if stat["indicator"]:
            out.append(missing.astype(np.float32))
        return out

    # -- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"input_columns": self.input_columns, "columns": self.columns, "categorical": self.categorical,
                "min_frequency": self.min_frequency, "max_categories": self.max_categories}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocessor":
        pre = cls(d.get("min_frequency", 2), d.get("max_categories", 50), d.get("categorical", "onehot"))
        pre.max_categories = d.get("max_categories", pre.max_categories)
        pre.input_columns, pre.columns = list(d["input_columns"]), list(d["columns"])
        return pre

    def describe(self) -> dict[str, list[str]]:
        """Raw column name -> kind, for run metadata and logs."""
        out: dict[str, list[str]] = {}
        for c in self.columns:
            out.setdefault("categorical" if c["kind"] == "native" else c["kind"], []).append(c["name"])
        return out
