"""python -m launcher.robot task="..." data=... [requirements.<metric>=...] [budget=...] [plan_only=true]

The robot maker as a Hydra app (conf/robot.yaml): every setting is an override, `--cfg job`
shows them, `--help` lists them. It plans, checks and writes the configs to the project's conf/
(the current directory's, or project_dir=<dir>); the experiment directory (hydra.run.dir,
default outputs/robot/<date>/<time>) keeps the records.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

STARTED = time.monotonic()  # the budget counts from the command's start

import hydra
from omegaconf import DictConfig, OmegaConf

from launcher.core import cli
from launcher.core.errors import LauncherError

log = logging.getLogger("launcher")


@hydra.main(version_base="1.3", config_path="pkg://launcher.conf", config_name="robot")
def main(cfg: DictConfig) -> None:
    try:
        robot(cfg)
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def robot(cfg: DictConfig) -> None:
    from launcher.core.errors import ConfigError
    from launcher.core.paths import run_dir
    from launcher.robot.maker import RobotMaker
    from launcher.robot.run import execute, load_state

    # The user's text (the task, the data's path and columns) is read as written: never
    # resolved, so `${oc.env:...}` in it stays text and no variable's value reaches a message.
    raw = OmegaConf.to_container(cfg, resolve=False)
    if raw.get("data") is None:
        raise ConfigError("the robot needs data: data=csv data.path=<file> data.target=<column>, a built-in "
                          "dataset (data=iris), or a shape (data=synthetic data.size=5000 data.features=25 "
                          "data.classes=4)")
    description = raw.get("description")
    if description in (None, "???") and raw.get("task_type") in (None, "auto"):
        raise ConfigError('the robot needs a task: task="Predict customer churn" (what to learn, in words), or '
                          "the kind of learning: task=classification|regression|clustering")
    description = "" if description in (None, "???") else str(description)
    budget = _seconds(raw.get("budget"))
    requirements = {k: v for k, v in (raw.get("requirements") or {}).items() if v is not None}
    maker = RobotMaker(OmegaConf.to_container(cfg.planner, resolve=True), workdir=run_dir(), seed=int(cfg.seed),
                       overwrite=bool(cfg.overwrite), project_dir=raw.get("project_dir") or None)
    task = maker.create_task(task_type=str(raw.get("task_type") or "auto"), description=description,
                             dataset_info=dataset_info(raw["data"]), model_requirements=requirements, budget=budget)
    log.info("task: %s (%s: %s)", task.description, task.task_type, task.reason)
    profile = maker.profile(task)
    log.info("data: %s", profile.summary())
    previous = load_state(run_dir())
    if previous and previous.get("status") == "interrupted":  # the same experiment, resumed
        plan = maker.resume_plan(task)
        log.info("robot: resuming %s: %.0fs of %.0fs spent", run_dir(), previous["state"]["spent"], task.budget)
        execute(maker, task, profile, plan, started=STARTED, state=previous["state"])
        return
    if not cfg.plan_only:  # the planner's share of the budget
        from launcher.robot.maker import PLANNING_SHARE

        maker.planning_deadline = STARTED + PLANNING_SHARE * task.budget
    plan = maker.plan(task, profile)
    log.info("plan by %s%s: %s", plan.planner, f" (fallback: {plan.fallback})" if plan.fallback else "",
             plan.blueprint.rationale)
    log.info("wrote %s and %s", _shown(plan.emitted.experiment), _shown(plan.emitted.search))
    if cfg.plan_only:
        from launcher.robot.commands import Invocation
        from launcher.robot.emit import candidate_overrides
        from launcher.robot.run import cheapest

        inv, slug = Invocation(maker.project_dir(), 1), plan.emitted.slug
        first = candidate_overrides(cheapest(plan.blueprint, profile))
        log.info("run it: %s", inv.shown(inv.baseline(slug, first)))
        log.info("   and: %s", inv.shown(plan.emitted.command.split()[3:]))
        return
    execute(maker, task, profile, plan, started=STARTED)


def _seconds(value: object) -> float:
    from launcher.core.errors import ConfigError

    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"budget={value} is not a number of seconds; e.g. budget=120") from None
    if not seconds > 0:
        raise ConfigError(f"the budget must be a positive number of seconds, got budget={value}")
    return seconds


def dataset_info(data: dict) -> dict:
    """The dataset from the `data` config as written (unresolved)."""
    from launcher.core.errors import ConfigError

    source = data.get("source")
    if source == "csv":
        missing = [k for k in ("path", "target") if data.get(k) in (None, "???", "")]
        if missing:
            raise ConfigError(f"data=csv needs data.{missing[0]}: data=csv data.path=churn.csv data.target=churned")
        return {"path": str(data["path"]), "target": str(data["target"]), "drop": [str(c) for c in data.get("drop") or []]}
    if source == "builtin":
        return {"name": str(data["name"])}
    try:
        return {"size": int(data["size"]), "features": int(data["features"]), "classes": int(data.get("classes") or 0)}
    except (TypeError, ValueError):
        raise ConfigError(f"data=synthetic needs whole numbers: data.size={data.get('size')} "
                          f"data.features={data.get('features')} data.classes={data.get('classes')}") from None


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def task_arguments(argv: list[str]) -> list[str]:
    """`task=...` as people write it: a description, or the kind of learning. (A `task` key
    cannot be set directly: `task` is the launcher's config group of task kinds.)"""
    from launcher.core.types import TASKS

    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key == "task":
            arg = f"task_type={value}" if value.strip("'\"") in TASKS else f"description={value}"
        out.append(arg)
    return out


def run() -> None:
    sys.argv[1:] = task_arguments(sys.argv[1:])
    cli.run_hydra_app(main)


if __name__ == "__main__":
    run()
