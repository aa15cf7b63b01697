"""The robot maker: a task in words and a dataset become reviewed, committable Hydra configs,
which it then runs within a time budget.

task.py       MLTask: description, dataset, requirements, budget, the task type and why
profile.py    what a planner may know of the data: counts and shares, never cells
blueprint.py  the plan's schema (pydantic, extra fields forbidden): registry keys and numbers
space.py      the registry of tunable keys and their bounds; the conditional search's sampler
planners/     heuristic (offline, default), openai and anthropic (official SDKs)
validate.py   a blueprint checked against the registry, Hydra's parser and a composition
emit.py       conf/experiment/robot/<slug>.yaml and conf/hparams_search/robot/<slug>.yaml
commands.py   the commands the robot runs, exactly as it prints them
maker.py      RobotMaker (MLRobotMaker): create_task, generate_model_blueprint, plan, refine,
              execute_experiment, auto_ml_pipeline
run.py        a plan run within its budget: baseline, searches, refinement
budget.py     the clock and the search's window; watch.py: the processes, with hard deadlines
final.py      the final model (bounded fits, fallback to the best model already fitted)
estimate.py   the final model's score corrected for its selection (BBC-CV)
experiment.py MLExperiment: what an experiment found
leaderboard.py, ensemble.py, report.py   what the runs left, the out-of-fold ensemble, report.md
__main__.py   python -m launcher.robot: the robot as a Hydra app (conf/robot.yaml)

`from launcher.robot import MLRobotMaker` (or `from launcher import MLRobotMaker`) loads the
robot on first use; importing this package loads nothing else.
"""
from __future__ import annotations

from typing import Any

_LAZY = {"MLRobotMaker": "launcher.robot.maker", "RobotMaker": "launcher.robot.maker",
         "MLTask": "launcher.robot.task", "MLModelBlueprint": "launcher.robot.blueprint",
         "MLExperiment": "launcher.robot.experiment"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'launcher.robot' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
