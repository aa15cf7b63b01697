"""logger=mlflow: the run as an MLflow run; its model as an MLflow pyfunc model.

The tracking URI is `logger.mlflow.tracking_uri`, else MLFLOW_TRACKING_URI, else MLflow's own
default (./mlflow.db). A server that does not answer fails the run before training. In a sweep
the run is a child of the sweep's parent run (launcher.tracking.sweep writes its id into the
sweep directory); LAUNCHER_MLFLOW_PARENT_RUN_ID makes any run (or sweep) the child of a run
of one's own, as the robot's experiment does.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from launcher.tracking.params import sweep_job
from launcher.tracking.writer import Writer, check_reachable

PARENT_FILE = "mlflow_parent.json"  # in a sweep directory: the sweep's parent run
PARENT_ENV = "LAUNCHER_MLFLOW_PARENT_RUN_ID"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
MAX_PARAM = 6000  # MLflow's longest parameter value
BATCH = 100  # MLflow's most parameters per request
METRICS_BATCH = 1000  # and metrics
# Epochs are sent at most this often (and at the end): one request per epoch to a server on the
# same machine cost as much CPU as the epoch itself for a small network (benchmarks/logger_overhead.py).
SEND_EVERY = 1.0  # seconds


def tracking_uri(settings: dict[str, Any]) -> str:
    import mlflow

    uri = settings.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
    check_reachable(str(uri), "/health", "logger.mlflow.tracking_uri (or MLFLOW_TRACKING_URI)")
    return str(uri)


def experiment_id(client: Any, name: str) -> str:
    """The experiment called `name`, created when missing (by whichever parallel job is first)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:
        found = client.get_experiment_by_name(name)  # another job created it meanwhile
        if found is None:
            raise
        return found.experiment_id


def sweep_parent() -> tuple[str | None, dict[str, str]]:
    """(the parent run id, the trial's tags) for a job of a sweep; outside one, the run named by
    LAUNCHER_MLFLOW_PARENT_RUN_ID (or none) and no tags."""
    parent = os.environ.get(PARENT_ENV) or None
    job = sweep_job()
    if job is None:
        return parent, {}
    try:
        parent = str(json.loads((Path(job["sweep_dir"]) / PARENT_FILE).read_text())["run_id"])
    except (OSError, ValueError, KeyError):
        pass
    return parent, {"trial": job["trial"], "trial.overrides": job["trial.overrides"][:MAX_PARAM]}


class MlflowWriter(Writer):
    name = "mlflow"
    defaults = {"tracking_uri": None, "experiment_name": "launcher", "run_name": None, "tags": {},
                "log_model": True, "registered_model_name": None}

    def __init__(self, settings: Any, out: Path) -> None:
        super().__init__(settings, out)
        from mlflow import MlflowClient

        self.uri = tracking_uri(self.settings)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.run_id: str | None = None
        self.pending: list[Any] = []  # epochs' metrics not sent yet
        self.sent = 0.0

    def start(self, params: dict[str, str], tags: dict[str, str]) -> None:
        from mlflow.entities import Param

        s = self.settings
        parent, trial = sweep_parent()
        tags = {**tags, **trial, **{str(k): str(v) for k, v in dict(s["tags"] or {}).items()},
                "launcher.run_dir": str(self.out)}
        if parent:
            tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(experiment_id(self.client, str(s["experiment_name"])), tags=tags,
                                     run_name=s["run_name"] or None)
        self.run_id = run.info.run_id
        items = [Param(k, v[:MAX_PARAM]) for k, v in params.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + BATCH])

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.pending += _metrics(metrics, epoch)
        if time.monotonic() - self.sent >= SEND_EVERY:
            self._send()

    def final(self, metrics: dict[str, float], step: int) -> None:
        self.pending += _metrics(metrics, step)
        self._send()

    def artifacts(self, files: list[Path], model_dir: Path | None) -> None:
        for path in files:
            self.client.log_artifact(self.run_id, str(path))
        if model_dir is None:
            return
        if self.settings["log_model"]:
            self._log_model(model_dir)
        else:
            self.client.log_artifacts(self.run_id, str(model_dir), "model")

    def finish(self, status: str) -> None:
        if self.run_id is not None:
            if self.pending:
                self._send()
            self.client.set_terminated(self.run_id, status)
            self.run_id = None

    def _send(self) -> None:
        pending, self.pending = self.pending, []
        for i in range(0, len(pending), METRICS_BATCH):
            self.client.log_batch(self.run_id, metrics=pending[i:i + METRICS_BATCH])
        self.sent = time.monotonic()

    def _log_model(self, model_dir: Path) -> None:
        """The model directory as a pyfunc model (models-from-code: pyfunc_model.py is stored as
        text and run at load; nothing is pickled)."""
        import logging

        import mlflow

        mlflow.set_tracking_uri(self.uri)
        # Without an input example MLflow logs that it cannot infer a signature: expected here
        # (the columns' types are the raw table's), not a warning for the user.
        quiet = logging.getLogger("mlflow.pyfunc")
        level, quiet.level = quiet.level, logging.ERROR
        with mlflow.start_run(run_id=self.run_id):
            mlflow.pyfunc.log_model(name="model", python_model=str(PYFUNC_CODE), artifacts={"model": str(model_dir)},
                                    pip_requirements=requirements(model_dir),
                                    registered_model_name=self.settings["registered_model_name"] or None)
        quiet.setLevel(level)


def requirements(model_dir: Path) -> list[str]:
    """The libraries the saved model recorded (metadata.json), pinned, and MLflow: stated, so
    MLflow does not load the model in a subprocess to infer them. launcher itself is not on an
    index: serve in an environment that has it (mlflow models serve --env-manager local)."""
    import mlflow

    versions = json.loads((model_dir / "metadata.json").read_text()).get("versions") or {}
    pinned = [f"{name}=={version}" for name, version in versions.items()
              if version and name not in ("python", "launcher")]
    return [f"mlflow=={mlflow.__version__}", *pinned]


def _metrics(values: dict[str, float], step: int) -> list[Any]:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key, value, now, step) for key, value in values.items()]


