"""scikit-learn estimators over the launcher's framework adapters, in the manner of skorch and
scikeras: plain parameter holders whose fit() runs the code `python -m launcher` runs.

    from launcher.estimators import NeuralClassifier, TabularRegressor
    clf = NeuralClassifier(framework="pytorch", model="mlp", hidden_sizes=[64, 32], max_epochs=20, lr=1e-3)
    cross_val_score(make_pipeline(clf), X, y, cv=5)       # Pipeline, GridSearchCV, clone: all work
    clf.fit(frame, y).predict_proba(frame)                 # DataFrames with text and gaps too

fit(X, y) fits the launcher's feature preprocessing (launcher.data.Preprocessor: imputation
with missing indicators, standardising, one-hot text columns, dates), then builds and trains the
model through the framework API (launcher.api: the adapter's check, build and fit, the trainer
settings validated as the CLI validates them, a regression target standardised and mapped back).
A network picks its best epoch on a tenth of the rows held out, as train_model does; a tabular
learner (random forest, histogram gradient boosting, ...) is fitted on every row.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from launcher.api import FRAMEWORK_CLASSES, Framework, Model, normalise_spec
from launcher.core.errors import ConfigError
from launcher.core.types import DataSchema
from launcher.data import Preprocessor


class LauncherEstimator(BaseEstimator):
    """What the estimators share: the table in, the launcher's preprocessing, the framework API.
    Subclasses say which model config they build (`_spec`) and how they train (`_trainer`)."""

    _task: str  # classification | regression
    _holds_out = True  # a network selects its best epoch on held-out rows; a tabular learner uses all

    # -- what subclasses give -------------------------------------------------------------------
    def _framework_name(self) -> str:
        raise NotImplementedError

    def _spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def _trainer(self) -> dict[str, Any]:
        return {}

    def _settings(self) -> dict[str, Any]:
        return {"device": "cpu"}

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, X, y):
        if y is None:  # scikit-learn's wording, which its checks (and users' code) look for
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        frame, y = self._validate(X, y, reset=True)
        framework: Framework = FRAMEWORK_CLASSES[_framework(self._framework_name())](self._settings())
        spec = self._spec()
        self.preprocessor_ = Preprocessor(categorical=str(spec.get("categorical") or "onehot")).fit(frame)
        features = self.preprocessor_.transform(frame)
        schema = DataSchema(self._task, features.shape[1], self.preprocessor_.feature_names,
                            list(range(len(self.classes_))) if self._task == "classification" else None,
                            categorical_features=self.preprocessor_.native_categorical or None)
        self.model_: Model = framework.create_model(spec, schema)
        held = {} if self._holds_out else {"X_val": features, "y_val": y}
        self.history_ = framework.train_model(self.model_, features, y, **held, **self._trainer(),
                                              seed=_seed(self.random_state))
        self.framework_ = framework
        return self

    def _validate(self, X, y, reset: bool) -> tuple[pd.DataFrame, Any]:
        """X as a DataFrame for the preprocessing (arrays get columns x0, x1, ...): numbers
        checked by scikit-learn's validation, a DataFrame's own columns kept as they are (text,
        dates, gaps)."""
        if isinstance(X, pd.DataFrame):
            if y is not None:
                y = _check_y(self, X, y)
            if reset:
                self.n_features_in_ = X.shape[1]
                self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input.")
            frame = X.rename(columns=str)
        else:
            if y is None:
                values = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan", dtype=np.float64)
            else:
                values, y = validate_data(self, X, y, reset=reset, ensure_all_finite="allow-nan", dtype=np.float64,
                                          **self._y_checks())
            names = list(getattr(self, "feature_names_in_", [])) or [f"x{i}" for i in range(values.shape[1])]
            frame = pd.DataFrame(values, columns=[str(n) for n in names])
        if y is not None:
            y = self._encode_target(y) if reset else y
        return frame, y

    def _y_checks(self) -> dict[str, Any]:
        return {"y_numeric": self._task == "regression"}

    def _encode_target(self, y) -> np.ndarray:
        return np.asarray(y, dtype=np.float64)

    # -- predict --------------------------------------------------------------------------------
    def _output(self, X) -> np.ndarray:
        """The framework's output for X: class probabilities, or values in y's units."""
        check_is_fitted(self, "model_")
        frame, _ = self._validate(X, None, reset=False)
        return self.framework_.predict(self.model_, self.preprocessor_.transform(frame))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # imputed with a missing indicator, as the launcher does
        return tags


def _check_y(estimator: LauncherEstimator, X: pd.DataFrame, y) -> np.ndarray:
    """y for a DataFrame X: one value per row, checked as scikit-learn checks it."""
    from sklearn.utils.validation import check_consistent_length, column_or_1d

    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    if estimator._task == "regression":
        y = np.asarray(y, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("Input y contains NaN or infinity.")
    return y


class _Classifier(ClassifierMixin):
    _task = "classification"

    def _y_checks(self) -> dict[str, Any]:
        return {}

    def _encode_target(self, y) -> np.ndarray:
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds one class ({self.classes_[0]!r}); a classifier needs at least two")
        return encoded

    def predict_proba(self, X) -> np.ndarray:
        """(rows, classes) probabilities, columns in the order of classes_."""
        return np.asarray(self._output(X), dtype=np.float64)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # first: it says "not fitted" before classes_ is looked up
        return self.classes_[proba.argmax(axis=1)]


class _Regressor(RegressorMixin):
    _task = "regression"

    def predict(self, X) -> np.ndarray:
        return np.asarray(self._output(X), dtype=np.float64).reshape(-1)


# -- networks --------------------------------------------------------------------------------------
class _Neural(LauncherEstimator):
    """A network of the launcher's model configs (mlp; cnn, rnn, transformer with their
    input_shape in model_params), in PyTorch, Keras, Flax, or scikit-learn's own MLP."""

    def __init__(self, framework: str = "pytorch", model: str = "mlp", hidden_sizes: list[int] | None = None,
                 activation: str | None = None, dropout: float | None = None,
                 model_params: Mapping[str, Any] | None = None, max_epochs: int = 20, batch_size: int = 64,
                 lr: float = 1e-3, optimizer: str = "adam", weight_decay: float = 0.0, scheduler: str = "none",
                 early_stopping: bool = False, patience: int = 5, device: str = "cpu",
                 num_threads: int | None = None, random_state: int | None = 0) -> None:
        self.framework, self.model, self.hidden_sizes = framework, model, hidden_sizes
        self.activation, self.dropout, self.model_params = activation, dropout, model_params
        self.max_epochs, self.batch_size, self.lr, self.optimizer = max_epochs, batch_size, lr, optimizer
        self.weight_decay, self.scheduler = weight_decay, scheduler
        self.early_stopping, self.patience = early_stopping, patience
        self.device, self.num_threads, self.random_state = device, num_threads, random_state

    def _framework_name(self) -> str:
        return self.framework

    def _settings(self) -> dict[str, Any]:
        return {"device": self.device}

    def _spec(self) -> dict[str, Any]:
        from launcher.core.specs import NETWORK_TYPES

        spec = _model_config(self.model)
        if spec.get("type") not in NETWORK_TYPES:
            raise ConfigError(f"model={self.model!r} is not a network; expected one of: {', '.join(NETWORK_TYPES)} "
                              "(TabularClassifier / TabularRegressor take the other models)")
        given = {"hidden_sizes": self.hidden_sizes, "activation": self.activation, "dropout": self.dropout}
        spec.update({k: (list(v) if k == "hidden_sizes" else v) for k, v in given.items() if v is not None})
        spec.update(dict(self.model_params or {}))
        return spec

    def _trainer(self) -> dict[str, Any]:
        return {"max_epochs": self.max_epochs, "batch_size": self.batch_size, "lr": self.lr,
                "optimizer": self.optimizer, "weight_decay": self.weight_decay, "scheduler": self.scheduler,
                "num_threads": self.num_threads,
                "early_stopping": {"enabled": bool(self.early_stopping), "patience": self.patience}}


class NeuralClassifier(_Classifier, _Neural):
    """A network classifier: predict, predict_proba, classes_, score (accuracy)."""


class NeuralRegressor(_Regressor, _Neural):
    """A network regressor: predict in y's units, score (R2)."""


# -- tabular learners -------------------------------------------------------------------------------
class _Tabular(LauncherEstimator):
    """A shipped scikit-learn model config (random_forest, hist_gradient_boosting, extra_trees,
    logistic_regression, ridge, svm, knn) with the launcher's preprocessing; `params` are the
    estimator's constructor arguments over the config's own."""

    _holds_out = False

    def __init__(self, model: str = "random_forest", params: Mapping[str, Any] | None = None, n_jobs: int = 1,
                 random_state: int | None = 0) -> None:
        self.model, self.params, self.n_jobs, self.random_state = model, params, n_jobs, random_state

    def _framework_name(self) -> str:
        return "sklearn"

    def _settings(self) -> dict[str, Any]:
        return {"device": "cpu", "n_jobs": self.n_jobs}

    def _spec(self) -> dict[str, Any]:
        from launcher.core.specs import NETWORK_TYPES

        spec = _model_config(self.model)
        if spec.get("type") in NETWORK_TYPES:
            raise ConfigError(f"model={self.model!r} is a network; NeuralClassifier / NeuralRegressor build it")
        # The model config with the estimator's arguments over its own (and its preprocessing
        # choice, e.g. categorical: native), as the API builds it.
        return normalise_spec({"type": self.model, "parameters": dict(self.params or {})})


class TabularClassifier(_Classifier, _Tabular):
    """A tabular classifier: predict, predict_proba, classes_, score (accuracy)."""


class TabularRegressor(_Regressor, _Tabular):
    """A tabular regressor: predict in y's units, score (R2)."""


def _model_config(name: str) -> dict[str, Any]:
    """A shipped (or the user's ./conf) model option as `model=<name>` composes it."""
    from omegaconf import OmegaConf

    from launcher.core.errors import one_of
    from launcher.core.paths import config_file, config_options

    if name not in config_options("model"):
        raise ConfigError(f"model={name!r} is unknown; expected one of: {one_of(config_options('model'))}")
    return OmegaConf.to_container(OmegaConf.load(config_file("model", name)))


def _framework(name: str) -> str:
    from launcher.frameworks import registry

    return registry.canonical(name)


def _seed(random_state: Any) -> int:
    """The trainer's seed from random_state (an int, None or a RandomState, as scikit-learn takes it)."""
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    return int(random_state)


__all__ = ["NeuralClassifier", "NeuralRegressor", "TabularClassifier", "TabularRegressor"]
