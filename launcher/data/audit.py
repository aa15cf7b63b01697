"""What the launcher does to a user's table that the user did not ask for by name, done in one
place and reported: nothing changes silently.

    empty columns        no value in any row: dropped
    constant columns     one value in every row: dropped (nothing to learn from)
    ID-like columns      unique per row (or nearly): excluded from the features, kept for
                         predict's output (an identifier joins predictions back to rows)
    numeric with tokens  a number column with a few words in it ("unknown", "-", "?"): the
                         words become missing values
    infinite values      treated as missing

Each rule produces a `Note`: one warning line in the run's log, and a record in metrics.json
and the model's metadata.json. Applied to files (data=csv); the built-in datasets are clean, and
a table with a declared shape (data.shape) keeps every column, since the shape counts them.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from launcher.data.preprocessing import looks_like_dates

# ID-like needs enough rows to tell an identifier from a small table's distinct values.
MIN_ROWS_FOR_ID = 20
NEARLY_UNIQUE = 0.95  # share of distinct values among the present ones
MOSTLY_NUMERIC = 0.95  # share of values that parse as numbers for a column to be a number column
ID_NAME = re.compile(r"(^|[\s_.\-])(id|uuid|guid|key|index|no)$|^(id|uuid|guid)([\s_.\-]|$)|[a-z]Id$", re.IGNORECASE)


@dataclass
class Note:
    kind: str  # read | dropped | excluded | coerced | infinite | dates | target
    columns: list[str]
    message: str
    # Columns left out of the features, with why (dropped or excluded).
    excluded: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quoted(values: list[Any], most: int = 5, show: Any = repr) -> str:
    shown = ", ".join(show(v) for v in values[:most])
    return shown + (f" and {len(values) - most} more" if len(values) > most else "")


def audit(X: pd.DataFrame) -> tuple[pd.DataFrame, list[Note]]:
    """The feature table with the rules above applied, and a note for each rule that fired."""
    notes: list[Note] = []
    X = X.copy()
    empty = [c for c in X.columns if X[c].isna().all()]
    if empty:
        notes.append(Note("dropped", empty, f"dropped {len(empty)} empty column(s) (no value in any row): "
                                            f"{quoted(empty)}", {c: "empty" for c in empty}))
    rest = [c for c in X.columns if c not in empty]
    constant = [c for c in rest if X[c].nunique(dropna=False) == 1]
    if constant:
        notes.append(Note("dropped", constant, f"dropped {len(constant)} constant column(s) (one value in every "
                                               f"row): {quoted(constant)}", {c: "constant" for c in constant}))
    rest = [c for c in rest if c not in constant]
    for c in rest:
        note = _numeric_with_tokens(X, c)
        if note:
            notes.append(note)
    ids = {c: reason for c in rest if (reason := id_like(X[c], c))}
    if ids:
        notes.append(Note("excluded", list(ids), "excluded ID-like column(s) from the features: "
                          + "; ".join(f"{c!r} ({reason})" for c, reason in ids.items())
                          + " (kept for predict's output; data.drop lists columns to ignore yourself)",
                          {c: f"ID-like: {reason}" for c, reason in ids.items()}))
    for c in rest:
        if c in ids:
            continue
        note = infinite_to_missing(X, c)
        if note:
            notes.append(note)
    drop = empty + constant + list(ids)
    return X.drop(columns=drop), notes


def id_like(col: pd.Series, name: str) -> str | None:
    """Why a column looks like an identifier, or None. Text unique per row (or nearly), or whole
    numbers unique per row that count up (1, 2, 3 ...) or carry an ID-like name."""
    values = col.dropna()
    if len(col) < MIN_ROWS_FOR_ID or values.empty:
        return None
    distinct = values.nunique()
    share = distinct / len(values)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float)
        if distinct < len(values) or not np.all(np.isfinite(numbers)) or not np.all(np.mod(numbers, 1) == 0):
            return None
        counts_up = numbers.max() - numbers.min() + 1 <= 1.05 * distinct
        if counts_up or ID_NAME.search(str(name)):
            return "unique whole numbers in every row" + (", counting up" if counts_up else "")
        return None
    if share < NEARLY_UNIQUE or _looks_numeric(values) or looks_like_dates(values):
        return None
    return "unique in every row" if distinct == len(values) else f"unique in {share:.0%} of rows"


def _looks_numeric(values: pd.Series) -> bool:
    return bool(pd.to_numeric(values, errors="coerce").notna().mean() >= MOSTLY_NUMERIC)


def _numeric_with_tokens(X: pd.DataFrame, c: str) -> Note | None:
    """A text column whose values are numbers but for a few words: the words become missing."""
    col = X[c]
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return None
    present = col.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    if present.empty or numbers.notna().mean() < MOSTLY_NUMERIC:
        return None
    tokens = present[numbers.isna()]
    X[c] = pd.to_numeric(col, errors="coerce")
    if tokens.empty:
        return None
    return Note("coerced", [c], f"column {c!r}: {len(tokens)} non-numeric value(s) in a number column treated "
                                f"as missing: {quoted(sorted(tokens.astype(str).unique().tolist()))}")


def infinite_to_missing(X: pd.DataFrame, c: str, what: str = "column") -> Note | None:
    col = X[c]
    if not pd.api.types.is_float_dtype(col):
        return None
    infinite = np.isinf(col.to_numpy())
    if not infinite.any():
        return None
    X[c] = col.mask(infinite)
    return Note("infinite", [c], f"{what} {c!r}: {int(infinite.sum())} infinite value(s) treated as missing")
