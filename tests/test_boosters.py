"""LightGBM, XGBoost and CatBoost as model options: through the command line, with native
categories, early stopping that never sees the scored rows, saved in their own formats and
predicting the same after a load in a fresh process, in Optuna searches and in the robot's plans.

A learner whose library is not installed is skipped, saying so (CI installs the extra)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import messy_frame, run_cli

LEARNERS = ("lightgbm", "xgboost", "catboost")
CLASSES = {"lightgbm": ("lightgbm.LGBMClassifier", "lightgbm.LGBMRegressor"),
           "xgboost": ("xgboost.XGBClassifier", "xgboost.XGBRegressor"),
           "catboost": ("catboost.CatBoostClassifier", "catboost.CatBoostRegressor")}
MODEL_FILE = {"lightgbm": "model.lightgbm.txt", "xgboost": "model.xgboost.json", "catboost": "model.catboost.cbm"}
# Fewer CatBoost iterations than its default 1,000, so that a test stays a few seconds.
QUICK = {"lightgbm": [], "xgboost": [], "catboost": ["model.estimator.iterations=200"]}


def needs(library: str):
    return pytest.mark.skipif(importlib.util.find_spec(library) is None,
                              reason=f"{library} is not installed (pip install 'launcher[boost]')")


def each_learner():
    return [pytest.param(lib, marks=needs(lib)) for lib in LEARNERS]


def spec(library: str, task: str = "classification", early_stopping="auto", **estimator) -> dict:
    classifier, regressor = CLASSES[library]
    return {"name": library, "type": "estimator", "categorical": "native", "early_stopping": early_stopping,
            "targets": {"classification": classifier, "regression": regressor},
            "estimator": {"_target_": None, **estimator}}


def fitted(library: str, X, y, schema, val=None, **spec_keys):
    from launcher.core.trainer import TrainerSettings
    from launcher.core.types import Splits
    from launcher.frameworks.sklearn import SklearnAdapter

    adapter = SklearnAdapter(n_jobs=1)
    model = adapter.build(spec(library, schema.task, **spec_keys), schema)
    X_val, y_val = val if val is not None else (X[:10], y[:10])
    history = adapter.fit(model, Splits(X, y, X_val, y_val, X_val, y_val, schema), TrainerSettings.from_config({}))
    return adapter, model, history


def categories_only(n: int = 3000, seed: int = 0):
    """A target that one split on a text column's categories decides ({1, 4, 7, 10} of 12) and
    one split on its codes as numbers cannot; 5% missing."""
    from launcher.core.types import DataSchema

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 12, n).astype(np.float32)
    X = np.column_stack([rng.normal(size=n).astype(np.float32), codes])
    X[rng.random(n) < 0.05, 1] = np.nan
    y = (np.isin(codes, [1, 4, 7, 10]) & ~np.isnan(X[:, 1])).astype(np.int64)
    return X, y, lambda categorical: DataSchema("classification", 2, ["x", "plan"], classes=["no", "yes"],
                                                 categorical_features=categorical)


ONE_SPLIT = {"lightgbm": {"n_estimators": 1, "num_leaves": 2, "learning_rate": 1.0},
             "xgboost": {"n_estimators": 1, "max_depth": 1, "learning_rate": 1.0},
             "catboost": {"iterations": 1, "depth": 1, "learning_rate": 1.0}}


# -- in the adapter ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("library", each_learner())
def test_text_columns_reach_each_library_as_categories(library):
    X, y, schema = categories_only()
    _, native, _ = fitted(library, X, y, schema([1]), **ONE_SPLIT[library])
    adapter, codes, _ = fitted(library, X, y, schema(None), **ONE_SPLIT[library])
    assert (adapter.predict(native, X).argmax(1) == y).mean() == 1.0
    assert (adapter.predict(codes, X).argmax(1) == y).mean() < 0.8


@pytest.mark.parametrize("library", each_learner())
def test_early_stopping_holds_out_training_rows_never_the_scored_ones(library):
    """Two runs that differ only in their validation rows (one set with shuffled labels) fit the
    same model: the rows it stops on come from the training rows."""
    from launcher.core.types import DataSchema

    rng = np.random.default_rng(1)
    X = rng.normal(size=(1500, 5)).astype(np.float32)
    y = (X[:, 0] + 0.8 * rng.normal(size=1500) > 0).astype(np.int64)
    schema = DataSchema("classification", 5, classes=[0, 1])
    many = {"n_estimators": 2000} if library != "catboost" else {"iterations": 2000}
    adapter, a, history = fitted(library, X, y, schema, (X[:300], y[:300]), early_stopping=True, **many)
    _, b, _ = fitted(library, X, y, schema, (X[:300], rng.permutation(y[:300])), early_stopping=True, **many)
    facts = history.extra["booster"]
    assert facts["early_stopping"] and facts["stopping_rows"] == 150 and facts["trees"] < 2000
    assert np.array_equal(adapter.predict(a, X), adapter.predict(b, X))
    _, full, history = fitted(library, X, y, schema, early_stopping=False, **many)
    assert history.extra["booster"]["trees"] == 2000 and not history.extra["booster"]["early_stopping"]


def test_the_stopping_rows_are_a_stratified_seeded_share_and_a_single_row_class_stays_in_the_fit():
    from launcher.frameworks.boosters import holdout

    y = np.array([0] * 900 + [1] * 99 + [2])
    fit_rows, stop_rows = holdout(y, "classification", 0.1, seed=3)
    assert len(np.intersect1d(fit_rows, stop_rows)) == 0 and len(fit_rows) + len(stop_rows) == len(y)
    assert np.bincount(y[stop_rows], minlength=3).tolist() == [90, 10, 0]
    assert np.array_equal(holdout(y, "classification", 0.1, seed=3)[1], stop_rows)
    assert not np.array_equal(holdout(y, "classification", 0.1, seed=4)[1], stop_rows)


@pytest.mark.parametrize("library", each_learner())
def test_a_class_missing_from_the_training_rows_gets_probability_zero(library):
    """Class indices 0 and 2 of three (a rare class absent from a fold): XGBoost needs them
    renumbered; the probabilities come back in the data's class columns."""
    from launcher.core.types import DataSchema

    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = np.where(X[:, 0] > 0, 2, 0).astype(np.int64)
    adapter, model, _ = fitted(library, X, y, DataSchema("classification", 3, classes=["a", "b", "c"]),
                               **({"iterations": 50} if library == "catboost" else {}))
    proba = adapter.predict(model, X)
    assert proba.shape == (400, 3) and np.all(proba[:, 1] == 0) and (proba.argmax(1) == y).mean() > 0.95


LOAD_AND_PREDICT = """
import sys, numpy as np
from launcher.artifacts import load_model
from launcher.frameworks.sklearn import SklearnAdapter
model, _ = load_model(sys.argv[1], SklearnAdapter())
np.save(sys.argv[3], SklearnAdapter().predict(model, np.load(sys.argv[2])))
print("pickle" in sys.modules and "skops.io" in sys.modules)
"""


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("library", each_learner())
def test_saved_in_its_own_format_and_loaded_in_a_fresh_process_it_predicts_the_same(library, task, tmp_path):
    from launcher.artifacts import save_model

    X, y, schema = categories_only(800, seed=4)
    s = schema([1])
    if task == "regression":
        s.task, s.classes = "regression", None
        y = (X[:, 0] + np.nan_to_num(X[:, 1]) / 4).astype(np.float32)
    adapter, model, _ = fitted(library, X, y, s, **({"iterations": 100} if library == "catboost" else {}))
    save_model(adapter, model, tmp_path / "model")
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == sorted(["booster.json", MODEL_FILE[library], "metadata.json", "schema.json"])
    np.save(tmp_path / "X.npy", X)
    res = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(tmp_path / "model"), str(tmp_path / "X.npy"),
                          str(tmp_path / "out.npy")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"  # skops is not how it was read
    assert np.array_equal(np.load(tmp_path / "out.npy"), adapter.predict(model, X))


def test_a_booster_file_naming_another_library_is_refused(tmp_path):
    from launcher.core.errors import ArtifactError
    from launcher.core.types import DataSchema
    from launcher.frameworks.boosters import load

    (tmp_path / "booster.json").write_text(json.dumps({"library": "os", "classes": [0, 1]}))
    with pytest.raises(ArtifactError, match="names library 'os'; expected one of: lightgbm, xgboost, catboost"):
        load(tmp_path, DataSchema("classification", 2, classes=[0, 1]))


# -- through the command line -------------------------------------------------------------------------------
def labelled(n: int, seed: int) -> pd.DataFrame:
    frame = messy_frame(n, seed)
    return frame[frame["churned"] != "unsure"]


@pytest.mark.slow
@pytest.mark.parametrize("library", each_learner())
def test_each_learner_through_the_cli_on_text_and_gaps_then_predict(library, tmp_path):
    labelled(400, 0).to_csv(tmp_path / "churn.csv", index=False)
    new = labelled(150, 1)
    new.drop(columns=["churned"]).to_csv(tmp_path / "new.csv", index=False)
    res = run_cli(f"model={library}", "data=csv", "data.path=churn.csv", "data.target=churned", *QUICK[library],
                  "hydra.run.dir=run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    meta = json.loads((tmp_path / "run" / "model" / "metadata.json").read_text())
    assert meta["training"]["booster"]["library"] == library
    assert meta["features"]["kinds"]["categorical"] == ["plan type"]
    assert meta["metrics"]["test"]["accuracy"] > 0.85
    res = run_cli("run=run", "input=new.csv", "output=pred.csv", cwd=tmp_path, module="launcher.predict")
    assert res.returncode == 0, res.stderr
    predicted = pd.read_csv(tmp_path / "pred.csv")["churned"]
    assert (predicted.to_numpy() == new["churned"].to_numpy()).mean() > 0.85


@pytest.mark.slow
@pytest.mark.parametrize("library", each_learner())
def test_each_learner_on_builtin_data_classification_and_regression(library, tmp_path):
    for data, metric, bar in (("breast_cancer", "accuracy", 0.9), ("diabetes", "r2", 0.2)):
        res = run_cli(f"model={library}", f"data={data}", *QUICK[library], f"hydra.run.dir={data}", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert json.loads((tmp_path / data / "metrics.json").read_text())["test"][metric] > bar


@pytest.mark.slow
@pytest.mark.parametrize("override,message", [
    ("model.early_stopping=maybe", "error: model.early_stopping='maybe' is invalid for model=lightgbm; expected auto"),
    ("model.estimator.num_leaves=-4", "error: lightgbm refused to fit ("),
])
@needs("lightgbm")
def test_bad_settings_fail_in_one_line(override, message, tmp_path):
    res = run_cli("model=lightgbm", "data=iris", override, "hydra.run.dir=run", cwd=tmp_path)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "run" / "model").exists()


@pytest.mark.slow
def test_a_learner_whose_library_is_missing_says_how_to_install_it(tmp_path):
    """As on a machine without the extra: the library's import fails (None in sys.modules)."""
    code = ("import sys, runpy\n"
            "sys.modules['catboost'] = None\n"
            "sys.argv = ['launcher', 'model=catboost', 'data=iris', 'hydra.run.dir=run']\n"
            "runpy.run_module('launcher', run_name='__main__')\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert 'error: catboost.CatBoostClassifier needs catboost, which is not installed here' in res.stderr
    assert 'pip install "launcher[boost]"' in res.stderr


# -- searches and the robot -----------------------------------------------------------------------------------
@pytest.mark.parametrize("library", each_learner())
def test_each_search_config_tunes_keys_its_model_has(library):
    """Every key the shipped search varies is one the model config lists (an override of a key
    it does not have would fail every trial), and one the robot's registry bounds."""
    from launcher.robot.space import tunable

    root = Path(__file__).resolve().parents[1] / "conf"
    search = yaml.safe_load((root / "hparams_search" / f"{library}_optuna.yaml").read_text())
    model = yaml.safe_load((root / "model" / f"{library}.yaml").read_text())
    params = search["hydra"]["sweeper"]["params"]
    assert {"override /model": library} in search["defaults"] and len(params) >= 4
    for key in params:
        assert key.removeprefix("model.estimator.") in model["estimator"] and key in tunable("sklearn", library)


@pytest.mark.slow
@needs("lightgbm")
def test_a_lightgbm_search_trains_each_trial_with_what_it_drew(tmp_path):
    res = run_cli("-m", "hparams_search=lightgbm_optuna", "data=breast_cancer", "hydra.sweeper.n_trials=3",
                  "hydra.sweeper.n_jobs=1", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    leaves = set()
    for trial in range(3):
        drawn = yaml.safe_load((tmp_path / "sweep" / str(trial) / ".hydra" / "config.yaml").read_text())
        num_leaves = drawn["model"]["estimator"]["num_leaves"]
        text = (tmp_path / "sweep" / str(trial) / "model" / "model.lightgbm.txt").read_text()
        assert f"[num_leaves: {num_leaves}]" in text and 4 <= num_leaves <= 256
        leaves.add(num_leaves)
    assert len(leaves) == 3


def test_the_planner_uses_the_installed_boosters_on_a_large_table(monkeypatch):
    """LightGBM and XGBoost when installed, scikit-learn's histogram boosting when not; the
    library is looked up, never imported, at planning."""
    from launcher.robot.planners.heuristic import HeuristicPlanner
    from launcher.robot.profile import DatasetProfile
    from launcher.robot.task import DatasetInfo, MLTask, Requirements

    task = MLTask("t", DatasetInfo("shape", size=1, features=1), Requirements("r2"), "regression", "given", 120)
    profile = DatasetProfile(rows=250_000, columns=12, numeric=8, categorical=4)
    present = {lib for lib in ("lightgbm", "xgboost") if importlib.util.find_spec(lib) is not None}
    blueprint, _ = HeuristicPlanner().propose(task, profile)
    expected = (["lightgbm"] if "lightgbm" in present else ["hist_gradient_boosting"]) \
        + (["xgboost"] if "xgboost" in present else []) + ["ridge"]
    assert blueprint.models() == expected
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("lightgbm", "xgboost") else real(name, *a))
    assert HeuristicPlanner().propose(task, profile)[0].models() == ["hist_gradient_boosting", "ridge"]


def test_planning_imports_no_booster_library():
    code = ("import sys\n"
            "from launcher.robot.planners.heuristic import HeuristicPlanner\n"
            "from launcher.robot.profile import DatasetProfile\n"
            "from launcher.robot.task import DatasetInfo, MLTask, Requirements\n"
            "task = MLTask('t', DatasetInfo('shape', size=1, features=1), Requirements('accuracy'), "
            "'classification', 'given', 600)\n"
            "for rows in (800, 250_000):\n"
            "    HeuristicPlanner().propose(task, DatasetProfile(rows=rows, columns=6, numeric=4, categorical=2, "
            "classes=2))\n"
            "print(sorted(m for m in ('lightgbm', 'xgboost', 'catboost') if m in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@needs("catboost")
def test_catboost_joins_a_plan_for_text_columns_when_the_budget_affords_its_trials():
    from launcher.robot.planners.heuristic import HeuristicPlanner
    from launcher.robot.profile import DatasetProfile
    from launcher.robot.task import DatasetInfo, MLTask, Requirements

    profile = DatasetProfile(rows=800, columns=6, numeric=4, categorical=2, classes=2)
    numeric = DatasetProfile(rows=800, columns=6, numeric=6, classes=2)

    def models(budget, prof=profile):
        task = MLTask("t", DatasetInfo("shape", size=1, features=1), Requirements("accuracy"), "classification",
                      "given", budget)
        return HeuristicPlanner().propose(task, prof)[0].models()

    assert "catboost" in models(600) and "catboost" not in models(30) and "catboost" not in models(600, numeric)


@pytest.mark.slow
@needs("lightgbm")
@needs("xgboost")
def test_the_robot_plans_and_runs_lightgbm_and_xgboost_on_a_large_table(tmp_path):
    rng = np.random.default_rng(0)
    n = 20_500
    df = pd.DataFrame({"x": rng.normal(size=n), "plan": rng.choice(["a", "b", "c", None], n), "z": rng.normal(size=n)})
    df["y"] = np.where(df["x"] + (df["plan"] == "b") > 0.5, "yes", "no")
    df.to_csv(tmp_path / "big.csv", index=False)
    res = run_cli("task=Predict y", "data=csv", "data.path=big.csv", "data.target=y", "budget=60", "plan_only=true",
                  "hydra.run.dir=exp", cwd=tmp_path, module="launcher.robot")
    assert res.returncode == 0, res.stderr
    search = yaml.safe_load((tmp_path / "conf" / "hparams_search" / "robot" / "predict_y.yaml").read_text())
    assert set(search["robot_search"]) == {"lightgbm", "xgboost", "logistic_regression"}
    # LightGBM's default is the robot's baseline on a large table (the cheapest boosted trees),
    # printed as its own command; the search's first trials are the other queued starting points.
    assert "run it: OMP_NUM_THREADS=1 python -m launcher experiment=robot/predict_y model=lightgbm" in res.stdout + res.stderr
    run = run_cli("-m", "experiment=robot/predict_y", "hparams_search=robot/predict_y", "hydra.sweeper.n_trials=2",
                  "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for trial, model in ((0, "xgboost"), (1, "logistic_regression")):
        drawn = yaml.safe_load((tmp_path / "sweep" / str(trial) / ".hydra" / "config.yaml").read_text())
        record = json.loads((tmp_path / "sweep" / str(trial) / "metrics.json").read_text())
        assert drawn["model"]["name"] == model and record["model"] == model
        assert record["objective"]["value"] > 0.75
