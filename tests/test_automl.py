"""launcher.AutoML: the robot as a library. A DataFrame (or arrays) in, the same engine as
`python -m launcher.robot`, predictions out; nothing written outside its directory."""
from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from launcher import AutoML
from launcher.core.errors import ArtifactError, ConfigError, DataError

BUDGET = 20  # seconds: the robot's baseline and a few trials on a few hundred rows, on a busy machine too


def customers(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Text categoricals and missing values in both kinds of column; column names with spaces
    and signs. The class follows the plan and the spend, so a model that uses the text column
    beats the majority share on rows it never saw."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "premium", "family"], n).astype(object)
    spend = rng.gamma(2.0, 30.0, n)
    region = rng.choice(["north", "south", "east", "west"], n).astype(object)
    churned = np.where((plan == "basic") & (spend < 60) | (spend < 15), "yes", "no")
    plan[rng.choice(n, 20, replace=False)] = None
    region[rng.choice(n, 20, replace=False)] = None
    spend[rng.choice(n, 20, replace=False)] = np.nan
    return pd.DataFrame({"plan type": plan, "monthly spend ($)": spend, "region": region,
                         "tenure": rng.integers(1, 60, n), "churned": churned})


def listing(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@pytest.mark.slow
def test_a_dataframe_with_text_and_gaps_fit_predict_score_save_load_refit(tmp_path, monkeypatch):
    cwd = tmp_path / "notebook"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    frame = customers()
    train, test = frame.iloc[:300], frame.iloc[300:]
    automl = AutoML(budget=BUDGET, directory=tmp_path / "automl")
    automl.fit(train, target="churned")

    # Nothing in the caller's directory (no ./conf, no ./outputs); the process's cwd unchanged.
    assert Path.cwd() == cwd and listing(cwd) == set()
    assert (tmp_path / "automl" / "fit_1" / "experiment" / "model" / "metadata.json").is_file()

    labels = automl.predict(test)
    assert labels.shape == (100,) and set(labels) <= {"no", "yes"}
    proba = automl.predict_proba(test)
    assert list(automl.classes_) == ["no", "yes"]
    assert proba.shape == (100, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert (automl.classes_[proba.argmax(axis=1)] == labels).all()
    majority = test["churned"].value_counts(normalize=True).iloc[0]
    accuracy = automl.score(test.drop(columns="churned"), test["churned"])
    assert accuracy == pytest.approx((labels == test["churned"].to_numpy()).mean())
    assert accuracy > majority + 0.05, (accuracy, majority)
    assert automl.score(test) == accuracy  # the target column in X is the truth

    board = automl.leaderboard
    assert {"rank", "model", "accuracy", "cv_std", "seconds", "params"} <= set(board.columns)
    assert board["rank"].iloc[0] == 1 and board["accuracy"].iloc[0] == board["accuracy"].max()
    assert automl.experiment.task.task_type == "classification" and automl.best_model in set(board["model"]) | {
        "ensemble"}

    # Saved, then loaded in a fresh process: the same predictions, nothing unpickled.
    saved = automl.save(tmp_path / "churn model")
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in saved.rglob("*"))
    test.to_csv(tmp_path / "test.csv", index=False)
    script = ("import sys, json, pandas as pd; from launcher import AutoML; a = AutoML.load(sys.argv[1]); "
              "t = pd.read_csv(sys.argv[2]); print(json.dumps([a.predict(t).tolist(), a.score(t), "
              "list(a.leaderboard['model'])]))")
    out = subprocess.run([sys.executable, "-c", script, str(saved), str(tmp_path / "test.csv")], cwd=cwd,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    predicted, score, models = json.loads(out.stdout.strip().splitlines()[-1])
    assert predicted == labels.tolist() and score == pytest.approx(accuracy)
    assert pd.Series(models, dtype=object).fillna("").tolist() == board["model"].fillna("").tolist()
    assert listing(cwd) == set()

    # A saved AutoML holds the final model only: refit needs the search.
    with pytest.raises(ConfigError, match="refit needs the search"):
        AutoML.load(saved).refit(frame, target="churned")
    # refit: the final configuration fitted again on the rows given. Taught the opposite
    # labels, it predicts the opposite.
    flipped = frame.assign(churned=frame["churned"].map({"yes": "no", "no": "yes"}))
    automl.refit(flipped, target="churned")
    assert (automl.predict(test) != labels).mean() > 0.8
    assert Path.cwd() == cwd and listing(cwd) == set()


@pytest.mark.slow
def test_arrays_for_regression_with_configs_emitted_to_a_project(tmp_path, monkeypatch):
    from sklearn.datasets import make_regression
    from sklearn.metrics import r2_score

    monkeypatch.chdir(tmp_path)
    X, y = make_regression(300, 6, n_informative=4, noise=10.0, random_state=0)
    y = 500.0 + y  # in its own units, far from standardised
    X[::17, 2] = np.nan  # gaps in arrays too
    project = tmp_path / "project"
    automl = AutoML(budget=BUDGET, emit_configs_to=project).fit(X[:220], y[:220], task="regression", metric="r2")
    predictions = automl.predict(X[220:])
    assert predictions.dtype.kind == "f" and predictions.shape == (80,)
    assert automl.score(X[220:], y[220:]) == pytest.approx(r2_score(y[220:], predictions))
    assert r2_score(y[220:], predictions) > 0.5
    assert (project / "conf" / "experiment" / "robot" / "automl_fit.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # nothing else in the cwd
    with pytest.raises(ConfigError, match="predict_proba is for classification"):
        automl.predict_proba(X[220:])
    with pytest.raises(DataError, match="X has 5 columns; the model was fitted on 6"):
        automl.predict(X[220:, :5])
    # The temporary directory lives as long as the object.
    directory = automl.directory
    assert directory.is_dir()
    del automl
    gc.collect()
    assert not directory.exists()


@pytest.mark.parametrize("args, kwargs, message", [
    ((pd.DataFrame({"a": range(20)}),), {}, "fit needs a target"),
    ((pd.DataFrame({"a": range(20)}),), {"target": "b"}, "target column 'b' is not in X; expected one of: 'a'"),
    ((pd.DataFrame({"a": range(20), "y": range(20)}), np.arange(20)), {"target": "y"}, "not both"),
    ((np.zeros((20, 2)), np.arange(19)), {}, "X has 20 rows but y has 19"),
    ((np.zeros(20), np.arange(20)), {}, "X must be two-dimensional"),
    ((pd.DataFrame({"y": range(20)}),), {"target": "y"}, "no feature columns besides the target"),
    ((pd.DataFrame([[1, 2]] * 20, columns=["a", "a"]), np.arange(20)), {}, "several columns named"),
])
def test_bad_input_is_one_clear_error_before_anything_runs(tmp_path, args, kwargs, message):
    automl = AutoML(directory=tmp_path / "automl")
    with pytest.raises(DataError, match=message):
        automl.fit(*args, **kwargs)
    assert not (tmp_path / "automl" / "conf").exists()


def test_not_fitted_and_not_saved_are_said(tmp_path):
    with pytest.raises(ConfigError, match="not fitted yet"):
        AutoML(directory=tmp_path).predict(pd.DataFrame({"a": [1]}))
    with pytest.raises(ArtifactError, match="holds no saved AutoML"):
        AutoML.load(tmp_path / "nowhere")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "automl.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="is corrupted"):
        AutoML.load(tmp_path / "broken")


def test_a_table_keeps_its_column_types_on_the_way_to_the_robot(tmp_path):
    """Codes that look like numbers stay text and a column mixing numbers and words is text,
    as the CLI reads them from a file; the robot's loader sees what the caller had."""
    from launcher.automl import training_table, write_table
    from launcher.io import read_table

    frame = pd.DataFrame({"zip": ["01234", "98765", None] * 4, "mixed": [1, "two", 3.5] * 4,
                          "flag": [True, False, True] * 4, "y": [0.5, 1.5, 2.5] * 4})
    table, target, columns, array_input = training_table(frame, None, "y")
    assert (target, columns, array_input) == ("y", ["zip", "mixed", "flag"], False)
    back = read_table(write_table(table, tmp_path / "data"), "table", "data.path").frame
    assert back["zip"].tolist()[:2] == ["01234", "98765"] and back["zip"].isna().tolist()[:3] == [False, False, True]
    assert back["mixed"].tolist()[:3] == ["1", "two", "3.5"]
    assert back["y"].tolist() == frame["y"].tolist()


@pytest.mark.parametrize("kwargs, message", [
    ({"budget": -5}, "the budget must be a positive number of seconds"),
    ({"metric": "r2"}, "does not apply to classification"),
    ({"task": "regression"}, "non-numeric values"),
])
def test_settings_the_robot_refuses_leave_nothing_behind(tmp_path, kwargs, message):
    frame = customers(60)
    with pytest.raises(ConfigError if "task" not in kwargs else DataError, match=message):
        AutoML(directory=tmp_path / "automl").fit(frame, target="churned", **kwargs)
    assert not list((tmp_path / "automl").glob("fit_*")) and not (tmp_path / "automl" / "conf").exists()
