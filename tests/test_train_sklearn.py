"""train() end to end with scikit-learn, composed with Hydra's compose API (in process)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from launcher import artifacts
from launcher.core.errors import ArtifactError, ConfigError, DataError
from launcher.pipeline.train import train

FAST = {"random_forest": ["model.estimator.n_estimators=15"], "extra_trees": ["model.estimator.n_estimators=15"],
        "hist_gradient_boosting": ["model.estimator.max_iter=20"]}


@pytest.mark.parametrize("model,data,metric", [
    ("random_forest", "iris", "accuracy"),
    ("extra_trees", "wine", "accuracy"),
    ("hist_gradient_boosting", "breast_cancer", "accuracy"),
    ("logistic_regression", "digits", "accuracy"),
    ("svm", "iris", "accuracy"),
    ("knn", "wine", "accuracy"),
    ("mlp", "iris", "accuracy"),
    ("random_forest", "diabetes", "r2"),
    ("logistic_regression", "diabetes", "r2"),
    ("svm", "diabetes", "r2"),
    ("kmeans", "iris", "silhouette"),
])
def test_models_train_and_return_their_objective(make_cfg, model, data, metric):
    cfg = make_cfg(f"model={model}", f"data={data}", "trainer.max_epochs=300", *FAST.get(model, []))
    objective = train(cfg)
    record = json.loads((cfg_dir(make_cfg) / "metrics.json").read_text())
    assert record["objective"]["name"] == f"val/{metric}"
    assert objective == pytest.approx(record["objective"]["value"]) and math.isfinite(objective)
    assert metric in record["test"]
    if metric == "accuracy":
        assert record["test"]["accuracy"] > 0.8
        assert {"balanced_accuracy", "f1_macro", "log_loss"} <= set(record["test"])
    if metric == "r2":
        assert {"rmse", "mae"} <= set(record["test"]) and record["test"]["r2"] > 0.2
    if model == "kmeans":
        assert record["task"] == "clustering" and "adjusted_rand" in record["test"]


def cfg_dir(make_cfg):
    from launcher.core.paths import run_dir

    return run_dir()


def test_binary_classification_reports_roc_auc(make_cfg):
    cfg = make_cfg("model=logistic_regression", "data=breast_cancer")
    train(cfg)
    record = json.loads((cfg_dir(make_cfg) / "metrics.json").read_text())
    assert record["test"]["roc_auc"] > 0.9


def test_synthetic_data_as_the_api_describes_it(make_cfg):
    cfg = make_cfg("model=logistic_regression", "data=synthetic", "data.size=5000", "data.features=25",
                   "data.classes=4")
    assert train(cfg) > 0.5
    record = json.loads((cfg_dir(make_cfg) / "metrics.json").read_text())
    assert sum(record["rows"].values()) == 5000


def test_raw_csv_with_text_gaps_dates_and_rare_class(make_cfg, churn_csv):
    cfg = make_cfg("data=csv", f"data.path={churn_csv}", "data.target=churned", "model=random_forest",
                   "model.estimator.n_estimators=20")
    train(cfg)
    run = cfg_dir(make_cfg)
    meta = artifacts.read_metadata(run / "model")
    assert meta["target"]["classes"] == ["no", "unsure", "yes"]
    assert meta["features"]["kinds"]["datetime"] == ["signup date"]
    assert meta["framework"] == "sklearn" and meta["versions"]["scikit-learn"]
    assert meta["config"]["data"]["target"] == "churned"


def test_cross_validation_reports_mean_and_spread(make_cfg):
    cfg = make_cfg("model=logistic_regression", "data=iris", "trainer.cv_folds=4")
    objective = train(cfg)
    record = json.loads((cfg_dir(make_cfg) / "metrics.json").read_text())
    assert record["cv"]["folds"] == 4
    assert record["objective"]["name"] == "cv/accuracy_mean"
    assert objective == pytest.approx(record["cv"]["accuracy_mean"])
    assert record["cv"]["accuracy_std"] >= 0


def test_same_seed_same_result_other_seed_other_split(make_cfg):
    def run(seed, name):
        train(make_cfg("model=random_forest", "model.estimator.n_estimators=10", "data=wine", f"seed={seed}", run=name))
        from launcher.core.paths import run_dir

        return json.loads((run_dir() / "metrics.json").read_text())

    a, b, c = run(1, "a"), run(1, "b"), run(2, "c")
    assert a["val"] == b["val"] and a["test"] == b["test"]
    assert (a["val"], a["test"]) != (c["val"], c["test"])  # another seed: another split and forest


def test_saved_model_reloads_and_predicts_the_same(make_cfg):
    from sklearn.datasets import load_iris

    from launcher.pipeline.predict import SavedRun

    train(make_cfg("model=svm", "data=iris", "seed=3"))
    saved = SavedRun.load(cfg_dir(make_cfg))
    assert saved.meta["metrics"]["test"]["accuracy"] > 0.8
    iris = load_iris(as_frame=True)
    result = saved.predict(iris.data)
    # the reloaded model scores on all rows what a fitted SVM scores: it is the trained model
    accuracy = (result.values == np.asarray(iris.target_names)[iris.target]).mean()
    assert accuracy > 0.9 and result.proba.shape == (150, 3)
    np.testing.assert_allclose(result.proba.sum(axis=1), 1.0, rtol=1e-6)


def test_tampered_artifact_is_refused(make_cfg):
    train(make_cfg("model=logistic_regression"))
    model_dir = cfg_dir(make_cfg) / "model"
    with open(model_dir / "model.skops", "ab") as f:
        f.write(b"tampered")
    from launcher.frameworks.sklearn import SklearnAdapter

    with pytest.raises(ArtifactError, match="checksum"):
        artifacts.load_model(model_dir, SklearnAdapter())


def test_interrupted_save_leaves_no_model(make_cfg, tmp_path):
    from launcher.frameworks.sklearn import SklearnAdapter

    class Exploding(SklearnAdapter):
        def save(self, model, directory):
            (directory / "model.skops").write_bytes(b"half")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        artifacts.save_model(Exploding(), object(), tmp_path / "out" / "model")
    assert list((tmp_path / "out").iterdir()) == []  # no partial dir left behind


@pytest.mark.parametrize("overrides,error,message", [
    (["framework=sklearn", "model=cnn"], ConfigError, "frameworks that support it"),
    (["model=kmeans", "data=diabetes", "task=regression"], ConfigError, "cannot do regression"),
    (["model=random_forest", "data=iris", "task=regression"], DataError, "non-numeric"),
    (["framework.enabled=false"], ConfigError, "disabled"),
    (["task=classification", "task.metric=r2"], ConfigError, "does not apply"),
])
def test_bad_combinations_fail_before_training(make_cfg, overrides, error, message):
    with pytest.raises(error, match=message):
        train(make_cfg(*overrides))
    assert not (cfg_dir(make_cfg) / "model").exists()


def test_model_file_with_a_foreign_callable_is_refused(tmp_path):
    import os

    from sklearn.preprocessing import FunctionTransformer

    from launcher.core.types import DataSchema
    from launcher.frameworks.sklearn import SklearnAdapter, SklearnModel

    adapter = SklearnAdapter()
    evil = SklearnModel(FunctionTransformer(func=os.system), DataSchema("regression", 1))
    artifacts.save_model(adapter, evil, tmp_path / "model")
    with pytest.raises(ArtifactError, match="not scikit-learn's own"):
        artifacts.load_model(tmp_path / "model", adapter)


def test_every_row_for_selection_and_the_final_model(make_cfg, churn_csv):
    """data.test_size=0 and data.val_size=0 with cross-validation and refit: the objective is the
    CV mean, the saved model is fitted once on every row, the out-of-fold predictions are kept."""
    cfg = make_cfg("data=csv", f"data.path={churn_csv}", "data.target=churned", "data.test_size=0",
                   "data.val_size=0", "trainer.cv_folds=4", "trainer.refit=true", "model=logistic_regression")
    objective = train(cfg)
    run = cfg_dir(make_cfg)
    record = json.loads((run / "metrics.json").read_text())
    assert record["rows"] == {"train": 120, "val": 0, "test": 0} and record["refit"]["rows"] == 120
    assert objective == pytest.approx(record["cv"]["accuracy_mean"]) and record["val"] == record["test"] == {}
    meta = artifacts.read_metadata(run / "model")
    assert meta["refit"] == {"rows": 120}
    oof = np.load(run / "cv_predictions.npz", allow_pickle=False)
    assert sorted(oof["index"].tolist()) == list(range(120)) and oof["output"].shape == (120, 3)
    assert ((oof["output"].argmax(1) == oof["y"]).mean()) == pytest.approx(record["cv"]["accuracy_mean"], abs=0.05)


def test_refit_after_a_validation_split_scores_the_refit_model_on_test(make_cfg):
    cfg = make_cfg("model=logistic_regression", "data=breast_cancer", "trainer.refit=true")
    train(cfg)
    record = json.loads((cfg_dir(make_cfg) / "metrics.json").read_text())
    assert record["refit"]["rows"] == record["rows"]["train"] + record["rows"]["val"]
    assert record["val"]["accuracy"] > 0.9 and record["test"]["accuracy"] > 0.9


def test_no_validation_rows_needs_cross_validation(make_cfg):
    with pytest.raises(ConfigError, match="data.val_size=0 leaves nothing to score"):
        train(make_cfg("data.val_size=0"))
    with pytest.raises(DataError, match=r"expected a fraction in \[0, 0.5\)"):
        train(make_cfg("data.test_size=0.7"))


def test_boosting_gets_text_columns_as_native_categories(make_cfg, churn_csv):
    from launcher.pipeline.predict import SavedRun

    cfg = make_cfg("data=csv", f"data.path={churn_csv}", "data.target=churned", "model=hist_gradient_boosting",
                   "model.estimator.max_iter=20")
    train(cfg)
    run = SavedRun.load(cfg_dir(make_cfg))
    names = run.preprocessor.feature_names
    assert "plan type" in names and not any(n.startswith("plan type=") for n in names)  # one code column
    estimator = run.model.estimator
    assert list(estimator.categorical_features) == [names.index("plan type")]
    from helpers import messy_frame

    new = messy_frame(n=12, seed=5).drop(columns=["churned"])
    new.loc[0, "plan type"] = "a plan never seen"  # unseen: treated as missing, no error
    assert len(run.predict(new).values) == 12
    onehot = make_cfg("data=csv", f"data.path={churn_csv}", "data.target=churned", "model=hist_gradient_boosting",
                      "model.categorical=onehot", run="b")
    train(onehot)
    assert any(n.startswith("plan type=") for n in SavedRun.load(cfg_dir(make_cfg)).preprocessor.feature_names)


def test_a_partial_of_a_foreign_function_is_refused(tmp_path):
    import functools
    import os

    from sklearn.preprocessing import FunctionTransformer

    from launcher.core.types import DataSchema
    from launcher.frameworks.sklearn import SklearnAdapter, SklearnModel

    adapter = SklearnAdapter()
    evil = SklearnModel(FunctionTransformer(func=functools.partial(os.system, "true")), DataSchema("regression", 1))
    artifacts.save_model(adapter, evil, tmp_path / "model")
    with pytest.raises(ArtifactError, match=r"not scikit-learn's own \(\['posix.system'\]\)"):
        artifacts.load_model(tmp_path / "model", adapter)
