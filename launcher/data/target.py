"""The target column: which task it asks for, and its encoding to model targets and back."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from launcher.core.errors import ConfigError, DataError
from launcher.data.audit import MOSTLY_NUMERIC, Note, quoted
from launcher.data.dataset import Dataset
from launcher.io import looks_like_number

# A numeric target with at most this many distinct integer values is taken as classes.
MAX_INFERRED_CLASSES = 20
# At least this many classes, more than half of them seen once, is not a classification target.
IMPLAUSIBLE_CLASSES = 10
# data.normalize_labels: what makes two spellings of a class label the same class.
#   keep      the labels as written
#   strip     surrounding spaces removed ('yes ' is 'yes'): a spreadsheet's stray space never
#             means another class (the default)
#   casefold  also case ('Yes' is 'yes'): opt-in, since some codes are classes by case ('A'/'a')
LABEL_MODES = ("keep", "strip", "casefold")


def infer_task(y: pd.Series) -> tuple[str, str]:
    """(task, why): classification for text, booleans and a few distinct whole numbers;
    regression for other numbers."""
    values = y.dropna()
    name = repr(str(y.name))
    if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == bool \
            or pd.api.types.is_string_dtype(values.dtype):
        return "classification", f"target {name} holds labels ({values.nunique()} distinct)"
    integral = np.all(np.mod(values.to_numpy(dtype=float), 1) == 0)
    distinct = values.nunique()
    if integral and distinct <= MAX_INFERRED_CLASSES:
        return "classification", (f"target {name} holds {distinct} distinct whole numbers (at most "
                                  f"{MAX_INFERRED_CLASSES} are read as classes; task=regression to predict numbers)")
    return "regression", f"target {name} is numeric with {distinct} distinct values"


def clean_target(y: pd.Series) -> tuple[pd.Series, list[Note]]:
    """A number column with a few words in it ("unknown", "-", "?") and infinite values: those
    become missing (their rows are left out), each with a note. Labels stay as they are."""
    notes: list[Note] = []
    name = str(y.name)
    present = y.dropna()
    if not pd.api.types.is_numeric_dtype(y) and not present.empty:
        numbers = pd.to_numeric(present, errors="coerce")
        if numbers.notna().mean() >= MOSTLY_NUMERIC:
            tokens = present[numbers.isna()]
            y = pd.to_numeric(y, errors="coerce").rename(y.name)
            if len(tokens):
                notes.append(Note("target", [name], f"target {name!r}: {len(tokens)} non-numeric value(s) treated "
                                                    f"as missing: {quoted(sorted(tokens.astype(str).unique().tolist()))}"))
    if pd.api.types.is_float_dtype(y):
        infinite = np.isinf(y.to_numpy())
        if infinite.any():
            y = y.mask(infinite)
            notes.append(Note("target", [name], f"target {name!r}: {int(infinite.sum())} infinite value(s) treated "
                                                "as missing"))
    return y, notes


def label_mode(value: Any) -> str:
    mode = "keep" if value is None else str(value)
    if mode not in LABEL_MODES:
        raise ConfigError(f"data.normalize_labels={value!r} is not one of: {', '.join(LABEL_MODES)} (strip: "
                          "surrounding spaces; casefold: spaces and case)")
    return mode


def label_key(value: Any, mode: str) -> Any:
    """The form under which two spellings of a label are one class."""
    if not isinstance(value, str) or mode == "keep":
        return value
    return value.strip().casefold() if mode == "casefold" else value.strip()


def normalize_labels(y: pd.Series, mode: str) -> tuple[pd.Series, list[Note]]:
    """Class labels that differ only by surrounding spaces (and, for casefold, by case) become
    one class, spelled as its most frequent spelling; a note says which were merged, and
    another which labels still differ only so and stay separate classes."""
    if not (y.dtype == object or pd.api.types.is_string_dtype(y.dtype)):
        return y, []  # numbers, booleans: no spellings
    texts = y[y.map(lambda v: isinstance(v, str))]
    if texts.empty:
        return y, []
    name, notes = str(y.name), []
    counts = texts.value_counts()
    by_count = sorted(counts.index, key=lambda v: (-counts[v], v))
    spelling: dict[Any, str] = {}  # key -> the class's spelling: the most frequent one, trimmed
    for label in by_count:
        spelling.setdefault(label_key(label, mode), label.strip() if mode != "keep" else label)
    mapping = {label: spelling[label_key(label, mode)] for label in by_count}
    merged = {label: to for label, to in mapping.items() if label != to}
    if merged:
        how = "surrounding spaces" + (" or case" if mode == "casefold" else "")
        notes.append(Note("target", [name], f"target {name!r}: {len(merged)} label spelling(s) differing only by "
                                            f"{how} read as one class (data.normalize_labels={mode}): "
                                            + quoted([f"{a!r} -> {b!r}" for a, b in sorted(merged.items())], show=str)))
        y = y.map(lambda v: mapping.get(v, v) if isinstance(v, str) else v).rename(y.name)
    alike: dict[str, list[str]] = {}
    for label in sorted(set(mapping.values())):
        alike.setdefault(label.strip().casefold(), []).append(label)
    separate = [group for group in alike.values() if len(group) > 1]
    if separate:
        spaces_only = all(len({label.strip() for label in group}) == 1 for group in separate)
        notes.append(Note("target", [name], f"target {name!r}: labels differing only by surrounding spaces or case "
                                            "are separate classes: "
                                            + "; ".join(" / ".join(map(repr, group)) for group in separate)
                                            + "; if they are one class, set data.normalize_labels="
                                            + ("strip" if spaces_only else "casefold")))
    return y, notes


class TargetEncoder:
    """Maps a raw target to model targets and back; its state is JSON.

    Classes become indices into `classes`. A regression target is standardised with the
    training rows' mean and spread, so every model (an SVR, a network) sees a well-scaled
    target; predictions are mapped back before any metric or output file sees them.
    """

    def __init__(self, task: str, classes: list[Any] | None = None, name: str = "target",
                 mean: float = 0.0, std: float = 1.0, labels: str = "keep"):
        self.task, self.classes, self.name = task, classes, name
        self.mean, self.std = mean, std
        self.labels = labels  # data.normalize_labels: a raw label is looked up as training read it

    def fit_scale(self, y: pd.Series) -> "TargetEncoder":
        """Standardise a regression target with these (training) rows' statistics."""
        if self.task == "regression":
            values = pd.to_numeric(y).to_numpy(dtype=float)
            self.mean = float(values.mean())
            self.std = float(values.std()) or 1.0
        return self

    @classmethod
    def fit(cls, y: pd.Series, task: str, labels: str = "keep") -> "TargetEncoder":
        """`labels`: how the labels were normalised (normalize_labels), recorded so that raw
        labels met later (a labelled file to score) map to the same classes."""
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
            counts = values.value_counts()
            once = int((counts == 1).sum())
            # Many classes, most seen once: a number or an identifier read as labels.
            if len(classes) >= IMPLAUSIBLE_CLASSES and once > len(classes) / 2:
                raise DataError(
                    f"target {name!r} has {len(classes)} classes in {len(values)} rows and {once} of them appear "
                    "once: that is not a set of class labels; if it is a number to predict use task=regression, "
                    "if it is an identifier choose another data.target"
                )
            return cls(task, classes, name, labels=labels)
        if task == "regression":
            numeric = pd.to_numeric(y, errors="coerce")
            bad = y[numeric.isna() & y.notna()]
            if len(bad) and all(looks_like_number(v) for v in bad):
                raise DataError(
                    f"target {name!r} holds numbers written with separators in more than one way (e.g. "
                    f"{bad.iloc[0]!r}), so not every value could be read as a number; write the column's "
                    "numbers one way (one decimal mark, one thousands separator or none), or set data.decimal "
                    "to the file's decimal mark"
                )
            if len(bad):
                raise DataError(
                    f"target {name!r} has non-numeric values (e.g. {bad.iloc[0]!r}) and cannot be a "
                    "regression target; use task=classification, or a numeric column"
                )
            return cls(task, None, name)
        return cls(task, None, name)

    def encode(self, y: pd.Series) -> np.ndarray:
        if self.task == "classification":
            index = {label_key(c, self.labels): i for i, c in enumerate(self.classes)}
            values = y.to_numpy()
            if pd.api.types.is_numeric_dtype(y) and all(isinstance(c, int) for c in self.classes):
                values = values.astype("int64")
            return np.array([index[label_key(_native(v), self.labels)] for v in values], dtype=np.int64)
        return ((pd.to_numeric(y).to_numpy(dtype=float) - self.mean) / self.std).astype(np.float32)

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(self.classes, dtype=object)[np.asarray(encoded, dtype=int)]
        return np.asarray(encoded, dtype=float).reshape(-1) * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "classes": self.classes, "name": self.name, "mean": self.mean, "std": self.std,
                "labels": self.labels}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TargetEncoder":
        return cls(d["task"], d.get("classes"), d.get("name", "target"), d.get("mean", 0.0), d.get("std", 1.0),
                   d.get("labels", "keep"))


def _native(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def drop_missing_target(ds: Dataset) -> Dataset:
    missing = ds.y.isna()
    if missing.all():
        raise DataError(f"target {ds.y.name!r} is empty in every row")
    if missing.any():
        ds.notes.append(Note("target", [str(ds.y.name)], f"left out {int(missing.sum())} row(s) whose target "
                                                         f"{ds.y.name!r} is missing"))
        ds.X, ds.y = ds.X[~missing.to_numpy()], ds.y[~missing.to_numpy()]
    return ds


