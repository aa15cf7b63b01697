"""Run plots as PNG: the learning curve of an epoch-based fit, and a confusion matrix.

matplotlib is imported inside the functions, with the Agg backend (no display needed).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from launcher.core.types import History


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def learning_curve(history: History, path) -> Path | None:
    """Train/validation loss (left) and the validation metric(s) (right) per epoch.

    Returns the path written, or None when the history has no epochs."""
    epochs = [e for e in history.epochs if "epoch" in e]
    if not epochs:
        return None
    plt = _pyplot()
    x = [e["epoch"] for e in epochs]
    metric_keys = [k for k in dict.fromkeys(k for e in epochs for k in e)
                   if k.startswith("val_") and k != "val_loss"]
    fig, axes = plt.subplots(1, 2 if metric_keys else 1, figsize=(10 if metric_keys else 5.5, 4), squeeze=False)
    ax = axes[0][0]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        values = [_value(e, key) for e in epochs]
        if any(math.isfinite(v) for v in values):
            ax.plot(x, values, marker="o", markersize=3, label=label)
    ax.set(xlabel="epoch", ylabel="loss", title="loss")
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch, color="grey", linestyle=":", label=f"best (epoch {history.best_epoch})")
    ax.legend()
    ax.grid(alpha=0.3)
    if metric_keys:
        ax = axes[0][1]
        for key in metric_keys:
            ax.plot(x, [_value(e, key) for e in epochs], marker="o", markersize=3, label=key[4:])
        ax.set(xlabel="epoch", ylabel="validation metric", title="validation")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"learning curve ({history.device})", fontsize=10)
    return _save(plt, fig, path)


def _save(plt, fig, path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _value(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) else float("nan")


def confusion_matrix(y_true_idx: Sequence[int], y_pred_idx: Sequence[int], class_names: Sequence[Any], path) -> Path:
    """Counts of true (rows) against predicted (columns) class indices, annotated."""
    plt = _pyplot()
    names = [str(c) for c in class_names]
    k = len(names)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (np.asarray(y_true_idx, dtype=int), np.asarray(y_pred_idx, dtype=int)), 1)
    size = min(12.0, 2.5 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=[n[:12] for n in names], rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center")
    ax.set_yticks(range(k), labels=[n[:12] for n in names])
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix (accuracy {np.trace(counts) / max(1, counts.sum()):.3f})")
    if k <= 30:
        threshold = counts.max() / 2 if counts.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if counts[i, j] > threshold else "black")
    return _save(plt, fig, path)


def leaderboard(scores: Sequence[tuple[str, float]], metric: str, path) -> Path | None:
    """The best trials' scores as horizontal bars, best on top, coloured by model family."""
    if not scores:
        return None
    plt = _pyplot()
    scores = list(scores)[:15]
    families = sorted({name.split(" #")[0] for name, _ in scores})
    colors = {f: plt.cm.tab10(i % 10) for i, f in enumerate(families)}
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(scores) + 1.2))
    names = [n for n, _ in scores][::-1]
    values = [v for _, v in scores][::-1]
    ax.barh(names, values, color=[colors[n.split(" #")[0]] for n in names])
    low = min(values)
    ax.set_xlim(low - 0.1 * (max(values) - low + 1e-9), max(values) + 0.05 * (max(values) - low + 1e-9))
    ax.set(xlabel=f"cross-validated {metric}", title="leaderboard (best trials)")
    ax.grid(axis="x", alpha=0.3)
    return _save(plt, fig, path)


def optimisation_history(values: Sequence[float], metric: str, maximize: bool, path) -> Path | None:
    """Each finished trial's score in the order trials finished, and the best so far."""
    points = [(i + 1, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    xs, ys = zip(*points)
    ax.scatter(xs, ys, s=12, alpha=0.6, label="trial")
    best, line = None, []
    for y in ys:
        best = y if best is None or (y > best if maximize else y < best) else best
        line.append(best)
    ax.step(xs, line, where="post", color="black", label="best so far")
    ax.set(xlabel="trial (in the order they finished)", ylabel=f"cross-validated {metric}",
           title="optimisation history")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)
