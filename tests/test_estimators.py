"""launcher.estimators: scikit-learn estimators over the framework adapters (skorch / scikeras
manner): scikit-learn's own estimator checks, Pipeline, cross_val_score, clone, get/set_params,
and the launcher's preprocessing of tables with text and gaps."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from launcher.core.errors import ConfigError
from launcher.estimators import NeuralClassifier, NeuralRegressor, TabularClassifier, TabularRegressor

# Small and quick; the checks' own data is a few dozen rows. Every check of scikit-learn's
# estimator_checks that applies runs; none is expected to fail. check_array_api_input skips
# itself (SCIPY_ARRAY_API unset): the adapters take NumPy arrays, not array-API namespaces.
TABULAR = [TabularClassifier(params={"n_estimators": 10}), TabularRegressor(params={"n_estimators": 10})]
NEURAL = [NeuralClassifier(max_epochs=5, lr=0.01, hidden_sizes=[16]),
          NeuralRegressor(max_epochs=5, lr=0.01, hidden_sizes=[16])]


@parametrize_with_checks(TABULAR)
def test_tabular_estimators_pass_scikit_learns_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(NEURAL)
def test_pytorch_network_estimators_pass_scikit_learns_checks(estimator, check):
    check(estimator)


def table(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A table as users have it: a text column that decides part of the class, numbers with
    gaps, a column name with spaces; the class is learnable only from both kinds."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    size = rng.normal(size=n)
    label = np.where((colour == "red") | (size > 0.8), "yes", "no")
    colour[rng.choice(n, 15, replace=False)] = None
    size[rng.choice(n, 15, replace=False)] = np.nan
    frame = pd.DataFrame({"favourite colour": colour, "size (cm)": size, "noise": rng.normal(size=n)})
    return frame, label


def majority_share(y) -> float:
    return pd.Series(y).value_counts(normalize=True).iloc[0]


@pytest.mark.parametrize("estimator", [
    TabularClassifier(params={"n_estimators": 50}),
    NeuralClassifier(max_epochs=15, lr=0.02, hidden_sizes=[32], num_threads=1),
], ids=["random_forest", "pytorch_mlp"])
def test_a_table_with_text_and_gaps_in_a_pipeline_and_cross_validation(estimator):
    X, y = table()
    scores = cross_val_score(Pipeline([("model", estimator)]), X, y, cv=3)
    # Above what guessing the majority gets, on rows each fold never saw: the text column is used.
    assert scores.mean() > majority_share(y) + 0.1, scores
    fitted = clone(estimator).fit(X, y)
    assert list(fitted.classes_) == ["no", "yes"]
    assert list(fitted.feature_names_in_) == ["favourite colour", "size (cm)", "noise"]
    unseen = pd.DataFrame({"favourite colour": ["purple", None], "size (cm)": [np.nan, 3.0], "noise": [0.0, 0.0]})
    proba = fitted.predict_proba(unseen)
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(fitted.predict(unseen)) <= {"no", "yes"}


def test_regression_predicts_in_the_targets_units():
    from sklearn.datasets import make_regression
    from sklearn.metrics import r2_score

    X, y = make_regression(400, 5, noise=5.0, random_state=0)
    y = 1000.0 + 50.0 * y  # far from standardised: the scaling must be undone
    model = NeuralRegressor(max_epochs=40, lr=0.01, hidden_sizes=[32]).fit(X[:300], y[:300])
    predictions = model.predict(X[300:])
    assert r2_score(y[300:], predictions) > 0.8
    assert model.score(X[300:], y[300:]) == pytest.approx(r2_score(y[300:], predictions))


def test_clone_get_and_set_params_and_a_grid_search():
    estimator = NeuralClassifier(hidden_sizes=[8], max_epochs=3)
    params = estimator.get_params()
    assert params["hidden_sizes"] == [8] and params["framework"] == "pytorch" and params["max_epochs"] == 3
    estimator.set_params(lr=0.05, model_params={"norm": "batch"})
    copy = clone(estimator)
    assert copy is not estimator and copy.get_params() == estimator.get_params()
    assert not hasattr(copy, "model_")
    X, y = table(120)
    search = GridSearchCV(TabularClassifier(), {"params": [{"n_estimators": 5}, {"n_estimators": 20}]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["params"]["n_estimators"] in (5, 20)
    assert search.predict(X).shape == (120,)


def test_settings_reach_the_model_the_launcher_builds():
    X, y = table(120)
    forest = TabularClassifier(params={"n_estimators": 7, "max_depth": 3}).fit(X, y)
    assert forest.model_.estimator.n_estimators == 7 and forest.model_.estimator.max_depth == 3
    boosting = TabularRegressor(model="hist_gradient_boosting").fit(X, np.arange(120.0))
    # The model config's own choice: text columns reach it as category codes it splits on.
    assert boosting.model_.schema.categorical_features == [0]
    net = NeuralClassifier(hidden_sizes=[5], max_epochs=2).fit(X, y)
    assert len(net.history_.epochs) == 2
    assert [m.out_features for m in net.model_.net.modules() if hasattr(m, "out_features")][0] == 5


@pytest.mark.parametrize("estimator, message", [
    (NeuralClassifier(model="random_forest"), "is not a network"),
    (TabularClassifier(model="mlp"), "is a network"),
    (TabularClassifier(model="gradient_magic"), "model='gradient_magic' is unknown"),
    (NeuralClassifier(framework="caffe"), "unknown framework 'caffe'"),
    (NeuralClassifier(lr=-1.0), "trainer.lr=-1.0 is invalid"),
])
def test_bad_settings_are_one_clear_error_at_fit(estimator, message):
    X, y = table(60)
    with pytest.raises(ConfigError, match=message):
        estimator.fit(X, y)
