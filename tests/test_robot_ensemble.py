"""The robot's greedy ensemble selection (launcher.robot.ensemble.choose) on trials' out-of-fold
predictions: synthetic predictions written where real trials leave them (cv_predictions.npz in
each trial's run directory), so no training is needed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from launcher.metrics import DIRECTION, compute
from launcher.robot.ensemble import MARGIN, choose
from launcher.robot.leaderboard import Leaderboard, Trial


def oof_board(root: Path, outputs: list[np.ndarray], y: np.ndarray, task: str, metric: str,
              models: list[str] | None = None, index: list[np.ndarray] | None = None) -> Leaderboard:
    """A leaderboard of finished trials, trial i having out-of-fold `outputs[i]` for the rows of
    `y` (in a shuffled row order, as cross-validation leaves them) and its pooled score."""
    rng = np.random.default_rng(len(outputs))
    trials = []
    for i, output in enumerate(outputs):
        rows = np.arange(len(y)) if index is None else index[i]
        order = rng.permutation(len(rows))
        run_dir = root / f"trial_{i}"
        run_dir.mkdir(parents=True)
        np.savez(run_dir / "cv_predictions.npz", index=rows[order], y=y[order], output=output[order])
        trials.append(Trial(sweep="s", number=i, state="COMPLETE", score=compute(task, y, output)[metric],
                            model=(models or ["hist_gradient_boosting"] * len(outputs))[i], params={"seed": i},
                            seconds=1.0, run_dir=str(run_dir)))
    return Leaderboard(metric, DIRECTION[metric], trials)


def proba(right: np.ndarray, y: np.ndarray, sure: float, unsure: float) -> np.ndarray:
    """Binary class probabilities: `sure` on the true class where `right`, else `unsure` (< 0.5: wrong)."""
    p_true = np.where(right, sure, unsure)
    p1 = np.where(y == 1, p_true, 1 - p_true)
    return np.stack([1 - p1, p1], axis=1)


@pytest.fixture
def halves():
    """Two trials each right on (a little more than) half the rows, confidently, and unsure-wrong
    elsewhere: their average is right everywhere; plus weaker trials that are right at random."""
    rng = np.random.default_rng(0)
    n = 300
    y = rng.permutation(np.arange(n) % 2)
    first = np.arange(n) < 0.6 * n
    second = np.arange(n) >= 0.4 * n
    outputs = [proba(first, y, 0.9, 0.4), proba(second, y, 0.9, 0.4)]
    outputs += [proba(rng.random(n) < 0.55, y, 0.6, 0.45) for _ in range(3)]
    return y, outputs


def test_selection_takes_the_complementary_trial(tmp_path, halves):
    y, outputs = halves
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    plan = choose(board, "classification")
    members = {t.number for t, _ in plan.members}
    assert members == {0, 1}
    assert plan.single == pytest.approx(0.6) and plan.score == pytest.approx(1.0)
    assert plan.chosen and plan.score - plan.single > MARGIN
    assert sum(w for _, w in plan.members) == pytest.approx(1.0)
    assert "chosen" in plan.describe("accuracy")


def test_weights_sum_to_one_with_repeated_picks(tmp_path):
    # Regression: the best trial is biased up, the second down by less; the best mix weights the
    # second more, which greedy selection with replacement reaches by picking it twice.
    rng = np.random.default_rng(1)
    y = rng.normal(size=400)
    outputs = [y + 2.0 + rng.normal(0, 0.05, 400), y - 1.0 + rng.normal(0, 0.05, 400)]
    plan = choose(oof_board(tmp_path, outputs, y, "regression", "rmse"), "regression")
    weights = {t.number: w for t, w in plan.members}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights[1] > weights[0] > 0
    assert plan.score < plan.single  # rmse is minimised: the ensemble's is lower


def test_most_members_is_respected(tmp_path):
    # Three trials, each confidently right on its own third of the rows and a little wrong
    # elsewhere: all three together are right everywhere, any two on two thirds only, so a
    # two-member limit must give up some of the gain.
    rng = np.random.default_rng(2)
    n = 300
    y = rng.permutation(np.arange(n) % 2)
    third = np.arange(n) * 3 // n
    outputs = [proba(third == k, y, 0.9, 0.35) for k in range(3)]
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    free = choose(board, "classification")
    assert len(free.members) == 3 and free.score == pytest.approx(1.0)
    limited = choose(board, "classification", most_members=2)
    assert len(limited.members) <= 2 and limited.score < free.score
    assert limited.most_members == 2


def test_allowed_excludes_trials(tmp_path, halves):
    y, outputs = halves
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    plan = choose(board, "classification", allowed=lambda t: t.number != 1)
    assert 1 not in {t.number for t, _ in plan.members}
    assert 1 not in {t.number for t in plan.candidates} | {t.number for t in plan.eligible}
    assert plan.score < 1.0


def test_trials_without_comparable_predictions_are_left_out(tmp_path, halves):
    y, outputs = halves
    n = len(y)
    # Trial 1 was cross-validated on other rows (a different split of the data): not comparable.
    index = [np.arange(n), np.arange(n) + n] + [np.arange(n)] * 3
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy", index=index)
    plan = choose(board, "classification")
    assert 1 not in {t.number for t in plan.candidates}
    # Fewer than two trials with predictions: no ensemble.
    for t in board.trials[1:]:
        (Path(t.run_dir) / "cv_predictions.npz").unlink()
    assert choose(board, "classification") is None


def test_families_are_mixed_before_more_of_one(tmp_path):
    # choose draws its candidates from the best two trials of each family first.
    rng = np.random.default_rng(3)
    n = 200
    y = rng.permutation(np.arange(n) % 2)
    outputs = [proba(rng.random(n) < 0.9 - 0.01 * i, y, 0.8, 0.4) for i in range(14)]
    models = ["hist_gradient_boosting"] * 12 + ["logistic_regression"] * 2
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy", models=models)
    plan = choose(board, "classification")
    assert len(plan.candidates) == 10
    assert {t.model for t in plan.candidates[:4]} == {"hist_gradient_boosting", "logistic_regression"}
