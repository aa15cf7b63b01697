"""Run plots as PNG: the learning curve of an epoch-based fit, a confusion matrix, and a
search's leaderboard and optimization history (the robot's).

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


def leaderboard(scores: Sequence[tuple[str, float]], metric: str, path, split: str = "cross-validated") -> Path | None:
    """The best trials' scores as horizontal bars, best on top, coloured by model family.
    `split` says what the scores were measured on ("5-fold CV", "validation")."""
    if not scores:
        return None
    return _save(_pyplot(), leaderboard_figure(scores, metric, split), path)


def leaderboard_figure(scores: Sequence[tuple[str, float]], metric: str, split: str = "cross-validated"):
    plt = _pyplot()
    scores = list(scores)[:15]
    families = sorted({name.split(" #")[0] for name, _ in scores})
    colors = {f: plt.cm.tab10(i % 10) for i, f in enumerate(families)}
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(scores) + 1.4))
    names = [n for n, _ in scores][::-1]
    values = [v for _, v in scores][::-1]
    ax.barh(names, values, color=[colors[n.split(" #")[0]] for n in names])
    ax.set_xlim(*score_range(values))
    _plain_numbers(ax.xaxis)
    best_name, best_value = scores[0]
    ax.set(xlabel=f"{split} {metric}", title=f"best trials by {split} {metric}\n"
                                              f"best: {best_name.split(' #')[0]}, {best_value:.4g}")
    ax.grid(axis="x", alpha=0.3)
    return fig


def optimization_history(values: Sequence[float | None], metric: str, maximize: bool, path,
                         split: str = "cross-validated", models: Sequence[str] | None = None) -> Path | None:
    """Each finished trial's score in the order trials finished, and the best so far; with
    `models` (each trial's model family) the points are coloured by family and the title names
    the best. The sweeper writes the same file name, optimization_history.png."""
    if not any(v is not None and math.isfinite(v) for v in values):
        return None
    return _save(_pyplot(), optimization_history_figure(values, metric, maximize, split, models), path)


def optimization_history_figure(values: Sequence[float | None], metric: str, maximize: bool,
                                split: str = "cross-validated", models: Sequence[str] | None = None):
    plt = _pyplot()
    models = list(models) if models is not None else [""] * len(values)
    points = [(i + 1, v, m) for i, (v, m) in enumerate(zip(values, models)) if v is not None and math.isfinite(v)]
    fig, ax = plt.subplots(figsize=(7, 4))
    xs, ys, ms = zip(*points)
    for i, family in enumerate(sorted(set(ms))):
        chosen = [(x, y) for x, y, m in points if m == family]
        ax.scatter(*zip(*chosen), s=16, alpha=0.8, color=plt.cm.tab10(i % 10), label=family or "trial", zorder=3)
    best, line, best_model = None, [], ""
    for y, m in zip(ys, ms):
        if best is None or (y > best if maximize else y < best):
            best, best_model = y, m
        line.append(best)
    ax.step(xs, line, where="post", color="black", label="best so far")
    ax.set_ylim(*score_range(ys))
    _plain_numbers(ax.yaxis)
    ax.set_xlim(0.5, max(xs) + 0.5)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True, min_n_ticks=1))  # trial numbers are whole
    title = f"optimization history: {split} {metric}"
    ax.set(xlabel="trial (in the order they finished)", ylabel=f"{split} {metric}",
           title=title + (f"\nbest: {best_model}, {best:.4g}" if best_model else f"\nbest: {best:.4g}"))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def score_range(values: Sequence[float]) -> tuple[float, float]:
    """Axis limits around scores that stay readable when they are all equal (one trial): a
    margin of at least 2% of their size, kept within [0, 1] when the scores are."""
    low, high = min(values), max(values)
    pad = max(0.1 * (high - low), 0.02 * max(abs(low), abs(high)), 1e-3)
    lo, hi = low - pad, high + pad
    if low >= 0:
        lo = max(lo, 0.0)
    if high < 1:
        hi = min(hi, 1.0)
    return lo, hi


def _plain_numbers(axis) -> None:
    """Tick labels as plain numbers: no '1e-10' multiplier and no '+9.8e-1' offset, which is
    what matplotlib shows for a narrow range of large-looking values."""
    formatter = axis.get_major_formatter()
    formatter.set_useOffset(False)
    formatter.set_scientific(False)
