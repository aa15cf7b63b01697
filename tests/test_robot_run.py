"""The robot maker, part 2: it runs a baseline and its own emitted searches within the budget,
refines while the requirement is unmet, fits the final model on every row (or keeps the best
model already fitted), records everything, and can be interrupted and resumed. Real launcher
processes, real Optuna studies, no patched code. No test asserts how long anything took: the
budget's figures are measured in benchmarks/robot_budget.py."""
from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import env, run_cli
from launcher.robot.blueprint import Blueprint
from launcher.robot.maker import MLRobotMaker

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



def robot_record(exp: Path) -> dict:
    return json.loads((exp / "robot.json").read_text())


def test_a_tiny_robot_run_meets_its_requirement_records_everything_and_predicts(tmp_path):
    churn(tmp_path)
    res = run_cli(*robot_args(30, 0.8), cwd=tmp_path, module="launcher.robot")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "requirement met" in out and "the requirement is met: search predict_customer_churn stopped" in out

    exp = tmp_path / "exp"
    record = robot_record(exp)
    assert record["status"] == "done" and record["met"] is True and record["best_score"] >= 0.8
    # one time figure: the console's, the report's and robot.json's
    assert f"in {record['seconds']:.1f}s" in out
    assert f"- time: {record['seconds']:.1f}s of a 30s budget" in (exp / "report.md").read_text()
    # the records: task, profile, the planner's raw answer and checked blueprint, the emitted files
    assert json.loads((exp / "task.json").read_text())["task_type"] == "classification"
    assert json.loads((exp / "profile.json").read_text())["rows"] == 300
    plan = json.loads((exp / "plan_1.json").read_text())
    assert plan["raw"] and Blueprint.model_validate(plan["blueprint"]).candidates
    for group in ("experiment", "hparams_search"):
        copy = exp / "configs" / group / "robot" / "predict_customer_churn.yaml"
        assert copy.read_text() == (tmp_path / "conf" / group / "robot" / "predict_customer_churn.yaml").read_text()
    board = pd.read_csv(exp / "leaderboard.csv")
    assert board.loc[0, "rank"] == 1 and board.loc[0, "accuracy"] == pytest.approx(record["selected_score"])
    assert "RUNNING" not in set(board["state"])  # a trial the robot stopped is recorded as stopped
    assert (exp / "leaderboard.png").stat().st_size and (exp / "optimization_history.png").stat().st_size
    report = (exp / "report.md").read_text()
    assert "requirement met" in report and "python -m launcher -m experiment=robot/predict_customer_churn" in report
    # the expected score and the figure that selected the model, both said
    assert f"expected accuracy of the final model: {record['best_score']:.4f}" in report
    assert f"the figure that selected it: {record['selected_score']:.4f}" in report
    # trials write no model; the final one is fitted on every row, and says so
    assert not list((exp / "sweeps").glob("*/*/model"))
    metadata = json.loads((exp / "model" / "metadata.json").read_text())
    assert metadata["refit"]["rows"] == 300

    pred = run_cli("run=exp", "input=new_customers.csv", "output=pred.csv", cwd=tmp_path, module="launcher.predict")
    assert pred.returncode == 0, pred.stderr
    assert set(pd.read_csv(tmp_path / "pred.csv")["churned"]) <= {"yes", "no"}
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 40

    # tracking: the listing, one entry in full
    listing = run_cli(cwd=tmp_path, module="launcher.runs")
    [row] = [line for line in listing.stdout.splitlines() if " robot " in line]
    assert "Predict customer churn" in row and "met" in row and "not met" not in row
    shown = run_cli("show", "1", cwd=tmp_path, module="launcher.runs")
    assert shown.returncode == 0 and "# Predict customer churn" in shown.stdout


def test_the_printed_commands_rerun_unchanged_in_a_fresh_directory(tmp_path, monkeypatch):
    """What the robot ran is the committed files plus the command it printed: the same command,
    run in a copy of the project (its conf/ and its data, nothing else), gives the same trials'
    parameters and scores. The search is bounded by its trial count, not by time."""
    project, fresh = tmp_path / "project", tmp_path / "fresh"
    project.mkdir()
    churn(project)
    monkeypatch.chdir(project)
    maker = MLRobotMaker()
    task = maker.create_task(description="Predict customer churn", dataset_info={"path": "churn.csv", "target": "churned"},
                             model_requirements={"max_seconds": 60})
    blueprint = maker.generate_model_blueprint(task).model_copy(update={"n_trials": 4})
    experiment = maker.execute_experiment(task, blueprint)
    search = next(c for c in experiment.commands if " -m experiment=robot/predict_customer_churn " in c)
    assert not search.startswith("cd ") and "hydra.sweeper.timeout=" in search and "hydra.launcher.n_jobs=" in search
    sweep = experiment.directory / "sweeps" / "predict_customer_churn"
    ran = {int(r["number"]): r for r in csv.DictReader(open(sweep / "trials.csv"))}
    assert sum(r["state"] == "COMPLETE" for r in ran.values()) == 4  # bounded by the count

    fresh.mkdir()
    shutil.copytree(project / "conf", fresh / "conf")
    shutil.copy(project / "churn.csv", fresh / "churn.csv")
    venv = str(Path(sys.executable).parent)
    again = subprocess.run(["bash", "-c", search], cwd=fresh, capture_output=True, text=True, timeout=300,
                           env=env(PATH=f"{venv}:{os.environ['PATH']}"))
    assert again.returncode == 0, again.stderr[-3000:]
    rerun_dir = fresh / sweep.relative_to(project)
    rerun = {int(r["number"]): r for r in csv.DictReader(open(rerun_dir / "trials.csv"))}
    params = sorted(k for k in ran[0] if k.startswith("params_"))
    complete = {n: r for n, r in ran.items() if r["state"] == "COMPLETE"}
    assert {n for n, r in rerun.items() if r["state"] == "COMPLETE"} == set(complete)
    for number, row in complete.items():
        assert [rerun[number][k] for k in params] == [row[k] for k in params], number
        assert float(rerun[number]["value"]) == pytest.approx(float(row["value"]), abs=1e-9)
    # the baseline command too: its model scores as the robot's baseline did
    [baseline] = [c for c in experiment.commands if "hydra.run.dir=" in c and "baseline" in c]
    again = subprocess.run(["bash", "-c", baseline], cwd=fresh, capture_output=True, text=True, timeout=300,
                           env=env(PATH=f"{venv}:{os.environ['PATH']}"))
    assert again.returncode == 0, again.stderr[-3000:]
    first = json.loads((experiment.directory / "baseline" / "metrics.json").read_text())["objective"]["value"]
    second = json.loads((fresh / (experiment.directory / "baseline").relative_to(project) / "metrics.json")
                        .read_text())["objective"]["value"]
    assert second == pytest.approx(first, abs=1e-9)


def test_an_unmet_requirement_refines_until_the_budget_is_spent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    churn(tmp_path)
    maker = MLRobotMaker(workdir=tmp_path / "exp")
    task = maker.create_task(description="Predict customer churn",
                             dataset_info={"path": "churn.csv", "target": "churned"},
                             model_requirements={"accuracy": 0.999, "max_seconds": 60})
    # Two trials a round: the search ends by its trial count long before the budget, so the
    # planner refines (the budget is generous: a busy machine still fits a second round).
    blueprint = maker.generate_model_blueprint(task).model_copy(update={"n_trials": 2})
    experiment = maker.execute_experiment(task, blueprint)
    assert experiment.requirement_met is False and experiment.score < 0.999
    record = json.loads((tmp_path / "exp" / "robot.json").read_text())
    rounds = record["state"]["rounds"]
    assert len(rounds) >= 2 and rounds[1]["planner"] == "refine"
    assert rounds[1]["slug"] == "predict_customer_churn_r2"
    refined = json.loads((tmp_path / "exp" / "plan_2.json").read_text())
    assert refined["planner"] == "heuristic (offline rules)" and refined["raw"].startswith("refined")
    assert (tmp_path / "conf" / "hparams_search" / "robot" / "predict_customer_churn_r2.yaml").is_file()
    # the leaderboard holds the trials of every round and the baseline
    assert {t.sweep for t in experiment.leaderboard.finished} >= {"baseline", "predict_customer_churn",
                                                                   "predict_customer_churn_r2"}
    assert experiment.best == experiment.leaderboard.best() and experiment.model_path.is_dir()
    assert "requirement NOT met" in (tmp_path / "exp" / "report.md").read_text()
    # the expected score is corrected for choosing the best of many trials on the same rows
    assert experiment.selected_score == pytest.approx(experiment.best.score) or experiment.ensembled
    assert experiment.score <= experiment.selected_score + 1e-12
    assert "BBC" in experiment.estimate_method or "bootstrap" in experiment.estimate_method.lower()


def test_interrupting_keeps_the_work_and_the_printed_command_resumes_it(tmp_path):
    churn(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "launcher.robot", *robot_args(45, None)], cwd=tmp_path,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sweep = tmp_path / "exp" / "sweeps" / "predict_customer_churn"
    deadline = time.monotonic() + 120
    try:
        while sum(s == "COMPLETE" for s in trial_states(sweep).values()) < 2:  # wait on the study's own record
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no two trials finished in 120s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert "best so far: accuracy" in line and "Resume with: python -m launcher.robot" in line
    record = robot_record(tmp_path / "exp")
    assert record["status"] == "interrupted"
    before = {n for n, s in trial_states(sweep).items() if s == "COMPLETE"}
    assert len(before) >= 2 and not processes_mentioning(str(tmp_path / "exp"))  # nothing left running

    command = shlex.split(line.split("Resume with: ", 1)[1])
    assert command[:3] == ["python", "-m", "launcher.robot"] and "task=Predict customer churn" in command
    resumed = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, env=env(), capture_output=True,
                             text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert "robot: resuming" in resumed.stdout + resumed.stderr
    again = robot_record(tmp_path / "exp")
    assert again["status"] == "done" and again["state"]["spent"] >= record["state"]["spent"]  # the same budget
    after = trial_states(sweep)
    assert all(after[n] == "COMPLETE" for n in before)  # the same study, continued
    assert (tmp_path / "exp" / "model" / "metadata.json").is_file()
    listing = run_cli(cwd=tmp_path, module="launcher.runs")
    assert " done " in listing.stdout and listing.stdout.count(" robot ") == 1


def slow_and_fast(maker: MLRobotMaker, budget: float, trials: int = 4):
    """A task on 4,000 synthetic rows with a fast linear model and a forest of 2,000 unpruned
    trees on every feature: one cross-validated forest trial takes minutes on one core."""
    task = maker.create_task(description="Classify", dataset_info={"size": 4000, "features": 30, "classes": 2},
                             model_requirements={"max_seconds": budget})
    slow = {"model": "random_forest", "why": "slow", "params": [
        {"key": "model.estimator.n_estimators", "low": 1500, "high": 2000, "log": False, "choices": None}],
        "start": [{"key": "model.estimator.n_estimators", "value": 2000},
                  {"key": "model.estimator.max_features", "value": 1.0}]}
    fast = {"model": "logistic_regression", "why": "fast", "params": [], "start": []}
    blueprint = Blueprint.model_validate({"task": "classification", "metric": "accuracy", "framework": "sklearn",
                                          "n_trials": trials, "cv_folds": 5, "rationale": "slow and fast",
                                          "candidates": [slow, fast]})
    return task, blueprint


def test_a_slow_model_cannot_take_the_robot_past_its_budget_and_the_baseline_is_the_model(tmp_path, monkeypatch):
    """By construction, not by timing: no forest trial can finish in the budget; the cheapest
    learner (the baseline, fitted on every row in its own run) is the model."""
    monkeypatch.chdir(tmp_path)
    maker = MLRobotMaker(workdir=tmp_path / "exp")
    task, blueprint = slow_and_fast(maker, budget=20)
    experiment = maker.execute_experiment(task, blueprint)
    assert experiment.final.model == "logistic_regression" and experiment.final.sweep == "baseline"
    assert experiment.synthetic and experiment.model_path.is_dir()
    forest = [t for t in experiment.leaderboard.trials if t.model == "random_forest"]
    assert forest and not any(t.state in ("COMPLETE", "RUNNING") for t in forest)
    assert not processes_mentioning(str(tmp_path / "exp"))  # every process was stopped
    report = (tmp_path / "exp" / "report.md").read_text()
    assert "stopped" in report and "not selected from other trials" in report
    # the search did not queue the baseline's point again: its first trial is the forest
    search = yaml.safe_load((tmp_path / "conf" / "hparams_search" / "robot" / "classify.yaml").read_text())
    assert search["hydra"]["sweeper"]["enqueue_trials"][0]["model"] == "random_forest"


def test_when_even_the_cheapest_learner_cannot_finish_the_budget_wins_with_one_line(tmp_path, monkeypatch):
    """By construction: the plan's only learner is the slow forest, so nothing can finish in 5 s;
    the run ends on time, says so, and names a budget that would serve."""
    from launcher.core.errors import LauncherError

    monkeypatch.chdir(tmp_path)
    maker = MLRobotMaker(workdir=tmp_path / "exp")
    task, blueprint = slow_and_fast(maker, budget=5)
    blueprint = blueprint.model_copy(update={"candidates": blueprint.candidates[:1]})  # the forest alone
    with pytest.raises(LauncherError) as info:
        maker.execute_experiment(task, blueprint)
    message = str(info.value)
    assert message.startswith("no model within budget=5s: the cheapest learner did not finish") and "budget=" in message
    assert robot_record(tmp_path / "exp")["status"] == "failed"
    assert not (tmp_path / "exp" / "model").exists() and not processes_mentioning(str(tmp_path / "exp"))


def test_a_final_fit_that_overruns_is_stopped_and_the_best_model_already_fitted_is_kept(tmp_path, monkeypatch):
    """The final fits have a hard deadline: given no time at all (a clock whose budget is spent),
    the best trial's refit is stopped and the baseline's model is the final one."""
    from launcher.robot.budget import Clock
    from launcher.robot.commands import Invocation
    from launcher.robot.final import finish
    from launcher.robot.leaderboard import Leaderboard

    monkeypatch.chdir(tmp_path)
    churn(tmp_path)
    maker = MLRobotMaker(workdir=tmp_path / "exp")
    task = maker.create_task(description="Predict customer churn", dataset_info={"path": "churn.csv", "target": "churned"},
                             model_requirements={"max_seconds": 120})
    blueprint = maker.generate_model_blueprint(task).model_copy(update={"n_trials": 3})
    experiment = maker.execute_experiment(task, blueprint)
    board = experiment.leaderboard
    baseline = next(t for t in board.finished if t.sweep == "baseline")
    # a leaderboard whose best trial has no model of its own: its final fit must run
    better = next(t for t in board.finished if t.sweep != "baseline")
    better.score = baseline.score + 0.05
    spent = Clock(budget=1.0, started=time.monotonic() - 10)
    commands: list[str] = []
    result = finish(task, Leaderboard(board.metric, board.direction, [better, baseline]), tmp_path / "exp2", spent,
                    Invocation(tmp_path, 1), commands, blueprint.cv_folds)
    assert result.fallback and "did not finish by the deadline" in result.fallback
    assert result.final is baseline and (tmp_path / "exp2" / "model" / "metadata.json").is_file()
    assert any("trainer.refit=true" in c for c in commands)  # the refit was started, then stopped
    assert not processes_mentioning(str(tmp_path / "exp2"))


def test_the_python_call_as_people_write_it(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    experiment = MLRobotMaker().auto_ml_pipeline(task_description="Classify customer segments",
        dataset_info={"size": 5000, "features": 25, "classes": 4}, model_requirements={"accuracy_threshold": 0.85},
        budget=30)
    assert experiment.synthetic and "SYNTHETIC" in caplog.text  # labelled synthetic where it is said
    assert "SYNTHETIC data of the given shape" in (experiment.directory / "report.md").read_text()
    assert experiment.task.task_type == "classification" and experiment.metrics["metric"] == "accuracy"
    assert experiment.leaderboard.finished and experiment.best_run and Path(experiment.best_run).is_dir()
    assert experiment.requirement_met == (experiment.score >= 0.85)
    assert (experiment.model_path / "metadata.json").is_file()


@pytest.mark.parametrize("args,expected", [
    (["budget=0"], "error: the budget must be a positive number of seconds, got budget=0"),
    (["budget=-5"], "error: the budget must be a positive number of seconds, got budget=-5"),
    (["budget=abc"], "error: budget=abc is not a number of seconds; e.g. budget=120"),
    (["requirements.accuracy=95"], "error: requirements.accuracy=95 is outside what accuracy can be ([0, 1]); "
                                   "a fraction is meant: requirements.accuracy=0.95"),
    (["requirements.rmse=-1"], "error: requirements.rmse=-1 is outside what rmse can be ([0, inf])"),
    (["+requirements.speed=3"], "error: unknown requirement 'speed'; expected a metric"),
    (["task=regression"], "error: target 'churned' has non-numeric values"),
])
def test_each_bad_argument_is_one_error_line(tmp_path, args, expected):
    churn(tmp_path)
    base = [a for a in robot_args(30, None) if not a.startswith("budget=") or not any(
        x.startswith("budget=") for x in args)]
    if any(a.startswith("task=") for a in args):
        base = [a for a in base if not a.startswith("task=")]
    res = run_cli(*base, *args, "plan_only=true", cwd=tmp_path, module="launcher.robot")
    assert res.returncode == 2, res.stderr
    [line] = res.stderr.strip().splitlines()
    assert line.startswith(expected), line
    assert not (tmp_path / "conf").exists()  # nothing planned, nothing written


def test_a_missing_task_is_one_error_line(tmp_path):
    churn(tmp_path)
    res = run_cli(*[a for a in robot_args(30, None) if not a.startswith("task=")], cwd=tmp_path,
                  module="launcher.robot")
    assert res.returncode == 2 and res.stderr.startswith("error: the robot needs a task: task=")
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_training_time_requirement_is_the_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    churn(tmp_path)
    task = MLRobotMaker(workdir=tmp_path / "exp").create_task(
        description="Predict churn", dataset_info={"path": "churn.csv", "target": "churned"},
        model_requirements={"max_training_time": 40, "max_seconds": 90})
    assert task.budget == 40  # enforced: the smaller limit bounds the whole run


def test_every_trial_failing_the_same_way_stops_early_and_says_why(tmp_path, monkeypatch):
    """A project's own model config that no trial can build: the robot says the launcher's own
    error line and stops after a few trials instead of spending the budget."""
    monkeypatch.chdir(tmp_path)
    churn(tmp_path)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    shipped = (Path(__file__).resolve().parents[1] / "conf" / "model" / "random_forest.yaml").read_text()
    (tmp_path / "conf" / "model" / "random_forest.yaml").write_text(
        shipped.replace("n_estimators: 100", "n_estimators: many"))
    maker = MLRobotMaker(workdir=tmp_path / "exp")
    task = maker.create_task(description="Predict customer churn", dataset_info={"path": "churn.csv", "target": "churned"},
                             model_requirements={"max_seconds": 120})
    forest = {"model": "random_forest", "why": "forest", "params": [
        {"key": "model.estimator.min_samples_leaf", "low": 1, "high": 20, "log": True, "choices": None}], "start": []}
    blueprint = Blueprint.model_validate({"task": "classification", "metric": "accuracy", "framework": "sklearn",
                                          "n_trials": 30, "cv_folds": 5, "rationale": "a forest",
                                          "candidates": [forest]})
    with pytest.raises(Exception) as info:
        maker.execute_experiment(task, blueprint)
    message = str(info.value)
    assert message.startswith("every trial failed the same way:") and "n_estimators" in message
    record = robot_record(tmp_path / "exp")
    assert record["status"] == "failed" and record["state"]["error"] == message
    trials = trial_states(tmp_path / "exp" / "sweeps" / "predict_customer_churn")
    assert len(trials) < 30  # stopped early, not after every trial
    assert "n_estimators" in (tmp_path / "exp" / "report.md").read_text()  # the report says why too


def test_from_the_launchers_own_repository_the_robot_refuses_to_write_into_its_config_tree(tmp_path):
    root = Path(__file__).resolve().parents[1]
    churn(tmp_path)
    before = subprocess.run(["git", "status", "--porcelain", "--", "conf"], cwd=root, capture_output=True, text=True)
    res = run_cli("task=Predict customer churn", "data=csv", f"data.path={tmp_path / 'churn.csv'}",
                  "data.target=churned", "plan_only=true", f"hydra.run.dir={tmp_path / 'exp'}", cwd=root,
                  module="launcher.robot")
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert "the launcher's own shipped config tree" in line and "project_dir=<dir>" in line
    after = subprocess.run(["git", "status", "--porcelain", "--", "conf"], cwd=root, capture_output=True, text=True)
    assert after.stdout == before.stdout
    # given a project directory, it writes there and says where the commands run from
    project = tmp_path / "project"
    res = run_cli("task=Predict customer churn", "data=csv", f"data.path={tmp_path / 'churn.csv'}",
                  "data.target=churned", "plan_only=true", f"project_dir={project}",
                  f"hydra.run.dir={tmp_path / 'exp2'}", cwd=root, module="launcher.robot")
    assert res.returncode == 0, res.stderr
    assert (project / "conf" / "experiment" / "robot" / "predict_customer_churn.yaml").is_file()
    assert f"run it: cd {project} && OMP_NUM_THREADS=1 python -m launcher" in res.stdout + res.stderr


def test_an_unwritable_project_is_one_error_line(tmp_path):
    churn(tmp_path)
    (tmp_path / "conf").write_text("a file where the conf folder would be")
    res = run_cli(*robot_args(30, None), "plan_only=true", cwd=tmp_path, module="launcher.robot")
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("error: cannot write the robot's configs into") and "project_dir=<dir>" in line


def test_user_text_is_never_resolved_and_no_variable_leaks(tmp_path):
    """`${...}` in the target, the path or the task is the user's text: kept literally, escaped in
    the emitted YAML, and an environment variable's value is never printed or written."""
    secret = "sk-test-SECRET-VALUE-0123456789"
    column = "${oc.env:SOME_SECRET}"
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=120), "z": rng.normal(size=120)})
    df[column] = np.where(df["x"] > 0, "a", "b")
    df.to_csv(tmp_path / "t.csv", index=False)
    args = ["task=Classify ${oc.env:SOME_SECRET}", "data=csv", "data.path=t.csv", f"data.target={column}",
            "plan_only=true", "hydra.run.dir=exp"]
    res = run_cli(*args, cwd=tmp_path, module="launcher.robot", env_extra={"SOME_SECRET": secret})
    assert res.returncode == 0, res.stderr
    experiment = next((tmp_path / "conf" / "experiment" / "robot").glob("*.yaml"))
    assert "target: \\${oc.env:SOME_SECRET}" in experiment.read_text()
    # the printed baseline command runs on the column of that literal name
    line = next(x for x in (res.stdout + res.stderr).splitlines() if "run it: " in x)
    command = line.split("run it: ", 1)[1]
    venv = str(Path(sys.executable).parent)
    ran = subprocess.run(["bash", "-c", command + " hydra.run.dir=base"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env(SOME_SECRET=secret, PATH=f"{venv}:{os.environ['PATH']}"))
    assert ran.returncode == 0, ran.stderr
    # a missing column of such a name is named as written, never as the variable's value
    missing = run_cli(*args[:3], "data.target=${oc.env:SOME_SECRET}_missing", "plan_only=true", "hydra.run.dir=exp2",
                      cwd=tmp_path, module="launcher.robot", env_extra={"SOME_SECRET": secret})
    assert missing.returncode == 2 and "${oc.env:SOME_SECRET}_missing" in missing.stderr
    everything = res.stdout + res.stderr + ran.stdout + ran.stderr + missing.stdout + missing.stderr
    assert secret not in everything
    assert not any(secret in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file()
                   and p.suffix in (".yaml", ".json", ".md", ".log", ".csv", ".txt"))


def test_a_saved_ensemble_predicts_after_reload(tmp_path, monkeypatch):
    """Two real trials (cross-validated, fitted on every row) saved as the robot saves an
    ensemble; predict reads it back from disk and gives one label per row."""
    from launcher.robot.final import save
    from launcher.robot.leaderboard import Leaderboard

    monkeypatch.chdir(tmp_path)
    churn(tmp_path)
    board = Leaderboard("accuracy", "maximize")
    trials = []
    for name, model in (("a", "logistic_regression"), ("b", "random_forest")):
        res = run_cli("data=csv", "data.path=churn.csv", "data.target=churned", f"model={model}", "trainer.cv_folds=3",
                      "trainer.refit=true", "data.test_size=0", "data.val_size=0", f"hydra.run.dir=runs/{name}",
                      cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        trials.append(board.add_run(tmp_path / "runs" / name, name))
    task = MLRobotMaker(workdir=tmp_path / "exp").create_task(
        description="Predict churn", dataset_info={"path": "churn.csv", "target": "churned"})
    (tmp_path / "exp").mkdir(exist_ok=True)
    target = save([(trials[0], 0.5), (trials[1], 0.5)], [t.fitted_model() for t in trials], tmp_path / "exp", task)
    assert (target / "ensemble.json").is_file() and not list((tmp_path / "exp").glob(".model.partial-*"))
    pred = run_cli("run=exp", "input=new_customers.csv", "output=pred.csv", cwd=tmp_path, module="launcher.predict")
    assert pred.returncode == 0, pred.stderr
    out = pd.read_csv(tmp_path / "pred.csv")
    assert len(out) == 40 and set(out["churned"]) <= {"yes", "no"}


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
    # The search ends by its trial count (2), so refinement comes whatever the machine's speed;
    # the budget leaves room for it on a busy one.
    with ReplayServer([openai_answer(blueprint(2, 10.0)), openai_answer(blueprint(2, 1000.0))]) as server:
        res = run_cli(*robot_args(60, 0.999, "planner=openai", f"planner.base_url={server.url}/v1",
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
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(key in p.read_text(errors="ignore") for p in written)


def test_a_silent_llm_cannot_take_the_run_past_its_budget(tmp_path):
    from llm_replay import Reply, ReplayServer

    churn(tmp_path)
    with ReplayServer([Reply(hang=True)] * 4) as server:  # never answers; planner.timeout is 60s
        res = run_cli(*robot_args(30, 0.8, "planner=anthropic", f"planner.base_url={server.url}"),
                      cwd=tmp_path, module="launcher.robot", env_extra={"ANTHROPIC_API_KEY": "sk-test-0"})
    assert res.returncode == 0, res.stderr
    [plan] = [json.loads(p.read_text()) for p in (tmp_path / "exp").glob("plan_*.json")]
    assert plan["planner"].startswith("heuristic") and "did not answer within" in plan["fallback"]
    record = robot_record(tmp_path / "exp")
    assert record["met"] is True and record["status"] == "done"
