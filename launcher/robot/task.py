"""A task as a person states it: a description, the data (a real dataset, or only its shape),
requirements (a score to reach) and a time budget; and which kind of learning it asks for.

The task type comes from the data when a target is given (the data layer's rules: labels and a
few distinct whole numbers are classes, other numbers are regression), else from the
description's words; the reason is kept and printed, and `task=regression` (or
`task_type=...`) overrides it.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from launcher.core.errors import ConfigError, one_of
from launcher.core.types import TASKS
from launcher.metrics import DEFAULT_METRIC, DIRECTION

MAX_DESCRIPTION = 2000
# Words that say which kind of learning a description asks for (checked in this order).
TASK_WORDS = (
    ("clustering", r"\b(cluster|clusters|clustering|segment(?:ation)? without labels|group similar|unsupervised)\b"),
    ("regression", r"\b(regress\w*|predict(?:ing)? (?:the )?(?:amount|price|value|number|count|cost|revenue|sales|"
                   r"demand|temperature|age|score|duration|time|wage|salary|income)|forecast\w*|estimate\w* "
                   r"(?:the )?(?:amount|price|value|number|how (?:much|many))|how (?:much|many))\b"),
    ("classification", r"\b(classif\w*|categori[sz]\w*|detect\w*|churn|fraud|spam|diagnos\w*|yes or no|"
                       r"whether|which (?:class|category|type)|label\w*|recogni[sz]\w*|segments?)\b"),
)


# The values a metric can take: a requirement outside them was meant on another scale (95 for
# 0.95) or cannot be reached, and is refused rather than left to never stop the run.
METRIC_RANGE = {"accuracy": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0), "f1_macro": (0.0, 1.0),
                "roc_auc": (0.0, 1.0), "adjusted_rand": (-0.5, 1.0), "silhouette": (-1.0, 1.0),
                "r2": (-math.inf, 1.0), "log_loss": (0.0, math.inf), "rmse": (0.0, math.inf),
                "mae": (0.0, math.inf)}
# Requirement keys on time. The robot's budget bounds the whole command, training included, so a
# limit on training time is enforced as the budget (the smaller one wins).
TIME_KEYS = ("max_seconds", "time_budget", "max_training_time")


@dataclass
class Requirements:
    metric: str | None = None  # accuracy, r2, ... (None: the task's default)
    threshold: float | None = None  # the score to reach, in the metric's direction
    max_seconds: float | None = None  # the budget

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, budget: float | None = None) -> "Requirements":
        values = {k: v for k, v in dict(values or {}).items() if v is not None}
        metric, threshold = values.pop("metric", None), None
        for key in ("accuracy_threshold", "threshold"):
            if key in values:
                threshold = _number(values.pop(key), f"requirements.{key}")
        named = {k: values.pop(k) for k in [k for k in values if k in DIRECTION]}
        if len(named) > 1:
            raise ConfigError(f"requirements name several metrics {sorted(named)}; give one")
        if named:
            metric, value = next(iter(named.items()))
            threshold = _number(value, f"requirements.{metric}")
        if threshold is not None and metric is None:
            metric = "accuracy"  # accuracy_threshold, as people write it
        times = [_number(values.pop(k), f"requirements.{k}") for k in TIME_KEYS if k in values]
        if budget is not None:
            times.append(_number(budget, "budget"))
        unknown = sorted(values)
        if unknown:
            raise ConfigError(f"unknown requirement {unknown[0]!r}; expected a metric ({one_of(DIRECTION)}) with "
                              "its threshold, accuracy_threshold, or max_seconds (the budget)")
        if metric is not None and metric not in DIRECTION:
            raise ConfigError(f"requirements.metric={metric!r} is unknown; expected one of: {one_of(DIRECTION)}")
        if threshold is not None:
            low, high = METRIC_RANGE[metric]
            if not low <= threshold <= high:
                hint = (f"; a fraction is meant: requirements.{metric}={threshold / 100:g}"
                        if high == 1.0 and 1.0 < threshold <= 100 else "")
                raise ConfigError(f"requirements.{metric}={threshold:g} is outside what {metric} can be "
                                  f"([{low:g}, {high:g}]){hint}")
        return cls(metric, threshold, min(times) if times else None)

    def met(self, score: float | None) -> bool | None:
        if self.threshold is None or score is None:
            return None
        return score >= self.threshold if DIRECTION[self.metric] == "maximize" else score <= self.threshold


def _number(value: Any, what: str) -> float:
    """A number given as a number or as its text; anything else is one clear error."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}={value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{what}={value!r} is not a finite number")
    return number


@dataclass
class DatasetInfo:
    """A real dataset (builtin name, or a file and its target) or only a shape (synthetic)."""

    kind: str  # builtin | csv | shape
    name: str | None = None
    path: str | None = None
    target: str | None = None
    size: int | None = None
    features: int | None = None
    classes: int | None = None
    drop: list[str] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, info: Mapping[str, Any] | str | None) -> "DatasetInfo":
        from launcher.data import BUILTIN

        if isinstance(info, str):
            info = {"name": info} if info in BUILTIN else {"path": info}
        info = dict(info or {})
        if info.get("path"):
            if not info.get("target"):
                raise ConfigError("dataset_info with a path needs its target column: {'path': ..., 'target': ...}")
            return cls("csv", path=str(info["path"]), target=str(info["target"]), drop=list(info.get("drop") or []))
        if info.get("name"):
            if info["name"] not in BUILTIN:
                raise ConfigError(f"dataset_info name {info['name']!r} is not a built-in dataset; expected one of: "
                                  f"{one_of(BUILTIN)}, or a path and target")
            return cls("builtin", name=str(info["name"]))
        size = info.get("size") or info.get("rows") or info.get("n_samples")
        features = info.get("features") or info.get("n_features") or info.get("columns")
        if size and features:
            return cls("shape", size=int(size), features=int(features),
                       classes=int(info["classes"]) if info.get("classes") else None)
        raise ConfigError("dataset_info needs a dataset: {'path': 'data.csv', 'target': 'y'}, {'name': 'iris'}, or a "
                          "shape {'size': 5000, 'features': 25, 'classes': 4} (then synthetic data of that shape)")

    def describe(self) -> str:
        if self.kind == "csv":
            return f"{self.path} (target {self.target})"
        if self.kind == "builtin":
            return f"the built-in dataset {self.name}"
        return (f"SYNTHETIC data of the given shape ({self.size} rows, {self.features} features"
                + (f", {self.classes} classes" if self.classes else "") + "), not real data")

    def overrides(self) -> list[str]:
        """The launcher overrides that select this dataset, for composing a blueprint's check:
        the option and the generated shape, never the user's path or column names (those reach
        the emitted YAML only, escaped: see section)."""
        if self.kind == "csv":
            return ["data=csv"]
        if self.kind == "builtin":
            return [f"data={self.name}"]
        return ["data=synthetic", f"data.size={self.size}", f"data.features={self.features}",
                f"data.classes={self.classes or 0}"]

    def section(self) -> dict[str, Any]:
        """The data option and values an emitted experiment sets. The path, target and column
        names are the user's text: escaped so that OmegaConf keeps them as written and never
        resolves `${...}` in them (an environment variable's value must not leak)."""
        if self.kind == "csv":
            values: dict[str, Any] = {"path": literal(self.path), "target": literal(self.target)}
            if self.drop:
                values["drop"] = [literal(c) for c in self.drop]
            return {"option": "csv", "values": values}
        if self.kind == "builtin":
            return {"option": self.name}
        return {"option": "synthetic", "values": {"size": self.size, "features": self.features,
                                                  "classes": self.classes or 0}}


def literal(text: Any) -> str:
    """`text` as an OmegaConf value that reads back as exactly `text` (no interpolation)."""
    return str(text).replace("${", "\\${")


@dataclass
class MLTask:
    description: str
    dataset: DatasetInfo
    requirements: Requirements
    task_type: str  # classification | regression | clustering
    reason: str  # why that task type
    budget: float  # seconds for the whole robot run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def metric(self) -> str:
        return self.requirements.metric or DEFAULT_METRIC[self.task_type]


def clean_description(text: Any) -> str:
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", str(text or "")).strip()
    return text[:MAX_DESCRIPTION]


def type_from_description(description: str) -> tuple[str | None, str]:
    lowered = description.lower()
    for task, pattern in TASK_WORDS:
        found = re.search(pattern, lowered)
        if found:
            return task, f"the description says {found.group(0)!r}"
    return None, "the description names no kind of learning"


def resolve_task_type(explicit: str | None, description: str, data_task: str | None, data_reason: str | None,
                      classes_hint: int | None = None) -> tuple[str, str]:
    """(task type, why): an explicit choice, else the data's target, else the description."""
    if explicit and explicit != "auto":
        if explicit not in TASKS:
            raise ConfigError(f"task type {explicit!r} is unknown; expected one of: auto, {', '.join(TASKS)}")
        return explicit, "given"
    if data_task:
        return data_task, data_reason or "from the target column"
    from_words, why = type_from_description(description)
    if from_words:
        return from_words, why
    if classes_hint:
        return "classification", f"the dataset shape names {classes_hint} classes"
    return "classification", f"{why}; classification assumed (task_type=regression to change it)"
