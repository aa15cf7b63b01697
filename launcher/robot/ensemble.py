"""An ensemble of the best trials, kept only when it scores better out of fold.

Every robot trial is cross-validated on the same folds and keeps its out-of-fold predictions
(cv_predictions.npz). Greedy ensemble selection with replacement (Caruana, Niculescu-Mizil,
Crew & Ksikes, "Ensemble selection from libraries of models", ICML 2004) adds, one at a time,
the trial whose predictions most improve the average's out-of-fold score; the weights are how
often each was picked. The ensemble is chosen over the best single trial only when its
out-of-fold score is better by more than `MARGIN`: the comparison uses the same rows, but the
selection itself was fitted on them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from launcher.metrics import DIRECTION, compute
from launcher.robot.leaderboard import Leaderboard, Trial

OOF_FILE = "cv_predictions.npz"
MARGIN = 0.002
MOST_CANDIDATES = 10
MOST_MEMBERS = 4
ROUNDS = 20


@dataclass
class EnsemblePlan:
    members: list[tuple[Trial, float]]  # (trial, weight), weights sum to 1
    score: float  # out of fold
    single: float  # the best single trial's out-of-fold score
    chosen: bool  # better than the best single trial by more than MARGIN (and its fits fit the time left)
    note: str | None = None  # why a better ensemble was not chosen after all

    def describe(self, metric: str) -> str:
        if len(self.members) == 1:
            return (f"no ensemble of the best trials scores better out of fold than the best single trial "
                    f"({metric} {self.single:.4f})")
        names = ", ".join(f"{t.model} #{t.number} x{w:.2f}" for t, w in self.members)
        if self.chosen:
            verdict = "chosen" + (f" ({self.note})" if self.note else "")
        else:
            verdict = f"not chosen ({self.note or f'needs +{MARGIN} over the best single trial'})"
        return (f"ensemble of {len(self.members)} ({names}): out-of-fold {metric} {self.score:.4f} against "
                f"{self.single:.4f} for the best single trial: {verdict}")


def choose(leaderboard: Leaderboard, task: str, most_members: int = MOST_MEMBERS,
           allowed: Callable[[Trial], bool] | None = None) -> EnsemblePlan | None:
    """The greedy ensemble of the best trials (those `allowed`, at most `most_members`), or
    None when fewer than two have predictions."""
    metric, maximize = leaderboard.metric, DIRECTION[leaderboard.metric] == "maximize"
    pool: list[tuple[Trial, np.ndarray]] = []
    index = y = None
    seen: set[str] = set()
    for trial in diverse(leaderboard.finished):
        key = repr(sorted(trial.params.items()))
        if key in seen or (allowed is not None and not allowed(trial)):
            continue
        oof = _load(trial)
        if oof is None:
            continue
        order = np.argsort(oof["index"], kind="stable")
        if index is None:
            index, y = oof["index"][order], oof["y"][order]
        elif not np.array_equal(oof["index"][order], index):
            continue  # another split of the rows: not comparable
        pool.append((trial, oof["output"][order]))
        seen.add(key)
        if len(pool) >= MOST_CANDIDATES:
            break
    if len(pool) < 2 or y is None:
        return None

    def score(output: np.ndarray) -> float:
        value = compute(task, y, output).get(metric, math.nan)
        return value if maximize else -value

    picks: list[int] = [0]
    total = pool[0][1].astype(float).copy()
    best = score(total)
    single = best
    for _ in range(ROUNDS):
        gains = []
        for i, (_, output) in enumerate(pool):
            if len(set(picks) | {i}) > most_members:
                gains.append(-math.inf)
                continue
            gains.append(score((total + output) / (len(picks) + 1)))
        i = int(np.argmax(gains))
        if not gains[i] > best:
            break
        picks.append(i)
        total += pool[i][1]
        best = gains[i]
    weights = {i: picks.count(i) / len(picks) for i in sorted(set(picks))}
    members = [(pool[i][0], w) for i, w in weights.items()]
    sign = 1 if maximize else -1
    return EnsemblePlan(members, sign * best, sign * single, len(members) > 1 and best - single > MARGIN)


def diverse(trials: list[Trial], per_family: int = 2) -> list[Trial]:
    """The best trials of each model family first (an ensemble gains from different models),
    then the rest in order."""
    counts: dict[str | None, int] = {}
    first, rest = [], []
    for t in trials:
        counts[t.model] = counts.get(t.model, 0) + 1
        (first if counts[t.model] <= per_family else rest).append(t)
    return first + rest


def _load(trial: Trial) -> dict[str, Any] | None:
    path = Path(trial.run_dir or "") / OOF_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        if "y" not in data:
            return None
        return {k: data[k] for k in data.files}
