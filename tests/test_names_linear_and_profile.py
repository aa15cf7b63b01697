"""Names that say what they build, and a profile line whose counts add up."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import launcher
from helpers import run_cli
from launcher.robot.planners.heuristic import HeuristicPlanner
from launcher.robot.profile import DatasetProfile, profile_dataset
from launcher.robot.space import tunable
from launcher.robot.task import DatasetInfo, MLTask, Requirements


def built(model: str, task: str):
    sk = launcher.ScikitLearnFramework()
    classes = ["a", "b"] if task == "classification" else None
    schema = launcher.DataSchema(task, 4, classes=classes)
    return type(sk.create_model({"type": model}, schema).inner.estimator).__name__


def test_ridge_builds_ridge_and_the_old_name_still_does_for_regression():
    assert built("ridge", "regression") == "Ridge"
    assert built("logistic_regression", "regression") == "Ridge"  # kept for existing configs
    assert built("logistic_regression", "classification") == "LogisticRegression"


def test_ridge_for_classification_is_one_line_naming_the_linear_classifier(tmp_path):
    res = run_cli("model=ridge", "data=iris", "save_model=false", "hydra.run.dir=run", cwd=tmp_path)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "model=ridge cannot do classification" in lines[0] and "logistic_regression" in lines[0]


@pytest.mark.parametrize("kind,metric,linear,key", [
    ("regression", "r2", "ridge", "model.estimator.alpha"),
    ("classification", "accuracy", "logistic_regression", "model.estimator.C"),
])
def test_the_robot_plans_the_linear_family_by_its_task(kind, metric, linear, key):
    task = MLTask("t", DatasetInfo("shape", size=1, features=1), Requirements(metric), kind, "given", 60)
    blueprint, rationale = HeuristicPlanner().propose(task, DatasetProfile(rows=400, columns=8, numeric=8))
    first = blueprint.candidates[0]
    assert first.model == linear and [p.key for p in first.params] == [key]
    assert set(tunable("sklearn", linear)) == {key}  # the registry lets the plan tune it, and nothing else
    assert rationale.count(linear.replace("_", " ")) == 1


def test_the_profile_line_adds_up(tmp_path):
    from omegaconf import OmegaConf

    from launcher.data import load

    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],  # ID-like: set aside, not a feature
        "income": rng.normal(50, 10, n), "age": rng.integers(18, 80, n),
        "plan": rng.choice(["basic", "premium"], n), "region": rng.choice(["north", "south", "east"], n),
        "signup": pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "churned": rng.choice(["yes", "no"], n),
    })
    frame.to_csv(tmp_path / "churn.csv", index=False)
    dataset = load(OmegaConf.create({"source": "csv", "path": str(tmp_path / "churn.csv"), "target": "churned"}))
    profile = profile_dataset(dataset, "classification")
    assert profile.numeric + profile.categorical + profile.dates + profile.empty == profile.columns == 5
    summary = profile.summary()
    assert "5 feature columns (2 numeric, 2 categorical, 1 date)" in summary
    assert "1 column set aside as not features (1 ID-like)" in summary
