"""What a robot experiment leaves for people: leaderboard.csv, two plots and report.md (what was
tried, what won and why, whether the requirement was met, and the commands that reproduce it)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from launcher.io import write_text
from launcher.metrics import DIRECTION
from launcher.robot.leaderboard import Leaderboard
from launcher.robot.task import MLTask


def write_report(task: MLTask, board: Leaderboard, exp: Path, seconds: float, experiment: Any, status: str,
                 commands: list[str]) -> Path:
    from launcher import plots

    board.write_csv(exp / "leaderboard.csv")
    finished = board.finished
    plots.leaderboard([(f"{t.model} #{t.number}", t.score) for t in finished], task.metric, exp / "leaderboard.png")
    ordered = sorted(board.trials, key=lambda t: (t.sweep, t.number))
    plots.optimisation_history([t.score if t.state == "COMPLETE" else None for t in ordered], task.metric,
                               DIRECTION[task.metric] == "maximize", exp / "optimisation_history.png")
    lines = [f"# {task.description}", "", f"- status: {status}",
             f"- task: {task.task_type} ({task.reason}); metric: {task.metric}",
             f"- data: {task.dataset.describe()}",
             "- requirement: " + (f"{task.metric} {'>=' if DIRECTION[task.metric] == 'maximize' else '<='} "
                                   f"{task.requirements.threshold:g}" if task.requirements.threshold is not None
                                   else "none"),
             f"- time: {seconds:.0f}s of a {task.budget:g}s budget",
             "- trials: " + ", ".join(f"{_state(k, status)} {v}" for k, v in sorted(board.counts().items())), ""]
    if experiment is not None:
        met = experiment.requirement_met
        lines += ["## Result", "",
                  f"- best cross-validated {task.metric}: {experiment.score:.4f}" +
                  ("" if met is None else (" - requirement met" if met else " - requirement NOT met")),
                  (f"- winner: an ensemble (best single trial: {experiment.best.model}, search "
                   f"{experiment.best.sweep}, trial {experiment.best.number})" if experiment.ensembled else
                   f"- winner: {experiment.best.model} (search {experiment.best.sweep}, trial {experiment.best.number})"),
                  *([f"- {experiment.ensemble}"] if experiment.ensemble else []),
                  f"- model: {experiment.model_path} (fitted on every row)", ""]
    plans = sorted(exp.glob("plan_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    if plans:
        lines += ["## Plans", ""]
        for path in plans:
            plan = json.loads(path.read_text())
            bp = plan["blueprint"]
            lines.append(f"- {path.name}: {plan['planner']}" + (f" (fallback: {plan['fallback']})" if plan.get("fallback")
                                                                 else "")
                         + f"; {bp['framework']}: {', '.join(c['model'] for c in bp['candidates'])}; "
                         + (f"{bp['cv_folds']}-fold CV; " if bp.get("cv_folds") else "")
                         + (f"`{plan['emitted']['command']}`" if plan.get("emitted") else ""))
        lines.append("")
    lines += ["## Leaderboard (top 10)", "", f"| rank | model | {task.metric} | ± | seconds | search/trial |",
              "|---|---|---|---|---|---|"]
    for i, t in enumerate(finished[:10]):
        lines.append(f"| {i + 1} | {t.model} | {t.score:.4f} | {'' if t.cv_std is None else f'{t.cv_std:.4f}'} | "
                     f"{'' if t.seconds is None else f'{t.seconds:.1f}'} | {t.sweep}/{t.number} |")
    lines += ["", "## Reproduce", "", "The searches (from this directory's parent project):", ""]
    lines += [f"    python -m launcher {c}" for c in commands] or ["    (none ran)"]
    lines += ["", "Predict with the final model:", "", f"    python -m launcher.predict run={exp} input=<csv> output=<csv>",
              "", "Files: leaderboard.csv, leaderboard.png, optimisation_history.png, task.json, profile.json, "
              "plan_*.json, configs/ (the emitted files as run), sweeps/, final/, model/"]
    return write_text(exp / "report.md", "\n".join(lines) + "\n")


def _state(state: str, status: str) -> str:
    # A trial still RUNNING in the study once its search is over was stopped (at the deadline,
    # or when the requirement was met); a WAITING one was queued and never started.
    if state == "RUNNING" and status != "running":
        return "stopped"
    if state == "WAITING":
        return "queued, not run"
    return state.lower()
