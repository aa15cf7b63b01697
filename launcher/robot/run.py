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
STARTUP = 3.0  # seconds for a launcher process to start (imports, Hydra)
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
    ensemble: str | None = None
    status: str = "done"
    commands: list[str] = field(default_factory=list)

    @property
    def best_run(self) -> str | None:
        return self.best.run_dir if self.best else None

    @property
    def score(self) -> float | None:
        return self.metrics.get("score")


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
    try:
        if not state["rounds"] or state["rounds"][-1]["slug"] != emitted.slug:
            state["rounds"].append({"slug": emitted.slug, "planner": plan.planner, "command": emitted.command})
        while True:
            slug = state["rounds"][-1]["slug"]
            reserve = final_reserve(board, blueprint, clock)
            window = clock.left() - reserve
            if window < MIN_SEARCH:
                log.info("robot: %.0fs left, kept for the final fit: no more searching", clock.left())
                break
            command = search_command(slug, exp, window, cores, blueprint)
            commands.append(" ".join(map(shlex.quote, command[3:])))
            _save_state(exp, task, state, clock, "running")
            run_search(command, exp / "sweeps" / slug, slug, board, clock, deadline=clock.left() - reserve,
                       enough=lambda: bool(task.requirements.met(board.best().score if board.best() else None)))
            best = board.best()
            met = task.requirements.met(best.score if best else None)
            state["rounds"][-1]["best"] = best.score if best else None
            if met or clock.left() - reserve < MIN_SEARCH * 2:
                break
            blueprint, emitted = refine(maker, task, profile, blueprint, board, len(state["rounds"]) + 1)
            if emitted is None:
                break
            state["rounds"].append({"slug": emitted.slug, "planner": "refine", "command": emitted.command})
        experiment = finish(maker, task, board, exp, clock, cores, commands)
        _save_state(exp, task, state, clock, "done", experiment)
        return experiment
    except KeyboardInterrupt:
        _save_state(exp, task, state, clock, "interrupted")
        from launcher.robot.report import write_report

        best = board.best()
        write_report(task, board, exp, clock.used(), None, "interrupted", commands)
        shown = f"{task.metric} {best.score:.4f} ({best.model})" if best else "no finished trial"
        raise Interrupted(f"interrupted after {clock.used():.0f}s of {task.budget:g}s; best so far: {shown}; "
                          f"everything finished is in {exp}. Resume with: {resume_command(exp)}") from None


def final_reserve(board: Leaderboard, blueprint: Blueprint, clock: Clock) -> float:
    """Time kept for the final fit: a process start, and one fit on all rows of the slowest
    family among the best trials (a trial is k cross-validation fits on (k-1)/k of the rows)."""
    folds = blueprint.cv_folds or 1
    top = [t.seconds for t in board.finished[:4] if t.seconds]
    fit = max(top) / folds * (folds / max(1, folds - 1)) if top else 0.04 * clock.budget
    return STARTUP + 1.5 * fit + 1.0


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
               deadline: float, enough: Any = None) -> None:
    """Run one search as its own process group, watch its trials, stop it at the deadline or
    as soon as `enough()` (the requirement is met)."""
    from launcher.core.paths import original_cwd

    sweep_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    with open(sweep_dir.parent / f"{slug}.log", "a") as output:
        proc = subprocess.Popen(command, cwd=original_cwd(), env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)
        progress = Progress(slug, board, clock)
        try:
            while proc.poll() is None:
                if time.monotonic() - started >= deadline:
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
           round_number: int) -> tuple[Blueprint, Any]:
    """A refined blueprint from the planner (the heuristic one if the LLM cannot), emitted."""
    from launcher.robot.emit import emit
    from launcher.robot.maker import Plan, data_section, sweep_timeout
    from launcher.robot.planners import PlannerUnavailable, make_planner
    from launcher.robot.planners.heuristic import HeuristicPlanner
    from launcher.robot.validate import BlueprintRejected, check

    def checked(bp: Blueprint) -> Blueprint:
        return check(bp, task, task.dataset.overrides())

    planner = make_planner(maker.planner_config)
    fallback = None
    try:
        refined, raw = planner.refine(task, profile, blueprint, board, checked)
        used = planner.describe()
    except (PlannerUnavailable, BlueprintRejected) as exc:
        fallback = str(exc)
        log.warning("planner %s could not refine: %s; refining with the heuristic planner", planner.name, exc)
        refined, raw = HeuristicPlanner().refine(task, profile, blueprint, board, checked)
        used = "heuristic (offline rules)"
    emitted = emit(refined, task, used, maker.conf(), data_section(task.dataset), timeout=sweep_timeout(task.budget),
                   seed=maker.seed + round_number, overwrite=maker.overwrite, suffix=f"_r{round_number}")
    plan = Plan(refined, raw, used, fallback, emitted)
    plan.records.append(maker.record(plan))
    log.info("robot: round %d by %s: %s; %s", round_number, used, refined.rationale, emitted.command)
    return refined, emitted


def finish(maker: Any, task: MLTask, board: Leaderboard, exp: Path, clock: Clock, cores: int,
           commands: list[str]) -> MLExperiment:
    """The final model: the best trial refitted on every row, or the better ensemble."""
    from launcher.robot import ensemble as ens
    from launcher.robot.report import write_report

    best = board.best()
    if best is None:
        write_report(task, board, exp, clock.used(), None, "failed", commands)
        raise LauncherError(f"no trial finished within {task.budget:g}s; raise the budget (budget=...) or see the "
                            f"searches' logs in {exp / 'sweeps'}")
    choice = ens.choose(board, task.task_type)
    members: list[tuple[Trial, float]] = [(best, 1.0)]
    if choice is not None:
        log.info("robot: %s", choice.describe(task.metric))
        if choice.chosen:
            members = choice.members
    finals = final_fits(members, exp, cores, clock)
    commands += [f for f, _ in finals]
    model_dirs = [d for _, d in finals]
    from launcher import artifacts

    target = exp / "model"
    if len(members) == 1:
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(model_dirs[0], target)
    else:
        artifacts.save_ensemble([(d, w) for d, (_, w) in zip(model_dirs, members)], target, {
            "task": task.task_type, "metric": task.metric,
            "members": [{"model": t.model, "trial": t.number, "search": t.sweep, "weight": w} for t, w in members]})
    score = choice.score if (choice is not None and choice.chosen) else best.score
    met = task.requirements.met(score)
    experiment = MLExperiment(task, exp, board, best, {"metric": task.metric, "score": score, "cv_std": best.cv_std},
                              target, met, clock.used(), ensemble=choice.describe(task.metric) if choice else None,
                              commands=commands)
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
                   f"trainer.num_threads={max(1, cores // len(members))}", f"hydra.run.dir={out}"]
        jobs.append((command, out))
    running = []
    for command, out in jobs:
        running.append((subprocess.Popen(command, cwd=original_cwd(), stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True), command, out))
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
    overrides = [o for o in overrides if not o.startswith("hydra.run.dir=")]
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


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
