"""Running a plan within its budget: a baseline, the emitted searches, refinement, the final fit.

    baseline  the cheapest strong learner of the plan at its starting point, cross-validated and
              fitted on every row at once, beside the search's first trial (which runs alone):
              a model exists early, whatever the budget, and is the fallback if a later fit
              cannot finish
    search    `python -m launcher -m experiment=robot/<slug> hparams_search=robot/<slug>`, the
              command a person types, with only this invocation's settings added on the command
              line (launcher.robot.commands); the robot stops it at its window's end, so a long
              trial cannot overrun
    refine    while the requirement is unmet and time is left, the planner refines the blueprint
              with the leaderboard; the new blueprint is checked and emitted as <slug>_r<n>
    final     launcher.robot.final: the best trial (or a better ensemble) fitted on every row
              with a hard deadline, saved as <exp>/model, its score corrected for selection

Every command the robot runs is recorded as it printed it (report.md, robot.json).
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher.core.errors import Interrupted, LauncherError
from launcher.io import write_json
from launcher.metrics import DIRECTION
from launcher.robot.budget import MIN_SEARCH, STARTUP, Clock, SearchWindow
from launcher.robot.commands import Invocation
from launcher.robot.experiment import MLExperiment
from launcher.robot.leaderboard import Leaderboard
from launcher.robot.profile import DatasetProfile
from launcher.robot.task import MLTask
from launcher.robot.watch import Job, run_search

if TYPE_CHECKING:  # the maker imports this module to run its plans
    from launcher.robot.maker import Plan, RobotMaker

log = logging.getLogger("launcher")

STATE = "robot.json"
BASELINE = "baseline"


def execute(maker: RobotMaker, task: MLTask, profile: DatasetProfile, plan: Plan, *, started: float | None = None,
            state: dict[str, Any] | None = None) -> MLExperiment:
    """Run the plan's baseline and search, refine while it pays, fit the final model; record
    everything in the experiment directory."""
    from launcher.robot.final import finish
    from launcher.robot.report import write_report

    exp = maker.experiment_dir()
    inv = Invocation(maker.project_dir(), max(1, os.cpu_count() or 1))
    state = state or {"rounds": [], "spent": 0.0}
    clock = Clock(task.budget, started, float(state.get("spent", 0.0)))
    board = Leaderboard(task.metric, DIRECTION[task.metric])
    for done in state["rounds"]:
        board.add_sweep(exp / "sweeps" / done["slug"], done["slug"])
        board.stop(done["slug"])
    blueprint, emitted = plan.blueprint, plan.emitted
    commands: list[str] = list(state.get("commands", []))
    baseline: Job | None = None

    def met() -> bool:
        best = board.best()
        return bool(task.requirements.met(best.score if best else None))

    def tick() -> None:  # the baseline beside the search: read it once it has ended
        if baseline is not None and not baseline.running() and not board_has_baseline():
            board.add_run(exp / BASELINE, BASELINE, state["baseline"]["params"])

    def board_has_baseline() -> bool:
        return any(t.sweep == BASELINE and t.state in ("COMPLETE", "FAIL") for t in board.trials)

    try:
        if (exp / BASELINE / "metrics.json").is_file():  # resumed: the baseline had finished
            board.add_run(exp / BASELINE, BASELINE, state.get("baseline", {}).get("params"))
        else:
            baseline = start_baseline(inv, blueprint, emitted.slug, exp, state, profile)
            commands.append(baseline.command)
        if not state["rounds"] or state["rounds"][-1]["slug"] != emitted.slug:
            state["rounds"].append({"slug": emitted.slug, "planner": plan.planner, "command": emitted.command})
        while True:
            slug = state["rounds"][-1]["slug"]
            window = SearchWindow(task.task_type, board, blueprint.cv_folds, clock, inv.cores)
            available = window()
            if available < MIN_SEARCH:
                log.info("robot: %.0fs left, kept for the final fit: no more searching", clock.left())
                break
            sweep = exp / "sweeps" / slug
            job = Job(inv, inv.search(slug, sweep, max(1.0, available - STARTUP)), exp / "sweeps" / f"{slug}.log")
            commands.append(job.command)
            state["commands"] = commands
            _save_state(exp, task, state, clock, "running")
            run_search(job, sweep, slug, board, clock, window, enough=met, tick=tick)
            best = board.best()
            state["rounds"][-1]["best"] = best.score if best else None
            if met() or window() < MIN_SEARCH:
                break
            # The planner must answer in time for one more search worth starting.
            blueprint, emitted = maker.refine(task, profile, blueprint, board, len(state["rounds"]) + 1,
                                              deadline=time.monotonic() + window() - MIN_SEARCH)
            if emitted is None:
                break
            state["rounds"].append({"slug": emitted.slug, "planner": "refine", "command": emitted.command})
        if baseline is not None:  # the fallback model: waited for until the deadline at most
            if not baseline.wait(clock.deadline()):
                log.info("robot: the baseline %s (%s)", "was stopped at the deadline" if baseline.stopped
                         else f"failed: {baseline.error_line()}", baseline.log_path)
            tick()
        state["commands"] = commands
        experiment = finish(task, board, exp, clock, inv, commands, blueprint.cv_folds, baseline)
        seconds = round(clock.used(), 1)  # one figure for the console, the report and robot.json
        experiment.seconds = seconds
        experiment.report = write_report(task, board, exp, seconds, experiment, "done", commands)
        _save_state(exp, task, state, clock, "done", experiment, seconds)
        _say(task, experiment)
        return experiment
    except LauncherError as exc:  # recorded as failed (runs lists it), then said in one line
        _stop(baseline)
        state["error"] = str(exc)
        state["commands"] = commands
        seconds = clock.used()
        write_report(task, board, exp, seconds, None, "failed", commands)
        _save_state(exp, task, state, clock, "failed", seconds=seconds)
        raise
    except KeyboardInterrupt:
        _stop(baseline)
        state["commands"] = commands
        seconds = clock.used()
        _save_state(exp, task, state, clock, "interrupted", seconds=seconds)
        write_report(task, board, exp, seconds, None, "interrupted", commands)
        best = board.best()
        shown = f"{task.metric} {best.score:.4f} ({best.model})" if best else "no finished trial"
        raise Interrupted(f"interrupted after {seconds:.0f}s of {task.budget:g}s; best so far: {shown}; "
                          f"everything finished is in {exp}. Resume with: {resume_command(exp)}") from None


def start_baseline(inv: Invocation, blueprint: Any, slug: str, exp: Path, state: dict[str, Any],
                   profile: DatasetProfile) -> Job:
    """The cheapest strong learner of the plan, at its starting point: cross-validated as the
    trials are, and fitted on every row in the same run (trainer.refit), so that its model is
    ready for the final one whatever happens later."""
    from launcher.robot.emit import candidate_overrides

    candidate = cheapest(blueprint, profile)
    start = candidate_overrides(candidate)
    state["baseline"] = {"model": candidate.model, "params": dict(candidate.start_values)}
    run_dir = exp / BASELINE
    log.info("robot: baseline %s (the plan's cheapest strong learner), beside the search", candidate.model)
    return Job(inv, inv.baseline(slug, start, run_dir), exp / f"{BASELINE}.log")


# Gradient-boosted trees: on large tables the strong learner a baseline should be (a linear
# model is cheaper there but leaves most of the score on the table).
BOOSTING = ("lightgbm", "hist_gradient_boosting", "xgboost", "catboost")


def cheapest(blueprint: Any, profile: DatasetProfile) -> Any:
    """The candidate expected to fit fastest on this data (the heuristic planner's per-family
    cost table), tabular learners before networks, and on large tables boosted trees first."""
    from launcher.robot.planners.heuristic import LARGE, trial_seconds
    from launcher.robot.space import NETWORKS

    folds = blueprint.cv_folds or 1
    large = profile.rows >= LARGE
    return min(blueprint.candidates, key=lambda c: (c.model in NETWORKS, large and c.model not in BOOSTING,
                                                    trial_seconds(c.model, profile, folds)))


def _stop(job: Job | None) -> None:
    if job is not None:
        job.stop()


def _say(task: MLTask, experiment: MLExperiment) -> None:
    met = experiment.requirement_met
    verdict = "" if met is None else (" (requirement met)" if met else " (requirement NOT met)")
    what = "an ensemble" if experiment.ensembled else experiment.final.model if experiment.final else "?"
    log.info("robot: final model %s: expected %s %.4f (selected on %.4f; %s)%s in %.1fs; model in %s", what,
             task.metric, experiment.score, experiment.selected_score, "corrected for selection"
             if experiment.score != experiment.selected_score else "not selected from others", verdict,
             experiment.seconds, experiment.model_path)
    log.info("robot: predict with: python -m launcher.predict run=%s input=<csv> output=<csv>", experiment.directory)


def resume_command(exp: Path) -> str:
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    # `task=...` as typed (the command line's task= is stored as description=).
    overrides = [("task=" + o[len("description="):]) if o.startswith("description=") else o
                 for o in overrides if not o.startswith("hydra.run.dir=")]
    return " ".join(["python -m launcher.robot", *map(shlex.quote, overrides), shlex.quote(f"hydra.run.dir={exp}")])


def _save_state(exp: Path, task: MLTask, state: dict[str, Any], clock: Clock, status: str,
                experiment: MLExperiment | None = None, seconds: float | None = None) -> None:
    seconds = clock.used() if seconds is None else seconds
    state = {**state, "spent": seconds}
    record = {"kind": "robot", "status": status, "task": task.description, "task_type": task.task_type,
              "metric": task.metric, "requirement": task.requirements.threshold, "budget": task.budget,
              "seconds": round(seconds, 1), "data": task.dataset.describe(), "state": state}
    if experiment is not None:
        final = experiment.final
        record.update(best_score=experiment.score, selected_score=experiment.selected_score,
                      best_model="ensemble" if experiment.ensembled else final.model if final else None,
                      met=experiment.requirement_met, model=str(experiment.model_path), ensemble=experiment.ensemble,
                      fallback=experiment.fallback)
    write_json(exp / STATE, record)


def load_state(exp: Path) -> dict[str, Any] | None:
    try:
        return json.loads((exp / STATE).read_text())
    except (OSError, ValueError):
        return None
