"""MLflow runs for sweeps and robot experiments: one parent run, the trials as its children.

`SweepParentRun` is a Hydra callback (conf/logger/mlflow.yaml registers it): when a multirun
starts it creates the parent run (the sweeper's settings: search space, sampler, direction,
trial count; the grid's overrides) and writes its id into the sweep directory, where every job
reads it (launcher.tracking.mlflow_log.sweep_parent): whichever launcher runs the jobs (basic,
joblib, submitit, ray), they share that directory. When the multirun ends the parent gets the
best value, its parameters and the best run's directory, and is closed.

`log_experiment` records a robot experiment the same way (the lead's hook for launcher.robot):
its plan and report as artifacts, the final model as a pyfunc model.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Mapping

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from launcher import runs
from launcher.core.errors import LauncherError
from launcher.io import write_json
from launcher.tracking.mlflow_log import PARENT_FILE, MlflowWriter
from launcher.tracking.params import flat_params, run_tags

log = logging.getLogger("launcher")


class SweepParentRun(Callback):
    def __init__(self) -> None:
        self.writer: MlflowWriter | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        settings = (config.get("logger") or {}).get("mlflow")
        if settings is None:
            return
        sweep = Path(str(config.hydra.sweep.dir))
        sweeper = config.hydra.sweeper
        params = {f"sweeper.{k}": v for k, v in flat_params(sweeper).items()}  # as written, unresolved
        params["overrides"] = " ".join(config.hydra.overrides.task)
        name = str(sweeper.get("_target_", "")).rsplit(".", 1)[-1] or "sweep"
        # Before any job: a server that cannot be reached is one error line here, not one per job.
        try:
            self.writer = MlflowWriter(OmegaConf.to_container(settings, resolve=True), sweep)
            self.writer.start(params, {**run_tags(sweeper=name), "launcher.sweep_dir": str(sweep.absolute())})
        except LauncherError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except Exception as exc:  # noqa: BLE001  the server answered, but not as MLflow should
            print(f"error: logger=mlflow could not create the sweep's parent run: {type(exc).__name__}: "
                  f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}", file=sys.stderr)
            sys.exit(2)
        sweep.mkdir(parents=True, exist_ok=True)
        write_json(sweep / PARENT_FILE, {"run_id": self.writer.run_id, "experiment": self.writer.settings[
            "experiment_name"]})

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.writer is None:
            return
        try:
            best = best_of(Path(str(config.hydra.sweep.dir)))
            if best:
                self.writer.final({"best_value": best["value"]} if best.get("value") is not None else {}, 0)
                self.writer.client.log_batch(self.writer.run_id, params=_params(
                    {f"best.{k}": v for k, v in best["params"].items()}))
                self.writer.client.set_tag(self.writer.run_id, "best_run_dir", str(best.get("run_dir")))
            self.writer.finish("FINISHED")
        except Exception as exc:  # noqa: BLE001  the sweep's results stand whatever MLflow says
            log.warning("logger=mlflow: closing the sweep's parent run failed (%s: %s)", type(exc).__name__, exc)


def best_of(sweep: Path) -> dict[str, Any] | None:
    """The sweep's best: value, parameters (the Optuna study's, or the best job's overrides) and
    run directory, as launcher.runs reads a sweep."""
    entry = runs.read_sweep(sweep)
    if entry is None or entry.best_run is None and entry.value is None:
        return None
    results = _yaml(sweep / "optimization_results.yaml") or {}
    params = results.get("best_params")
    if not params and entry.best_run:
        overrides = _yaml(Path(entry.best_run) / ".hydra" / "overrides.yaml") or []
        params = dict(o.split("=", 1) for o in overrides if isinstance(o, str) and "=" in o)
    return {"value": entry.value, "params": dict(params or {}), "run_dir": entry.best_run}


def log_experiment(exp_dir: Path, settings: Mapping[str, Any] | None = None, *, plan: Mapping[str, Any] | None = None,
                   model_dir: Path | None = None, run_id: str | None = None, status: str = "FINISHED") -> str:
    """A robot experiment as an MLflow parent run (the robot's hook; `settings` as logger.mlflow).

    First call, when the experiment starts: no run_id, status="RUNNING": creates the run with
    `plan` as its parameters and returns its id. Start the trials' commands with
    LAUNCHER_MLFLOW_PARENT_RUN_ID=<that id> in their environment (and logger=mlflow): their
    sweeps and runs become its children. Last call, run_id=<that id>: attaches report.md and
    robot.json of `exp_dir`, logs `model_dir` (the final model) as a pyfunc model, and closes
    the run with `status` (FINISHED, FAILED or KILLED)."""
    exp_dir = Path(exp_dir)
    writer = MlflowWriter(dict(settings or {}), exp_dir)
    if run_id is None:
        writer.start(flat_params(dict(plan or {})), {**run_tags(), "launcher.experiment_dir": str(exp_dir.absolute())})
    else:
        writer.run_id = run_id
    if status != "RUNNING":
        writer.artifacts([p for p in (exp_dir / "report.md", exp_dir / "robot.json") if p.is_file()],
                         Path(model_dir) if model_dir is not None and Path(model_dir).is_dir() else None)
        writer.finish(status)
    return str(run_id or writer.run_id)


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _params(values: Mapping[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(str(k), (v if isinstance(v, str) else json.dumps(v, default=str))[:6000])
            for k, v in values.items()]
