"""One metric vocabulary for every framework, computed from predictions.

"accuracy" means the same thing whether PyTorch, Keras, Flax or scikit-learn produced the
predictions, because it is computed here and nowhere else.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from launcher.core.errors import ConfigError, one_of

# metric -> the direction an optimiser takes it in
DIRECTION = {
    "accuracy": "maximize", "balanced_accuracy": "maximize", "f1_macro": "maximize",
    "log_loss": "minimize", "roc_auc": "maximize",
    "r2": "maximize", "rmse": "minimize", "mae": "minimize",
    "silhouette": "maximize", "adjusted_rand": "maximize",
}
TASK_METRICS = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc"),
    "regression": ("r2", "rmse", "mae"),
    "clustering": ("silhouette", "adjusted_rand"),
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2", "clustering": "silhouette"}


def check_metric(task: str, metric: str | None, what: str = "task.metric") -> str:
    """`metric`, or the task's default; one that does not apply to the task is a ConfigError
    naming `what` set it."""
    metric = metric or DEFAULT_METRIC[task]
    if metric not in TASK_METRICS[task]:
        raise ConfigError(f"{what} {metric!r} does not apply to {task}; expected one of: "
                          f"{one_of(TASK_METRICS[task])}")
    return metric


def labels_from(task: str, output: np.ndarray) -> np.ndarray:
    """Class indices from probabilities; values and cluster ids pass through."""
    output = np.asarray(output)
    if task == "classification" and output.ndim == 2:
        return output.argmax(axis=1)
    return output.reshape(-1)


def compute(task: str, y_true: np.ndarray | None, output: np.ndarray,
            X: np.ndarray | None = None) -> dict[str, float]:
    """All metrics of `task` for model output (probabilities, values or cluster ids)."""
    import sklearn.metrics as skm

    output = np.asarray(output)
    out: dict[str, float] = {}
    if task == "classification":
        y_true = np.asarray(y_true).astype(int)
        pred = labels_from(task, output)
        out["accuracy"] = skm.accuracy_score(y_true, pred)
        out["balanced_accuracy"] = skm.balanced_accuracy_score(y_true, pred)
        out["f1_macro"] = skm.f1_score(y_true, pred, average="macro", zero_division=0)
        if output.ndim == 2:
            proba = np.clip(output, 1e-15, 1.0)
            proba = proba / proba.sum(axis=1, keepdims=True)
            labels = list(range(proba.shape[1]))
            out["log_loss"] = skm.log_loss(y_true, proba, labels=labels)
            if proba.shape[1] == 2 and len(np.unique(y_true)) == 2:
                out["roc_auc"] = skm.roc_auc_score(y_true, proba[:, 1])
    elif task == "regression":
        y_true = np.asarray(y_true, dtype=float)
        pred = output.reshape(-1).astype(float)
        if not np.all(np.isfinite(pred)):
            return {"r2": float("nan"), "rmse": float("nan"), "mae": float("nan")}
        out["r2"] = skm.r2_score(y_true, pred)
        out["rmse"] = math.sqrt(skm.mean_squared_error(y_true, pred))
        out["mae"] = skm.mean_absolute_error(y_true, pred)
    elif task == "clustering":
        ids = output.reshape(-1)
        if X is not None and 1 < len(np.unique(ids)) < len(ids):
            out["silhouette"] = skm.silhouette_score(X, ids)
        if y_true is not None:
            out["adjusted_rand"] = skm.adjusted_rand_score(np.asarray(y_true), ids)
    else:
        raise ConfigError(f"unknown task {task!r}; expected one of: {one_of(TASK_METRICS)}")
    return {k: float(v) for k, v in out.items()}


def summarize_folds(folds: list[dict[str, float]]) -> dict[str, Any]:
    """Mean and standard deviation of each metric over cross-validation folds."""
    keys = sorted({k for f in folds for k in f})
    summary: dict[str, Any] = {"folds": len(folds)}
    for k in keys:
        values = np.array([f[k] for f in folds if k in f], dtype=float)
        summary[f"{k}_mean"] = float(values.mean())
        summary[f"{k}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return summary
