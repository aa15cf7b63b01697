"""The Python API: the names its first users know, as a facade over the same core.

    from launcher import MLFrameworkManager, PyTorchFramework
    pytorch = PyTorchFramework({"device": "auto", "num_threads": 4}); pytorch.initialize()
    model = pytorch.create_model({"type": "mlp", "parameters": {
        "layer_sizes": [784, 128, 64, 10], "activation": "relu", "dropout": 0.2}})
    pytorch.train_model(model, X, y, max_epochs=5)          # numpy arrays
    pytorch.evaluate_model(model, X_test, y_test)           # {"accuracy": ..., ...}
    pytorch.save_model(model, "my_model"); pytorch.load_model("my_model")
    MLFrameworkManager().get_framework_status()             # every framework's status

A framework object takes the framework config as a dict: the keys of conf/framework/<name>.yaml
(`pytorch: {enabled, device, num_threads, backend_mkl}`,
`tensorflow: {enabled, device, gpu_support, memory_limit_mb, num_threads}`, `sklearn` (alias
`scikit_learn`): `{enabled, n_jobs}`, `jax: {enabled, device, preallocate, compilation_cache}`);
an unknown key is a ConfigError. Everything else (validation, training, metrics, artifacts) is
the code `python -m launcher` runs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
from omegaconf import OmegaConf

from launcher import artifacts, metrics
from launcher.core.adapter import Adapter
from launcher.core.errors import ArtifactError, ConfigError, one_of
from launcher.core.paths import config_file, config_options
from launcher.core.specs import NETWORK_TYPES
from launcher.core.trainer import TrainerSettings
from launcher.core.types import DataSchema, FrameworkStatus, History, Splits
from launcher.data import TargetEncoder
from launcher.frameworks import registry

API_FILE = "api.json"
# What train_model uses when the caller says nothing else: the trainer group's defaults, but no
# early stopping (an array-level caller asks for a number of epochs and gets them).
API_TRAINER = {"max_epochs": 10, "early_stopping": {"enabled": False}}


@dataclass
class Model:
    """A model built through the API: the framework's own model, the schema, and (regression)
    the target scaling train_model learned. Attributes of the framework's model read through
    (`model.estimator`, `model.net`)."""

    inner: Any
    schema: DataSchema
    spec: dict[str, Any]
    target: TargetEncoder | None = None

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "schema", "spec", "target", "__setstate__"):
            raise AttributeError(name)
        return getattr(self.inner, name)


class Framework:
    """One framework: its settings, its adapter, and array-level training."""

    name: ClassVar[str]

    def __init__(self, config: Mapping[str, Any] | None = None, **settings: Any) -> None:
        self.config = registry.framework_config(self.name, settings={**dict(config or {}), **settings})
        self._adapter: Adapter | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.config.get("enabled", True))

    @property
    def adapter(self) -> Adapter:
        """The adapter; a disabled framework, or one without an adapter here, raises ConfigError."""
        if self._adapter is None:
            self._adapter = registry.instantiate(self.config)
        return self._adapter

    def initialize(self) -> FrameworkStatus:
        """Check the framework is usable here; returns its status (installed, version, devices)."""
        status = self.get_status()
        if status.installed and status.enabled:
            self.adapter  # settings are applied and checked now, not at the first fit
        return status

    def get_status(self, health_check: bool = False) -> FrameworkStatus:
        settings = {k: v for k, v in OmegaConf.to_container(self.config, resolve=True).items()
                    if k not in registry.NOT_SETTINGS and k != "device"}
        return registry.status(self.name, self.config.device, settings, health_check)

    # -- models -------------------------------------------------------------------------------
    def create_model(self, spec: Mapping[str, Any], schema: DataSchema | None = None) -> Model:
        """Build from a model config ({"type": "mlp", "hidden_sizes": [...]}, or a shipped model's
        name with estimator arguments) or the legacy {"type", "parameters"} form. With the legacy
        `layer_sizes: [inputs, hidden..., outputs]` the schema comes from the sizes (outputs > 1:
        that many classes; 1: regression)."""
        spec = normalise_spec(spec)
        schema = schema or legacy_schema(spec)
        self.adapter.check(spec, schema, TrainerSettings())
        return Model(self.adapter.build(spec, schema), schema, spec)

    def train_model(self, model: Model, X, y, X_val=None, y_val=None, **trainer: Any) -> History:
        """Fit on arrays. `trainer` takes the trainer group's keys (max_epochs, lr, ...) and seed;
        a tenth of the rows is held out for validation when no X_val is given."""
        seed = trainer.pop("seed", 0)
        settings = TrainerSettings.from_config({**API_TRAINER, **trainer}, seed)
        self.adapter.check(model.spec, model.schema, settings)
        data, model.target = array_splits(X, y, X_val, y_val, model.schema)
        return self.adapter.fit(model.inner, data, settings)

    def predict(self, model: Model, X) -> np.ndarray:
        """Class probabilities for classification; values in y's units for regression."""
        out = self.adapter.predict(model.inner, _features(X, model.schema))
        return model.target.decode(out) if model.target is not None else out

    def evaluate_model(self, model: Model, X, y) -> dict[str, float]:
        """Every metric of the task (accuracy, f1_macro, ... or r2, rmse, mae)."""
        task = model.schema.task
        output = self.predict(model, X)
        if task == "classification":
            y = _class_indices(np.asarray(y), model.schema)
        return metrics.compute(task, np.asarray(y), output, X=_features(X, model.schema))

    def save_model(self, model: Model, directory) -> Path:
        return artifacts.save_model(self.adapter, model.inner, Path(directory), files={
            API_FILE: {"schema": model.schema.to_dict(), "spec": model.spec,
                       "target": model.target.to_dict() if model.target is not None else None}})

    def load_model(self, directory) -> Model:
        inner, meta = artifacts.load_model(Path(directory), self.adapter)
        directory = artifacts.model_dir(Path(directory))
        if (directory / API_FILE).is_file():
            info = json.loads((directory / API_FILE).read_text())
            target = TargetEncoder.from_dict(info["target"]) if info.get("target") else None
            return Model(inner, DataSchema.from_dict(info["schema"]), dict(info.get("spec") or {}), target)
        if (directory / "preprocessing.json").is_file():  # a model `python -m launcher` saved
            raise ArtifactError(f"{directory} was saved by a launcher run; load it with "
                                "launcher.pipeline.predict.SavedRun.load (raw tables in, predictions out)")
        raise ArtifactError(f"{directory} holds no {API_FILE}; it was not saved by save_model")


class PyTorchFramework(Framework):
    name = "pytorch"


class TensorFlowFramework(Framework):
    name = "tensorflow"


class ScikitLearnFramework(Framework):
    name = "sklearn"


class JAXFramework(Framework):
    name = "jax"


FRAMEWORK_CLASSES: dict[str, type[Framework]] = {
    c.name: c for c in (PyTorchFramework, TensorFlowFramework, ScikitLearnFramework, JAXFramework)}


class MLFrameworkManager:
    """Which frameworks exist, which are usable here, and a framework object for each.

    `MLFrameworkManager({"pytorch": {"num_threads": 4}, "scikit_learn": {"n_jobs": -1}}, device="cpu")`
    applies settings as `framework.num_threads=4 device=cpu` does on the command line."""

    def __init__(self, config: Mapping[str, Mapping[str, Any]] | None = None, device: str = "auto", *,
                 settings: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.device = device
        self.settings: dict[str, dict[str, Any]] = {}
        for name, values in {**dict(config or {}), **dict(settings or {})}.items():
            self.settings[registry.canonical(name)] = dict(values or {})
        for name, values in self.settings.items():  # unknown keys fail now, with the valid ones listed
            registry.framework_config(name, device, values)

    def list_frameworks(self) -> list[str]:
        return list(registry.FRAMEWORKS)

    def get_framework(self, name: str) -> Framework:
        name = registry.canonical(name)
        return FRAMEWORK_CLASSES[name]({"device": self.device, **self.settings.get(name, {})})

    def get_framework_status(self, name: str | None = None, health_check: bool = False
                             ) -> FrameworkStatus | dict[str, FrameworkStatus]:
        """One framework's status, or (no name) every framework's. Never raises."""
        if name is None:
            return self.status(health_check)
        settings = dict(self.settings.get(registry.ALIASES.get(name, name), {}))
        return registry.status(name, settings.pop("device", self.device), settings, health_check)

    def status(self, health_check: bool = False) -> dict[str, FrameworkStatus]:
        return {name: self.get_framework_status(name, health_check) for name in registry.FRAMEWORKS}


FrameworkManager = MLFrameworkManager


# -- arrays and legacy specs ------------------------------------------------------------------
def normalise_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A model config dict from a model config or the legacy {"type": ..., "parameters": {...}}.

    For a network, the legacy `layer_sizes` keeps its inputs and outputs for the schema; for a
    shipped estimator (random_forest, svm, ...) its config is the base and `parameters` become
    the estimator's arguments."""
    spec = dict(spec)
    params = dict(spec.pop("parameters", None) or {})
    kind = spec.get("type") or spec.get("name")
    if kind in NETWORK_TYPES:
        if "layer_sizes" in params:
            params["hidden_sizes"] = list(params["layer_sizes"])[1:-1]
        return {"name": kind, **spec, **params, "type": kind}
    if spec.get("type") == "estimator" and not params:
        return spec
    if kind not in config_options("model"):
        raise ConfigError(f"unknown model type {kind!r}; expected one of: {one_of(config_options('model'))}")
    base = OmegaConf.to_container(OmegaConf.load(config_file("model", kind)))
    base.setdefault("estimator", {}).update(params)
    return base


def legacy_schema(spec: Mapping[str, Any]) -> DataSchema:
    sizes = spec.get("layer_sizes")
    task = spec.get("task", "classification")
    if sizes:
        n_in, n_out = int(sizes[0]), int(sizes[-1])
        if n_out == 1 and task == "classification":
            task = "regression"
        classes = list(range(n_out)) if task == "classification" else None
        return DataSchema(task, n_in, [f"x{i}" for i in range(n_in)], classes)
    raise ConfigError("create_model needs a schema (launcher.DataSchema) or, for a network, "
                      "parameters.layer_sizes=[inputs, hidden..., outputs]")


def _features(X, schema: DataSchema) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    X = X.reshape(len(X), -1)
    if X.shape[1] != schema.n_features:
        raise ConfigError(f"X has {X.shape[1]} features; the model was built for {schema.n_features}")
    return X


def _class_indices(y: np.ndarray, schema: DataSchema) -> np.ndarray:
    index = {c: i for i, c in enumerate(schema.classes or [])}
    try:
        return np.array([index[v.item() if hasattr(v, "item") else v] for v in y], dtype=np.int64)
    except KeyError as exc:
        raise ConfigError(f"y holds the label {exc.args[0]!r}, which is not one of the model's classes "
                          f"{schema.classes}") from None


def array_splits(X, y, X_val, y_val, schema: DataSchema) -> tuple[Splits, TargetEncoder | None]:
    """Splits for a fit on arrays; regression targets are standardised (the encoder returned
    maps predictions back), as a launcher run does."""
    X, y = _features(X, schema), np.asarray(y)
    if X_val is None:
        order = np.random.default_rng(0).permutation(len(X))
        cut = max(1, len(X) // 10)
        X, X_val, y, y_val = X[order[cut:]], X[order[:cut]], y[order[cut:]], y[order[:cut]]
    else:
        X_val, y_val = _features(X_val, schema), np.asarray(y_val)
    target = None
    if schema.task == "classification":
        y, y_val = _class_indices(y, schema), _class_indices(y_val, schema)
    elif schema.task == "regression":
        import pandas as pd

        target = TargetEncoder("regression").fit_scale(pd.Series(y))
        y, y_val = target.encode(pd.Series(y)), target.encode(pd.Series(y_val))
    splits = Splits(X, y, X_val, y_val, X_val, y_val, schema)
    if target is not None:
        splits.target_scale = target.std
    return splits, target
