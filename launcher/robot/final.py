"""The final model: the best trial fitted once on every row, or the better ensemble when its
fits also fit the time left; every fit has a hard deadline, and when one overruns or fails the
best model already fitted (the robot's baseline) is kept instead. Its expected score is the
selection-corrected estimate (launcher.robot.estimate), the selecting figure beside it."""
from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from launcher.core.errors import LauncherError
from launcher.robot.budget import REPORT, STARTUP, Clock, final_seconds
from launcher.robot.commands import Invocation
from launcher.robot.experiment import MLExperiment
from launcher.robot.leaderboard import Leaderboard, Trial
from launcher.robot.task import MLTask
from launcher.robot.watch import Job, plain_error

log = logging.getLogger("launcher")
ESTIMATE_SECONDS = 2.0  # at most, for the honest estimate's bootstraps (measured: well under 1 s at 50k rows)


def finish(task: MLTask, board: Leaderboard, exp: Path, clock: Clock, inv: Invocation, commands: list[str],
           folds: int | None, baseline: Job | None = None) -> MLExperiment:
    """Fit and save the final model, estimate its score, write nothing half-done."""
    from launcher.robot.estimate import honest_estimate

    best = board.best()
    if best is None:
        raise no_model(task, board, clock, baseline)
    choice = ensemble_choice(task, board, clock, inv.cores, folds)
    members = choice.members if choice is not None and choice.chosen else [(best, 1.0)]
    models = fit_members(members, exp, inv, clock, commands)
    fallback = None
    if models is None:
        kept = next((t for t in board.finished if t.fitted_model() is not None), None)
        what = "the ensemble's final fits" if len(members) > 1 else f"the final fit of {best.model}"
        if kept is None:
            raise LauncherError(f"{what} did not finish within budget={task.budget:g}s and no model was fitted "
                                f"before it; a larger budget would serve (budget={suggest(task.budget)})")
        fallback = f"{what} did not finish by the deadline: the final model is the best one already fitted"
        log.warning("robot: %s (%s, %s %.4f)", fallback, kept.model, task.metric, kept.score)
        members, models, choice = [(kept, 1.0)], [kept.fitted_model()], None
    target = save(members, models, exp, task)
    chosen = choice if choice is not None and choice.chosen else None
    selected = chosen.score if chosen else members[0][0].score
    estimate = None
    if fallback is None:
        estimate = honest_estimate(board, task.task_type, chosen, seed=0,
                                   deadline=time.monotonic() + min(ESTIMATE_SECONDS, max(0.1, clock.left() - REPORT)))
    if estimate is not None:
        score, method = estimate.honest, estimate.method
    else:
        # One trial fixed before the search (the fallback), or nothing to re-run the selection
        # on: its cross-validated score was not picked from others, so it is not inflated.
        score = selected
        method = ("the final model's own cross-validated score: it was not selected from other trials"
                  if fallback or len(board.finished) == 1 else
                  "no correction was possible (fewer than two trials kept out-of-fold predictions on the same "
                  "rows): the figure is the one that selected the model, and optimistic")
    met = task.requirements.met(score)
    metrics = {"metric": task.metric, "score": score, "selected": selected, "cv_std": members[0][0].cv_std}
    if estimate is not None:
        metrics.update(low=estimate.low, high=estimate.high, bootstraps=estimate.bootstraps)
    return MLExperiment(task, exp, board, best, metrics, target, met, clock.used(),
                        ensemble=choice.describe(task.metric) if choice is not None else None,
                        ensembled=len(members) > 1, commands=commands,
                        final=members[0][0] if len(members) == 1 else None, fallback=fallback,
                        estimate_method=method)


def ensemble_choice(task: MLTask, board: Leaderboard, clock: Clock, cores: int, folds: int | None):
    """The greedy ensemble of the best trials, made smaller (or dropped) when its final fits do
    not fit the time left."""
    from launcher.robot import ensemble as ens

    choice = ens.choose(board, task.task_type)
    best = board.best()
    left = clock.left() - REPORT

    def fits(chosen: list[tuple[Trial, float]]) -> bool:
        return final_seconds(chosen, folds, cores) <= left

    if choice is not None and choice.chosen and not fits(choice.members):
        # Too slow for the time left: the best smaller ensemble whose fits fit (the best trial
        # among them, so it is still compared with the best single trial), or none.
        smaller = None
        if fits([(best, 1.0)]):
            for most in range(len(choice.members) - 1, 1, -1):
                smaller = ens.choose(board, task.task_type, most_members=most, allowed=lambda t: fits([(t, 1.0)]))
                if smaller is not None and smaller.chosen and fits(smaller.members):
                    break
                smaller = None
        if smaller is not None:
            smaller.note = f"the larger ensemble's fits do not fit the {left:.0f}s left"
            choice = smaller
        else:
            choice.chosen = False
            choice.note = (f"its {len(choice.members)} final fits (about "
                           f"{final_seconds(choice.members, folds, cores):.0f}s) do not fit the {max(0.0, left):.0f}s left")
    if choice is not None:
        log.info("robot: %s", choice.describe(task.metric))
    return choice


def fit_members(members: list[tuple[Trial, float]], exp: Path, inv: Invocation, clock: Clock,
                commands: list[str]) -> list[Path] | None:
    """Each member's model fitted on every row: its own when it has one, else its overrides
    fitted again, side by side on the cores, each killed at the deadline. None when any fit did
    not finish (the caller falls back)."""
    models: list[Path | None] = [t.fitted_model() for t, _ in members]
    todo = [i for i, m in enumerate(models) if m is None]
    deadline = clock.deadline()
    for wave in range(0, len(todo), max(1, inv.cores)):
        jobs = []
        for i in todo[wave:wave + inv.cores]:
            out = exp / "final" / str(i)
            if out.exists():
                shutil.rmtree(out)
            job = Job(inv, inv.final(members[i][0].overrides(), out), exp / "final" / f"{i}.log")
            commands.append(job.command)
            jobs.append((i, job, out))
        for i, job, out in jobs:
            if job.wait(deadline):
                models[i] = out / "model"
            else:
                reason = "stopped at the deadline" if job.stopped else f"failed: {job.error_line()}"
                log.warning("robot: the final fit of %s %s (%s)", members[i][0].model, reason, job.log_path)
        if any(models[i] is None for i, _, _ in jobs):
            for _, job, _ in jobs:
                job.stop()
            return None
    return [m for m in models if m is not None]


def save(members: list[tuple[Trial, float]], models: list[Path], exp: Path, task: MLTask) -> Path:
    """<exp>/model: one model, or the ensemble holding copies of its members; renamed into place
    whole, so it is complete or absent."""
    from launcher import artifacts
    from launcher.io import atomic_dir

    target = exp / "model"
    if len(members) == 1:
        with atomic_dir(target) as tmp:
            shutil.copytree(models[0], tmp, dirs_exist_ok=True)
    else:
        artifacts.save_ensemble([(d, w) for d, (_, w) in zip(models, members)], target, {
            "task": task.task_type, "metric": task.metric,
            "members": [{"model": t.model, "trial": t.number, "search": t.sweep, "weight": w} for t, w in members]})
    for d in models:  # the final fits' copies are in the model now; a trial's own stays with its run
        if d.parent.parent == exp / "final":
            shutil.rmtree(d, ignore_errors=True)
    return target


def no_model(task: MLTask, board: Leaderboard, clock: Clock, baseline: Job | None) -> LauncherError:
    """Why there is no model, in one line: the trials' error, or the budget with the one that
    would serve."""
    failures = sorted(board.failures(), key=lambda t: (t.sweep != "baseline", t.sweep, t.number))
    if failures:
        first = failures[0]
        return LauncherError(f"no trial finished: {len(failures)} failed; the first with: {plain_error(first.error)} "
                             f"(its log: {first.run_dir})")
    used = clock.used()
    need = None
    if baseline is not None:
        done, total = fold_progress(baseline)
        if done:  # the folds it finished, and the rest at the same pace
            per_fit = max(0.0, used - STARTUP) / done
            need = used + per_fit * (total + 1 - done) + REPORT
    shown = f"about {suggest(need)}s" if need else f"more than {used:.0f}s"
    return LauncherError(f"no model within budget={task.budget:g}s: the cheapest learner did not finish in "
                         f"{used:.0f}s; it needs {shown} (budget={suggest(need or 2 * task.budget)})")


def fold_progress(job: Job) -> tuple[int, int]:
    """(cross-validation folds finished, folds in all) from a launcher run's log."""
    try:
        found = re.findall(r"fold (\d+)/(\d+)", job.log_path.read_text(errors="replace"))
    except OSError:
        return 0, 0
    return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)


def suggest(seconds: float) -> int:
    """A budget to suggest: rounded up to 5 s, a quarter more for safety."""
    return int(5 * -(-1.25 * seconds // 5))
