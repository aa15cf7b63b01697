"""An honest estimate of the final model's score: the bootstrap bias-corrected cross-validation.

The best cross-validated mean over many trials (or the ensemble chosen on the same out-of-fold
rows) is the figure that selected the model, so it is optimistic: with enough trials, one of
them scores well by chance (the winner's curse). BBC-CV (Tsamardinos, Greasidou & Borboudakis,
"Bootstrapping the out-of-sample predictions for efficient and accurate cross-validation",
Machine Learning 107, 2018) corrects it from the out-of-fold predictions the trials already
keep, with no extra fits: on each bootstrap sample of the rows, the same selection is made
again on the in-bag rows only, and what it selects is scored on the out-of-bag rows, which took
no part in choosing it. The estimate is the mean of those scores.

The selection re-run is the robot's: the best single trial by the metric (on the pooled
out-of-fold predictions of the in-bag rows), and, when the final model is an ensemble, the same
greedy ensemble selection (launcher.robot.ensemble.greedy) from the trials it was allowed,
ranked by their in-bag scores, kept only when it beats that single trial by the same margin.
Only the best `POOL` trials by their cross-validated score take part (the rest are far behind
and cost time); that preselection saw every row, a small optimism that the method sentence
states (measured over 20 draws of 50 guessing trials on 200 rows: the selecting accuracy 0.578,
the estimate 0.509 from the best 20 and 0.505 from all 50).

A metric is computed on weighted rows (a weight is how often the bootstrap drew a row) from
per-row parts computed once per trial, so a bootstrap costs a matrix product instead of a call
to metrics.compute; tests check every metric against metrics.compute on the rows repeated.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from launcher.metrics import DIRECTION
from launcher.robot.ensemble import (MARGIN, MOST_CANDIDATES, EnsemblePlan, Pool, diverse, greedy, load_pool,
                                     same_settings)
from launcher.robot.leaderboard import Leaderboard, Trial

POOL = 20  # candidate trials: the best by cross-validated score
MIN_BOOTSTRAPS = 10  # done even when the deadline has passed: fewer say nothing about the spread
CHUNK = MIN_BOOTSTRAPS  # bootstraps drawn at once between deadline checks (single-trial selection)
ADDITIVE = ("accuracy", "balanced_accuracy", "f1_macro", "log_loss", "r2", "rmse", "mae")


@dataclass
class Estimate:
    selected: float  # the figure that selected the final model (best CV mean, or the ensemble's OOF score)
    honest: float  # the BBC-CV estimate of the same selection procedure
    low: float | None  # 5th percentile of the out-of-bag scores (None from fewer than MIN_BOOTSTRAPS)
    high: float | None  # 95th percentile
    bootstraps: int  # how many were done (fewer when the deadline came first)
    method: str  # one sentence for report.md: what was done and the citation


def honest_estimate(board: Leaderboard, task: str, ensemble: EnsemblePlan | None, *,
                    deadline: float | None = None, seed: int = 0, bootstraps: int = 200) -> Estimate | None:
    """The BBC-CV estimate of the robot's selection: the best trial, or `ensemble` when it was
    chosen. `deadline` (a time.monotonic() value) stops the bootstraps early, but never before
    MIN_BOOTSTRAPS (a deadline already past gives exactly that many). None when no correction
    is possible: fewer than two trials with out-of-fold predictions on the best trial's rows, a
    metric these rows cannot give, or no bootstrap with a defined out-of-bag score."""
    metric = board.metric
    best = board.best()
    if best is None or metric not in ADDITIVE + ("roc_auc",):
        return None
    chosen = ensemble is not None and ensemble.chosen and len(ensemble.members) > 1
    top = board.finished[:POOL]
    wanted = list(top)
    if chosen:  # the trials its selection could take (the best of them), and those it took
        wanted += [t for t in ensemble.eligible[:POOL] + ensemble.candidates if not _within(t, wanted)]
    pool = load_pool(wanted)
    if pool is None or pool.trials[0] is not best or len(pool.trials) < 2:
        return None  # the best trial has no out-of-fold predictions: its selection cannot be re-run
    singles = [i for i, t in enumerate(pool.trials) if _within(t, top)]
    eligible = [i for i, t in enumerate(pool.trials) if chosen and _within(t, ensemble.eligible)]
    if chosen and len(eligible) < 2:
        return None
    rows = Rows(task, metric, pool)
    if not rows.usable:
        return None
    n = len(pool.y)
    # One BLAS thread: the products here are small, and two threads on busy cores wait on each
    # other (measured: a bootstrap of the ensemble path 5x slower on 2 loaded cores).
    from threadpoolctl import threadpool_limits

    def oob(counts: np.ndarray) -> list[float]:
        if chosen:
            return [rows.ensemble_oob(c, singles, eligible, ensemble.most_members) for c in counts]
        return rows.single_oob(counts, singles)

    with threadpool_limits(limits=1, user_api="blas"):
        scores = _bootstrap(n, bootstraps, deadline, seed, oob, 1 if chosen else CHUNK)
    scores = [s for s in scores if math.isfinite(s)]
    if not scores:
        return None
    selected = ensemble.score if chosen else best.score
    low, high = (float(v) for v in np.percentile(scores, [5, 95]))
    what = (f"the best of the top {len(singles)} trials by cross-validated {metric}"
            + (f", then the greedy ensemble of the best {MOST_CANDIDATES} of {len(eligible)} trials (kept when it "
               f"beats that trial by {MARGIN})" if chosen else ""))
    method = (f"Bootstrap bias-corrected CV (BBC-CV; Tsamardinos, Greasidou & Borboudakis, Machine Learning "
              f"107, 2018): on each of {len(scores)} bootstrap samples of the {n} out-of-fold rows, {what} "
              f"was selected again on the in-bag rows only and scored on the out-of-bag rows; the estimate is "
              f"the mean of those scores ({low:.4f} to {high:.4f}, 5th to 95th percentile), from the trials' "
              f"out-of-fold predictions with no extra fits (the top trials were picked on all rows).")
    return Estimate(selected, float(np.mean(scores)), low if len(scores) >= MIN_BOOTSTRAPS else None,
                    high if len(scores) >= MIN_BOOTSTRAPS else None, len(scores), method)


def _bootstrap(n: int, bootstraps: int, deadline: float | None, seed: int,
               oob: Callable[[np.ndarray], list[float]], chunk: int) -> list[float]:
    """The out-of-bag scores of `bootstraps` samples of the n rows (`chunk` at a time), stopping
    at `deadline` once MIN_BOOTSTRAPS are done."""
    rng = np.random.default_rng(seed)
    scores: list[float] = []
    done = 0
    while done < bootstraps:
        if done >= MIN_BOOTSTRAPS and deadline is not None and time.monotonic() > deadline:
            break
        size = min(chunk, bootstraps - done)
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(size)]).astype(float)
        scores += [float(s) for s in oob(counts)]
        done += size
    return scores


def _within(trial: Trial, trials: list[Trial]) -> bool:
    return any(trial is t for t in trials)


class Rows:
    """The metric on weighted rows (a weight: how often a bootstrap drew the row), for several
    outputs at once; `sign` makes every score higher-is-better (rmse, mae, log_loss are
    minimised). Outputs are stacked with a leading axis: (outputs, rows) for values and labels,
    (outputs, rows, classes) for probabilities."""

    def __init__(self, task: str, metric: str, pool: Pool) -> None:
        self.task, self.metric, self.y, self.trials = task, metric, pool.y, pool.trials
        self.sign = 1.0 if DIRECTION[metric] == "maximize" else -1.0
        n = len(pool.y)
        stack = np.stack([np.asarray(o, dtype=float) for o in pool.outputs])
        self.proba = task == "classification" and stack.ndim == 3
        self.outputs = stack if self.proba else stack.reshape(len(stack), n)  # a (rows, 1) column as values
        self.usable = task in ("classification", "regression") and (self.proba or metric not in ("log_loss", "roc_auc"))
        if metric == "roc_auc":
            self.usable = self.usable and stack.shape[-1] == 2
        if not self.usable:
            return
        if task == "classification":  # one column per class, the same for every output
            self.y = pool.y.astype(int)
            self.columns = 1 + max(int(self.y.max()), int(self._labels(self.outputs).max()))
        if metric == "roc_auc":
            self.ranked = [_ranked(s) for s in _positive(self.outputs)]  # each trial's sort, once
        else:
            self.parts = self._parts(self.y, self.outputs)  # (trials, rows, parts), once

    def values(self, y: np.ndarray, outputs: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The metric (in its own units) of each of `outputs` on rows `y` weighted by `w`."""
        if self.metric == "roc_auc":
            return _auc(y == 1, [_ranked(s) for s in _positive(outputs)], w[None])[0]
        sums = np.einsum("knp,n->kp", self._parts(y, outputs), w)
        return self._from_sums(sums, w.sum())

    def single_oob(self, counts: np.ndarray, singles: list[int]) -> list[float]:
        """For each bootstrap (a row of draw counts): the out-of-bag score of the trial among
        `singles` that scores best in-bag (NaN when undefined)."""
        inbag = self._all(counts)[:, singles]
        signed = np.where(np.isfinite(inbag), self.sign * inbag, -np.inf)
        out = []
        for c, row in zip(counts, signed):
            good = np.isfinite(row.max())
            out.append(self._out_of_bag(c == 0, self.outputs[singles[int(row.argmax())]]) if good else math.nan)
        return out

    def ensemble_oob(self, counts: np.ndarray, singles: list[int], eligible: list[int], most: int) -> float:
        """One bootstrap of the ensemble path, as ensemble.choose and run.finish make it: the best
        single trial in-bag; the greedy ensemble of the best `eligible` trials in-bag (diverse
        families first, one per setting, at most MOST_CANDIDATES), kept when it beats the single
        trial by MARGIN; the out-of-bag score of what was kept (NaN when undefined)."""
        inside, outside = counts > 0, counts == 0
        signed = self.sign * self._all(counts[None])[0]
        signed = np.where(np.isfinite(signed), signed, -np.inf)
        if not outside.any() or not np.isfinite(signed[singles]).any():
            return math.nan
        single = singles[int(np.argmax(signed[singles]))]
        kept = {single: 1.0}
        candidates = self._candidates(sorted(eligible, key=lambda i: -signed[i]))
        if len(candidates) > 1:
            w, y = counts[inside], self.y[inside]

            def score(outputs: np.ndarray) -> np.ndarray:
                return self.sign * self.values(y, outputs, w)

            weights, best, _ = greedy(self.outputs[np.ix_(candidates, np.flatnonzero(inside))], score, most)
            if len(weights) > 1 and best - signed[single] > MARGIN:
                kept = {candidates[i]: wt for i, wt in weights.items()}
        return self._out_of_bag(outside, sum(wt * self.outputs[i] for i, wt in kept.items()))

    def _out_of_bag(self, outside: np.ndarray, output: np.ndarray) -> float:
        """The score of `output` on the rows the bootstrap did not draw (NaN when there are none)."""
        if not outside.any():
            return math.nan
        return float(self.values(self.y[outside], output[outside][None], np.ones(int(outside.sum())))[0])

    def _candidates(self, ranked: list[int]) -> list[int]:
        """ensemble.choose's candidates from trials ranked best first (indices into the pool)."""
        position = {id(self.trials[i]): i for i in ranked}
        out, seen = [], set()
        for trial in diverse([self.trials[i] for i in ranked]):
            if same_settings(trial) not in seen:
                seen.add(same_settings(trial))
                out.append(position[id(trial)])
            if len(out) == MOST_CANDIDATES:
                break
        return out

    def _all(self, weights: np.ndarray) -> np.ndarray:
        """Every trial's score under each row of `weights` (bootstraps x rows): (bootstraps, trials)."""
        if self.metric == "roc_auc":
            return _auc(self.y == 1, self.ranked, weights)
        trials, n, parts = self.parts.shape
        flat = self.parts.transpose(1, 0, 2).reshape(n, trials * parts)
        sums = (weights @ flat).reshape(len(weights), trials, parts)
        return self._from_sums(sums, weights.sum(axis=1)[:, None])

    def _labels(self, outputs: np.ndarray) -> np.ndarray:
        # metrics.labels_from, for a stack of outputs: the most probable class (argmax: the first
        # on a tie; with two classes a comparison, several times faster), or the labels given
        if not self.proba:
            return np.rint(outputs).astype(int)
        if outputs.shape[-1] == 2:
            return (outputs[..., 1] > outputs[..., 0]).astype(int)
        return outputs.argmax(axis=-1)

    def _parts(self, y: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Per-row quantities whose weighted sums give the metric: (outputs, rows, parts)."""
        if self.task == "regression":
            error = outputs - y.astype(float)
            if self.metric == "mae":
                return np.abs(error)[..., None]
            if self.metric == "rmse":
                return (error ** 2)[..., None]
            centred = np.broadcast_to(y.astype(float) - float(np.mean(self.y)), error.shape)  # r2: no cancellation
            return np.stack([centred, centred ** 2, error ** 2], axis=-1)
        if self.metric == "log_loss":  # as metrics.compute: clipped, then normalised
            proba = np.clip(outputs, 1e-15, 1.0)
            taken = np.take_along_axis(proba, np.broadcast_to(y[:, None], proba.shape[:-1] + (1,)), axis=-1)
            return -np.log(taken[..., 0] / proba.sum(axis=-1))[..., None]
        pred = self._labels(outputs)
        correct = (pred == y).astype(float)
        if self.metric == "accuracy":
            return correct[..., None]
        eye = np.eye(self.columns)
        truth = np.broadcast_to(eye[y], pred.shape + (self.columns,))
        if self.metric == "balanced_accuracy":
            return np.concatenate([truth, truth * correct[..., None]], axis=-1)
        return np.concatenate([truth, eye[pred], truth * correct[..., None]], axis=-1)  # f1_macro

    def _from_sums(self, sums: np.ndarray, total: np.ndarray | float) -> np.ndarray:
        """The metric from the weighted sums (..., parts) and the total weight (broadcast)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.metric in ("accuracy", "log_loss", "mae"):
                return sums[..., 0] / total
            if self.metric == "rmse":
                return np.sqrt(sums[..., 0] / total)
            if self.metric == "r2":  # sklearn's r2_score, a constant target included
                sst = sums[..., 1] - sums[..., 0] ** 2 / total
                sse = sums[..., 2]
                constant = sst <= 1e-12 * np.maximum(sums[..., 1], 1e-300)
                return np.where(constant, np.where(sse == 0, 1.0, 0.0), 1 - sse / np.where(constant, 1, sst))
            k = sums.shape[-1] // (2 if self.metric == "balanced_accuracy" else 3)
            truth = sums[..., :k]
            if self.metric == "balanced_accuracy":  # recall averaged over the classes present
                recall = np.where(truth > 0, sums[..., k:] / np.where(truth > 0, truth, 1), 0.0)
                return recall.sum(axis=-1) / (truth > 0).sum(axis=-1)
            predicted, hits = sums[..., k:2 * k], sums[..., 2 * k:]
            present = (truth > 0) | (predicted > 0)  # f1_macro over the labels seen, zero_division=0
            f1 = np.where(present, 2 * hits / np.where(present, truth + predicted, 1), 0.0)
            return f1.sum(axis=-1) / present.sum(axis=-1)


def _positive(outputs: np.ndarray) -> np.ndarray:
    """The positive class's probability (outputs, rows), normalised as metrics.compute does for roc_auc."""
    proba = np.clip(outputs, 1e-15, 1.0)
    return proba[..., 1] / proba.sum(axis=-1)


def _ranked(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows in order of score, and where each group of tied scores starts in that order."""
    order = np.argsort(scores)  # not stable: the order within a group of ties does not matter
    ordered = scores[order]
    return order, np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])


def _auc(positive: np.ndarray, ranked: list[tuple[np.ndarray, np.ndarray]], weights: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC (a tie counts one half) of each output, given as its `_ranked` rows,
    under each row of `weights` (bootstraps x rows): (bootstraps, outputs); NaN where a class
    has no weight."""
    out = np.empty((len(weights), len(ranked)))
    wpos, wneg = weights @ positive, weights @ ~positive
    by_row = np.ascontiguousarray(weights.T)  # rows x bootstraps: gathering rows is then fast
    neg = np.zeros((by_row.shape[0] + 1, by_row.shape[1]))
    for k, (order, starts) in enumerate(ranked):
        w = by_row[order]
        pos = w * positive[order, None]
        np.cumsum(w - pos, axis=0, out=neg[1:])  # the negative weight up to each row, in score order
        if len(starts) == len(order):  # no ties (the usual case): a row's own weight is not negative
            out[:, k] = np.einsum("rb,rb->b", pos, neg[:-1])
            continue
        below = neg[starts]  # under each group of tied scores
        tied = neg[np.r_[starts[1:], len(order)]] - below
        out[:, k] = np.einsum("gb,gb->b", np.add.reduceat(pos, starts, axis=0), below + 0.5 * tied)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(((wpos > 0) & (wneg > 0))[:, None], out / (wpos * wneg)[:, None], np.nan)
