"""The robot maker: a task in words and a dataset in, a checked plan written as Hydra configs out.

    task = RobotMaker().create_task(description=..., dataset_info=..., model_requirements=...)
    blueprint = RobotMaker().generate_model_blueprint(task)
    plan = RobotMaker().plan(task)             # + the configs written to ./conf, the records kept

The same object serves `python -m launcher.robot` (launcher.robot.__main__) and the Python API
(MLRobotMaker). Everything it decides is recorded in its experiment directory: task.json,
profile.json, and one plan_<n>.json per planner answer (the raw answer, the checked blueprint
or the reasons it was rejected, and any fallback to the heuristic planner).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from launcher.core.errors import ConfigError
from launcher.core.paths import original_cwd
from launcher.io import write_json
from launcher.metrics import check_metric
from launcher.robot.blueprint import Blueprint
from launcher.robot.emit import Emitted, emit
from launcher.robot.planners import PlannerUnavailable, make_planner
from launcher.robot.planners.heuristic import HeuristicPlanner
from launcher.robot.profile import DatasetProfile, profile_dataset, profile_from_shape
from launcher.robot.task import DatasetInfo, MLTask, Requirements, clean_description, resolve_task_type
from launcher.robot.validate import BlueprintRejected, check

log = logging.getLogger("launcher")
# A run's planner answers within this share of the budget (an LLM that is slower is given up on
# for the heuristic planner); the rest is for searching and the final fit.
PLANNING_SHARE = 0.25
DEFAULT_BUDGET = 60.0  # seconds; FLAML's AutoML has the same default time budget


@dataclass
class Plan:
    blueprint: Blueprint
    raw: str
    planner: str  # what planned it, e.g. "openai (gpt-4o-mini)" or "heuristic (offline rules)"
    fallback: str | None = None  # why the chosen planner was not used
    emitted: Emitted | None = None
    records: list[Path] = field(default_factory=list)


class RobotMaker:
    """Plans (and, with execute_experiment/auto_ml_pipeline, runs) ML experiments."""

    def __init__(self, planner: str | Mapping[str, Any] = "heuristic", *, workdir: str | Path | None = None,
                 project_dir: str | Path | None = None, seed: int = 0, overwrite: bool = False) -> None:
        self.planner_config = _planner_config(planner)
        self.workdir = Path(workdir) if workdir else None
        # The project: its conf/ gets the emitted files, and the commands run from it.
        self.project = Path(project_dir) if project_dir else None
        self.seed, self.overwrite = int(seed), bool(overwrite)
        self._datasets: dict[str, Any] = {}
        self._plans = 0
        self._planner: Any = None  # one per task: its call and token caps count over the task
        # When planning must be done (time.monotonic()); the robot's budget sets it for a run.
        self.planning_deadline: float | None = None

    def planner(self) -> Any:
        if self._planner is None:
            self._planner = make_planner(self.planner_config)
        return self._planner

    # -- the task --------------------------------------------------------------------------------
    def create_task(self, task_type: str | None = None, description: str = "", dataset_info: Any = None,
                    model_requirements: Mapping[str, Any] | None = None, budget: float | None = None) -> MLTask:
        """An MLTask: the description, the dataset (a path and target, a built-in name, or only a
        shape: then synthetic data of that shape), the requirements, the budget in seconds, and
        the task type (given, or inferred from the target and the words, with the reason)."""
        info = DatasetInfo.from_mapping(dataset_info)
        if info.kind == "csv" and self.project_dir() != original_cwd().absolute():
            # The commands run from the project directory: a path relative to here would not
            # be found there.
            info.path = str((original_cwd() / info.path).absolute())
        self._planner = None  # a new task: the planner's caps start again
        requirements = Requirements.from_mapping(model_requirements, budget)
        seconds = requirements.max_seconds if requirements.max_seconds is not None else DEFAULT_BUDGET
        if seconds <= 0:
            raise ConfigError(f"the budget must be a positive number of seconds, got {seconds:g}")
        if info.kind == "shape":  # said where a Python caller sees it too (a warning reaches stderr)
            log.warning("robot: dataset_info gives only a shape: planning and runs use %s", info.describe())
        description = clean_description(description) or (task_type or "")
        data_task, data_reason = None, None
        if info.kind != "shape":
            data_task, data_reason = self._data_task(info)
        elif info.classes:
            data_task, data_reason = "classification", f"the dataset shape names {info.classes} classes"
        kind, reason = resolve_task_type(task_type, description, data_task, data_reason, info.classes)
        if info.kind != "shape" and kind != "clustering":
            self._check_target(info, kind)
        requirements.metric = check_metric(kind, requirements.metric, what="the requirement's metric")
        return MLTask(description or f"a {kind} task", info, requirements, kind, reason, seconds)

    def _check_target(self, info: DatasetInfo, kind: str) -> None:
        """The launcher's own target check for this kind of learning (a text target for
        regression, a single class, ...): a plan that every run would refuse is refused now,
        plan_only included."""
        from launcher.data.target import TargetEncoder, drop_missing_target

        dataset = self._load(info)
        if dataset.y is not None:
            TargetEncoder.fit(drop_missing_target(dataset).y, kind)

    def _load(self, info: DatasetInfo) -> Any:
        key = repr(info)
        if key not in self._datasets:
            from launcher.data import load

            self._datasets[key] = load(data_config(info))
        return self._datasets[key]

    def _data_task(self, info: DatasetInfo) -> tuple[str | None, str | None]:
        from launcher.data import infer_task

        dataset = self._load(info)
        if dataset.task in ("classification", "regression"):
            return dataset.task, f"the dataset {dataset.name} declares it"
        if dataset.y is None:
            return None, None
        return infer_task(dataset.y)

    def profile(self, task: MLTask) -> DatasetProfile:
        info = task.dataset
        if info.kind == "shape":
            return profile_from_shape(info.size, info.features, info.classes)
        return profile_dataset(self._load(info), task.task_type)

    # -- planning --------------------------------------------------------------------------------
    def generate_model_blueprint(self, task: MLTask, profile: DatasetProfile | None = None) -> Blueprint:
        """The checked blueprint for the task (planner, then the heuristic one on failure)."""
        return self.make_plan(task, profile).blueprint

    def make_plan(self, task: MLTask, profile: DatasetProfile | None = None) -> Plan:
        profile = profile or self.profile(task)
        planner = self.planner()
        planner.deadline = self.planning_deadline

        def checked(blueprint: Blueprint) -> Blueprint:
            return check(blueprint, task, task.dataset.overrides())

        fallback = None
        try:
            blueprint, raw = planner.propose(task, profile, checked)
            used = planner.describe()
        except PlannerUnavailable as exc:
            fallback = str(exc)
            log.warning("planner %s unavailable: %s; planning with the heuristic planner instead", planner.name, exc)
            heuristic = HeuristicPlanner()
            blueprint, raw = heuristic.propose(task, profile, checked)
            used = heuristic.describe()
        return Plan(blueprint, raw, used, fallback)

    def plan(self, task: MLTask, profile: DatasetProfile | None = None) -> Plan:
        """Plan, check, write the configs and the records; run nothing."""
        profile = profile or self.profile(task)
        workdir = self.experiment_dir()
        write_json(workdir / "task.json", task.to_dict())
        write_json(workdir / "profile.json", profile.to_dict())
        from launcher.robot.run import cheapest

        conf = self.conf()  # refused before planning when it is the shipped tree
        plan = self.make_plan(task, profile)
        plan.emitted = emit(plan.blueprint, task, plan.planner, conf, seed=self.seed, overwrite=self.overwrite,
                            baseline=cheapest(plan.blueprint, profile).model)
        plan.records.append(self.record(plan))
        return plan

    def refine(self, task: MLTask, profile: DatasetProfile, blueprint: Blueprint, board: Any, round_number: int,
               deadline: float | None = None) -> tuple[Blueprint, Emitted | None]:
        """A refined blueprint from the planner (the heuristic one if the LLM cannot), emitted as
        <slug>_r<n>; (blueprint, None) when there is nothing to refine."""
        def checked(bp: Blueprint) -> Blueprint:
            return check(bp, task, task.dataset.overrides())

        planner = self.planner()
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
        emitted = emit(refined, task, used, self.conf(), seed=self.seed + round_number, overwrite=self.overwrite,
                       suffix=f"_r{round_number}")
        plan = Plan(refined, raw, used, fallback, emitted)
        plan.records.append(self.record(plan))
        log.info("robot: round %d by %s: %s; %s", round_number, used, refined.rationale, emitted.command)
        return refined, emitted

    def record(self, plan: Plan, rejected: BlueprintRejected | None = None) -> Path:
        """plan_<n>.json (the raw answer, the checked blueprint, the fallback, the emitted files),
        and a copy of the emitted files under configs/: the experiment keeps what it ran even
        when ./conf is edited or re-planned later."""
        import shutil

        self._plans += 1
        path = self.experiment_dir() / f"plan_{self._plans}.json"
        if plan.emitted is not None:
            for group, source in (("experiment", plan.emitted.experiment), ("hparams_search", plan.emitted.search)):
                copy = self.experiment_dir() / "configs" / group / "robot" / source.name
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy)
        write_json(path, {"planner": plan.planner, "fallback": plan.fallback, "raw": plan.raw,
                          "blueprint": plan.blueprint.model_dump(mode="json"),
                          "rejected": rejected.reasons if rejected else None,
                          "emitted": {"slug": plan.emitted.slug, "experiment": str(plan.emitted.experiment),
                                      "search": str(plan.emitted.search), "command": plan.emitted.command}
                          if plan.emitted else None})
        return path

    def resume_plan(self, task: MLTask) -> Plan:
        """The latest plan of an interrupted experiment, from its records."""
        import json

        from launcher.robot.emit import Emitted

        records = sorted(self.experiment_dir().glob("plan_*.json"), key=lambda p: int(p.stem.split("_")[1]))
        if not records:
            raise ConfigError(f"{self.experiment_dir()} holds no plan to resume; start a new experiment")
        record = json.loads(records[-1].read_text())
        self._plans = len(records)
        emitted = record["emitted"]
        return Plan(Blueprint.model_validate(record["blueprint"]), record["raw"], record["planner"],
                    record.get("fallback"), Emitted(emitted["slug"], Path(emitted["experiment"]),
                                                    Path(emitted["search"])))

    # -- running -----------------------------------------------------------------------------------
    def execute_experiment(self, task: MLTask, blueprint: Blueprint | None = None) -> Any:
        """Write the blueprint's configs (planning one if none is given), run them within the
        task's budget, fit the final model; an MLExperiment."""
        import time

        from launcher.robot.run import execute

        started = time.monotonic()
        profile = self.profile(task)
        if blueprint is None:
            self.planning_deadline = started + PLANNING_SHARE * task.budget
            plan = self.plan(task, profile)
        else:
            blueprint = check(blueprint, task, task.dataset.overrides())
            write_json(self.experiment_dir() / "task.json", task.to_dict())
            write_json(self.experiment_dir() / "profile.json", profile.to_dict())
            plan = Plan(blueprint, blueprint.model_dump_json(), "given")
            from launcher.robot.run import cheapest

            plan.emitted = emit(blueprint, task, "given by the caller", self.conf(), seed=self.seed,
                                overwrite=self.overwrite, baseline=cheapest(blueprint, profile).model)
            plan.records.append(self.record(plan))
        return execute(self, task, profile, plan, started=started)

    def auto_ml_pipeline(self, task_description: str, dataset_info: Any, model_requirements: Mapping[str, Any] | None = None,
                         task_type: str | None = None, budget: float | None = None) -> Any:
        """Task, plan, search, final model, report: the whole robot in one call."""
        task = self.create_task(task_type=task_type, description=task_description, dataset_info=dataset_info,
                                model_requirements=model_requirements, budget=budget)
        return self.execute_experiment(task)

    # -- places ----------------------------------------------------------------------------------
    def experiment_dir(self) -> Path:
        if self.workdir is None:
            stamp = datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
            self.workdir = original_cwd() / "outputs" / "robot" / stamp
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir

    def project_dir(self) -> Path:
        """The project directory: its conf/ gets the emitted files, the commands run from it."""
        return (self.project or original_cwd()).absolute()

    def conf(self) -> Path:
        """<project>/conf, which must not be the launcher's own shipped config tree: run from the
        launcher's repository, ./conf is that tree, and the robot's files would land in the
        package (and in every user's --help)."""
        from launcher.core.paths import CONFIG_DIR, USER_CONFIG_DIR

        conf = self.project_dir() / USER_CONFIG_DIR
        if conf.resolve() == CONFIG_DIR.resolve():
            raise ConfigError(f"{conf} is the launcher's own shipped config tree, where the robot does not write; "
                              "run the robot from your project's directory, or give it one: project_dir=<dir>")
        return conf


MLRobotMaker = RobotMaker


def _planner_config(planner: str | Mapping[str, Any]) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from launcher.core.paths import config_file

    if isinstance(planner, str):
        name, overrides = planner, {}
    else:
        overrides = dict(planner)
        name = overrides.get("name", "heuristic")
    path = config_file("planner", name)
    if not path.is_file():
        from launcher.robot.planners import PLANNERS

        raise ConfigError(f"planner={name!r} is unknown; expected one of: {', '.join(PLANNERS)}")
    base = OmegaConf.to_container(OmegaConf.load(path))
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ConfigError(f"planner.{unknown[0]} is not a setting of planner={name}; expected one of: "
                          f"{', '.join(sorted(base))}")
    return {**base, **overrides}


def data_config(info: DatasetInfo) -> Any:
    """The `data` config a launcher run composes for this dataset."""
    from omegaconf import OmegaConf

    from launcher.core.paths import config_file

    section = info.section()
    base = OmegaConf.load(config_file("data", section["option"]))
    return OmegaConf.merge(base, section.get("values") or {})
