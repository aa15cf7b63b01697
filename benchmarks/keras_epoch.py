"""Epoch time of the launcher's Keras fit against a hand-written `model.fit`.

Same network (built by the adapter's networks module), same data, batch size, optimizer (Adam)
and threads, in the same process. An "epoch" is what the launcher does per epoch: one shuffled
pass over the training rows plus one validation pass with loss and accuracy; the hand-written
fit does the same with `model.fit(X, y, shuffle=True, validation_data=(X_val, y_val))` and
metrics=["accuracy"] (and, as a lower bound, without the validation pass). The launcher also
writes last.npz every epoch (and best.npz when validation improves); the `no-ckpt` column runs
the fit without a run directory to show that cost separately.

Per-epoch time is marginal: (time of a long fit - time of a short fit) / extra epochs, so the
fixed cost of a fit (building the network, tracing the train step) is reported on its own line.
Runs alternate between the loops and the best of `--repeats` is kept (robust to other
processes sharing the CPU).

TensorFlow's op determinism is process-wide and cannot be switched off once on: the launcher's
default (trainer.deterministic=true) turns it on for the hand-written fit too. Run once with
`--deterministic false` to see what it costs.

    python benchmarks/keras_epoch.py                         # digits (1,167 training rows)
    python benchmarks/keras_epoch.py --rows 20000            # larger synthetic data, same shape
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pytorch_epoch import digits_splits  # noqa: E402  (the same data as the PyTorch benchmark)


def hand_fit(net, splits, epochs: int, batch_size: int, lr: float, validate: bool = True) -> float:
    """A plain Keras fit doing the launcher's per-epoch work (validate=False: the training
    pass alone, a lower bound); returns seconds."""
    import keras

    net.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    start = time.perf_counter()
    net.fit(splits.X_train, splits.y_train, batch_size=batch_size, epochs=epochs, shuffle=True,
            validation_data=(splits.X_val, splits.y_val) if validate else None, verbose=0)
    return time.perf_counter() - start


def launcher_fit(adapter, spec, splits, epochs: int, batch_size: int, lr: float, deterministic: bool,
                 workdir) -> float:
    from launcher.core.trainer import TrainerSettings

    model = adapter.build(spec, splits.schema)
    settings = TrainerSettings(max_epochs=epochs, batch_size=batch_size, lr=lr, seed=0, optimizer="adam",
                               early_stopping=False, num_threads=adapter.num_threads, deterministic=deterministic)
    start = time.perf_counter()
    adapter.fit(model, splits, settings, workdir=workdir)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=None, help="synthetic rows instead of digits' 1,797")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=12, help="long fit; the short fit has 2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--deterministic", choices=["true", "false"], default="true")
    args = parser.parse_args()
    deterministic = args.deterministic == "true"
    # Keras' own array pipeline (the hand-written fit) logs a harmless C++ error line per fit
    # under op determinism (TensorFlow 2.21); keep the table readable.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from launcher.frameworks.keras import KerasAdapter, runtime

    tf, keras = runtime.import_tensorflow()
    tf.get_logger().setLevel("ERROR")  # a new validation function per fit: retracing notices
    adapter = KerasAdapter(device={"name": "cpu", "accelerator": "cpu", "devices": 1, "strategy": "auto"},
                           num_threads=args.threads)
    runtime.configure("cpu", memory_limit_mb=None, threads=args.threads, deterministic=deterministic)
    from launcher.core.specs import parse_spec
    from launcher.frameworks.keras import network_api, networks

    splits = digits_splits(args.rows)
    specs = {"mlp": {"type": "mlp", "hidden_sizes": [128, 64], "dropout": 0.1},
             "cnn": {"type": "cnn", "channels": [32, 64], "kernel_sizes": [3, 3], "hidden_sizes": [128],
                     "dropout": 0.1, "norm": "batch"}}
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, {args.threads} threads, "
          f"op determinism {'on' if deterministic else 'off'}, {len(splits.X_train)} training rows, "
          f"batch {args.batch_size}, {-(-len(splits.X_train) // args.batch_size)} steps/epoch")
    short, long_ = 2, args.epochs
    for name in args.models:
        spec = specs[name]
        parsed = parse_spec(spec)

        def fresh():
            keras.utils.set_random_seed(0)
            return networks.build_network(parsed, splits.schema, network_api(spec, parsed))

        times = {"hand": {}, "launcher": {}, "no-ckpt": {}, "train-only": {}}
        launcher_fit(adapter, spec, splits, 1, args.batch_size, 1e-3, deterministic, None)  # warm-up
        hand_fit(fresh(), splits, 1, args.batch_size, 1e-3)
        for _ in range(args.repeats):
            for epochs in (short, long_):
                with tempfile.TemporaryDirectory() as tmp:
                    t = launcher_fit(adapter, spec, splits, epochs, args.batch_size, 1e-3, deterministic, Path(tmp))
                times["launcher"][epochs] = min(times["launcher"].get(epochs, 1e9), t)
                t = launcher_fit(adapter, spec, splits, epochs, args.batch_size, 1e-3, deterministic, None)
                times["no-ckpt"][epochs] = min(times["no-ckpt"].get(epochs, 1e9), t)
                t = hand_fit(fresh(), splits, epochs, args.batch_size, 1e-3)
                times["hand"][epochs] = min(times["hand"].get(epochs, 1e9), t)
                t = hand_fit(fresh(), splits, epochs, args.batch_size, 1e-3, validate=False)
                times["train-only"][epochs] = min(times["train-only"].get(epochs, 1e9), t)
        per_epoch = {k: (v[long_] - v[short]) / (long_ - short) for k, v in times.items()}
        fixed = {k: v[short] - short * per_epoch[k] for k, v in times.items()}
        print(f"{name}: per epoch  hand {per_epoch['hand'] * 1e3:7.1f} ms | launcher "
              f"{per_epoch['launcher'] * 1e3:7.1f} ms ({per_epoch['launcher'] / per_epoch['hand']:.2f}x) | "
              "launcher without checkpoints "
              f"{per_epoch['no-ckpt'] * 1e3:7.1f} ms ({per_epoch['no-ckpt'] / per_epoch['hand']:.2f}x) | hand fit "
              f"without validation {per_epoch['train-only'] * 1e3:7.1f} ms")
        print(f"{name}: fixed cost per fit  hand {fixed['hand'] * 1e3:6.1f} ms | "
              f"launcher {fixed['launcher'] * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
