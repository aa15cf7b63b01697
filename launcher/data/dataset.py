"""A loaded dataset: raw features and raw target, with what loading did to them.

Its own module because both the sources (which make one) and the target's handling (which
drops rows of one) use it; neither imports the other's module for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from launcher.data.audit import Note


@dataclass
class Dataset:
    name: str
    X: pd.DataFrame
    y: pd.Series | None
    task: str  # as declared by the source: classification | regression | auto
    shape: tuple[int, ...] | None = None
    synthetic: bool = False
    # What loading did that the user did not ask for by name (data.audit), for the run's log
    # and records; and the columns left out of the features, with why.
    notes: list[Note] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    read: dict[str, Any] | None = None  # how a file was read (io.TableFormat)
    # How class labels were normalised (data.normalize_labels): the target encoding applies
    # the same to any raw label it meets later.
    labels: str = "keep"
