"""The robot's honest estimate (BBC-CV, launcher.robot.estimate): the figure that selected a model
is optimistic when many trials were tried; the bootstrap re-runs the selection on in-bag rows and
scores it on out-of-bag rows. Synthetic out-of-fold predictions, no training."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from launcher.metrics import compute
from launcher.robot.ensemble import Pool, choose
from launcher.robot.estimate import MIN_BOOTSTRAPS, Rows, honest_estimate
from test_robot_ensemble import oof_board, proba


def noise_classifiers(rng, n: int, trials: int) -> tuple[np.ndarray, list[np.ndarray]]:
    y = rng.permutation(np.arange(n) % 2)  # balanced: chance is 0.5
    outputs = []
    for _ in range(trials):
        p = rng.random(n)
        outputs.append(np.stack([1 - p, p], axis=1))
    return y, outputs


@pytest.mark.parametrize("seed", [0, 1])
def test_pure_noise_selected_high_honest_near_chance(tmp_path, seed):
    # 50 trials that guess: the best looks well above chance, only because it was picked.
    y, outputs = noise_classifiers(np.random.default_rng(seed), 200, 50)
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    estimate = honest_estimate(board, "classification", None)
    assert estimate.selected == board.best().score > 0.55
    assert 0.45 < estimate.honest < 0.535
    assert estimate.low < estimate.honest < estimate.high
    assert estimate.bootstraps == 200
    assert "BBC-CV" in estimate.method and "Tsamardinos" in estimate.method


def test_pure_noise_ensemble_is_corrected_too(tmp_path):
    # An ensemble of guesses chosen on the same rows scores even higher; re-running the greedy
    # selection in-bag brings it back near chance.
    y, outputs = noise_classifiers(np.random.default_rng(2), 200, 50)
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    plan = choose(board, "classification")
    assert plan.chosen and plan.score > board.best().score
    estimate = honest_estimate(board, "classification", plan)
    assert estimate.selected == plan.score > 0.6
    assert 0.45 < estimate.honest < 0.54


def test_one_clearly_better_trial_keeps_its_score(tmp_path):
    rng = np.random.default_rng(3)
    y, outputs = noise_classifiers(rng, 400, 20)
    outputs.insert(0, proba(rng.random(400) < 0.9, y, 0.8, 0.3))
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    estimate = honest_estimate(board, "classification", None)
    assert board.best().number == 0
    assert estimate.honest == pytest.approx(estimate.selected, abs=0.015)


def test_good_ensemble_keeps_its_score(tmp_path):
    # Two complementary trials: their ensemble is found in every bootstrap, and it is good.
    rng = np.random.default_rng(4)
    n = 300
    y = rng.permutation(np.arange(n) % 2)
    outputs = [proba(np.arange(n) < 0.6 * n, y, 0.9, 0.4), proba(np.arange(n) >= 0.4 * n, y, 0.9, 0.4)]
    outputs += noise_classifiers(rng, n, 5)[1]
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    plan = choose(board, "classification")
    estimate = honest_estimate(board, "classification", plan)
    assert estimate.selected == plan.score == pytest.approx(1.0)
    assert estimate.honest > 0.97


def test_minimised_metric_rmse(tmp_path):
    rng = np.random.default_rng(5)
    y = rng.normal(size=300)
    noise = [y.mean() + rng.normal(0, 1, 300) for _ in range(40)]
    board = oof_board(tmp_path, noise, y, "regression", "rmse")
    estimate = honest_estimate(board, "regression", None)
    # The selected rmse is the lowest, so optimistic: the honest one is higher.
    assert estimate.selected == min(t.score for t in board.trials)
    assert estimate.honest > estimate.selected + 0.02
    good = [y + rng.normal(0, 0.3, 300)] + noise
    board = oof_board(tmp_path / "good", good, y, "regression", "rmse")
    estimate = honest_estimate(board, "regression", None)
    assert estimate.selected == pytest.approx(0.3, abs=0.05)
    assert estimate.honest == pytest.approx(estimate.selected, abs=0.02)


def test_deadline_already_past_gives_the_minimum(tmp_path):
    y, outputs = noise_classifiers(np.random.default_rng(6), 200, 10)
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    past = time.monotonic() - 1
    assert honest_estimate(board, "classification", None, deadline=past).bootstraps == MIN_BOOTSTRAPS
    plan = choose(board, "classification")
    plan.chosen = True  # the ensemble path too, whatever the margin said
    assert honest_estimate(board, "classification", plan, deadline=past).bootstraps == MIN_BOOTSTRAPS
    assert honest_estimate(board, "classification", None, deadline=time.monotonic() + 600,
                           bootstraps=30).bootstraps == 30


def test_same_seed_same_estimate(tmp_path):
    y, outputs = noise_classifiers(np.random.default_rng(7), 200, 10)
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    first = honest_estimate(board, "classification", None, seed=3, bootstraps=40)
    assert first == honest_estimate(board, "classification", None, seed=3, bootstraps=40)


def test_no_correction_without_two_trials_with_predictions(tmp_path):
    y, outputs = noise_classifiers(np.random.default_rng(8), 100, 3)
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    best = board.best()
    (Path(best.run_dir) / "cv_predictions.npz").unlink()  # the selected trial cannot be re-scored
    assert honest_estimate(board, "classification", None) is None
    board.trials = [best]
    assert honest_estimate(board, "classification", None) is None


def _repeat(counts: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
    rows = np.repeat(np.arange(len(counts)), counts)
    return [a[rows] for a in arrays]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "f1_macro", "log_loss"])
def test_weighted_metrics_equal_metrics_compute_multiclass(metric):
    # The fast in-bag score is the same figure as metrics.compute on the drawn rows.
    rng = np.random.default_rng(9)
    n = 500
    y = rng.integers(0, 4, n)
    y[y == 3] = 2  # class 3 never occurs, though outputs may predict it
    outputs = [rng.dirichlet(np.ones(4), n) for _ in range(3)]
    rows = Rows("classification", metric, Pool(np.arange(n), y, [], outputs))
    for _ in range(3):
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        for output in outputs:
            want = compute("classification", *_repeat(counts, y, output))[metric]
            got = rows.values(y, output[None], counts.astype(float))[0]
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("digits", [1, None])
def test_weighted_roc_auc_equals_metrics_compute(digits):
    rng = np.random.default_rng(10)
    n = 400
    y = rng.integers(0, 2, n)
    p = rng.random(n) * 0.5 + 0.4 * y
    if digits is not None:
        p = np.round(p, digits)  # few distinct values: many ties
    output = np.stack([1 - p, p], axis=1)
    rows = Rows("classification", "roc_auc", Pool(np.arange(n), y, [], [output, output[::-1]]))
    counts = np.bincount(rng.integers(0, n, n), minlength=n)
    want = compute("classification", *_repeat(counts, y, output))["roc_auc"]
    assert rows.values(y, output[None], counts.astype(float))[0] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("metric", ["r2", "rmse", "mae"])
def test_weighted_metrics_equal_metrics_compute_regression(metric):
    rng = np.random.default_rng(11)
    n = 300
    y = 1000 + rng.normal(0, 3, n)  # far from zero: r2 without cancellation
    outputs = [y + rng.normal(0, 1 + i, n) for i in range(3)]
    rows = Rows("regression", metric, Pool(np.arange(n), y, [], outputs))
    counts = np.bincount(rng.integers(0, n, n), minlength=n)
    for output in outputs:
        want = compute("regression", *_repeat(counts, y, output))[metric]
        assert rows.values(y, output[None], counts.astype(float))[0] == pytest.approx(want, rel=1e-9)


def test_minimised_metric_ensemble_path(tmp_path):
    # An ensemble of noisy regressors chosen on the same rows: its rmse is optimistic (too low).
    rng = np.random.default_rng(12)
    y = rng.normal(size=300)
    outputs = [0.5 * y + rng.normal(0, 1, 300) for _ in range(30)]
    board = oof_board(tmp_path, outputs, y, "regression", "rmse")
    plan = choose(board, "regression")
    assert plan.chosen and plan.score < board.best().score
    estimate = honest_estimate(board, "regression", plan)
    assert estimate.selected == plan.score
    assert estimate.honest > estimate.selected + 0.03  # measured over four draws: 0.063 to 0.075
