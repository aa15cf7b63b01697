"""Running a plan within its budget: the emitted searches, the refinement rounds, the final fit.

    search  `python -m launcher -m +experiment=robot/<slug> hparams_search=robot/<slug>`, the
            command a person types, with the robot's run settings added (its sweep directory, the
            search's share of the time left, parallel trials of one thread each, every row for
            cross-validation, no model written per trial). Its timeout stops new trials; the
            robot stops the whole search at the deadline, so a long trial cannot overrun.
    refine  while the requirement is unmet and time is left, the planner refines the blueprint
            with the leaderboard; the new blueprint is checked and emitted as <slug>_r<n>.
    final   the best trial's own overrides, fitted once on every row (trainer.refit=true), or an
            ensemble of the best trials when it scores better out of fold; saved as <exp>/model,
            so `python -m launcher.predict run=<exp>` predicts with it.

The budget covers the whole command; what each step may take is the time left minus a reserve
for the final fit, measured from the trials themselves.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.core.errors import Interrupted, LauncherError
from launcher.io import write_json
from launcher.metrics import DIRECTION
from launcher.robot.blueprint import Blueprint
from launcher.robot.leaderboard import Leaderboard, Trial
from launcher.robot.profile import DatasetProfile
from launcher.robot.task import MLTask

log = logging.getLogger("launcher")

STATE = "robot.json"
# The whole command ends within its budget plus this: the interpreter's start before the clock
# starts, the report and plots after it stops, and the final fits' estimate erring short.
BUDGET_MARGIN = 5.0
STARTUP = 2.5  # seconds for a launcher run that fits nothing (measured here: 2.1-2.4 s)
STOPPING = 1.0  # stopping a search, reading its trials, choosing the final model (measured 0.7-1.0 s)
MIN_SEARCH = 6.0  # a search shorter than this is not worth starting
POLL = 0.5


@dataclass
class MLExperiment:
    """What the robot found: the leaderboard, the best run, its metrics and the model."""

    task: MLTask
    directory: Path
    leaderboard: Leaderboard
    best: Trial | None
    metrics: dict[str, Any]
    model_path: Path | None
    requirement_met: bool | None
    seconds: float
    report: Path | None = None
    ensemble: str | None = None  # what the ensemble step found, in words
    ensembled: bool = False  # the final model is an ensemble of the best trials
    status: str = "done"
    commands: list[str] = field(default_factory=list)

    @property
    def best_run(self) -> str | None:
        return self.best.run_dir if self.best else None

    @property
    def score(self) -> float | None:
        return self.metrics.get("score")

    @property
    def synthetic(self) -> bool:
        """The task gave only a shape: every score here is on synthetic data."""
        return self.task.dataset.kind == "shape"


class Clock:
    def __init__(self, budget: float, started: float | None = None, spent: float = 0.0) -> None:
        self.budget, self.started, self.spent = budget, started or time.monotonic(), spent

    def used(self) -> float:
        return self.spent + time.monotonic() - self.started

    def left(self) -> float:
        return self.budget - self.used()


def execute(maker: Any, task: MLTask, profile: DatasetProfile, plan: Any, *, started: float | None = None,
            state: dict[str, Any] | None = None) -> MLExperiment:
    """Run the plan's search, refine while it pays, fit the final model; record everything."""
    exp = maker.experiment_dir()
    state = state or {"rounds": [], "spent": 0.0}
    clock = Clock(task.budget, started, float(state.get("spent", 0.0)))
    board = Leaderboard(task.metric, DIRECTION[task.metric])
    for done in state["rounds"]:
        board.add_sweep(exp / "sweeps" / done["slug"], done["slug"])
    cores = max(1, os.cpu_count() or 1)
    blueprint, emitted = plan.blueprint, plan.emitted
    commands: list[str] = []

    def met() -> bool | None:
        best = board.best()
        return task.requirements.met(best.score if best else None)

    try:
        if not state["rounds"] or state["rounds"][-1]["slug"] != emitted.slug:
            state["rounds"].append({"slug": emitted.slug, "planner": plan.planner, "command": emitted.command})
        while True:
            slug = state["rounds"][-1]["slug"]
            window = SearchWindow(task, board, blueprint, clock, cores)
            available = window()
            if available < MIN_SEARCH:
                log.info("robot: %.0fs left, kept for the final fit: no more searching", clock.left())
                break
            command = search_command(slug, exp, available, cores, blueprint)
            commands.append(" ".join(map(shlex.quote, command[3:])))
            _save_state(exp, task, state, clock, "running")
            run_search(command, exp / "sweeps" / slug, slug, board, clock, window, enough=lambda: bool(met()))
            best = board.best()
            state["rounds"][-1]["best"] = best.score if best else None
            if met() or window() < MIN_SEARCH:
                break
            # The planner must answer in time for one more search worth starting.
            blueprint, emitted = refine(maker, task, profile, blueprint, board, len(state["rounds"]) + 1,
                                        deadline=time.monotonic() + window() - MIN_SEARCH)
            if emitted is None:
                break
            state["rounds"].append({"slug": emitted.slug, "planner": "refine", "command": emitted.command})
        experiment = finish(maker, task, board, exp, clock, cores, commands, blueprint.cv_folds)
        _save_state(exp, task, state, clock, "done", experiment)
        return experiment
    except LauncherError as exc:  # recorded as failed (runs lists it), then said in one line
        state["error"] = str(exc)
        _save_state(exp, task, state, clock, "failed")
        raise
    except KeyboardInterrupt:
        _save_state(exp, task, state, clock, "interrupted")
        from launcher.robot.report import write_report

        best = board.best()
        write_report(task, board, exp, clock.used(), None, "interrupted", commands)
        shown = f"{task.metric} {best.score:.4f} ({best.model})" if best else "no finished trial"
        raise Interrupted(f"interrupted after {clock.used():.0f}s of {task.budget:g}s; best so far: {shown}; "
                          f"everything finished is in {exp}. Resume with: {resume_command(exp)}") from None


def one_fit(trial: Trial, folds: int | None) -> float:
    """Seconds of one fit on every row, from the trial's own time: a trial is k cross-validation
    fits on (k-1)/k of the rows, so one fit on all of them takes about its time / (k-1)."""
    return (trial.seconds or 0.0) / max(1, (folds or 1) - 1)


def final_reserve(slowest: Trial | None, folds: int | None, clock: Clock, cores: int) -> float:
    """Time kept for the end: stopping the search and choosing (STOPPING), then one wave of
    final fits as slow as the slowest trial an ensemble could take (`slowest`); before any
    trial has finished, one fit taking a share of the budget. A larger ensemble is fitted only
    if it fits what is left (finish)."""
    if slowest is None:
        return STOPPING + STARTUP + 1.25 * 0.04 * clock.budget + 0.5
    return STOPPING + final_seconds([(slowest, 1.0)], folds, cores)


class SearchWindow:
    """The time a search may still take: what is left of the budget but the final fits' share.

    The share is one wave of final fits (one per core) as slow as the slowest trial an
    ensemble could take. When the search comes that close to its end, the robot looks at the
    ensemble the best trials make now: if it needs more fits than one wave, the search stops
    early enough for them (an ensemble that wins out of fold is worth more than the last few
    trials)."""

    def __init__(self, task: MLTask, board: Leaderboard, blueprint: Blueprint, clock: Clock, cores: int) -> None:
        self.task, self.board, self.blueprint, self.clock, self.cores = task, board, blueprint, clock, cores
        self.extra = 0.0  # the larger ensemble's extra time
        self.seen = -1  # finished trials when the ensemble was last looked at

    def __call__(self) -> float:
        from launcher.robot.ensemble import MOST_MEMBERS, choose

        folds = self.blueprint.cv_folds
        slowest = _slowest(self.board, folds)
        reserve = final_reserve(slowest, folds, self.clock, self.cores)
        left = self.clock.left() - reserve
        finished = len(self.board.finished)
        if slowest is not None and MOST_MEMBERS > self.cores and finished != self.seen:
            ahead = final_seconds([(slowest, 1.0)] * MOST_MEMBERS, folds, self.cores) - reserve
            if left <= ahead + POLL:  # near the end: look again whenever a trial has finished
                self.seen = finished
                choice = choose(self.board, self.task.task_type)
                self.extra = 0.0
                if choice is not None and choice.chosen and len(choice.members) > self.cores:
                    self.extra = max(0.0, final_seconds(choice.members, folds, self.cores) - reserve)
        return left - self.extra


def _slowest(board: Leaderboard, folds: int | None) -> Trial | None:
    """The slowest to refit of the trials an ensemble could take."""
    from launcher.robot.ensemble import MOST_CANDIDATES, diverse

    pool = [t for t in diverse(board.finished)[:MOST_CANDIDATES] if t.seconds]
    return max(pool, key=lambda t: one_fit(t, folds)) if pool else None


def final_seconds(members: list[tuple[Trial, float]], folds: int | None, cores: int) -> float:
    """The final fits' time: the members run side by side, in waves of `cores`, each wave a
    process start and the slowest fit (with a quarter again for safety), then the copy."""
    waves = math.ceil(len(members) / max(1, cores))
    return waves * (STARTUP + 1.25 * max(one_fit(t, folds) for t, _ in members)) + 0.5


def search_command(slug: str, exp: Path, window: float, cores: int, blueprint: Blueprint) -> list[str]:
    timeout = max(1.0, window - STARTUP)
    command = [sys.executable, "-m", "launcher", "-m", f"+experiment=robot/{slug}", f"hparams_search=robot/{slug}",
               f"hydra.sweep.dir={exp / 'sweeps' / slug}", f"hydra.sweeper.timeout={timeout:.1f}",
               "save_model=false", "plots=false", "hydra.sweeper.plots=false",
               "data.test_size=0", "data.val_size=0" if blueprint.cv_folds else "data.val_size=0.2",
               "trainer.num_threads=1"]
    if cores > 1:
        # Trials side by side, one thread each: on the 2-core machine this project measures on,
        # that beats one trial at a time on both cores (benchmarks/robot_threads.py).
        command += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={cores}", f"hydra.sweeper.n_jobs={cores}"]
    if blueprint.framework == "sklearn":
        command.append("framework.n_jobs=1")
    return command


def run_search(command: list[str], sweep_dir: Path, slug: str, board: Leaderboard, clock: Clock,
               window: Any, enough: Any = None) -> None:
    """Run one search as its own process group, watch its trials, stop it when `window()` (the
    time it may still take, re-estimated as trials finish) runs out or as soon as `enough()`
    (the requirement is met). Stopping kills the running trials: none can overrun."""
    from launcher.core.paths import original_cwd

    sweep_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(sweep_dir.parent / f"{slug}.log", "a") as output:
        proc = subprocess.Popen(command, cwd=original_cwd(), env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)
        progress = Progress(slug, board, clock)
        try:
            while proc.poll() is None:
                if window() <= 0:
                    log.info("robot: search %s stopped at the deadline (running trials are dropped)", slug)
                    _stop(proc)
                    break
                time.sleep(POLL)
                board.add_sweep(sweep_dir, slug)
                progress.show()
                if enough is not None and enough():
                    log.info("robot: the requirement is met: search %s stopped", slug)
                    _stop(proc)
                    break
        except BaseException:
            _stop(proc)
            raise
        finally:
            board.add_sweep(sweep_dir, slug)
            progress.done()
    if proc.returncode not in (0, None, -signal.SIGTERM, -signal.SIGKILL) and not board.finished:
        tail = (sweep_dir.parent / f"{slug}.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise LauncherError(f"the search {slug} failed (exit {proc.returncode}): {' | '.join(tail)}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=3)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class Progress:
    """The robot's live view: one line redrawn on a terminal, plain lines otherwise."""

    def __init__(self, slug: str, board: Leaderboard, clock: Clock) -> None:
        self.slug, self.board, self.clock = slug, board, clock
        self.tty = sys.stderr.isatty()
        self.shown = (0, None)

    def line(self) -> str:
        trials = [t for t in self.board.trials if t.sweep == self.slug]
        done = sum(t.state == "COMPLETE" for t in trials)
        best = self.board.best()
        best_text = f"best {self.board.metric} {best.score:.4f} ({best.model})" if best else "no trial finished yet"
        return (f"robot: search {self.slug}: {done} trial(s) done | {best_text} | "
                f"{max(0.0, self.clock.left()):.0f}s of {self.clock.budget:g}s left")

    def show(self) -> None:
        done = sum(t.state == "COMPLETE" for t in self.board.trials if t.sweep == self.slug)
        best = self.board.best()
        key = (done, best.score if best else None)
        if self.tty:
            sys.stderr.write("\r" + self.line()[: max(20, shutil.get_terminal_size((100, 20)).columns - 1)] + "\x1b[K")
            sys.stderr.flush()
        elif key != self.shown and (key[1] != self.shown[1] or done % 10 == 0):
            log.info("%s", self.line())
        self.shown = key

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
        log.info("%s", self.line())


def refine(maker: Any, task: MLTask, profile: DatasetProfile, blueprint: Blueprint, board: Leaderboard,
           round_number: int, deadline: float | None = None) -> tuple[Blueprint, Any]:
    """A refined blueprint from the planner (the heuristic one if the LLM cannot), emitted."""
    from launcher.robot.emit import emit
    from launcher.robot.maker import Plan, data_section, sweep_timeout
    from launcher.robot.planners import PlannerUnavailable
    from launcher.robot.planners.heuristic import HeuristicPlanner
    from launcher.robot.validate import BlueprintRejected, check

    def checked(bp: Blueprint) -> Blueprint:
        return check(bp, task, task.dataset.overrides())

    planner = maker.planner()
    planner.deadline = deadline
    fallback = None
    try:
        refined, raw = planner.refine(task, profile, blueprint, board, checked)
        used = planner.describe()
    except (PlannerUnavailable, BlueprintRejected) as exc:
        fallback = str(exc)
        if planner.name == "heuristic":
            log.warning("robot: no refinement (%s); keeping what was found", exc)
            return blueprint, None
        log.warning("planner %s could not refine: %s; refining with the heuristic planner", planner.name, exc)
        try:
            refined, raw = HeuristicPlanner().refine(task, profile, blueprint, board, checked)
        except BlueprintRejected as again:
            log.warning("robot: no refinement (%s); keeping what was found", again)
            return blueprint, None
        used = "heuristic (offline rules)"
    emitted = emit(refined, task, used, maker.conf(), data_section(task.dataset), timeout=sweep_timeout(task.budget),
                   seed=maker.seed + round_number, overwrite=maker.overwrite, suffix=f"_r{round_number}")
    plan = Plan(refined, raw, used, fallback, emitted)
    plan.records.append(maker.record(plan))
    log.info("robot: round %d by %s: %s; %s", round_number, used, refined.rationale, emitted.command)
    return refined, emitted


def finish(maker: Any, task: MLTask, board: Leaderboard, exp: Path, clock: Clock, cores: int,
           commands: list[str], folds: int | None = None) -> MLExperiment:
    """The final model: the best trial refitted on every row, or the better ensemble when its
    fits also fit the time left."""
    from launcher.robot import ensemble as ens
    from launcher.robot.report import write_report

    best = board.best()
    if best is None:
        write_report(task, board, exp, clock.used(), None, "failed", commands)
        raise LauncherError(f"no trial finished within {task.budget:g}s; raise the budget (budget=...) or see the "
                            f"searches' logs in {exp / 'sweeps'}")
    choice = ens.choose(board, task.task_type)
    members: list[tuple[Trial, float]] = [(best, 1.0)]
    left = clock.left()

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
        if choice.chosen:
            members = choice.members
    finals = final_fits(members, exp, cores, clock)
    commands += [f for f, _ in finals]
    model_dirs = [d for _, d in finals]
    from launcher import artifacts

    target = exp / "model"
    if target.exists():
        shutil.rmtree(target)
    if len(members) == 1:
        shutil.move(model_dirs[0], target)  # one rename: the model is whole at <exp>/model or absent
    else:
        artifacts.save_ensemble([(d, w) for d, (_, w) in zip(model_dirs, members)], target, {
            "task": task.task_type, "metric": task.metric,
            "members": [{"model": t.model, "trial": t.number, "search": t.sweep, "weight": w} for t, w in members]})
        for d in model_dirs:  # copied into the ensemble: one copy of each model on disk
            shutil.rmtree(d)
    score = choice.score if (choice is not None and choice.chosen) else best.score
    met = task.requirements.met(score)
    experiment = MLExperiment(task, exp, board, best, {"metric": task.metric, "score": score, "cv_std": best.cv_std},
                              target, met, clock.used(), ensemble=choice.describe(task.metric) if choice else None,
                              ensembled=len(members) > 1, commands=commands)
    experiment.report = write_report(task, board, exp, clock.used(), experiment, "done", commands)
    verdict = "" if met is None else (" (requirement met)" if met else " (requirement NOT met)")
    log.info("robot: best %s %.4f by %s%s in %.0fs; model in %s", task.metric, score,
             "an ensemble" if len(members) > 1 else best.model, verdict, clock.used(), target)
    log.info("robot: predict with: python -m launcher.predict run=%s input=<csv> output=<csv>", exp)
    return experiment


def final_fits(members: list[tuple[Trial, float]], exp: Path, cores: int, clock: Clock) -> list[tuple[str, Path]]:
    """Each member's own overrides, fitted on every row, side by side on the cores."""
    from launcher.core.paths import original_cwd

    jobs = []
    for i, (trial, _) in enumerate(members):
        out = exp / "final" / str(i)
        if out.exists():
            shutil.rmtree(out)
        again = ("save_model=", "plots=", "trainer.num_threads=", "trainer.refit=", "trainer.cv_folds=",
                 "data.test_size=", "data.val_size=")  # set below, for the final fit
        overrides = [o for o in trial.overrides() if not o.startswith(again)]
        command = [sys.executable, "-m", "launcher", *overrides, "trainer.refit=true", "trainer.cv_folds=null",
                   "data.test_size=0", "data.val_size=0", "save_model=true", "plots=false",
                   # One thread: on the measured sizes a second thread never helped a fit, and
                   # under a passive OpenMP wait policy it made one 3x slower
                   # (benchmarks/robot_threads.py).
                   "trainer.num_threads=1", f"hydra.run.dir={out}"]
        jobs.append((command, out))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = []
    for wave in range(0, len(jobs), cores):  # side by side, at most one per core
        running = [(subprocess.Popen(command, cwd=original_cwd(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env), command, out) for command, out in jobs[wave:wave + cores]]
        results += _collect(running)
    return results


def _collect(running: list[tuple[subprocess.Popen, list[str], Path]]) -> list[tuple[str, Path]]:
    results = []
    for proc, command, out in running:
        text, _ = proc.communicate()
        if proc.returncode != 0:
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise LauncherError(f"the final fit failed (exit {proc.returncode}): {tail}")
        results.append((" ".join(map(shlex.quote, command[3:])), out / "model"))
    return results


def resume_command(exp: Path) -> str:
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    # `task=...` as typed (the command line's task= is stored as description=).
    overrides = [("task=" + o[len("description="):]) if o.startswith("description=") else o
                 for o in overrides if not o.startswith("hydra.run.dir=")]
    return " ".join(["python -m launcher.robot", *map(shlex.quote, overrides), shlex.quote(f"hydra.run.dir={exp}")])


def _save_state(exp: Path, task: MLTask, state: dict[str, Any], clock: Clock, status: str,
                experiment: MLExperiment | None = None) -> None:
    best = experiment.best if experiment else None
    state = {**state, "spent": clock.used()}
    record = {"kind": "robot", "status": status, "task": task.description, "task_type": task.task_type,
              "metric": task.metric, "requirement": task.requirements.threshold, "budget": task.budget,
              "seconds": round(clock.used(), 1), "state": state}
    if experiment is not None:
        record.update(best_score=experiment.score, best_model=best.model if best else None,
                      met=experiment.requirement_met, model=str(experiment.model_path), ensemble=experiment.ensemble)
    write_json(exp / STATE, record)


def load_state(exp: Path) -> dict[str, Any] | None:
    try:
        return json.loads((exp / STATE).read_text())
    except (OSError, ValueError):
        return None
