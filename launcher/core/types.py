"""The data types that cross between layers: what a model needs to know about the data, the
splits it trains on, what a fit did, and what a framework can do here.

Plain dataclasses with JSON round trips, so they travel into run records and saved models.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

TASKS = ("classification", "regression", "clustering")

# report(epoch, metrics) is how a training loop tells a sweep about each finished epoch; it may
# raise optuna.TrialPruned, which the loop lets through.
Report = Callable[[int, Mapping[str, float]], None]


@dataclass
class DataSchema:
    """What a model needs to know about the data, after preprocessing."""

    task: str
    n_features: int
    feature_names: list[str] = field(default_factory=list)
    classes: list[Any] | None = None  # original class labels, index = encoded label
    input_shape: tuple[int, ...] | None = None  # declared per-sample shape, e.g. (1, 8, 8)
    # Columns holding category codes (0, 1, ...; NaN: missing or unseen) for a model that handles
    # categories itself (preprocessing categorical=native); None: every column is numeric.
    categorical_features: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape) if self.input_shape else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DataSchema":
        shape = d.get("input_shape")
        return cls(task=d["task"], n_features=int(d["n_features"]),
                   feature_names=list(d.get("feature_names") or []),
                   classes=d.get("classes"), input_shape=tuple(shape) if shape else None,
                   categorical_features=d.get("categorical_features"))

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0

    @property
    def n_outputs(self) -> int:
        """Width of a network's last layer."""
        return self.n_classes if self.task == "classification" else 1


@dataclass
class Splits:
    """Preprocessed float32 features and encoded targets.

    Classification targets are int64 class indices into `schema.classes`; regression targets
    are float32 (standardised by the data layer); clustering targets are the known labels as
    indices, or None.
    """

    X_train: np.ndarray
    y_train: np.ndarray | None
    X_val: np.ndarray
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray | None
    schema: DataSchema
    # Regression: the target's standard deviation in its own units (y is standardised), so a
    # loop can report an error such as RMSE in the target's units. 1.0 otherwise.
    target_scale: float = 1.0


@dataclass
class History:
    """What a fit did: one dict of metrics per epoch (empty for one-shot estimators)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    device: str = "cpu"
    best_epoch: int | None = None
    # Adapter-specific facts for the run record (precision, threads, checkpoints, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    # False on every process but the first of a multi-process (multi-GPU) fit: only the
    # first writes the model, metrics and plots.
    writer: bool = True


@dataclass
class FrameworkStatus:
    name: str
    installed: bool
    enabled: bool = True
    version: str | None = None
    devices: list[str] = field(default_factory=list)
    healthy: bool | None = None  # None: no health check was asked for
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
