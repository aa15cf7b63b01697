"""The JAX training loop: jit-compiled epochs, Optax for the updates.

The network is an NNX module; the loop works on its pure state (`nnx.split` into a GraphDef,
the parameters and the batch statistics) and merges it back inside the compiled functions, the
functional form the Flax guide recommends where speed matters. The compiled programs, each
compiled once per fit:

    train_epoch  every step of an epoch in one `lax.scan`: gather the batch, forward with
                 dropout, loss, gradients, Optax update (one dispatch per epoch)
    train_step   the same step as a program of its own, called per batch: for convolutions on
                 a CPU, which XLA runs far slower inside a loop (`stepwise`)
    evaluate     the validation sums (loss, accuracy or squared errors) of a chunk of rows
One host sync per epoch, for its metrics.

Fixed shapes, so no epoch recompiles: the batches are core.trainer.batch_order's (the same
rows, in the same order, as the PyTorch loop), padded to one width with a mask. Padded rows
carry no weight in the loss and no part in batch statistics, so every training row is seen
every epoch, as in PyTorch, at the price of computing at most one batch of padding per epoch.
Validation rows are padded to whole chunks the same way. The learning rate of each epoch
(core.trainer.LRSchedule) is an Optax hyperparameter (`optax.inject_hyperparams`): an array in
the optimizer state, so changing it does not recompile. The programs are cached by everything
static about them (network structure, task, optimizer settings, precision): a second fit of the
same model in one process, e.g. the next trial of a sweep over the learning rate, compiles
nothing.

Randomness: the initial weights come from jax.random.key(seed); dropout masks from a key of the
same seed (`dropout_root`) folded with the epoch and then the step, so a resumed run draws what
an uninterrupted one does.
The optimizer is built from the trainer settings to mean what torch.optim means: Adam and SGD
add weight_decay * w to the gradient (L2), AdamW decays decoupled; clipping by global norm
comes first in the chain, as clip_grad_norm_ before optimizer.step().

Checkpoints (checkpoints/last.msgpack and best.msgpack, written as core.trainer.CheckpointPolicy
says) hold the parameters, batch statistics, optimizer state, the dropout key, the epoch, the
EpochRecorder and the LRSchedule, as named arrays (state.py); `trainer.resume_from` continues
from last.msgpack with the same result as an uninterrupted run.

Imports jax, flax and optax at the top: only the adapter imports this module, inside fit().
"""
from __future__ import annotations

import json
import logging
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from launcher.core.errors import ArtifactError, ConfigError
from launcher.core.trainer import (EpochDisplay, EpochRecorder, LRSchedule, Stopwatch, TrainerSettings,
                                   batch_order, check_resumable, epoch_metrics)
from launcher.core.types import History, Report, Splits
from launcher.frameworks.flax import BEST_CHECKPOINT as BEST, LAST_CHECKPOINT as LAST, state as statefile
from launcher.frameworks.checkpoints import EpochCheckpoints
from launcher.frameworks.flax.networks import abstract_network, build_network
from launcher.io import verify

log = logging.getLogger("launcher")

CHECKPOINT_FORMAT = "launcher-flax-checkpoint/1"
VAL_CHUNK = 4096
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


# -- what the compiled programs depend on, besides array shapes ------------------------------
@dataclass(frozen=True)
class Plan:
    """Static for jax.jit: equal plans share compiled programs (it hashes the network's structure)."""

    graphdef: Any
    regression: bool
    optimizer: str
    weight_decay: float
    momentum: float
    grad_clip: float | None

    @classmethod
    def of(cls, model: Any, s: TrainerSettings) -> "Plan":
        """The plan to train `model` (its network's structure; bf16-mixed: the same network
        computing in bfloat16) with the settings `s`."""
        bf16 = s.precision == "bf16-mixed"
        net = abstract_network(model.spec, model.schema, jnp.bfloat16) if bf16 else model.net
        return cls(nnx.graphdef(net), model.schema.task == "regression", s.optimizer, s.weight_decay,
                   s.momentum, s.grad_clip)

    def optimizer_transform(self) -> optax.GradientTransformation:
        return make_optimizer(self.optimizer, self.weight_decay, self.momentum, self.grad_clip)


def make_optimizer(name: str, weight_decay: float, momentum: float, grad_clip: float | None
                   ) -> optax.GradientTransformation:
    """torch.optim's Adam, AdamW and SGD as an Optax chain; the learning rate is injected."""

    def chain(learning_rate: Any) -> optax.GradientTransformation:
        parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip else []
        if name in ("adam", "sgd") and weight_decay:
            parts.append(optax.add_decayed_weights(weight_decay))  # L2: the gradient += wd * w
        if name == "sgd":
            if momentum:
                parts.append(optax.trace(decay=momentum))  # buf = momentum * buf + g, as torch (no dampening)
        else:
            parts.append(optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8))
            if name == "adamw" and weight_decay:
                parts.append(optax.add_decayed_weights(weight_decay))  # decoupled: w -= lr * wd * w
        parts.append(optax.scale_by_learning_rate(learning_rate))
        return optax.chain(*parts)

    return optax.inject_hyperparams(chain)(learning_rate=0.0)  # set each epoch: with_learning_rate


def dropout_root(seed: int) -> jax.Array:
    """The key the dropout masks derive from (folded with the epoch, then the step): the seed's
    key folded with 1 (the initial weights use the seed's key itself). JAX's default threefry
    keys: the same masks on every device. (The "rbg" implementation compiles a
    transformer's epoch seconds faster, but its masks cost twice the time of threefry's on a CPU:
    benchmarks/jax_epoch.py's MLP, 7.3 ms an epoch against 4.0.)"""
    return jax.random.fold_in(jax.random.key(seed), 1)


def with_learning_rate(opt_state: Any, lr: float, device: Any) -> Any:
    """The optimizer state with the epoch's rate: a float32 scalar committed to the device every
    time, so the compiled programs see one signature. A new state (the one before may be held by
    a pending checkpoint)."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams,
                                           "learning_rate": jax.device_put(np.float32(lr), device)})


# -- the compiled programs ---------------------------------------------------------------------
def per_row_loss(out: jax.Array, y: jax.Array, regression: bool) -> jax.Array:
    out = out.astype(jnp.float32)
    if regression:
        return (out[:, 0] - y) ** 2
    return optax.softmax_cross_entropy_with_integer_labels(out, y)


@partial(jax.jit, static_argnames=("plan",))
def init_optimizer(plan: Plan, params: Any) -> Any:
    return plan.optimizer_transform().init(params)


def _train_step(plan: Plan, carry: tuple, X: jax.Array, y: jax.Array, index: jax.Array, m: jax.Array,
                epoch_key: jax.Array, i: jax.Array) -> tuple:
    """One batch: rows X[index] (padded; `m` marks the real ones), dropout key folded with step i."""
    params, stats, opt_state, total = carry
    xb, yb = X[index], y[index]
    real = m.sum()

    def loss_fn(p):
        # copy=True: new Variables at this trace level, which the batch norms may update
        net = nnx.merge(plan.graphdef, p, stats, copy=True)
        out = net(xb, train=True, rngs=nnx.Rngs(dropout=jax.random.fold_in(epoch_key, i)), mask=m > 0)
        loss = (per_row_loss(out, yb, plan.regression) * m).sum() / real
        return loss, nnx.state(net, nnx.BatchStat)

    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = plan.optimizer_transform().update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state, total + loss * real


@partial(jax.jit, static_argnames=("plan",))
def train_epoch(plan: Plan, carry: tuple, X: jax.Array, y: jax.Array, rows: jax.Array, mask: jax.Array,
                root: jax.Array, epoch: jax.Array) -> tuple:
    """Every batch of an epoch, `rows[i]` and `mask[i]`, in one program: carry is (params, batch
    statistics, optimizer state, summed training loss)."""
    epoch_key = jax.random.fold_in(root, epoch)

    def step(carry, batch):
        i, index, m = batch
        return _train_step(plan, carry, X, y, index, m, epoch_key, i), None

    carry, _ = jax.lax.scan(step, carry, (jnp.arange(rows.shape[0]), rows, mask))
    return carry


@partial(jax.jit, static_argnames=("plan",))
def train_step(plan: Plan, carry: tuple, X: jax.Array, y: jax.Array, index: jax.Array, m: jax.Array,
               root: jax.Array, epoch: jax.Array, i: jax.Array) -> tuple:
    """One batch as its own program (convolutions on a CPU: see stepwise)."""
    return _train_step(plan, carry, X, y, index, m, jax.random.fold_in(root, epoch), i)


def stepwise(model: Any, device: Any) -> bool:
    """Whether an epoch runs as a program per batch rather than one program. XLA's CPU backend runs
    convolutions inside a loop (the epoch's lax.scan) some twenty times slower than the same
    convolutions in a program of their own (benchmarks/jax_epoch.py: a digits CNN epoch ~1.2 s
    against ~90 ms), so a CNN on a CPU takes one dispatch per batch instead; everything else, and
    every network on a GPU, one per epoch."""
    return device.platform == "cpu" and model.spec.type == "cnn"


@partial(jax.jit, static_argnames=("plan",))
def evaluate(plan: Plan, params: Any, stats: Any, sums: dict, X: jax.Array, y: jax.Array, m: jax.Array) -> dict:
    """`sums` plus the validation sums of one chunk of rows X (padded; `m` marks the real ones),
    in eval mode. A program per chunk (no loop inside, for the reason in `stepwise`)."""
    net = nnx.merge(plan.graphdef, params, stats, copy=True)
    out = net(X).astype(jnp.float32)
    add = {"val_n": m.sum(), "val_loss": (per_row_loss(out, y, plan.regression) * m).sum()}
    if plan.regression:
        add.update(val_sse=(((out[:, 0] - y) ** 2) * m).sum(), val_sum_y=(y * m).sum(), val_sum_y2=(y ** 2 * m).sum())
    else:
        add["val_correct"] = ((out.argmax(-1) == y) * m).sum()
    return {k: sums[k] + v for k, v in add.items()}


def validation_sums(plan: Plan, params: Any, stats: Any, chunks: list[tuple], zeros: dict) -> dict:
    sums = zeros
    for X, y, m in chunks:
        sums = evaluate(plan, params, stats, sums, X, y, m)
    return sums


@partial(jax.jit, static_argnames=("graphdef", "regression"))
def forward(graphdef: Any, params: Any, stats: Any, X: jax.Array, regression: bool) -> jax.Array:
    """Predictions in eval mode: class probabilities, or values."""
    out = nnx.merge(graphdef, params, stats, copy=True)(X).astype(jnp.float32)
    return out[:, 0] if regression else jax.nn.softmax(out, axis=-1)


# -- fixed shapes ------------------------------------------------------------------------------
def padded_batches(batches: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, mask), each (len(batches), width): short batches padded with row 0, masked out."""
    rows = np.zeros((len(batches), width), np.int32)
    mask = np.zeros((len(batches), width), np.float32)
    for i, b in enumerate(batches):
        rows[i, :len(b)] = b
        mask[i, :len(b)] = 1.0
    return rows, mask


def chunked(X: np.ndarray, y: np.ndarray, device: Any, chunk: int = VAL_CHUNK) -> list[tuple]:
    """[(X, y, mask)] on the device in chunks of one size, the last padded (mask 0)."""
    size = min(chunk, max(len(X), 1))
    out = []
    for start in range(0, len(X), size):
        xb, yb = X[start:start + size], y[start:start + size]
        pad = size - len(xb)
        mask = np.concatenate([np.ones(len(xb), np.float32), np.zeros(pad, np.float32)])
        xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
        yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
        out.append(jax.device_put((xb, yb, mask), device))
    return out


def split_model(net: nnx.Module) -> tuple[Any, Any, Any]:
    """(graphdef, parameters, batch statistics): every variable of our networks is one or the other."""
    return nnx.split(net, nnx.Param, nnx.BatchStat)


@contextmanager
def compile_clock() -> Iterator[dict[str, float]]:
    """Counts XLA compilations and their seconds while the block runs."""
    seen = {"compilations": 0, "seconds": 0.0}

    def listener(event: str, duration: float, **_: Any) -> None:
        if event == COMPILE_EVENT:
            seen["compilations"] += 1
            seen["seconds"] += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


# -- the fit -----------------------------------------------------------------------------------
def fit(model: Any, data: Splits, s: TrainerSettings, device: Any, *, workdir: Path | None,
        report: Report | None, resume: Path | None) -> History:
    """Train model.net in place on `device` (a jax.Device); returns the history."""
    regression = model.schema.task == "regression"
    with jax.default_device(device):
        root = dropout_root(s.seed)
        if not model.fitted:  # initial weights drawn from the run's seed
            model.net = build_network(model.spec, model.schema, jax.random.key(s.seed))
        _, params, stats = split_model(model.net)
        plan = Plan.of(model, s)
        opt_state = init_optimizer(plan, params)
        # committed to the device like every later epoch's outputs: the same signature, no recompile
        params, stats, opt_state, root = jax.device_put((params, stats, opt_state, root), device)
    schedule = LRSchedule(s)
    display = EpochDisplay(s.max_epochs, f"jax {model.spec.type}")
    recorder = EpochRecorder(s, report, display)
    checkpoints = Checkpoints(workdir, model, s) if workdir is not None else None
    best: tuple[Any, Any] | None = None
    where = "cpu" if device.platform == "cpu" else str(device)
    log.info("jax: %s %s on %s (%s, precision %s)", model.spec.type, model.schema.task, where,
             device.device_kind, s.precision)
    if resume is not None:
        params, stats, opt_state, root, best = _restore(resume, model, params, stats, opt_state, recorder,
                                                        schedule, s)
        params, stats, opt_state, root = jax.device_put((params, stats, opt_state, root), device)
        log.info("jax: resuming from %s at epoch %d", resume, recorder.next_epoch)
        if checkpoints is not None and best is not None:
            checkpoints.keep_best(resume.parent / BEST)

    X = jax.device_put(np.ascontiguousarray(data.X_train, dtype=np.float32), device)
    y = jax.device_put(np.asarray(data.y_train, dtype=np.float32 if regression else np.int32), device)
    val = chunked(np.ascontiguousarray(data.X_val, dtype=np.float32),
                  np.asarray(data.y_val, dtype=np.float32 if regression else np.int32), device)
    names = ("val_n", "val_loss", *(("val_sse", "val_sum_y", "val_sum_y2") if regression else ("val_correct",)))
    zeros = {k: jax.device_put(np.float32(0), device) for k in names}
    n = len(data.X_train)
    width = max(len(b) for b in batch_order(n, s.batch_size, s.seed, 1, shuffle=False))
    per_batch = stepwise(model, device)

    with ExitStack() as stack:
        stack.enter_context(display)
        compiled = stack.enter_context(compile_clock())
        if checkpoints is not None:
            stack.enter_context(checkpoints)  # on an interrupt or error: the latest epoch is written
        for epoch in range(recorder.next_epoch, s.max_epochs + 1):
            clock = Stopwatch()
            lr = schedule.lr(epoch)
            opt_state = with_learning_rate(opt_state, lr, device)
            rows, mask = padded_batches(batch_order(n, s.batch_size, s.seed, epoch), width)
            carry = (params, stats, opt_state, zeros["val_n"])  # a float32 zero on the device
            if per_batch:
                for i in range(len(rows)):
                    carry = train_step(plan, carry, X, y, rows[i], mask[i], root, np.int32(epoch), np.int32(i))
            else:
                carry = train_epoch(plan, carry, X, y, rows, mask, root, np.int32(epoch))
            params, stats, opt_state, loss_sum = carry
            sums = {"train_loss": loss_sum, "train_n": float(n), **validation_sums(plan, params, stats, val, zeros)}
            sums = {k: float(v) for k, v in jax.device_get(sums).items()}  # the epoch's one host sync
            row = {"epoch": epoch, **epoch_metrics(sums, regression, data.target_scale), "lr": lr,
                   "seconds": clock.seconds()}
            schedule.observe(row.get("val_loss"))

            def on_recorded(improved: bool, final: bool, row: dict = row,
                            now: tuple = (params, stats, opt_state)) -> None:
                nonlocal best
                if improved:  # jax arrays are immutable: keeping references is a snapshot
                    best = now[:2]
                if checkpoints is not None:
                    checkpoints.epoch_end({"params": now[0], "stats": now[1], "opt_state": now[2], "root": root,
                                           "epoch": row["epoch"], "recorder": recorder.state_dict(),
                                           "schedule": schedule.state_dict()},
                                          best if improved else None, row["seconds"], final)

            if recorder.end_epoch(row, on_recorded):
                break

    params, stats = best if best is not None else (params, stats)
    nnx.update(model.net, params, stats)
    model.fitted = True
    extra: dict[str, Any] = {"precision": s.precision, "accelerator": device.platform,
                             "device_kind": device.device_kind, "stopped_early": recorder.stopped_early,
                             "compilations": compiled["compilations"],
                             "compile_seconds": round(compiled["seconds"], 3)}
    if checkpoints is not None:
        extra["checkpoints"] = {"best": str(checkpoints.best), "last": str(checkpoints.last)}
    if resume is not None:
        extra["resumed_from"] = str(resume)
    return History(epochs=recorder.epochs, device=where, best_epoch=recorder.best_epoch, extra=extra)


def materialise(model: Any) -> None:
    """An unfitted model's network has shapes only (the adapter's build); give it weights drawn
    from key 0, as an unfitted PyTorch network has its initial weights."""
    if not model.fitted and any(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(nnx.state(model.net))):
        model.net = build_network(model.spec, model.schema, jax.random.key(0))


def predict(model: Any, X: np.ndarray, chunk: int) -> np.ndarray:
    """Eval-mode predictions in chunks; each chunk padded to a power of two rows, so predicting
    tables of many sizes compiles a handful of shapes, not one per size."""
    materialise(model)
    graphdef, params, stats = split_model(model.net)
    regression = model.schema.task == "regression"
    parts = []
    for start in range(0, len(X), chunk):
        part = X[start:start + chunk]
        size = min(chunk, 1 << max(4, (len(part) - 1).bit_length()))
        padded = np.concatenate([part, np.zeros((size - len(part), part.shape[1]), part.dtype)])
        parts.append(np.asarray(forward(graphdef, params, stats, padded, regression))[:len(part)])
    if not parts:
        return np.zeros((0,) if regression else (0, model.schema.n_outputs), np.float32)
    return np.concatenate(parts)


# -- checkpoints -------------------------------------------------------------------------------
class Checkpoints(EpochCheckpoints):
    """last.msgpack and best.msgpack (see launcher.frameworks.checkpoints for when they are
    written). The held state is references to immutable jax arrays: nothing to copy."""

    LAST, BEST = LAST, BEST

    def __init__(self, workdir: Path, model: Any, settings: TrainerSettings) -> None:
        super().__init__(workdir, json.dumps({"format": CHECKPOINT_FORMAT, "spec": asdict(model.spec),
                                              "schema": model.schema.to_dict(), "trainer": settings.fixed()},
                                             default=str))

    def write_last(self, state: dict[str, Any]) -> None:
        statefile.write(self.last, {
            "format": CHECKPOINT_FORMAT, "launcher": self.meta, "epoch": int(state["epoch"]),
            "recorder": json.dumps(state["recorder"]), "schedule": json.dumps(state["schedule"]),
            "rng": np.asarray(jax.random.key_data(state["root"])),
            "params": statefile.to_arrays(state["params"]), "batch_stats": statefile.to_arrays(state["stats"]),
            "opt_state": statefile.to_arrays(state["opt_state"])}, verified=True)

    def write_best(self, best: dict[str, Any]) -> None:
        params, stats = best["weights"]
        statefile.write(self.best, {"format": CHECKPOINT_FORMAT, "launcher": self.meta, "epoch": int(best["epoch"]),
                                    "params": statefile.to_arrays(params),
                                    "batch_stats": statefile.to_arrays(stats)}, verified=True)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents (plain msgpack: arrays, numbers, strings), its checksum and format
    checked."""
    try:
        verify(path, "checkpoint")
    except ArtifactError as exc:
        raise ConfigError(f"trainer.resume_from: {exc}") from None
    try:
        content = statefile.read(path)
        meta = json.loads(content["launcher"])
        if content.get("format") != CHECKPOINT_FORMAT or meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("format")
    except (statefile.StateError, KeyError, TypeError, ValueError, OSError):
        raise ConfigError(f"trainer.resume_from={path} is not a checkpoint of this version of launcher's JAX "
                          "adapter; start a new run") from None
    content["launcher"] = meta
    return content


def _restore(path: Path, model: Any, params: Any, stats: Any, opt_state: Any, recorder: EpochRecorder,
             schedule: LRSchedule, s: TrainerSettings) -> tuple[Any, Any, Any, Any, tuple[Any, Any] | None]:
    """Continue from a checkpoint: (params, stats, opt_state, dropout key, best epoch's (params,
    stats) when the best epoch came before it)."""
    content = read_checkpoint(path)
    check_resumable(path, content["launcher"], asdict(model.spec), model.schema.to_dict(), s)
    try:
        params = statefile.from_arrays(params, content["params"], "params")
        stats = statefile.from_arrays(stats, content["batch_stats"], "batch_stats")
        opt_state = statefile.from_arrays(opt_state, content["opt_state"], "opt_state")
        root = jax.random.wrap_key_data(np.asarray(content["rng"], np.uint32))
        recorder.load_state_dict(json.loads(content["recorder"]))
        schedule.load_state_dict(json.loads(content["schedule"]))
    except (statefile.StateError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"trainer.resume_from={path} is damaged ({exc}); start a new run") from None
    best = None
    best_file = path.parent / BEST
    if recorder.best_epoch is not None and best_file.is_file():
        saved = read_checkpoint(best_file)
        if saved.get("epoch") == recorder.best_epoch:
            try:
                best = (statefile.from_arrays(params, saved["params"], "params"),
                        statefile.from_arrays(stats, saved["batch_stats"], "batch_stats"))
            except (statefile.StateError, KeyError) as exc:
                raise ConfigError(f"{best_file} is damaged ({exc}); start a new run") from None
    return params, stats, opt_state, root, best
