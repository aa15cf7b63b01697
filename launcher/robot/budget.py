"""The robot's clock and how it shares the budget between the search and the final fits.

The budget covers the whole command, from the robot's first line to its report. Every process
the robot starts has a hard deadline on this clock; the search stops early enough for a wave of
final fits, estimated from the trials themselves, and a final fit that overruns anyway is killed
and the best model already fitted is kept (launcher.robot.final).
"""
from __future__ import annotations

import math
import time
from launcher.robot.leaderboard import Leaderboard, Trial

# The whole command ends within its budget plus this: the interpreter's start before the clock
# starts, and the report after the last process is stopped (measured: benchmarks/robot_budget.py).
BUDGET_MARGIN = 5.0
STARTUP = 2.5  # seconds for a launcher run that fits nothing (measured here: 2.1-2.4 s)
STOPPING = 1.0  # stopping a search, reading its trials, choosing the final model (measured 0.7-1.0 s)
REPORT = 1.0  # the report, its plots and the model's move, after the last process (measured 0.4-0.8 s)
MIN_SEARCH = 6.0  # a search shorter than this is not worth starting
POLL = 0.5


class Clock:
    def __init__(self, budget: float, started: float | None = None, spent: float = 0.0) -> None:
        self.budget, self.started, self.spent = budget, started or time.monotonic(), spent

    def used(self) -> float:
        return self.spent + time.monotonic() - self.started

    def left(self) -> float:
        return self.budget - self.used()

    def deadline(self) -> float:
        """The time.monotonic() by which every process the robot started must be done: the
        budget's end less the report's time."""
        return time.monotonic() + self.left() - REPORT


def one_fit(trial: Trial, folds: int | None) -> float:
    """Seconds of one fit on every row, from the trial's own time: a trial is k cross-validation
    fits on (k-1)/k of the rows, so one fit on all of them takes about its time / (k-1). A
    trial whose model is already fitted on every row (the baseline) costs nothing."""
    if trial.fitted_model() is not None:
        return 0.0
    return (trial.seconds or 0.0) / max(1, (folds or 1) - 1)


def final_seconds(members: list[tuple[Trial, float]], folds: int | None, cores: int) -> float:
    """The final fits' time: the members still to fit run side by side, in waves of `cores`,
    each wave a process start and the slowest fit (with a quarter again for safety)."""
    todo = [t for t, _ in members if t.fitted_model() is None]
    if not todo:
        return 0.5
    waves = math.ceil(len(todo) / max(1, cores))
    return waves * (STARTUP + 1.25 * max(one_fit(t, folds) for t in todo)) + 0.5


def final_reserve(slowest: Trial | None, folds: int | None, clock: Clock, cores: int) -> float:
    """Time kept for the end: stopping the search and choosing, one wave of final fits as slow
    as the slowest trial an ensemble could take, the report. Before any trial has finished, one
    fit taking a share of the budget."""
    if slowest is None:
        return STOPPING + REPORT + STARTUP + 1.25 * 0.04 * clock.budget + 0.5
    return STOPPING + REPORT + final_seconds([(slowest, 1.0)], folds, cores)


def slowest(board: Leaderboard, folds: int | None) -> Trial | None:
    """The slowest to refit of the trials an ensemble could take."""
    from launcher.robot.ensemble import MOST_CANDIDATES, diverse

    pool = [t for t in diverse(board.finished)[:MOST_CANDIDATES] if t.seconds]
    return max(pool, key=lambda t: one_fit(t, folds)) if pool else None


class SearchWindow:
    """The time a search may still take: what is left of the budget but the final fits' share.

    The share is one wave of final fits (one per core) as slow as the slowest trial an
    ensemble could take. When the search comes that close to its end, the robot looks at the
    ensemble the best trials make now: if it needs more fits than one wave, the search stops
    early enough for them (an ensemble that wins out of fold is worth more than the last few
    trials)."""

    def __init__(self, task_type: str, board: Leaderboard, folds: int | None, clock: Clock, cores: int) -> None:
        self.task_type, self.board, self.folds, self.clock, self.cores = task_type, board, folds, clock, cores
        self.extra = 0.0  # the larger ensemble's extra time
        self.seen = -1  # finished trials when the ensemble was last looked at

    def __call__(self) -> float:
        from launcher.robot.ensemble import MOST_MEMBERS, choose

        worst = slowest(self.board, self.folds)
        reserve = final_reserve(worst, self.folds, self.clock, self.cores)
        left = self.clock.left() - reserve
        finished = len(self.board.finished)
        if worst is not None and MOST_MEMBERS > self.cores and finished != self.seen:
            ahead = final_seconds([(worst, 1.0)] * MOST_MEMBERS, self.folds, self.cores) - reserve
            if left <= ahead + POLL:  # near the end: look again whenever a trial has finished
                self.seen = finished
                choice = choose(self.board, self.task_type)
                self.extra = 0.0
                if choice is not None and choice.chosen and len(choice.members) > self.cores:
                    self.extra = max(0.0, final_seconds(choice.members, self.folds, self.cores) - reserve)
        return left - self.extra

