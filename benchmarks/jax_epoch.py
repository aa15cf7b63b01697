"""Epoch time of the launcher's JAX fit against hand-written jit-compiled Flax/Optax loops.

Same network (the adapter's Flax build, same initial weights), same data, batch size and Adam,
in the same process, after compilation. An "epoch" is what the launcher does per epoch: one
shuffled pass over the training rows (with dropout and batch-norm updates) plus one validation
pass with loss and accuracy, and one host sync. Two hand-written baselines:

    hand step  the usual loop: a jax.jit train step (NNX split/merge, Optax) called per batch from
               Python with NumPy batches, the last incomplete batch dropped
    hand scan  the whole epoch in one jitted lax.scan over the batches, as the launcher does

The launcher pads the last batch instead of dropping it (every row is trained on every epoch),
so it computes up to one batch more per epoch. It also writes last.msgpack every epoch (and
best.msgpack when validation improves); `no-ckpt` runs the fit without a run directory.

Per-epoch time is marginal: (time of a long fit - time of a short fit) / extra epochs, after a
warm-up fit that compiles; runs alternate and the best of `--repeats` is kept. Compile time is
reported separately: the XLA compilations of a first fit in this process (launcher: its
train_epoch and evaluate programs; hand: the step and the evaluation).

    python benchmarks/jax_epoch.py                       # digits (1,167 training rows)
    python benchmarks/jax_epoch.py --rows 20000          # larger synthetic data, same shape
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytorch_epoch import digits_splits  # noqa: E402  (one data set for both benchmarks)

SPECS = {"mlp": {"type": "mlp", "hidden_sizes": [128, 64], "dropout": 0.1},
         "cnn": {"type": "cnn", "channels": [32, 64], "kernel_sizes": [3, 3], "hidden_sizes": [128],
                 "dropout": 0.1, "norm": "batch"}}


class HandLoop:
    """A hand-written jit-compiled Flax/Optax loop for one network (the functional NNX form the
    Flax guide recommends for speed: split once, merge inside the jitted functions)."""

    def __init__(self, net, splits, batch_size: int, lr: float, seed: int) -> None:
        import jax
        import jax.numpy as jnp
        import optax
        from flax import nnx

        self.jax, self.splits, self.batch_size, self.seed = jax, splits, batch_size, seed
        graphdef, params, stats = nnx.split(net, nnx.Param, nnx.BatchStat)
        tx = optax.adam(lr)
        self.state = (params, stats, tx.init(params))

        def step(state, x, y, key):
            params, stats, opt_state = state

            def loss_fn(p):
                model = nnx.merge(graphdef, p, stats, copy=True)
                out = model(x, train=True, rngs=nnx.Rngs(dropout=key))
                return optax.softmax_cross_entropy_with_integer_labels(out, y).mean(), nnx.state(model, nnx.BatchStat)

            (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), stats, opt_state), loss

        def evaluate(state, x, y):
            out = nnx.merge(graphdef, state[0], state[1], copy=True)(x)
            return optax.softmax_cross_entropy_with_integer_labels(out, y).mean(), (out.argmax(-1) == y).mean()

        def epoch(state, X, Y, keys):
            return jax.lax.scan(lambda s, b: step(s, *b), state, (X, Y, keys))

        self.step, self.evaluate, self.scan_epoch = jax.jit(step), jax.jit(evaluate), jax.jit(epoch)
        self.X, self.y = splits.X_train, splits.y_train.astype(np.int32)
        self.Xv, self.yv = jnp.asarray(splits.X_val), jnp.asarray(splits.y_val.astype(np.int32))
        self.Xd, self.yd = jnp.asarray(self.X), jnp.asarray(self.y)
        self.root = jax.random.key(seed)

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.X) // self.batch_size * self.batch_size  # drop the last incomplete batch
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.X))[:n].reshape(-1, self.batch_size)

    def compile_seconds(self) -> float:
        x, y = self.X[:self.batch_size], self.y[:self.batch_size]
        start = time.perf_counter()
        self.step.lower(self.state, x, y, self.root).compile()
        self.evaluate.lower(self.state, self.Xv, self.yv).compile()
        return time.perf_counter() - start

    def run_steps(self, epochs: int) -> float:
        jax = self.jax
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            total = 0.0
            key = jax.random.fold_in(self.root, epoch)
            for i, idx in enumerate(self._order(epoch)):
                self.state, loss = self.step(self.state, self.X[idx], self.y[idx], jax.random.fold_in(key, i))
                total = total + loss
            vloss, acc = self.evaluate(self.state, self.Xv, self.yv)
            _ = (float(total), float(vloss), float(acc))  # one host sync per epoch, like the launcher
        return time.perf_counter() - start

    def run_scan(self, epochs: int) -> float:
        jax = self.jax
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            order = self._order(epoch)
            keys = jax.random.split(jax.random.fold_in(self.root, epoch), len(order))
            self.state, losses = self.scan_epoch(self.state, self.Xd[order], self.yd[order], keys)
            vloss, acc = self.evaluate(self.state, self.Xv, self.yv)
            _ = (float(losses.sum()), float(vloss), float(acc))
        return time.perf_counter() - start


def launcher_fit(adapter, spec, splits, epochs: int, batch_size: int, lr: float, seed: int, workdir):
    from launcher.core.trainer import TrainerSettings

    model = adapter.build(spec, splits.schema)
    settings = TrainerSettings(max_epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, optimizer="adam",
                               early_stopping=False)
    start = time.perf_counter()
    history = adapter.fit(model, splits, settings, workdir=workdir)
    return time.perf_counter() - start, history


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=None, help="synthetic rows instead of digits' 1,797")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=12, help="long fit; the short fit has 2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    args = parser.parse_args()

    from launcher.frameworks.flax import FlaxAdapter

    adapter = FlaxAdapter(device={"name": "cpu", "accelerator": "cpu", "devices": 1, "strategy": "auto"})
    adapter.devices()  # JAX started with the adapter's settings
    import flax
    import jax
    import optax

    from launcher.core.specs import parse_spec
    from launcher.frameworks.flax.networks import build_network

    splits = digits_splits(args.rows)
    n = len(splits.X_train)
    print(f"jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__}, {jax.devices()[0]}, "
          f"{n} training rows, batch {args.batch_size}: launcher {-(-n // args.batch_size)} steps/epoch "
          f"(last padded), hand {n // args.batch_size} (last dropped)")
    short, long_ = 2, args.epochs
    for name in args.models:
        spec = SPECS[name]
        _, first = launcher_fit(adapter, spec, splits, 1, args.batch_size, 1e-3, 0, None)  # compiles
        hand = HandLoop(build_network(parse_spec(spec), splits.schema, jax.random.key(0)), splits, args.batch_size,
                        1e-3, 0)
        hand_compile = hand.compile_seconds()
        hand.run_steps(1)
        hand.run_scan(1)
        times = {"hand step": {}, "hand scan": {}, "launcher": {}, "no-ckpt": {}}
        for _ in range(args.repeats):
            for epochs in (short, long_):
                with tempfile.TemporaryDirectory() as tmp:
                    t, _ = launcher_fit(adapter, spec, splits, epochs, args.batch_size, 1e-3, 0, Path(tmp))
                times["launcher"][epochs] = min(times["launcher"].get(epochs, 1e9), t)
                t, _ = launcher_fit(adapter, spec, splits, epochs, args.batch_size, 1e-3, 0, None)
                times["no-ckpt"][epochs] = min(times["no-ckpt"].get(epochs, 1e9), t)
                times["hand step"][epochs] = min(times["hand step"].get(epochs, 1e9), hand.run_steps(epochs))
                times["hand scan"][epochs] = min(times["hand scan"].get(epochs, 1e9), hand.run_scan(epochs))
        per_epoch = {k: (v[long_] - v[short]) / (long_ - short) for k, v in times.items()}
        base = per_epoch["hand step"]
        print(f"{name}: per epoch  hand step {base * 1e3:7.1f} ms | hand scan {per_epoch['hand scan'] * 1e3:7.1f} ms "
              f"({per_epoch['hand scan'] / base:.2f}x) | launcher {per_epoch['launcher'] * 1e3:7.1f} ms "
              f"({per_epoch['launcher'] / base:.2f}x) | launcher without checkpoints "
              f"{per_epoch['no-ckpt'] * 1e3:7.1f} ms ({per_epoch['no-ckpt'] / base:.2f}x)")
        print(f"{name}: compile (first fit in this process)  hand {hand_compile:5.2f} s | launcher "
              f"{first.extra['compile_seconds']:5.2f} s ({first.extra['compilations']} XLA compilations)")


if __name__ == "__main__":
    main()
