"""PyTorch builds of the portable specs in `launcher.core.specs`.

This module imports torch at the top; the adapter (launcher.frameworks.torch) imports it
inside its methods, so `import launcher` never loads torch.

Every network takes the flat, preprocessed feature rows (n, n_features) and reshapes them
itself, so predict, save and load never need to know the architecture. What each spec field
means (the same in Keras and Flax):

MLP          per hidden size: Linear -> norm (batch | layer | none) -> activation -> dropout;
             then Linear to the outputs.
CNN          input viewed as (C, H, W) from the data's declared shape; per conv block:
             Conv2d(kernel k, stride 1, "same" padding) -> norm (batch: BatchNorm2d,
             layer: normalisation over C,H,W, i.e. GroupNorm(1, C)) -> activation ->
             2x2 pooling with stride 2 (max | avg | none); then flatten and the MLP head
             (hidden_sizes, activation, dropout).
RNN          input viewed as (steps, features per step) (`sequence_shape`); LSTM or GRU with
             `num_layers`, dropout between stacked layers, optionally bidirectional; the final
             hidden state of the last layer (both directions concatenated) -> dropout -> Linear.
Transformer  tokens = Linear(features per step -> d_model) (+ a learned [CLS] token first when
             pooling=cls) + positional encoding (learned | sinusoidal | none); `layers`
             pre-norm encoder blocks x + MHA(LN(x)), x + FFN(LN(x)) with
             FFN = Linear(ff_size) -> GELU -> dropout -> Linear(d_model); final LayerNorm;
             pooling mean over tokens or the [CLS] token -> Linear.
Activation leaky_relu has negative slope 0.01; gelu is the exact (erf) form.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from launcher.core.specs import CNNSpec, MLPSpec, RNNSpec, TransformerSpec, image_shape, sequence_shape
from launcher.core.types import DataSchema

ACTIVATIONS = {
    "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU, "elu": nn.ELU, "leaky_relu": lambda: nn.LeakyReLU(0.01),
}


# -- networks ------------------------------------------------------------------------------
def _dense_stack(sizes_in: int, hidden: list[int], activation: str, dropout: float, norm: str) -> tuple[list[nn.Module], int]:
    layers: list[nn.Module] = []
    width = sizes_in
    for size in hidden:
        layers.append(nn.Linear(width, int(size)))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(int(size)))
        elif norm == "layer":
            layers.append(nn.LayerNorm(int(size)))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(size)
    return layers, width


class MLP(nn.Module):
    def __init__(self, spec: MLPSpec, schema: DataSchema):
        super().__init__()
        layers, width = _dense_stack(schema.n_features, list(spec.hidden_sizes), spec.activation,
                                     float(spec.dropout), spec.norm)
        self.body = nn.Sequential(*layers, nn.Linear(width, schema.n_outputs))

    def forward(self, x):
        return self.body(x)


class CNN(nn.Module):
    def __init__(self, spec: CNNSpec, schema: DataSchema):
        super().__init__()
        self.shape = image_shape(spec, schema)
        c, h, w = self.shape
        blocks: list[nn.Module] = []
        for channels, k in zip(spec.channels, spec.kernel_sizes):
            blocks.append(nn.Conv2d(c, int(channels), int(k), padding="same"))
            if spec.norm == "batch":
                blocks.append(nn.BatchNorm2d(int(channels)))
            elif spec.norm == "layer":
                blocks.append(nn.GroupNorm(1, int(channels)))
            blocks.append(ACTIVATIONS[spec.activation]())
            if spec.pooling == "max":
                blocks.append(nn.MaxPool2d(2))
            elif spec.pooling == "avg":
                blocks.append(nn.AvgPool2d(2))
            if spec.pooling != "none":
                h, w = h // 2, w // 2
            c = int(channels)
        self.features = nn.Sequential(*blocks)
        head, width = _dense_stack(c * h * w, list(spec.hidden_sizes), spec.activation, float(spec.dropout), "none")
        if spec.dropout > 0 and not head:  # no hidden layers: still apply dropout before the output
            head = [nn.Dropout(float(spec.dropout))]
        self.head = nn.Sequential(nn.Flatten(), *head, nn.Linear(width, schema.n_outputs))

    def forward(self, x):
        return self.head(self.features(x.view(x.shape[0], *self.shape)))


class RNN(nn.Module):
    def __init__(self, spec: RNNSpec, schema: DataSchema):
        super().__init__()
        self.steps, self.size = sequence_shape(spec, schema)
        cell = nn.LSTM if spec.cell == "lstm" else nn.GRU
        layers = int(spec.num_layers)
        self.rnn = cell(self.size, int(spec.hidden_size), num_layers=layers, batch_first=True,
                        bidirectional=bool(spec.bidirectional),
                        dropout=float(spec.dropout) if layers > 1 else 0.0)
        self.directions = 2 if spec.bidirectional else 1
        self.dropout = nn.Dropout(float(spec.dropout))
        self.out = nn.Linear(int(spec.hidden_size) * self.directions, schema.n_outputs)

    def forward(self, x):
        _, state = self.rnn(x.view(x.shape[0], self.steps, self.size))
        h = state[0] if isinstance(state, tuple) else state  # (layers * directions, n, hidden)
        last = torch.cat([h[-d] for d in range(self.directions, 0, -1)], dim=1)  # forward, backward
        return self.out(self.dropout(last))


def sinusoidal(steps: int, d_model: int) -> torch.Tensor:
    pos = torch.arange(steps, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(steps, d_model)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
    return pe


class Transformer(nn.Module):
    def __init__(self, spec: TransformerSpec, schema: DataSchema):
        super().__init__()
        self.steps, self.size = sequence_shape(spec, schema)
        d = int(spec.d_model)
        self.cls = spec.pooling == "cls"
        tokens = self.steps + (1 if self.cls else 0)
        self.embed = nn.Linear(self.size, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if self.cls else None
        if spec.positional == "learned":
            self.position = nn.Parameter(torch.randn(1, tokens, d) * 0.02)
        elif spec.positional == "sinusoidal":
            self.register_buffer("position", sinusoidal(tokens, d)[None], persistent=False)
        else:
            self.position = None
        layer = nn.TransformerEncoderLayer(d, int(spec.heads), int(spec.ff_size), float(spec.dropout),
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, int(spec.layers), norm=nn.LayerNorm(d),
                                             enable_nested_tensor=False)
        self.out = nn.Linear(d, schema.n_outputs)

    def forward(self, x):
        z = self.embed(x.view(x.shape[0], self.steps, self.size))
        if self.cls_token is not None:
            z = torch.cat([self.cls_token.expand(z.shape[0], -1, -1), z], dim=1)
        if self.position is not None:
            z = z + self.position
        z = self.encoder(z)
        return self.out(z[:, 0] if self.cls else z.mean(dim=1))


NETWORKS = {"mlp": MLP, "cnn": CNN, "rnn": RNN, "transformer": Transformer}


def build_network(spec, schema: DataSchema) -> nn.Module:
    return NETWORKS[spec.type](spec, schema)
