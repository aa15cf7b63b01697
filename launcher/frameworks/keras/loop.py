"""The Keras training loop: Keras' own `model.fit`, fed and steered by launcher.core.trainer.

`model.fit` runs the epochs: its compiled train step, its progress bar in a terminal. What is
the same in every framework comes from the core, so a Keras run means what a PyTorch run means:

- Batches: one tf.data stream over all the epochs of the fit, `steps_per_epoch` batches each,
  where epoch k yields exactly `batch_order(n, batch_size, seed, k)` (a pure function of the
  epoch, computed once per epoch). A resumed run sees the batches an uninterrupted one does.
- The learning rate of each epoch (`LRSchedule`) is set on the optimizer as the epoch begins.
- After each epoch a callback validates (sums over the validation rows -> `epoch_metrics`: the
  same metric names and formulas as PyTorch's), then `EpochRecorder` does the history, best
  epoch, early stopping (-> `model.stop_training`), the epoch line and the sweep's report, and
  the checkpoints are written.

The train step is launcher's (a Model wrapping the network; the network alone is what is
saved): cross-entropy or mean squared error, reported as the mean over the epoch's rows.
Optimizers keep PyTorch's meaning of the trainer settings: `weight_decay` is L2 added to the
gradient (after clipping) for adam and sgd, decoupled for adamw; sgd's momentum buffer holds
gradients, not steps, so a schedule scales the whole step as in PyTorch; `grad_clip` is the
global norm (Keras' global_clipnorm); epsilon is PyTorch's 1e-8.

A fit with a run directory keeps `checkpoints/last.npz` and `checkpoints/best.npz`
(checkpoints.py); `trainer.resume_from` continues from last.npz with the same result as an
uninterrupted run.

Imports TensorFlow and Keras at the top: only the adapter imports this module, inside fit().
"""
from __future__ import annotations

import logging
import sys
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from launcher.core.errors import ConfigError
from launcher.core.trainer import (EpochDisplay, EpochRecorder, LRSchedule, Stopwatch, TrainerSettings, batch_order,
                                   check_resumable, epoch_metrics)
from launcher.core.types import History, Report, Splits
from launcher.frameworks.keras import checkpoints as ckpt
from launcher.frameworks.keras import networks
from launcher.frameworks.keras.runtime import import_tensorflow

tf, keras = import_tensorflow()
from keras import ops  # noqa: E402

log = logging.getLogger("launcher")

VAL_CHUNK = 4096
EPSILON = 1e-8  # PyTorch's Adam epsilon (Keras' default is 1e-7)


# -- optimisers with PyTorch's meaning of the settings -------------------------------------------
class Adam(keras.optimizers.Adam):
    """Adam whose weight decay is PyTorch's: L2, `l2 * w` added to the (clipped) gradient.
    (Keras' own weight_decay is decoupled, which is what trainer.optimizer=adamw means.)"""

    def __init__(self, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.l2:
            gradient = ops.add(gradient, ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        super().update_step(gradient, variable, learning_rate)


class SGD(keras.optimizers.Optimizer):
    """PyTorch's SGD: buffer = momentum * buffer + (gradient + l2 * w); w -= lr * buffer.
    Keras' SGD folds the learning rate into its buffer, so a schedule would act differently."""

    def __init__(self, learning_rate: float, momentum: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name="sgd", **kwargs)
        self.momentum, self.l2 = float(momentum), float(l2)
        self.buffers: list[Any] = []

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        if self.momentum:
            self.buffers = [self.add_variable_from_reference(v, "momentum") for v in variables]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2:
            gradient = ops.add(gradient, ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        if self.momentum:
            buffer = self.buffers[self._get_variable_index(variable)]
            self.assign(buffer, ops.add(ops.multiply(buffer, ops.cast(self.momentum, variable.dtype)), gradient))
            gradient = buffer
        self.assign_sub(variable, ops.multiply(gradient, ops.cast(learning_rate, variable.dtype)))


def make_optimizer(s: TrainerSettings) -> keras.optimizers.Optimizer:
    clip = {"global_clipnorm": s.grad_clip} if s.grad_clip else {}
    if s.optimizer == "adamw" and s.weight_decay:
        optimizer = keras.optimizers.AdamW(learning_rate=s.lr, weight_decay=s.weight_decay, epsilon=EPSILON, **clip)
    elif s.optimizer in ("adam", "adamw"):
        optimizer = Adam(learning_rate=s.lr, l2=s.weight_decay if s.optimizer == "adam" else 0.0, epsilon=EPSILON,
                         **clip)
    else:
        optimizer = SGD(learning_rate=s.lr, momentum=s.momentum, l2=s.weight_decay, **clip)
    if s.precision == "16-mixed":  # fp16 gradients underflow without a loss scale
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


# -- the train step -----------------------------------------------------------------------------
def loss_fn(out: Any, y: Any, regression: bool) -> Any:
    out = ops.cast(out, "float32")
    if regression:
        return ops.mean(ops.square(ops.squeeze(out, -1) - y))
    return ops.mean(keras.losses.sparse_categorical_crossentropy(y, out, from_logits=True))


class Training(keras.Model):
    """The network and launcher's train step; fit() runs on this, the network is what is saved."""

    def __init__(self, net: keras.Model, regression: bool) -> None:
        super().__init__(name="training")
        self.net, self.regression = net, regression
        self.loss_mean = keras.metrics.Mean(name="loss")

    def call(self, x: Any, training: bool = False) -> Any:
        return self.net(x, training=training)

    @property
    def metrics(self) -> list[Any]:
        return [self.loss_mean]  # reset by fit at each epoch's start

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            loss = loss_fn(self.net(x, training=True), y, self.regression)
            scaled = self.optimizer.scale_loss(loss)
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.loss_mean.update_state(loss, sample_weight=ops.cast(ops.shape(y)[0], "float32"))
        return {"loss": self.loss_mean.result()}


def train_batches(X: np.ndarray, y: np.ndarray, s: TrainerSettings, first_epoch: int) -> tuple[Any, int]:
    """(dataset, steps per epoch): epochs first_epoch..max_epochs, epoch k in the order of
    batch_order(n, batch_size, seed, k) (a lone last row joins the batch before it, as in
    PyTorch: batch normalisation cannot normalise one row)."""
    n = len(X)
    steps = len(batch_order(n, s.batch_size, s.seed, 1))  # the same for every epoch

    def order(epoch: np.int64) -> tuple[np.ndarray, np.ndarray]:
        batches = batch_order(n, s.batch_size, s.seed, int(epoch))
        return np.concatenate(batches).astype(np.int64), np.array([len(b) for b in batches], np.int64)

    def epoch_batches(epoch: Any) -> Any:
        index, lengths = tf.numpy_function(order, [epoch], (tf.int64, tf.int64), stateful=False)
        index.set_shape([n])
        lengths.set_shape([steps])
        return tf.data.Dataset.from_tensor_slices(tf.RaggedTensor.from_row_lengths(index, lengths))

    def gather(index: Any, data: Any) -> Any:
        return tf.gather(data[0], index), tf.gather(data[1], index)

    # As Keras' own array adapter does: the arrays are one element, repeated, and gathered from.
    data = tf.data.Dataset.from_tensors((X, y)).repeat()
    batches = tf.data.Dataset.range(first_epoch, s.max_epochs + 1).flat_map(epoch_batches)
    dataset = tf.data.Dataset.zip(batches, data).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE), steps


def validation(net: keras.Model, X: np.ndarray, y: np.ndarray, regression: bool):
    """A function returning the epoch's validation sums (as epoch_metrics wants them)."""
    y_dtype = tf.float32 if regression else tf.int64

    @tf.function(input_signature=[tf.TensorSpec([None, X.shape[1]], tf.float32), tf.TensorSpec([None], y_dtype)])
    def sums(xb: Any, yb: Any) -> dict[str, Any]:
        out = ops.cast(net(xb, training=False), "float32")
        if regression:
            p = ops.squeeze(out, -1)
            sse = ops.sum(ops.square(p - yb))
            return {"val_loss": sse, "val_sse": sse, "val_sum_y": ops.sum(yb), "val_sum_y2": ops.sum(ops.square(yb))}
        loss = ops.sum(keras.losses.sparse_categorical_crossentropy(yb, out, from_logits=True))
        correct = ops.sum(ops.cast(ops.equal(ops.argmax(out, -1), yb), "float32"))
        return {"val_loss": loss, "val_correct": correct}

    chunks = [(tf.constant(X[i:i + VAL_CHUNK]), tf.constant(y[i:i + VAL_CHUNK])) for i in range(0, len(X), VAL_CHUNK)]

    def run() -> dict[str, float]:
        total: dict[str, float] = {"val_n": float(len(X))}
        for xb, yb in chunks:
            for k, v in sums(xb, yb).items():
                total[k] = total.get(k, 0.0) + float(v)
        return total

    return run


# -- the fit --------------------------------------------------------------------------------------
def fit(model: Any, data: Splits, s: TrainerSettings, device: str, *, workdir: Path | None,
        report: Report | None, resume: Path | None) -> History:
    """Train model.net in place (built here when the model is new); returns the history."""
    regression = model.schema.task == "regression"
    keras.utils.set_random_seed(s.seed % 2**32)  # initial weights and dropout seeds (NumPy takes 32 bits)
    net = networks.build_network(model.spec, model.schema, model.api, s.precision)
    if model.fitted:  # the Python API trains a fitted model further
        net.set_weights(model.net.get_weights())
    training = Training(net, regression)
    optimizer = make_optimizer(s)
    # Built now, not at the first step: the train step is traced before that, and a loss-scale
    # optimizer traced unbuilt would scale by its initial constant instead of its live scale.
    optimizer.build(net.trainable_variables)
    training.compile(optimizer=optimizer)
    schedule = LRSchedule(s)
    display = EpochDisplay(s.max_epochs, f"tensorflow {model.spec.type}", bar=False)
    recorder = EpochRecorder(s, report, display)
    spec = {**asdict(model.spec), "api": model.api}
    log.info("tensorflow: %s %s on %s (%s API, precision %s)", model.spec.type, model.schema.task, device,
             model.api, s.precision)
    best: list[np.ndarray] | None = None
    if resume is not None:  # before anything is written into this run's directory
        best = _restore(resume, spec, model.schema, net, optimizer, recorder, schedule, s)
        log.info("tensorflow: resuming from %s at epoch %d", resume, recorder.next_epoch)
    checkpoints = ckpt.Checkpoints(workdir, spec, model.schema, s) if workdir is not None else None
    if resume is not None and checkpoints is not None and best is not None:
        checkpoints.keep_best(resume.parent / ckpt.BEST)

    X = np.ascontiguousarray(data.X_train, dtype=np.float32)
    y = np.asarray(data.y_train, dtype=np.float32 if regression else np.int64)
    validate = validation(net, np.ascontiguousarray(data.X_val, dtype=np.float32),
                          np.asarray(data.y_val, dtype=np.float32 if regression else np.int64), regression)
    first = recorder.next_epoch
    if first <= s.max_epochs:
        dataset, steps = train_batches(X, y, s, first)
        epochs = Epochs(net, optimizer, schedule, recorder, checkpoints, validate, len(X), regression,
                        data.target_scale, best)
        # In a terminal Keras draws its bar, which shows the validation metrics too; the epoch
        # line (launcher's log) follows each finished bar line, and is all there is otherwise.
        verbose = 1 if sys.stdout.isatty() else 0
        bar = [keras.callbacks.ProgbarLogger()] if verbose else []
        with ExitStack() as stack:
            stack.enter_context(display)
            if checkpoints is not None:
                stack.enter_context(checkpoints)  # on an interrupt or error: the latest epoch is written
            training.fit(dataset, epochs=s.max_epochs, initial_epoch=first - 1, steps_per_epoch=steps, shuffle=False,
                         callbacks=[epochs.validate_callback, *bar, epochs.record_callback], verbose=verbose)
        best = epochs.best

    if best is not None:
        for variable, value in zip(net.variables, best):
            variable.assign(value)
    if s.precision != "32":  # the saved and predicting network computes in float32
        full = networks.build_network(model.spec, model.schema, model.api, "32")
        full.set_weights(net.get_weights())
        net = full
    model.net, model.fitted = net, True
    model.predictor = None
    extra: dict[str, Any] = {"precision": s.precision, "api": model.api, "device": device,
                             "stopped_early": recorder.stopped_early}
    if checkpoints is not None:
        extra["checkpoints"] = {"best": str(checkpoints.best), "last": str(checkpoints.last)}
    if resume is not None:
        extra["resumed_from"] = str(resume)
    return History(epochs=recorder.epochs, device=device, best_epoch=recorder.best_epoch, extra=extra)


class Epochs:
    """What happens around each epoch of model.fit, as two Keras callbacks placed either side
    of Keras' progress bar: before it, the epoch's learning rate (at its start) and validation
    (at its end: the metrics join Keras' logs, so the bar shows them); after it, the record:
    history, early stopping, checkpoints, the epoch line and the sweep's report."""

    def __init__(self, net: keras.Model, optimizer: Any, schedule: LRSchedule, recorder: EpochRecorder,
                 checkpoints: "ckpt.Checkpoints | None", validate: Any, rows: int, regression: bool, target_scale: float,
                 best: list[np.ndarray] | None) -> None:
        self.net, self.optimizer, self.schedule, self.recorder = net, optimizer, schedule, recorder
        self.checkpoints, self.validate, self.rows = checkpoints, validate, rows
        self.regression, self.target_scale = regression, target_scale
        self.best = best  # the best epoch's variables (a copy)
        self.row: dict[str, float] = {}
        outer = self

        class Validate(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                outer.begin(epoch + 1)

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                outer.end(epoch + 1, logs)

        class Record(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                if outer.record():
                    self.model.stop_training = True

        self.validate_callback, self.record_callback = Validate(), Record()

    def begin(self, epoch: int) -> None:
        self.clock = Stopwatch()
        self.lr = self.schedule.lr(epoch)
        self.optimizer.learning_rate.assign(self.lr)

    def end(self, epoch: int, logs: dict[str, Any]) -> None:
        sums = {"train_loss": float(logs["loss"]) * self.rows, "train_n": float(self.rows), **self.validate()}
        self.row = {"epoch": epoch, **epoch_metrics(sums, self.regression, self.target_scale), "lr": self.lr,
                    "seconds": self.clock.seconds()}
        logs.update({k: v for k, v in self.row.items() if k.startswith("val_")})

    def record(self) -> bool:
        """True when training should stop."""
        row = self.row
        self.schedule.observe(row.get("val_loss"))

        def on_recorded(improved: bool, final: bool) -> None:
            if improved:
                self.best = [v.numpy() for v in self.net.variables]
            if self.checkpoints is not None:
                state = {"net": [v.numpy() for v in self.net.variables],
                         "optimizer": [v.numpy() for v in self.optimizer.variables],
                         "recorder": self.recorder.state_dict(), "schedule": self.schedule.state_dict()}
                self.checkpoints.epoch_end(state, self.best if improved else None, row["seconds"], final)

        return self.recorder.end_epoch(row, on_recorded)


def _assign(variables: list[Any], values: list[np.ndarray], path: Path, what: str) -> None:
    if len(variables) != len(values) or any(tuple(v.shape) != a.shape for v, a in zip(variables, values)):
        raise ConfigError(f"trainer.resume_from={path} holds {what} of another shape; resume with the model, "
                          "data and trainer settings it was written with")
    for variable, value in zip(variables, values):
        variable.assign(value)


def _restore(path: Path, spec: dict[str, Any], schema: Any, net: keras.Model, optimizer: Any,
             recorder: EpochRecorder, schedule: LRSchedule, s: TrainerSettings) -> list[np.ndarray] | None:
    """Continue from a checkpoint; returns the best variables when the best epoch came before it."""
    doc, net_values, opt_values = ckpt.read(path)
    check_resumable(path, doc["launcher"], spec, schema.to_dict(), s)
    _assign(net.variables, net_values, path, "a network")
    _assign(optimizer.variables, opt_values, path, "optimizer state")
    recorder.load_state_dict(doc["recorder"])
    schedule.load_state_dict(doc["schedule"])
    best = path.parent / ckpt.BEST
    if recorder.best_epoch is not None and best.is_file():
        saved, values, _ = ckpt.read(best)
        if saved.get("epoch") == recorder.best_epoch:
            return values
    return None
