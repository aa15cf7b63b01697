"""Helpers behind the Python API's array-level methods (create_model, train_model, ...)."""
from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import OmegaConf

from launcher.architectures import NETWORK_TYPES
from launcher.errors import ConfigError, one_of
from launcher.frameworks.base import DataSchema, Splits
from launcher.paths import CONFIG_DIR


def normalise_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A model config dict from either a model config or {"type": ..., "parameters": {...}}.

    For a network the legacy `layer_sizes` is kept (it carries the input and output sizes);
    for an estimator name (random_forest, svm, ...) the packaged model config is the base
    and `parameters` become the estimator's arguments."""
    spec = dict(spec)
    params = dict(spec.pop("parameters", None) or {})
    kind = spec.get("type") or spec.get("name")
    if kind in NETWORK_TYPES:
        if "layer_sizes" in params:
            sizes = list(params["layer_sizes"])
            params["hidden_sizes"] = sizes[1:-1]
        return {"name": kind, **spec, **params, "type": kind}
    path = CONFIG_DIR / "model" / f"{kind}.yaml"
    if spec.get("type") == "estimator" and not params:
        return spec
    if not path.is_file():
        models = [p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")]
        raise ConfigError(f"unknown model type {kind!r}; expected one of: {one_of(models)}")
    base = OmegaConf.to_container(OmegaConf.load(path))
    base["estimator"].update(params)
    return base


def legacy_schema(spec: dict[str, Any]) -> DataSchema:
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


def array_splits(X, y, X_val, y_val, schema: DataSchema | None) -> Splits:
    X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    y = np.asarray(y)
    if schema is None:
        raise ConfigError("train_model needs the model from create_model (it carries the data schema)")
    if X.shape[1] != schema.n_features:
        raise ConfigError(f"X has {X.shape[1]} features; the model was built for {schema.n_features}")
    y = y.astype(np.int64) if schema.task == "classification" else y.astype(np.float32)
    if X_val is None:
        rng = np.random.default_rng(0)
        order = rng.permutation(len(X))
        cut = max(1, len(X) // 10)
        val, train = order[:cut], order[cut:]
        X, X_val, y, y_val = X[train], X[val], y[train], y[val]
    else:
        X_val = np.asarray(X_val, dtype=np.float32).reshape(len(X_val), -1)
        y_val = np.asarray(y_val).astype(y.dtype)
    return Splits(X, y, X_val, y_val, X_val, y_val, schema)
