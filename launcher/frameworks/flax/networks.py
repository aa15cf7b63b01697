"""Flax (NNX) builds of the portable specs in `launcher.core.specs`.

The same networks as launcher/frameworks/torch/networks.py, field for field (its docstring says
what each spec field means); a test checks that the parameter counts agree with PyTorch's.
Where the two libraries' defaults differ, the PyTorch meaning wins:

- BatchNorm: momentum 0.1 in PyTorch's convention (Flax's `momentum=0.9`), epsilon 1e-5;
  LayerNorm and GroupNorm epsilon 1e-5 (Flax defaults to 1e-6).
- Convolutions compute in NHWC (XLA's layout) but the features are flattened in PyTorch's
  C,H,W order, so the head's inputs are the same numbers in the same places.
- LSTM and GRU are written here rather than taken from nnx.LSTMCell/GRUCell: PyTorch's cells
  have a bias on both the input and the hidden projection (Flax's have one), and gate order
  i,f,g,o (LSTM) and r,z,n (GRU). The input projection of all steps is one matmul before the
  scan over time.
- Attention dropout is not broadcast over the batch (PyTorch draws a mask per row).
- Initialisation is PyTorch's default, drawn with JAX's keys: Linear and Conv weights and
  biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), recurrent cells U(-1/sqrt(hidden), 1/sqrt(hidden)),
  attention as nn.MultiheadAttention, learned positions N(0, 0.02). (Flax's own LeCun-normal
  kernels start about 1.7 times larger and trained the CNN and the diabetes MLP less well.)

Mixed precision (bf16-mixed) is Flax's own: the layers take a compute `dtype` (bfloat16) and
keep float32 parameters (`param_dtype`), batch statistics included; a network built for
float32 and one built for bfloat16 share one state.

Every network is called as `net(x, train=..., rngs=..., mask=...)` on the flat, preprocessed
rows (n, n_features): `train` switches dropout and batch statistics on, `rngs` (an nnx.Rngs
with a `dropout` stream) draws the dropout masks, and `mask` (n,) marks the real rows of a
padded batch, which alone feed the batch statistics.

This module imports jax and flax at the top; the adapter imports it inside its methods.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from launcher.core.specs import (CNNSpec, MLPSpec, RNNSpec, TransformerSpec, image_shape, parse_spec,
                                  sequence_shape)
from launcher.core.types import DataSchema

ACTIVATIONS = {
    "relu": jax.nn.relu, "gelu": lambda x: jax.nn.gelu(x, approximate=False), "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid, "silu": jax.nn.silu, "elu": jax.nn.elu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.01),
}
EPS = 1e-5
BN_MOMENTUM = 0.9  # PyTorch's momentum=0.1: running = 0.9 * running + 0.1 * batch


def _uniform(bound: float) -> Any:
    """U(-bound, bound), PyTorch's default initialisation for Linear and Conv weights and biases
    with bound 1/sqrt(fan_in)."""
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _linear(width: int, size: int, dtype: Any, rngs: nnx.Rngs) -> nnx.Linear:
    init = _uniform(1.0 / math.sqrt(width))
    return nnx.Linear(width, size, kernel_init=init, bias_init=init, dtype=dtype, rngs=rngs)


def _norm(kind: str, features: int, rngs: nnx.Rngs, dtype: Any, image: bool = False) -> nnx.Module | None:
    if kind == "batch":
        return nnx.BatchNorm(features, momentum=BN_MOMENTUM, epsilon=EPS, dtype=dtype, rngs=rngs)
    if kind == "layer":
        if image:  # over C,H,W: PyTorch's GroupNorm(1, C)
            return nnx.GroupNorm(features, num_groups=1, epsilon=EPS, dtype=dtype, rngs=rngs)
        return nnx.LayerNorm(features, epsilon=EPS, dtype=dtype, rngs=rngs)
    return None


def _apply_norm(norm: nnx.Module | None, x: jax.Array, train: bool, mask: jax.Array | None) -> jax.Array:
    if norm is None:
        return x
    if isinstance(norm, nnx.BatchNorm):
        m = None if mask is None or not train else mask.reshape(mask.shape + (1,) * (x.ndim - 1))
        return norm(x, use_running_average=not train, mask=m)
    return norm(x)


def _dropout(layer: nnx.Dropout | None, x: jax.Array, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
    if layer is None or not train:
        return x
    return layer(x, deterministic=False, rngs=rngs)


class DenseBlock(nnx.Module):
    """Linear -> norm -> activation -> dropout."""

    def __init__(self, width: int, size: int, activation: str, dropout: float, norm: str, rngs: nnx.Rngs,
                 dtype: Any):
        self.linear = _linear(width, size, dtype, rngs)
        self.norm = _norm(norm, size, rngs, dtype)
        self.activation = activation
        self.dropout = nnx.Dropout(dropout) if dropout > 0 else None

    def __call__(self, x, train: bool, rngs, mask):
        x = _apply_norm(self.norm, self.linear(x), train, mask)
        return _dropout(self.dropout, ACTIVATIONS[self.activation](x), train, rngs)


def _dense_stack(width: int, hidden: list[int], activation: str, dropout: float, norm: str,
                 rngs: nnx.Rngs, dtype: Any) -> tuple[nnx.List, int]:
    blocks = []
    for size in hidden:
        blocks.append(DenseBlock(width, int(size), activation, dropout, norm, rngs, dtype))
        width = int(size)
    return nnx.List(blocks), width


class MLP(nnx.Module):
    def __init__(self, spec: MLPSpec, schema: DataSchema, rngs: nnx.Rngs, dtype: Any = None):
        self.body, width = _dense_stack(schema.n_features, list(spec.hidden_sizes), spec.activation,
                                        float(spec.dropout), spec.norm, rngs, dtype)
        self.out = _linear(width, schema.n_outputs, dtype, rngs)

    def __call__(self, x, train: bool = False, rngs=None, mask=None):
        for block in self.body:
            x = block(x, train, rngs, mask)
        return self.out(x)


class ConvBlock(nnx.Module):
    """Conv ("same") -> norm -> activation -> 2x2 pooling, in NHWC."""

    def __init__(self, c_in: int, c_out: int, k: int, spec: CNNSpec, rngs: nnx.Rngs, dtype: Any):
        init = _uniform(1.0 / math.sqrt(c_in * k * k))  # PyTorch's Conv2d default
        self.conv = nnx.Conv(c_in, c_out, (k, k), padding="SAME", kernel_init=init, bias_init=init, dtype=dtype,
                             rngs=rngs)
        self.norm = _norm(spec.norm, c_out, rngs, dtype, image=True)
        self.activation, self.pooling = spec.activation, spec.pooling

    def __call__(self, x, train: bool, mask):
        x = ACTIVATIONS[self.activation](_apply_norm(self.norm, self.conv(x), train, mask))
        if self.pooling == "max":
            x = nnx.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
        elif self.pooling == "avg":
            x = nnx.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID")
        return x


class CNN(nnx.Module):
    def __init__(self, spec: CNNSpec, schema: DataSchema, rngs: nnx.Rngs, dtype: Any = None):
        self.shape = image_shape(spec, schema)
        c, h, w = self.shape
        blocks = []
        for channels, k in zip(spec.channels, spec.kernel_sizes):
            blocks.append(ConvBlock(c, int(channels), int(k), spec, rngs, dtype))
            if spec.pooling != "none":
                h, w = h // 2, w // 2
            c = int(channels)
        self.features = nnx.List(blocks)
        self.head, width = _dense_stack(c * h * w, list(spec.hidden_sizes), spec.activation, float(spec.dropout),
                                        "none", rngs, dtype)
        # no hidden layers: still dropout before the output, as in PyTorch
        self.head_dropout = nnx.Dropout(float(spec.dropout)) if spec.dropout > 0 and not spec.hidden_sizes else None
        self.out = _linear(width, schema.n_outputs, dtype, rngs)

    def __call__(self, x, train: bool = False, rngs=None, mask=None):
        x = x.reshape(x.shape[0], *self.shape).transpose(0, 2, 3, 1)  # (n, C, H, W) -> NHWC
        for block in self.features:
            x = block(x, train, mask)
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # flattened as C,H,W, like PyTorch
        for block in self.head:
            x = block(x, train, rngs, mask)
        return self.out(_dropout(self.head_dropout, x, train, rngs))


class Recurrent(nnx.Module):
    """One direction of one LSTM or GRU layer, with PyTorch's parameters: x @ W_ih + b_ih and
    h @ W_hh + b_hh, gates i,f,g,o (LSTM) or r,z,n (GRU)."""

    def __init__(self, cell: str, size: int, hidden: int, rngs: nnx.Rngs, dtype: Any):
        self.cell, self.hidden, self.dtype = cell, hidden, dtype
        gates = (4 if cell == "lstm" else 3) * hidden
        bound = 1.0 / math.sqrt(hidden)

        def uniform(shape):
            return nnx.Param(jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound))

        self.w_ih, self.w_hh = uniform((size, gates)), uniform((hidden, gates))
        self.b_ih, self.b_hh = uniform((gates,)), uniform((gates,))

    def __call__(self, xs: jax.Array, reverse: bool) -> tuple[jax.Array, jax.Array]:
        """xs (n, T, size) -> (outputs (n, T, hidden), final hidden state (n, hidden))."""
        n, h, dtype = xs.shape[0], self.hidden, self.dtype or xs.dtype
        w_ih, b_ih, w_hh, b_hh = (v[...].astype(dtype) for v in (self.w_ih, self.b_ih, self.w_hh, self.b_hh))
        projected = jnp.swapaxes(xs.astype(dtype) @ w_ih + b_ih, 0, 1)  # (T, n, gates)
        zeros = jnp.zeros((n, h), projected.dtype)
        if self.cell == "lstm":
            def step(carry, gx):
                h_prev, c_prev = carry
                i, f, g, o = jnp.split(gx + h_prev @ w_hh + b_hh, 4, axis=-1)
                c = jax.nn.sigmoid(f) * c_prev + jax.nn.sigmoid(i) * jnp.tanh(g)
                h_new = jax.nn.sigmoid(o) * jnp.tanh(c)
                return (h_new, c), h_new
            (last, _), outs = jax.lax.scan(step, (zeros, zeros), projected, reverse=reverse)
        else:
            def step(h_prev, gx):
                gh = h_prev @ w_hh + b_hh
                xr, xz, xn = jnp.split(gx, 3, axis=-1)
                hr, hz, hn = jnp.split(gh, 3, axis=-1)
                r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
                h_new = (1 - z) * jnp.tanh(xn + r * hn) + z * h_prev
                return h_new, h_new
            last, outs = jax.lax.scan(step, zeros, projected, reverse=reverse)
        return jnp.swapaxes(outs, 0, 1), last


class RNN(nnx.Module):
    def __init__(self, spec: RNNSpec, schema: DataSchema, rngs: nnx.Rngs, dtype: Any = None):
        self.steps, self.size = sequence_shape(spec, schema)
        hidden, self.directions = int(spec.hidden_size), 2 if spec.bidirectional else 1
        layers, width = [], self.size
        for _ in range(int(spec.num_layers)):
            layers.append(nnx.List([Recurrent(spec.cell, width, hidden, rngs, dtype)
                                    for _ in range(self.directions)]))
            width = hidden * self.directions
        self.layers = nnx.List(layers)
        rate = float(spec.dropout)
        self.between = nnx.Dropout(rate) if rate > 0 and int(spec.num_layers) > 1 else None
        self.dropout = nnx.Dropout(rate) if rate > 0 else None
        self.out = _linear(width, schema.n_outputs, dtype, rngs)

    def __call__(self, x, train: bool = False, rngs=None, mask=None):
        x = x.reshape(x.shape[0], self.steps, self.size)
        for index, layer in enumerate(self.layers):
            if index:  # dropout between stacked layers
                x = _dropout(self.between, x, train, rngs)
            results = [direction(x, reverse=bool(d)) for d, direction in enumerate(layer)]  # forward, backward
            x = jnp.concatenate([outs for outs, _ in results], axis=-1)
            last = jnp.concatenate([final for _, final in results], axis=-1)
        return self.out(_dropout(self.dropout, last, train, rngs))


def sinusoidal(steps: int, d_model: int) -> np.ndarray:
    """PyTorch build's sinusoidal positions: a constant, not a parameter."""
    pos = np.arange(steps, dtype=np.float32)[:, None]
    div = np.exp(np.arange(0, d_model, 2, dtype=np.float32) * (-math.log(10000.0) / d_model))
    pe = np.zeros((steps, d_model), np.float32)
    pe[:, 0::2] = np.sin(pos * div)
    pe[:, 1::2] = np.cos(pos * div)[:, : d_model // 2]
    return pe


class EncoderBlock(nnx.Module):
    """Pre-norm: x + dropout(MHA(LN(x))), x + dropout(FFN(LN(x))), FFN = Linear, GELU, dropout, Linear."""

    def __init__(self, d: int, heads: int, ff: int, rate: float, rngs: nnx.Rngs, dtype: Any):
        self.norm1 = nnx.LayerNorm(d, epsilon=EPS, dtype=dtype, rngs=rngs)
        self.norm2 = nnx.LayerNorm(d, epsilon=EPS, dtype=dtype, rngs=rngs)
        # PyTorch's MultiheadAttention: Xavier-uniform q,k,v projections (one 3d x d matrix), the
        # output projection a Linear's default, biases zero
        self.attention = nnx.MultiHeadAttention(heads, d, d, d, dropout_rate=rate, broadcast_dropout=False,
                                                decode=False, keep_rngs=False, dtype=dtype, rngs=rngs,
                                                kernel_init=_uniform(math.sqrt(6.0 / (4 * d))),
                                                out_kernel_init=_uniform(1.0 / math.sqrt(d)))
        self.ff1 = _linear(d, ff, dtype, rngs)
        self.ff2 = _linear(ff, d, dtype, rngs)
        self.dropout = nnx.Dropout(rate) if rate > 0 else None

    def __call__(self, x, train: bool, rngs):
        y = self.norm1(x)
        y = self.attention(y, deterministic=not train, rngs=rngs if train else None)
        x = x + _dropout(self.dropout, y, train, rngs)
        y = _dropout(self.dropout, ACTIVATIONS["gelu"](self.ff1(self.norm2(x))), train, rngs)
        return x + _dropout(self.dropout, self.ff2(y), train, rngs)


class Transformer(nnx.Module):
    def __init__(self, spec: TransformerSpec, schema: DataSchema, rngs: nnx.Rngs, dtype: Any = None):
        self.steps, self.size = sequence_shape(spec, schema)
        d = int(spec.d_model)
        self.cls = spec.pooling == "cls"
        tokens = self.steps + (1 if self.cls else 0)
        self.embed = _linear(self.size, d, dtype, rngs)
        self.cls_token = nnx.Param(jnp.zeros((1, 1, d))) if self.cls else None
        self.positional = spec.positional
        if spec.positional == "learned":
            self.position = nnx.Param(jax.random.normal(rngs.params(), (1, tokens, d)) * 0.02)
        else:  # sinusoidal: computed from the static shape in __call__ (a constant of the program)
            self.position = None
        self.blocks = nnx.List([EncoderBlock(d, int(spec.heads), int(spec.ff_size), float(spec.dropout), rngs, dtype)
                                for _ in range(int(spec.layers))])
        self.norm = nnx.LayerNorm(d, epsilon=EPS, dtype=dtype, rngs=rngs)
        self.out = _linear(d, schema.n_outputs, dtype, rngs)

    def __call__(self, x, train: bool = False, rngs=None, mask=None):
        z = self.embed(x.reshape(x.shape[0], self.steps, self.size))
        if self.cls_token is not None:
            z = jnp.concatenate([jnp.broadcast_to(self.cls_token[...], (z.shape[0], 1, z.shape[2])).astype(z.dtype),
                                 z], axis=1)
        if self.position is not None:
            z = z + self.position[...].astype(z.dtype)
        elif self.positional == "sinusoidal":
            z = z + jnp.asarray(sinusoidal(z.shape[1], z.shape[2]), z.dtype)[None]
        for block in self.blocks:
            z = block(z, train, rngs)
        z = self.norm(z)
        return self.out(z[:, 0] if self.cls else z.mean(axis=1))


NETWORKS = {"mlp": MLP, "cnn": CNN, "rnn": RNN, "transformer": Transformer}


def abstract_network(spec: Any, schema: DataSchema, dtype: Any = None) -> nnx.Module:
    """The network of `spec` with shapes and no values (nnx.eval_shape): nothing is computed or
    compiled. Enough to count parameters, or to be filled from a saved file. `dtype` is the
    compute dtype (bfloat16 for bf16-mixed); the parameters are float32 whatever it is, so the
    state of one network fits the other."""
    return nnx.eval_shape(lambda: NETWORKS[spec.type](spec, schema, nnx.Rngs(params=0), dtype))


def build_network(spec: Any, schema: DataSchema, key: Any) -> nnx.Module:
    """The network of `spec`, its weights drawn from the PRNG `key` in one compiled program (one
    XLA compilation per architecture and process, instead of one per initialiser and shape)."""
    graphdef, _ = nnx.split(abstract_network(spec, schema))
    return nnx.merge(graphdef, _initializer(json.dumps(asdict(spec), sort_keys=True),
                                            json.dumps(schema.to_dict(), sort_keys=True))(key))


@functools.lru_cache(maxsize=16)
def _initializer(spec_json: str, schema_json: str) -> Any:
    spec, schema = parse_spec(json.loads(spec_json)), DataSchema.from_dict(json.loads(schema_json))
    return jax.jit(lambda key: nnx.split(NETWORKS[spec.type](spec, schema, nnx.Rngs(params=key)))[1])


def count_parameters(net: nnx.Module) -> int:
    """Trainable parameters (nnx.Param), as PyTorch's sum(p.numel() for p in net.parameters())."""
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(net, nnx.Param))))
