"""The robot's final step under time pressure (launcher.robot.final.ensemble_choice): an ensemble
whose final fits do not fit the time left is made smaller or dropped, said in its note. The
trials are synthetic out-of-fold predictions where real trials leave them; no training."""
from __future__ import annotations

import time

from launcher.robot.budget import Clock
from launcher.robot.final import ensemble_choice
from launcher.robot.task import DatasetInfo, MLTask, Requirements
from test_robot_ensemble import halves, oof_board  # noqa: F401 (the fixture)


def task() -> MLTask:
    return MLTask("t", DatasetInfo("shape", size=300, features=2), Requirements("accuracy"), "classification",
                  "given", 60.0)


def test_with_time_for_its_fits_the_ensemble_is_chosen(tmp_path, halves):  # noqa: F811
    y, outputs = halves
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    choice = ensemble_choice(task(), board, Clock(budget=600.0), cores=2, folds=5)
    assert choice.chosen and len(choice.members) >= 2


def test_without_time_for_its_fits_the_ensemble_is_dropped_and_says_why(tmp_path, halves):  # noqa: F811
    y, outputs = halves
    board = oof_board(tmp_path, outputs, y, "classification", "accuracy")
    for t in board.trials:
        t.seconds = 400.0  # each refit would take about 100 s
    spent = Clock(budget=60.0, started=time.monotonic() - 30)
    choice = ensemble_choice(task(), board, spent, cores=2, folds=5)
    assert not choice.chosen and "do not fit" in choice.note
    assert "not chosen" in choice.describe("accuracy")

