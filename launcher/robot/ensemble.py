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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

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
    # What the selection drew from, so that it can be run again on a subset of the rows
    # (launcher.robot.estimate): the finished trials it was allowed, best first; the candidates
    # it took from them; the most members allowed.
    eligible: list[Trial] = field(default_factory=list)
    candidates: list[Trial] = field(default_factory=list)
    most_members: int = MOST_MEMBERS

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


@dataclass
class Pool:
    """Out-of-fold predictions of several trials on the same rows, in one row order."""
    index: np.ndarray  # the rows, sorted
    y: np.ndarray
    trials: list[Trial]
    outputs: list[np.ndarray]


def choose(leaderboard: Leaderboard, task: str, most_members: int = MOST_MEMBERS,
           allowed: Callable[[Trial], bool] | None = None) -> EnsemblePlan | None:
    """The greedy ensemble of the best trials (those `allowed`, at most `most_members`), or
    None when fewer than two have predictions."""
    metric, maximize = leaderboard.metric, DIRECTION[leaderboard.metric] == "maximize"
    eligible = [t for t in leaderboard.finished if allowed is None or allowed(t)]
    pool = load_pool(diverse(eligible), most=MOST_CANDIDATES, distinct=same_settings)
    if pool is None or len(pool.trials) < 2:
        return None
    y = pool.y

    def score(outputs: np.ndarray) -> list[float]:
        values = [compute(task, y, output).get(metric, math.nan) for output in outputs]
        return [v if maximize else -v for v in values]

    weights, best, single = greedy(pool.outputs, score, most_members)
    members = [(pool.trials[i], w) for i, w in weights.items()]
    sign = 1 if maximize else -1
    return EnsemblePlan(members, sign * best, sign * single, len(members) > 1 and best - single > MARGIN,
                        eligible=eligible, candidates=list(pool.trials), most_members=most_members)


def greedy(outputs: list[np.ndarray] | np.ndarray, score: Callable[[np.ndarray], Sequence[float]],
           most_members: int) -> tuple[dict[int, float], float, float]:
    """Caruana's selection with replacement from `outputs` (the best first: it starts from that
    one): the weight of each one picked (by index), the ensemble's score and the first's. `score`
    rates a stack of outputs (along the first axis) at once, so a caller can vectorise it; higher
    is better (a minimised metric comes negated)."""
    stacked = np.asarray(outputs, dtype=float)
    picks: list[int] = [0]
    total = stacked[0].copy()
    best = single = score(total[None])[0]
    for _ in range(ROUNDS):
        open_ = [i for i in range(len(stacked)) if len(set(picks) | {i}) <= most_members]
        if not open_:
            break
        gains = score((total + stacked[open_]) / (len(picks) + 1))
        gains = [g if math.isfinite(g) else -math.inf for g in gains]
        k = int(np.argmax(gains))
        if not gains[k] > best:
            break
        picks.append(open_[k])
        total += stacked[open_[k]]
        best = gains[k]
    return {i: picks.count(i) / len(picks) for i in sorted(set(picks))}, best, single


def load_pool(trials: Iterable[Trial], most: int | None = None,
              distinct: Callable[[Trial], str] | None = None) -> Pool | None:
    """The out-of-fold predictions of `trials`, in their order (at most `most`; one per
    `distinct` key), on the rows of the first that has them: a trial without predictions, or
    cross-validated on other rows, is left out (not comparable). None when none has them."""
    pool: Pool | None = None
    seen: set[str] = set()
    for trial in trials:
        key = distinct(trial) if distinct is not None else None
        if key is not None and key in seen:
            continue
        oof = _load(trial)
        if oof is None:
            continue
        order = np.argsort(oof["index"], kind="stable")
        if pool is None:
            pool = Pool(oof["index"][order], oof["y"][order], [], [])
        elif not np.array_equal(oof["index"][order], pool.index) or oof["output"].shape != pool.outputs[0].shape:
            continue
        pool.trials.append(trial)
        pool.outputs.append(oof["output"][order])
        if key is not None:
            seen.add(key)
        if most is not None and len(pool.trials) >= most:
            break
    return pool


def same_settings(trial: Trial) -> str:
    """Trials with the same settings are one candidate (their predictions differ only by chance)."""
    return repr(sorted(trial.params.items()))


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
