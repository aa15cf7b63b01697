"""The robot maker, part 2: it runs its own emitted searches within the budget, refines while the
requirement is unmet, fits the final model on every row, records everything, and can be
interrupted and resumed. Real launcher processes, real Optuna studies, no patched code."""
from __future__ import annotations

import csv
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import env, run_cli
from launcher.robot.blueprint import Blueprint
from launcher.robot.maker import MLRobotMaker
from launcher.robot.run import BUDGET_MARGIN

pytestmark = pytest.mark.slow


def churn(tmp_path: Path, n: int = 300) -> Path:
    """A raw CSV whose label depends on income with noise: about 0.9 accuracy is reachable,
    0.999 is not."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"income": rng.normal(50, 15, n).round(1), "plan": rng.choice(["a", "b", "c"], n),
                       "age": rng.integers(18, 80, n)})
    df["churned"] = np.where(df["income"] + rng.normal(0, 5, n) < 45, "yes", "no")
    df.to_csv(tmp_path / "churn.csv", index=False)
    df.drop(columns="churned").head(40).to_csv(tmp_path / "new_customers.csv", index=False)
    return tmp_path / "churn.csv"


def robot_args(budget: float, requirement: float | None, *extra: str) -> list[str]:
    args = ["task=Predict customer churn", "data=csv", "data.path=churn.csv", "data.target=churned",
            f"budget={budget:g}", "hydra.run.dir=exp", *extra]
    return args + ([f"requirements.accuracy={requirement}"] if requirement is not None else [])


def trial_states(sweep_dir: Path) -> dict[int, str]:
    path = sweep_dir / "trials.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        return {int(r["number"]): r["state"] for r in csv.DictReader(handle)}


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name `text` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


def test_a_tiny_robot_run_meets_its_requirement_records_everything_and_predicts(tmp_path):
    churn(tmp_path)
    started = time.monotonic()
    res = run_cli(*robot_args(30, 0.8), cwd=tmp_path, module="launcher.robot")
    wall = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    assert wall <= 30 + BUDGET_MARGIN
    out = res.stdout + res.stderr
    assert "requirement met" in out and "the requirement is met: search predict_customer_churn stopped" in out

    exp = tmp_path / "exp"
    record = json.loads((exp / "robot.json").read_text())
    assert record["status"] == "done" and record["met"] is True and record["best_score"] >= 0.8
    assert record["seconds"] <= 30
    # the records: task, profile, the planner's raw answer and checked blueprint, the emitted files
    assert json.loads((exp / "task.json").read_text())["task_type"] == "classification"
    assert json.loads((exp / "profile.json").read_text())["rows"] == 300
    plan = json.loads((exp / "plan_1.json").read_text())
    assert plan["raw"] and Blueprint.model_validate(plan["blueprint"]).candidates
    for group in ("experiment", "hparams_search"):
        copy = exp / "configs" / group / "robot" / "predict_customer_churn.yaml"
        assert copy.read_text() == (tmp_path / "conf" / group / "robot" / "predict_customer_churn.yaml").read_text()
    board = pd.read_csv(exp / "leaderboard.csv")
    assert board.loc[0, "rank"] == 1 and board.loc[0, "accuracy"] == pytest.approx(record["best_score"])
    assert (exp / "leaderboard.png").stat().st_size and (exp / "optimisation_history.png").stat().st_size
    report = (exp / "report.md").read_text()
    assert "requirement met" in report and "python -m launcher -m +experiment=robot/predict_customer_churn" in report
    # trials write no model; the final one is fitted on every row, and says so
    assert not list((exp / "sweeps").glob("*/*/model"))
    metadata = json.loads((exp / "model" / "metadata.json").read_text())
    assert metadata["refit"]["rows"] == 300

    pred = run_cli("run=exp", "input=new_customers.csv", "output=pred.csv", cwd=tmp_path, module="launcher.predict")
    assert pred.returncode == 0, pred.stderr
    assert set(pd.read_csv(tmp_path / "pred.csv")["churned"]) <= {"yes", "no"}
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 40

    # tracking: the listing, one entry in full, and clean (model files go, records stay)
    listing = run_cli(cwd=tmp_path, module="launcher.runs")
    [row] = [line for line in listing.stdout.splitlines() if " robot " in line]
    assert "Predict customer churn" in row and "met" in row and "not met" not in row
    assert f"{record['best_score']:.4g}" in row
    shown = run_cli("show", "1", cwd=tmp_path, module="launcher.runs")
    assert shown.returncode == 0 and "# Predict customer churn" in shown.stdout
    dry = run_cli("clean", "--keep-best", "0", "--dry-run", cwd=tmp_path, module="launcher.runs")
    assert dry.returncode == 0 and "exp/model" in dry.stdout and (exp / "model").is_dir()
    cleaned = run_cli("clean", "--keep-best=0", cwd=tmp_path, module="launcher.runs")
    assert cleaned.returncode == 0 and not (exp / "model").exists()
    assert (exp / "report.md").is_file() and (exp / "leaderboard.csv").is_file()
    assert run_cli(cwd=tmp_path, module="launcher.runs").stdout == listing.stdout


def test_an_unmet_requirement_refines_until_the_budget_is_spent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    churn(tmp_path)
    maker = MLRobotMaker(workdir=tmp_path / "exp")
    task = maker.create_task(description="Predict customer churn",
                             dataset_info={"path": "churn.csv", "target": "churned"},
                             model_requirements={"accuracy": 0.999, "max_seconds": 25})
    # Two trials a round: the search ends long before the budget, so the planner refines.
    blueprint = maker.generate_model_blueprint(task).model_copy(update={"n_trials": 2})
    started = time.monotonic()
    experiment = maker.execute_experiment(task, blueprint)
    wall = time.monotonic() - started
    assert wall <= 25 + BUDGET_MARGIN and experiment.seconds <= 25
    assert experiment.requirement_met is False and experiment.score < 0.999
    record = json.loads((tmp_path / "exp" / "robot.json").read_text())
    rounds = record["state"]["rounds"]
    assert len(rounds) >= 2 and rounds[1]["planner"] == "refine"
    assert rounds[1]["slug"] == "predict_customer_churn_r2"
    refined = json.loads((tmp_path / "exp" / "plan_2.json").read_text())
    assert refined["planner"] == "heuristic (offline rules)" and refined["raw"].startswith("refined")
    assert (tmp_path / "conf" / "hparams_search" / "robot" / "predict_customer_churn_r2.yaml").is_file()
    # the leaderboard holds the trials of every round; the best is the final model
    assert {t.sweep for t in experiment.leaderboard.finished} >= {"predict_customer_churn", "predict_customer_churn_r2"}
    assert experiment.best == experiment.leaderboard.best() and experiment.model_path.is_dir()
    assert "requirement NOT met" in (tmp_path / "exp" / "report.md").read_text()


def test_interrupting_keeps_the_work_and_the_printed_command_resumes_it(tmp_path):
    churn(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "launcher.robot", *robot_args(30, None)], cwd=tmp_path,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sweep = tmp_path / "exp" / "sweeps" / "predict_customer_churn"
    try:
        while sum(s == "COMPLETE" for s in trial_states(sweep).values()) < 2:  # wait on the study's own record
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert "best so far: accuracy" in line and "Resume with: python -m launcher.robot" in line
    record = json.loads((tmp_path / "exp" / "robot.json").read_text())
    assert record["status"] == "interrupted"
    before = {n for n, s in trial_states(sweep).items() if s == "COMPLETE"}
    assert len(before) >= 2 and not processes_mentioning(str(sweep))  # no trial left running

    command = shlex.split(line.split("Resume with: ", 1)[1])
    assert command[:3] == ["python", "-m", "launcher.robot"] and "task=Predict customer churn" in command
    resumed = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, env=env(), capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "robot: resuming" in resumed.stdout + resumed.stderr
    record = json.loads((tmp_path / "exp" / "robot.json").read_text())
    assert record["status"] == "done" and record["seconds"] <= 30 + BUDGET_MARGIN  # the same budget, continued
    after = trial_states(sweep)
    assert all(after[n] == "COMPLETE" for n in before) and len(after) > len(before)  # the same study, continued
    assert (tmp_path / "exp" / "model" / "metadata.json").is_file()
    listing = run_cli(cwd=tmp_path, module="launcher.runs")
    assert " done " in listing.stdout and listing.stdout.count(" robot ") == 1


def test_a_slow_model_cannot_take_the_robot_past_its_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    maker = MLRobotMaker(workdir=tmp_path / "exp")
    task = maker.create_task(description="Classify", dataset_info={"size": 4000, "features": 30, "classes": 2},
                             model_requirements={"max_seconds": 15})
    # A forest of 2,000 unpruned trees on every feature: one cross-validated trial takes minutes
    # on one core. The fast linear model finishes first; the forest must be stopped.
    slow = {"model": "random_forest", "why": "slow", "params": [
        {"key": "model.estimator.n_estimators", "low": 1500, "high": 2000, "log": False, "choices": None}],
        "start": [{"key": "model.estimator.n_estimators", "value": 2000},
                  {"key": "model.estimator.max_features", "value": 1.0}]}
    fast = {"model": "logistic_regression", "why": "fast", "params": [], "start": []}
    blueprint = Blueprint.model_validate({"task": "classification", "metric": "accuracy", "framework": "sklearn",
                                          "n_trials": 4, "cv_folds": 5, "rationale": "slow and fast",
                                          "candidates": [fast, slow]})
    started = time.monotonic()
    experiment = maker.execute_experiment(task, blueprint)
    wall = time.monotonic() - started
    assert wall <= 15 + BUDGET_MARGIN, wall
    assert experiment.best.model == "logistic_regression" and experiment.synthetic
    states = [t.state for t in experiment.leaderboard.trials if t.model == "random_forest" or
              t.params.get("model") == "random_forest"]
    assert states and "COMPLETE" not in states
    assert not processes_mentioning(str(tmp_path / "exp" / "sweeps"))  # the forest's trial was stopped
    assert "stopped" in (tmp_path / "exp" / "report.md").read_text()


def test_the_python_call_as_people_write_it(tmp_path, monkeypatch, caplog):
    from launcher.robot.maker import DEFAULT_BUDGET

    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    experiment = MLRobotMaker().auto_ml_pipeline(task_description="Classify customer segments",
        dataset_info={"size": 5000, "features": 25, "classes": 4}, model_requirements={"accuracy_threshold": 0.85})
    assert time.monotonic() - started <= DEFAULT_BUDGET + BUDGET_MARGIN
    assert experiment.synthetic and "SYNTHETIC" in caplog.text  # labelled synthetic where it is said
    assert "SYNTHETIC data of the given shape" in (experiment.directory / "report.md").read_text()
    assert experiment.task.task_type == "classification" and experiment.metrics["metric"] == "accuracy"
    assert experiment.leaderboard.finished and experiment.best_run and Path(experiment.best_run).is_dir()
    assert experiment.requirement_met == (experiment.score >= 0.85)
    assert (experiment.model_path / "metadata.json").is_file()


def test_a_budget_of_zero_or_less_is_a_clear_error(tmp_path):
    churn(tmp_path)
    for budget in ("0", "-5"):
        res = run_cli(*robot_args(float(budget), 0.8), cwd=tmp_path, module="launcher.robot")
        assert res.returncode == 2
        assert res.stderr.strip() == f"error: the budget must be a positive number of seconds, got {budget}"
    assert not (tmp_path / "conf").exists() and not (tmp_path / "exp" / "robot.json").exists()


def test_an_llm_planner_refines_from_the_leaderboard(tmp_path):
    from llm_replay import ReplayServer, openai_answer

    def blueprint(n_trials: int, high: float) -> str:
        return json.dumps({"task": "classification", "metric": "accuracy", "framework": "sklearn",
                           "n_trials": n_trials, "cv_folds": 5, "rationale": f"linear up to C={high}",
                           "candidates": [{"model": "logistic_regression", "why": "baseline", "params": [
                               {"key": "model.estimator.C", "low": 0.01, "high": high, "log": True, "choices": None}],
                               "start": [{"key": "model.estimator.C", "value": 1.0}]}]})

    churn(tmp_path)
    key = "sk-test-NEVER-WRITE-THIS-KEY-0123456789"
    with ReplayServer([openai_answer(blueprint(2, 10.0)), openai_answer(blueprint(2, 1000.0))]) as server:
        res = run_cli(*robot_args(30, 0.999, "planner=openai", f"planner.base_url={server.url}/v1",
                                  "planner.max_calls=2"),
                      cwd=tmp_path, module="launcher.robot", env_extra={"OPENAI_API_KEY": key})
        requests = [json.loads(r["body"]) for r in server.requests]
    assert res.returncode == 0, res.stderr
    assert len(requests) >= 2
    refining = json.loads(requests[1]["messages"][-1]["content"])
    board = refining["leaderboard"]  # the results so far, compact: model, score, spread, time, params
    assert board and board[0]["model"] == "logistic_regression" and 0 < board[0]["score"] < 1
    assert set(board[0]) == {"model", "score", "cv_std", "seconds", "params"}
    assert refining["current_blueprint"]["rationale"] == "linear up to C=10.0"
    second = json.loads((tmp_path / "exp" / "plan_2.json").read_text())
    assert second["planner"].startswith("openai") and second["blueprint"]["rationale"] == "linear up to C=1000.0"
    third = json.loads((tmp_path / "exp" / "plan_3.json").read_text())  # over its cap: the offline planner
    assert third["planner"].startswith("heuristic") and "cap of 2 calls" in third["fallback"]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(key in p.read_text(errors="ignore") for p in written)


def test_a_silent_llm_cannot_take_the_run_past_its_budget(tmp_path):
    from llm_replay import Reply, ReplayServer

    churn(tmp_path)
    started = time.monotonic()
    with ReplayServer([Reply(hang=True)] * 4) as server:  # never answers; planner.timeout is 60s
        # 30s: a quarter goes to the silent planner, the rest must still finish a trial on a busy machine
        res = run_cli(*robot_args(30, 0.8, "planner=anthropic", f"planner.base_url={server.url}"),
                      cwd=tmp_path, module="launcher.robot", env_extra={"ANTHROPIC_API_KEY": "sk-test-0"})
    wall = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    assert wall <= 30 + BUDGET_MARGIN
    [plan] = [json.loads(p.read_text()) for p in (tmp_path / "exp").glob("plan_*.json")]
    assert plan["planner"].startswith("heuristic") and "did not answer within" in plan["fallback"]
    assert json.loads((tmp_path / "exp" / "robot.json").read_text())["met"] is True
