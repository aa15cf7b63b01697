"""What a robot experiment leaves for people: leaderboard.csv, two plots and report.md (what was
tried, what won and why, its expected score corrected for selection beside the figure that
selected it, whether the requirement was met, and the commands that ran, exactly as they ran)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from launcher.io import write_text
from launcher.metrics import DIRECTION
from launcher.robot.leaderboard import STOPPED, Leaderboard
from launcher.robot.task import MLTask


def split_name(exp: Path) -> str:
    """What the trials' scores were measured on, from the plan (for the plots' axes)."""
    plans = sorted(exp.glob("plan_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    folds = json.loads(plans[-1].read_text())["blueprint"].get("cv_folds") if plans else None
    return f"{folds}-fold CV" if folds else "validation"


def write_report(task: MLTask, board: Leaderboard, exp: Path, seconds: float, experiment: Any, status: str,
                 commands: list[str]) -> Path:
    from launcher import plots

    board.write_csv(exp / "leaderboard.csv")
    finished = board.finished
    split = split_name(exp)
    plots.leaderboard([(f"{t.model} #{t.number}", t.score) for t in finished], task.metric, exp / "leaderboard.png",
                      split=split)
    ordered = sorted((t for t in board.trials if t.state == "COMPLETE"), key=lambda t: (t.sweep, t.number))
    plots.optimization_history([t.score for t in ordered], task.metric, DIRECTION[task.metric] == "maximize",
                               exp / "optimization_history.png", split=split, models=[t.model for t in ordered])
    sign = ">=" if DIRECTION[task.metric] == "maximize" else "<="
    lines = [f"# {task.description}", "", f"- status: {status}",
             f"- task: {task.task_type} ({task.reason}); metric: {task.metric}",
             f"- data: {task.dataset.describe()}",
             "- requirement: " + (f"{task.metric} {sign} {task.requirements.threshold:g}"
                                   if task.requirements.threshold is not None else "none"),
             f"- time: {seconds:.1f}s of a {task.budget:g}s budget",
             "- trials: " + ", ".join(f"{_state(k, status)} {v}" for k, v in sorted(board.counts().items())), ""]
    if experiment is not None:
        lines += result(task, experiment)
    failures = board.failures()
    if failures:
        lines += ["## Failures", ""] + [f"- {t.sweep}/{t.number} ({t.model}): {t.error}" for t in failures[:5]]
        lines += ([f"- ... and {len(failures) - 5} more (leaderboard.csv)"] if len(failures) > 5 else []) + [""]
    plans = sorted(exp.glob("plan_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    if plans:
        lines += ["## Plans", ""]
        for path in plans:
            plan = json.loads(path.read_text())
            bp = plan["blueprint"]
            lines.append(f"- {path.name}: {plan['planner']}" + (f" (fallback: {plan['fallback']})" if plan.get("fallback")
                                                                 else "")
                         + f"; {bp['framework']}: {', '.join(c['model'] for c in bp['candidates'])}; "
                         + (f"{bp['cv_folds']}-fold CV; " if bp.get("cv_folds") else "validation split; ")
                         + (f"configs `{plan['emitted']['experiment']}`, `{plan['emitted']['search']}`"
                            if plan.get("emitted") else ""))
        lines.append("")
    lines += ["## Leaderboard (top 10)", "", f"| rank | model | {split} {task.metric} | ± | seconds | search/trial |",
              "|---|---|---|---|---|---|"]
    for i, t in enumerate(finished[:10]):
        lines.append(f"| {i + 1} | {t.model} | {t.score:.4f} | {'' if t.cv_std is None else f'{t.cv_std:.4f}'} | "
                     f"{'' if t.seconds is None else f'{t.seconds:.1f}'} | {t.sweep}/{t.number} |")
    lines += ["", "## Reproduce", "",
              "The commands that ran, exactly (the emitted files hold every setting of a trial; the command",
              "line adds only this run's deadline, its output directories and how many trials ran at once;",
              "re-running a search with the same hydra.sweep.dir continues its study):", ""]
    lines += [f"    {c}" for c in commands] or ["    (none ran)"]
    lines += ["", "Predict with the final model:", "", f"    python -m launcher.predict run={exp} input=<csv> output=<csv>",
              "", "Files: leaderboard.csv, leaderboard.png, optimization_history.png, task.json, profile.json, "
              "plan_*.json, configs/ (the emitted files as run), baseline/, sweeps/, final/, model/"]
    return write_text(exp / "report.md", "\n".join(lines) + "\n")


def result(task: MLTask, experiment: Any) -> list[str]:
    met = experiment.requirement_met
    verdict = "" if met is None else (" - requirement met" if met else " - requirement NOT met")
    metrics = experiment.metrics
    spread = (f" (90% of bootstrap estimates within {metrics['low']:.4f} to {metrics['high']:.4f})"
              if metrics.get("low") is not None and metrics.get("high") is not None else "")
    if experiment.ensembled:
        winner = (f"an ensemble (best single trial: {experiment.best.model}, search {experiment.best.sweep}, "
                  f"trial {experiment.best.number})")
    else:
        final = experiment.final
        winner = f"{final.model} (search {final.sweep}, trial {final.number})"
    return ["## Result", "",
            f"- expected {task.metric} of the final model: {experiment.score:.4f}{spread}{verdict}",
            f"- the figure that selected it: {experiment.selected_score:.4f} (optimistic: chosen as the best of "
            f"{len(experiment.leaderboard.finished)} on the same rows)",
            f"- how the expected figure was made: {experiment.estimate_method}",
            f"- winner: {winner}",
            *([f"- fallback: {experiment.fallback}"] if experiment.fallback else []),
            *([f"- {experiment.ensemble}"] if experiment.ensemble else []),
            f"- model: {experiment.model_path} (fitted on every row)", ""]


def _state(state: str, status: str) -> str:
    # A trial still RUNNING once its search is over was stopped (at the deadline, or when the
    # requirement was met); a WAITING one was queued and never started.
    if state == STOPPED or (state == "RUNNING" and status != "running"):
        return "stopped"
    if state == "WAITING":
        return "queued, not run"
    return state.lower()
