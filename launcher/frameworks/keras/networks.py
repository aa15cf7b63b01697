"""Keras builds of the portable specs in `launcher.core.specs`: the same networks as
launcher/frameworks/torch/networks.py (read its docstring for what each spec field means).

This module imports Keras at the top (on the TensorFlow backend, through runtime); the adapter
imports it inside its methods, so `import launcher` never loads TensorFlow.

Every network takes the flat, preprocessed feature rows (n, n_features), reshapes them itself
and returns logits (classification) or one value (regression): predict, save and load never
need to know the architecture. Where the two frameworks' layers differ, the Keras build is set
to PyTorch's meaning:

- Batch norm: momentum 0.9 (PyTorch's 0.1 counts the other way), epsilon 1e-5; layer norm
  epsilon 1e-5. The CNN's layer norm is PyTorch's GroupNorm(1, C): GroupNormalization(groups=1).
- Images are reshaped to (C, H, W) as in PyTorch and moved to channels-last (TensorFlow's CPU
  convolutions need it); the head's flatten order is therefore (H, W, C): a fixed permutation of
  the same features, the same network.
- GRU with reset_after=True is PyTorch's GRU (two bias vectors). Keras' LSTM has one bias
  vector where PyTorch's has two that are always summed (b_ih + b_hh): the same function, 4 x
  hidden_size fewer parameters per layer and direction.
- leaky_relu has slope 0.01 (Keras' default is 0.2); gelu is the exact (erf) form.
- Initialisation is PyTorch's, not Keras' (Glorot, orthogonal, zero biases): Dense and Conv
  weights and biases uniform in +-1/sqrt(fan_in), LSTM/GRU weights and biases uniform in
  +-1/sqrt(hidden_size) (no forget-gate bias of 1); attention projections keep Keras' Glorot
  with zero biases (PyTorch's are Xavier, zero biases); learned positions N(0, 0.02), the [CLS]
  token zero. Measured on digits and diabetes (seeds 0, 1, 42; benchmarks/neural_quality.py),
  Keras' own initialisers trained worse: the CNN missed 0.97 and the diabetes MLP missed
  Ridge - 0.05 on one seed each; with PyTorch's all targets are met.

The learned/sinusoidal positions and the [CLS] token are two small layers registered with
Keras' serialisation (package "launcher"), so a saved .keras model loads with safe_mode=True and
no Lambda layer anywhere.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from launcher.core.specs import CNNSpec, MLPSpec, RNNSpec, TransformerSpec, image_shape, sequence_shape
from launcher.core.types import DataSchema
from launcher.frameworks.keras.runtime import import_tensorflow

tf, keras = import_tensorflow()
from keras import layers, ops  # noqa: E402

NORM_EPSILON = 1e-5
BATCH_NORM_MOMENTUM = 0.9  # PyTorch's momentum=0.1
SEQUENTIAL, FUNCTIONAL = "sequential", "functional"


# -- the two layers Keras does not have ------------------------------------------------------
@keras.saving.register_keras_serializable(package="launcher")
class PositionEmbedding(layers.Layer):
    """Adds a position code to each token: learned (a trainable (tokens, d) table drawn from
    N(0, 0.02)) or sinusoidal (fixed, no weights)."""

    def __init__(self, mode: str = "learned", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in ("learned", "sinusoidal"):
            raise ValueError(f"PositionEmbedding mode must be learned or sinusoidal, not {mode!r}")
        self.mode = mode

    def build(self, input_shape: tuple[int, ...]) -> None:
        tokens, d = int(input_shape[1]), int(input_shape[2])
        if self.mode == "learned":
            self.position = self.add_weight(shape=(tokens, d), name="position",
                                            initializer=keras.initializers.RandomNormal(stddev=0.02))
        else:
            self.table = sinusoidal(tokens, d)

    def call(self, x: Any) -> Any:
        position = self.position if self.mode == "learned" else self.table
        return x + ops.cast(position, x.dtype)[None]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="launcher")
class ClassToken(layers.Layer):
    """Puts a learned [CLS] token (zeros at first) before the tokens."""

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.token = self.add_weight(shape=(int(input_shape[-1]),), name="token", initializer="zeros")

    def call(self, x: Any) -> Any:
        token = ops.broadcast_to(ops.cast(self.token, x.dtype)[None, None], (ops.shape(x)[0], 1, ops.shape(x)[2]))
        return ops.concatenate([token, x], axis=1)

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        tokens = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], tokens, input_shape[2])


def sinusoidal(steps: int, d_model: int) -> np.ndarray:
    """The same table as PyTorch's build (sin on even, cos on odd features)."""
    pos = np.arange(steps, dtype=np.float32)[:, None]
    div = np.exp(np.arange(0, d_model, 2, dtype=np.float32) * (-math.log(10000.0) / d_model))
    table = np.zeros((steps, d_model), np.float32)
    table[:, 0::2] = np.sin(pos * div)
    table[:, 1::2] = np.cos(pos * div)[:, : d_model // 2]
    return table


# -- stacks -------------------------------------------------------------------------------------
def _activation(name: str) -> layers.Layer:
    if name == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.01)
    return layers.Activation(name)  # gelu: keras.activations.gelu is the exact form by default


def _torch_init(fan_in: int) -> dict[str, Any]:
    """PyTorch's default initialisation of Linear and Conv layers: kaiming_uniform(a=sqrt(5)),
    i.e. weights and biases uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return {"kernel_initializer": keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"),
            "bias_initializer": keras.initializers.RandomUniform(-bound, bound)}


def dense(units: int, fan_in: int, activation: str | None = None) -> layers.Layer:
    return layers.Dense(int(units), activation=activation, **_torch_init(fan_in))


def _dense_stack(width: int, hidden: list[int], activation: str, dropout: float, norm: str) -> list[layers.Layer]:
    out: list[layers.Layer] = []
    for size in hidden:
        if norm == "none" and activation != "leaky_relu":
            out.append(dense(size, width, activation))  # one layer: the same maths, fewer calls
        else:
            out.append(dense(size, width))
            if norm == "batch":
                out.append(layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, epsilon=NORM_EPSILON))
            elif norm == "layer":
                out.append(layers.LayerNormalization(epsilon=NORM_EPSILON))
            out.append(_activation(activation))
        if dropout > 0:
            out.append(layers.Dropout(dropout))
        width = int(size)
    return out


def mlp(spec: MLPSpec, schema: DataSchema) -> list[layers.Layer]:
    hidden = [int(h) for h in spec.hidden_sizes]
    return [*_dense_stack(schema.n_features, hidden, spec.activation, float(spec.dropout), spec.norm),
            dense(schema.n_outputs, hidden[-1] if hidden else schema.n_features)]


def cnn(spec: CNNSpec, schema: DataSchema) -> list[layers.Layer]:
    c, h, w = image_shape(spec, schema)
    out: list[layers.Layer] = [layers.Reshape((h, w, 1))] if c == 1 else [layers.Reshape((c, h, w)),
                                                                          layers.Permute((2, 3, 1))]
    for channels, k in zip(spec.channels, spec.kernel_sizes):
        out.append(layers.Conv2D(int(channels), int(k), padding="same", **_torch_init(c * int(k) ** 2)))
        if spec.norm == "batch":
            out.append(layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, epsilon=NORM_EPSILON))
        elif spec.norm == "layer":
            out.append(layers.GroupNormalization(groups=1, epsilon=NORM_EPSILON))
        out.append(_activation(spec.activation))
        if spec.pooling == "max":
            out.append(layers.MaxPooling2D(2))
        elif spec.pooling == "avg":
            out.append(layers.AveragePooling2D(2))
        if spec.pooling != "none":
            h, w = h // 2, w // 2
        c = int(channels)
    out.append(layers.Flatten())
    hidden = [int(s) for s in spec.hidden_sizes]
    head = _dense_stack(c * h * w, hidden, spec.activation, float(spec.dropout), "none")
    if spec.dropout > 0 and not head:  # no hidden layers: still dropout before the output
        head = [layers.Dropout(float(spec.dropout))]
    return [*out, *head, dense(schema.n_outputs, hidden[-1] if hidden else c * h * w)]


def rnn(spec: RNNSpec, schema: DataSchema) -> list[layers.Layer]:
    steps, size = sequence_shape(spec, schema)
    cell = layers.LSTM if spec.cell == "lstm" else layers.GRU
    out: list[layers.Layer] = [layers.Reshape((steps, size))]
    n = int(spec.num_layers)
    for i in range(n):
        last = i == n - 1
        # GRU's reset_after=True (the default) is PyTorch's formulation.
        layer = cell(int(spec.hidden_size), return_sequences=not last, **_torch_rnn_init(spec))
        out.append(layers.Bidirectional(layer, merge_mode="concat") if spec.bidirectional else layer)
        if not last and spec.dropout > 0:  # PyTorch's dropout between stacked layers
            out.append(layers.Dropout(float(spec.dropout)))
    if spec.dropout > 0:
        out.append(layers.Dropout(float(spec.dropout)))
    return [*out, dense(schema.n_outputs, int(spec.hidden_size) * (2 if spec.bidirectional else 1))]


def _torch_rnn_init(spec: RNNSpec) -> dict[str, Any]:
    """PyTorch's LSTM/GRU initialisation: every weight and bias uniform in +-1/sqrt(hidden)."""
    bound = 1.0 / math.sqrt(int(spec.hidden_size))
    init = keras.initializers.RandomUniform(-bound, bound)
    out = {"kernel_initializer": init, "recurrent_initializer": init, "bias_initializer": init}
    return {**out, "unit_forget_bias": False} if spec.cell == "lstm" else out


def transformer(spec: TransformerSpec, schema: DataSchema, inputs: Any) -> Any:
    """Pre-norm encoder blocks, x + MHA(LN(x)) and x + FFN(LN(x)): residuals, so Functional only."""
    steps, size = sequence_shape(spec, schema)
    d, p = int(spec.d_model), float(spec.dropout)
    x = dense(d, size)(layers.Reshape((steps, size))(inputs))
    if spec.pooling == "cls":
        x = ClassToken()(x)
    if spec.positional != "none":
        x = PositionEmbedding(spec.positional)(x)
    for _ in range(int(spec.layers)):
        y = layers.LayerNormalization(epsilon=NORM_EPSILON)(x)
        y = layers.MultiHeadAttention(int(spec.heads), d // int(spec.heads), dropout=p)(y, y)
        x = layers.Add()([x, layers.Dropout(p)(y)])
        y = layers.LayerNormalization(epsilon=NORM_EPSILON)(x)
        y = layers.Dropout(p)(dense(spec.ff_size, d, "gelu")(y))
        x = layers.Add()([x, layers.Dropout(p)(dense(d, spec.ff_size)(y))])
    x = layers.LayerNormalization(epsilon=NORM_EPSILON)(x)
    if spec.pooling == "cls":
        x = layers.Reshape((d,))(layers.Cropping1D((0, steps))(x))  # the first token
    else:
        x = layers.GlobalAveragePooling1D()(x)
    return dense(schema.n_outputs, d)(x)


STACKS = {"mlp": mlp, "cnn": cnn, "rnn": rnn}


@contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Layers built inside compute in bf16/fp16 with float32 weights for a mixed precision."""
    policy = {"32": "float32", "bf16-mixed": "mixed_bfloat16", "16-mixed": "mixed_float16"}[precision]
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def build_network(spec: Any, schema: DataSchema, api: str, precision: str = "32") -> keras.Model:
    """The Keras model of `spec`: Sequential (a plain stack of layers) or Functional, as `api`
    says (the adapter resolved "auto" and refused what cannot be built that way)."""
    name = f"{spec.type}_{schema.task}"
    with dtype_policy(precision):
        inputs = keras.Input((schema.n_features,), name="features")
        if spec.type == "transformer":
            return keras.Model(inputs, transformer(spec, schema, inputs), name=name)
        stack = STACKS[spec.type](spec, schema)
        if api == SEQUENTIAL:
            return keras.Sequential([inputs, *stack], name=name)
        x = inputs
        for layer in stack:
            x = layer(x)
        return keras.Model(inputs, x, name=name)


def count_parameters(net: keras.Model) -> int:
    """Trainable parameters (what PyTorch's net.parameters() counts)."""
    return int(sum(math.prod(v.shape) for v in net.trainable_weights))
