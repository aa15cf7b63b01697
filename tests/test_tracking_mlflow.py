"""logger=mlflow against a real `mlflow server` (SQLite backend, artifacts served by the server),
started once for the session on a free loopback port and read back with MlflowClient. All
marked slow: the server takes up to a minute to start on a small machine."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import PYTHON, launcher_command, run, run_cli
from launcher.pipeline.train import train

if importlib.util.find_spec("mlflow") is None:
    pytest.skip('mlflow is not installed (pip install "launcher[mlflow]"): the MLflow tracking tests need a real '
                "mlflow server and were NOT run", allow_module_level=True)

from mlflow import MlflowClient  # noqa: E402

pytestmark = pytest.mark.slow
PYTORCH_MLP = ("framework=pytorch", "model=mlp", "data=iris", "trainer.max_epochs=3", "device=cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    uri = f"http://127.0.0.1:{free_port()}"
    log = open(root / "server.log", "wb")
    server = subprocess.Popen(
        [str(Path(PYTHON).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", uri.rsplit(":", 1)[1],
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240  # the first start creates its database: slow on a small machine
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                break
        except OSError:
            assert server.poll() is None, (root / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server: no answer after 240 s"
            time.sleep(0.5)
    yield uri
    os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
    server.wait(timeout=60)
    log.close()


@pytest.fixture
def client(mlflow_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    return MlflowClient(tracking_uri=mlflow_uri)


def only_run(client: MlflowClient, experiment: str, **where: str):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment}"
    runs = client.search_runs([exp.experiment_id], " and ".join(f"tags.`{k}` = '{v}'" for k, v in where.items()))
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def test_a_run_is_recorded_on_the_server_and_its_model_predicts_in_a_fresh_process(make_cfg, client, tmp_path,
                                                                                   monkeypatch):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=tmp_path, check=True)
    monkeypatch.setenv("TRACKING_TEST_SECRET", "hunter2-not-for-trackers")
    train(make_cfg(*PYTORCH_MLP, "logger=mlflow", "logger.mlflow.experiment_name=single",
                   "+note=${oc.env:TRACKING_TEST_SECRET}"))
    out = tmp_path / "run"
    record = json.loads((out / "metrics.json").read_text())
    got = only_run(client, "single")
    assert got.info.status == "FINISHED"
    tags = got.data.tags
    assert {k: tags[k] for k in ("framework", "model", "task", "dataset")} == {
        "framework": "pytorch", "model": "mlp", "task": "classification", "dataset": "iris"}
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert tags["git_commit"] == head and tags["host"] == socket.gethostname()
    params = got.data.params
    assert params["trainer.max_epochs"] == "3" and params["model.name"] == "mlp" and params["data.name"] == "iris"
    assert params["note"] == "${oc.env:TRACKING_TEST_SECRET}"  # never the variable's value
    assert "hunter2-not-for-trackers" not in json.dumps(params) + json.dumps(tags)
    for name in ("train_loss", "val_loss", "val_accuracy", "lr", "seconds"):
        assert [m.step for m in client.get_metric_history(got.info.run_id, name)] == [1, 2, 3]
    assert got.data.metrics["val/accuracy"] == pytest.approx(record["val"]["accuracy"])
    assert got.data.metrics["test/log_loss"] == pytest.approx(record["test"]["log_loss"])
    files = {a.path for a in client.list_artifacts(got.info.run_id)}
    assert {"metrics.json", "learning_curve.png", "confusion_matrix.png"} <= files

    # The pyfunc model, in a process that has never seen this run: raw rows in, labels out,
    # the same as launcher's own predict path gives.
    rows = tmp_path / "rows.csv"
    from sklearn.datasets import load_iris

    load_iris(as_frame=True).frame.drop(columns="target").rename(columns=str).to_csv(rows, index=False)
    code = ("import sys, mlflow, pandas as pd\n"
            "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
            "local = mlflow.artifacts.download_artifacts(sys.argv[1])\n"
            "import pathlib; print('pickles:', sorted(p.name for p in pathlib.Path(local).rglob('*.pkl')))\n"
            "print('labels:', list(model.predict(pd.read_csv(sys.argv[2]))))\n")
    res = subprocess.run([PYTHON, "-c", code, f"runs:/{got.info.run_id}/model", str(rows)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env={**os.environ})
    assert res.returncode == 0, res.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in res.stdout.splitlines() if line.startswith(("pickles:", "labels:")))
    assert lines["pickles"] == "[]"
    from launcher.pipeline.predict import SavedRun
    import pandas as pd

    expected = SavedRun.load(out).predict(pd.read_csv(rows)).values
    assert lines["labels"] == repr(list(expected))


def test_an_unreachable_server_fails_before_training_naming_it(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    res = run_cli("logger=mlflow", "model=logistic_regression", "hydra.run.dir=run", cwd=tmp_path,
                  env_extra={"MLFLOW_TRACKING_URI": uri})
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot reach the tracking server at {uri} (")
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "run" / "model").exists()
    # the same from the config, with its password kept out of the message
    res = run_cli("logger=mlflow", "model=logistic_regression", "hydra.run.dir=run2",
                  f"logger.mlflow.tracking_uri=http://me:s3cret@127.0.0.1:{uri.rsplit(':', 1)[1]}", cwd=tmp_path)
    assert res.returncode == 2 and f"error: cannot reach the tracking server at {uri} (" in res.stderr
    assert "s3cret" not in res.stderr
    # a sweep: once, before its first job
    res = run_cli("-m", "logger=mlflow", "model=logistic_regression", "model.estimator.C=0.1,1",
                  "hydra.sweep.dir=sweep", cwd=tmp_path, env_extra={"MLFLOW_TRACKING_URI": uri})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.count("error: cannot reach the tracking server") == 1 and not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_sweeps_trials_are_children_of_one_parent_run(client, tmp_path, launcher):
    sweep = tmp_path / "sweep"
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    run(launcher_command(sweep, "logger=mlflow", f"logger.mlflow.experiment_name=grid-{launcher}",
                         "model=logistic_regression", "model.estimator.C=0.01,1.0", "save_model=false", *extra),
        cwd=tmp_path, timeout=300, MLFLOW_TRACKING_URI=client.tracking_uri)
    parent = only_run(client, f"grid-{launcher}", sweeper="BasicSweeper")
    assert parent.info.status == "FINISHED"
    assert "model.estimator.C=0.01,1.0" in parent.data.params["overrides"]
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.tags["trial"] for c in children) == ["0", "1"]
    assert {c.data.params["model.estimator.C"] for c in children} == {"0.01", "1.0"}
    values = {c.data.params["model.estimator.C"]: c.data.metrics["val/accuracy"] for c in children}
    assert parent.data.metrics["best_value"] == pytest.approx(max(values.values()))
    assert values[parent.data.params["best.model.estimator.C"]] == max(values.values())
    assert json.loads((sweep / "mlflow_parent.json").read_text())["run_id"] == parent.info.run_id


def test_an_optuna_sweeps_parent_holds_its_search_space_and_best(client, tmp_path):
    sweep = tmp_path / "sweep"
    run(launcher_command(sweep, "logger=mlflow", "logger.mlflow.experiment_name=optuna",
                         "hparams_search=logistic_regression_optuna", "hydra.sweeper.n_trials=3", "save_model=false",
                         "hydra.sweeper.plots=false"),
        cwd=tmp_path, timeout=300, MLFLOW_TRACKING_URI=client.tracking_uri)
    parent = only_run(client, "optuna", sweeper="OptunaSweeper")
    params = parent.data.params
    assert any(k.startswith("sweeper.params.") for k in params) and "sweeper.sampler._target_" in params
    assert params["sweeper.direction"] in ("maximize", "minimize")
    import yaml

    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert parent.data.metrics["best_value"] == pytest.approx(results["best_value"])
    assert {k: params[f"best.{k}"] for k in results["best_params"]} == {
        k: json.dumps(v) if not isinstance(v, str) else v for k, v in results["best_params"].items()}
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(int(c.data.tags["trial"]) for c in children) == [0, 1, 2]


@pytest.mark.parametrize("framework", ["sklearn", "pytorch", "tensorflow", "jax"])
def test_every_logger_records_every_framework_the_same_way(client, tmp_path, framework):
    model = "logistic_regression" if framework == "sklearn" else "mlp"
    res = run_cli(f"framework={framework}", f"model={model}", "data=iris", "trainer.max_epochs=2", "device=cpu",
                  "logger=many", f"logger.mlflow.experiment_name=every-{framework}", "logger.mlflow.log_model=false",
                  "hydra.run.dir=run", cwd=tmp_path, timeout=600,
                  env_extra={"MLFLOW_TRACKING_URI": client.tracking_uri, "WANDB_SILENT": "true"})
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "run"
    record = json.loads((out / "metrics.json").read_text())
    got = only_run(client, f"every-{framework}", framework=framework)
    assert got.data.metrics["test/accuracy"] == pytest.approx(record["test"]["accuracy"])
    assert "model/metadata.json" in {a.path for a in client.list_artifacts(got.info.run_id, "model")}
    final = (out / "csv" / "final.csv").read_text()
    assert f"test/accuracy,{record['test']['accuracy']!r}" in final
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    epochs = [m.step for m in client.get_metric_history(got.info.run_id, "train_loss")]
    if framework == "sklearn":
        assert epochs == [] and not (out / "csv" / "epochs.csv").exists()
    else:  # the trainer core's epochs, the same names whatever the framework
        assert epochs == [1, 2]
        assert (out / "csv" / "epochs.csv").read_text().splitlines()[0] == \
            "epoch,train_loss,val_loss,val_accuracy,lr,seconds"


def test_a_robot_experiment_is_a_parent_run_with_its_report_and_model(make_cfg, client, tmp_path, monkeypatch):
    from launcher.tracking.sweep import log_experiment

    experiment = tmp_path / "experiment"
    experiment.mkdir()
    (experiment / "report.md").write_text("# report\nbest: logistic_regression\n")
    settings = {"experiment_name": "robot"}
    parent = log_experiment(experiment, settings, plan={"task": "classify iris", "budget": 60}, status="RUNNING")
    monkeypatch.setenv("LAUNCHER_MLFLOW_PARENT_RUN_ID", parent)  # as the robot starts its trials
    train(make_cfg("model=logistic_regression", "data=iris", "logger=mlflow", "logger.mlflow.experiment_name=robot"))
    monkeypatch.delenv("LAUNCHER_MLFLOW_PARENT_RUN_ID")
    assert log_experiment(experiment, settings, model_dir=tmp_path / "run" / "model", run_id=parent) == parent
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.data.params["task"] == "classify iris"
    assert "report.md" in {a.path for a in client.list_artifacts(parent)}
    children = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
    assert len(children) == 1 and children[0].data.tags["model"] == "logistic_regression"
    import mlflow
    from sklearn.datasets import load_iris

    mlflow.set_tracking_uri(client.tracking_uri)
    (logged,) = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id],
                                            filter_string=f"source_run_id = '{parent}'", output_format="list")
    frame = load_iris(as_frame=True).frame.drop(columns="target").head(3)
    assert list(mlflow.pyfunc.load_model(f"models:/{logged.model_id}").predict(frame)) == ["setosa"] * 3
