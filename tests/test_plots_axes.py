"""The search plots read well with one trial (or all-equal scores) and say what the score is.
Checked on matplotlib's own tick labels and titles, not on pixels."""
from __future__ import annotations

import pytest

from launcher import plots


def drawn_labels(fig, axis: str) -> tuple[list[float], str]:
    """The visible tick labels of the first axes as numbers, and the formatter's offset text."""
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    values = [float(t.get_text().replace("\u2212", "-")) for t in ticks if low <= t.get_position()[axis == "y"] <= high]
    formatter = (ax.xaxis if axis == "x" else ax.yaxis).get_major_formatter()
    return values, formatter.get_offset()


@pytest.mark.parametrize("scores", [[0.98125], [0.98125, 0.98125, 0.98125]])
def test_leaderboard_with_one_score_has_a_plain_readable_axis(scores):
    fig = plots.leaderboard_figure([(f"logistic_regression #{i}", s) for i, s in enumerate(scores)],
                                   "accuracy", "5-fold CV")
    values, offset = drawn_labels(fig, "x")
    assert offset == ""  # no "1e-10 + 9.8125e-1"
    assert len(values) >= 3 and min(values) <= 0.98125 <= max(values)
    assert max(values) - min(values) >= 0.01 and max(values) <= 1.0  # a sensible range, not 1e-10 wide
    title = fig.axes[0].get_title()
    assert "5-fold CV accuracy" in title and "logistic_regression" in title
    assert fig.axes[0].get_xlabel() == "5-fold CV accuracy"


def test_optimization_history_with_one_trial_has_a_plain_readable_axis():
    fig = plots.optimization_history_figure([0.98125], "rmse", False, "validation", ["ridge"])
    values, offset = drawn_labels(fig, "y")
    assert offset == "" and len(values) >= 3 and min(values) <= 0.98125 <= max(values)
    trials, _ = drawn_labels(fig, "x")
    assert trials == [1.0]  # whole trial numbers only
    title = fig.axes[0].get_title()
    assert "validation rmse" in title and "ridge" in title


def test_optimization_history_skips_a_search_with_no_finished_trial(tmp_path):
    assert plots.optimization_history([None, float("nan")], "accuracy", True, tmp_path / "h.png") is None
    assert not (tmp_path / "h.png").exists()
    written = plots.optimization_history([None, 0.9], "accuracy", True, tmp_path / "h.png", "5-fold CV", ["svm", "ridge"])
    assert written == tmp_path / "h.png" and written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
