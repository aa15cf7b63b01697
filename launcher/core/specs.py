"""Portable network specs: `model=mlp` means the same network in every neural framework.

A spec is plain data, validated here once against the data's schema; each neural adapter
(PyTorch, Keras, Flax) builds it natively. Tabular data reaches a CNN, RNN or Transformer only
through a declared per-sample shape (`data.shape=[1,8,8]`) or an explicit feature-as-token
encoding (`model.encoding=features`), never silently.
"""
from __future__ import annotations

import math
from dataclasses import MISSING as MISSING_FACTORY, dataclass, field, fields
from typing import Any

from launcher.core.errors import ConfigError, one_of
from launcher.core.types import DataSchema

ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "silu", "elu", "leaky_relu")
NORMS = ("none", "batch", "layer")
ENCODINGS = ("shape", "features")


@dataclass
class MLPSpec:
    type: str = "mlp"
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 64])
    activation: str = "relu"
    dropout: float = 0.1
    norm: str = "none"


@dataclass
class CNNSpec:
    type: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [32, 64])
    kernel_sizes: list[int] = field(default_factory=lambda: [3, 3])
    pooling: str = "max"  # max | avg | none, after each conv block
    hidden_sizes: list[int] = field(default_factory=lambda: [128])
    activation: str = "relu"
    dropout: float = 0.1
    norm: str = "batch"


@dataclass
class RNNSpec:
    type: str = "rnn"
    cell: str = "lstm"  # lstm | gru
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    encoding: str = "shape"


@dataclass
class TransformerSpec:
    type: str = "transformer"
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff_size: int = 128
    dropout: float = 0.1
    positional: str = "learned"  # learned | sinusoidal | none
    pooling: str = "mean"  # mean | cls
    encoding: str = "shape"


SPECS = {"mlp": MLPSpec, "cnn": CNNSpec, "rnn": RNNSpec, "transformer": TransformerSpec}
NETWORK_TYPES = frozenset(SPECS)


def parse_spec(config: dict[str, Any]) -> MLPSpec | CNNSpec | RNNSpec | TransformerSpec:
    """Turn a model config (or the legacy API's {"type", "parameters"} dict) into a spec.

    Keys that are not part of the spec (name, estimator, ...) are ignored; bad values raise
    ConfigError naming the field and the valid choices.
    """
    config = dict(config)
    if "parameters" in config:  # legacy API form
        config = _from_legacy(config)
    kind = config.get("type")
    if kind not in SPECS:
        raise ConfigError(f"unknown network type {kind!r}; expected one of: {one_of(SPECS)}")
    cls = SPECS[kind]
    names = {f.name for f in fields(cls)}
    spec = cls(**{k: v for k, v in config.items() if k in names})
    _check(spec)
    return spec


def _from_legacy(config: dict[str, Any]) -> dict[str, Any]:
    params = dict(config.get("parameters") or {})
    out = {"type": config.get("type", "mlp")}
    if "layer_sizes" in params:  # [in, hidden..., out]: in and out come from the data
        sizes = list(params.pop("layer_sizes"))
        out["hidden_sizes"] = sizes[1:-1]
    out.update(params)
    return out


def _check(spec) -> None:
    def bad(name, value, expected):
        raise ConfigError(f"model.{name}={value!r} is invalid for {spec.type}; expected {expected}")

    # Types first: a value of the wrong type (model.hidden_size=abc) fails here, before any
    # framework sees it.
    for f in fields(spec):
        value = getattr(spec, f.name)
        default = f.default if f.default_factory is MISSING_FACTORY else f.default_factory()
        if isinstance(default, bool):
            if not isinstance(value, bool):
                bad(f.name, value, "true or false")
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad(f.name, value, "a positive integer")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                bad(f.name, value, "a number")
        elif isinstance(default, list):
            if not isinstance(value, (list, tuple)) or any(
                    not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in value):
                bad(f.name, value, "a list of positive integers")
        elif isinstance(default, str) and not isinstance(value, str):
            bad(f.name, value, "a string")
    if hasattr(spec, "activation") and spec.activation not in ACTIVATIONS:
        bad("activation", spec.activation, f"one of {one_of(ACTIVATIONS)}")
    if hasattr(spec, "norm") and spec.norm not in NORMS:
        bad("norm", spec.norm, f"one of {one_of(NORMS)}")
    if not 0.0 <= float(spec.dropout) < 1.0:
        bad("dropout", spec.dropout, "a number in [0, 1)")
    if isinstance(spec, CNNSpec):
        if not spec.channels:
            bad("channels", spec.channels, "at least one convolution block")
        if len(spec.kernel_sizes) != len(spec.channels):
            bad("kernel_sizes", spec.kernel_sizes, f"one kernel size per channel entry ({len(spec.channels)})")
        if spec.pooling not in ("max", "avg", "none"):
            bad("pooling", spec.pooling, "one of avg, max, none")
    if isinstance(spec, RNNSpec) and spec.cell not in ("lstm", "gru"):
        bad("cell", spec.cell, "one of gru, lstm")
    if isinstance(spec, TransformerSpec):
        if spec.d_model % spec.heads:
            bad("heads", spec.heads, f"a divisor of d_model={spec.d_model}")
        if spec.positional not in ("learned", "sinusoidal", "none"):
            bad("positional", spec.positional, "one of learned, none, sinusoidal")
        if spec.pooling not in ("mean", "cls"):
            bad("pooling", spec.pooling, "one of cls, mean")
    if getattr(spec, "encoding", "shape") not in ENCODINGS:
        bad("encoding", spec.encoding, f"one of {one_of(ENCODINGS)}")


def image_shape(spec: CNNSpec, schema: DataSchema) -> tuple[int, int, int]:
    """(channels, height, width) for a CNN, from the data's declared shape."""
    shape = schema.input_shape
    if not shape:
        raise ConfigError(
            "model=cnn needs an image shape, and this data declares none; set data.shape=[C,H,W] "
            f"with C*H*W = {schema.n_features} features (digits declares [1,8,8]), or use model=mlp"
        )
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or math.prod(shape) != schema.n_features:
        raise ConfigError(
            f"data.shape={list(schema.input_shape)} does not fit {schema.n_features} features; "
            "expected [C,H,W] whose product is the feature count"
        )
    h, w = shape[1], shape[2]
    for _ in spec.channels:
        if spec.pooling != "none":
            h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ConfigError(
                f"model=cnn with {len(spec.channels)} pooled conv blocks shrinks a {shape[1]}x{shape[2]} "
                "image below 1x1; use fewer model.channels or model.pooling=none"
            )
    return tuple(int(s) for s in shape)  # type: ignore[return-value]


def sequence_shape(spec: RNNSpec | TransformerSpec, schema: DataSchema) -> tuple[int, int]:
    """(steps, features per step) for an RNN or Transformer."""
    if spec.encoding == "features":
        return schema.n_features, 1
    shape = schema.input_shape
    if not shape:
        raise ConfigError(
            f"model={spec.type} needs a sequence: this data declares no shape. Set "
            f"data.shape=[steps,features] (product {schema.n_features}), or model.encoding=features "
            "to read each feature as one token"
        )
    if len(shape) == 3:  # an image read row by row: steps = H, features = C*W
        steps, size = shape[1], shape[0] * shape[2]
    elif len(shape) == 2:
        steps, size = shape
    else:
        steps, size = shape[0], 1
    if steps * size != schema.n_features:
        raise ConfigError(
            f"data.shape={list(shape)} does not fit {schema.n_features} features; expected "
            "[steps,features] whose product is the feature count"
        )
    return int(steps), int(size)


NEURAL_TASKS = ("classification", "regression")


def check_network(framework: str, spec: dict[str, Any],
                  schema: DataSchema) -> MLPSpec | CNNSpec | RNNSpec | TransformerSpec:
    """The parsed spec, once the task is one a network learns and the data's shape fits the
    architecture: the same checks for every neural framework, before it is imported."""
    if schema.task not in NEURAL_TASKS:
        raise ConfigError(f"framework={framework} does classification and regression, not {schema.task}; "
                          "use framework=sklearn for clustering (model=kmeans)")
    parsed = parse_spec(spec)
    if parsed.type == "cnn":
        image_shape(parsed, schema)
    elif parsed.type in ("rnn", "transformer"):
        sequence_shape(parsed, schema)
    return parsed
