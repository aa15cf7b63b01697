"""Epoch time of the launcher's PyTorch fit (Lightning Fabric) against a hand-written loop.

Same network (built by the adapter, same initial weights), same data, batch size, optimizer
and thread count, in the same process. An "epoch" is what the launcher does per epoch: one
shuffled pass over the training rows plus one validation pass with loss and accuracy. The
launcher also writes last.ckpt every epoch (and best.ckpt when validation improves); the
`no-ckpt` column runs the fit without a run directory to show that cost separately.

Per-epoch time is marginal: (time of a long fit - time of a short fit) / extra epochs, so the
fixed cost of building a Trainer is reported on its own line, not spread over the epochs.
Runs alternate between the two loops and the best of `--repeats` is kept (robust to other
processes sharing the CPU).

    python benchmarks/pytorch_epoch.py                       # digits (1,167 training rows)
    python benchmarks/pytorch_epoch.py --rows 20000          # larger synthetic data, same shape
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def digits_splits(rows: int | None, seed: int = 0):
    from sklearn.datasets import load_digits

    from launcher.core.types import DataSchema
    from launcher.data import make_splits, split_indices

    d = load_digits()
    X, y = d.data.astype(np.float32), d.target.astype(np.int64)
    if rows:  # tile with noise to the requested size
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(X), rows)
        X = X[idx] + rng.normal(0, 0.5, (rows, X.shape[1])).astype(np.float32)
        y = y[idx]
    X = ((X - X.mean(0)) / (X.std(0) + 1e-6)).astype(np.float32)
    schema = DataSchema("classification", 64, [f"p{i}" for i in range(64)], list(range(10)), (1, 8, 8))
    parts = split_indices(y, len(y), "classification", 0.2, 0.15, seed)
    return make_splits(X, y, parts, schema)


def hand_loop(net, splits, epochs: int, batch_size: int, lr: float, seed: int) -> float:
    """A plain PyTorch loop doing the launcher's per-epoch work; returns seconds."""
    import torch
    from torch import nn

    X, y = torch.from_numpy(splits.X_train), torch.from_numpy(splits.y_train)
    Xv, yv = torch.from_numpy(splits.X_val), torch.from_numpy(splits.y_val)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    start = time.perf_counter()
    for epoch in range(epochs):
        torch.manual_seed(seed * 1_000_003 + epoch + 1)
        net.train()
        total, n = torch.zeros(()), 0
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        for idx in order.split(batch_size):
            xb, yb = X[idx], y[idx]
            loss = nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach() * len(yb)
            n += len(yb)
        net.eval()
        with torch.no_grad():
            vloss, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
            for s in range(0, len(Xv), 1024):
                out = net(Xv[s:s + 1024])
                vloss += nn.functional.cross_entropy(out, yv[s:s + 1024]) * len(out)
                correct += (out.argmax(-1) == yv[s:s + 1024]).sum()
        _ = (float(total / n), float(vloss / len(Xv)), float(correct) / len(Xv))  # one sync, like the launcher
    return time.perf_counter() - start


def launcher_fit(adapter, spec, splits, epochs: int, batch_size: int, lr: float, seed: int, workdir) -> float:
    from launcher.core.trainer import TrainerSettings

    model = adapter.build(spec, splits.schema)
    settings = TrainerSettings(max_epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, optimizer="adam",
                               early_stopping=False, num_threads=adapter.num_threads)
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
    args = parser.parse_args()

    import lightning_fabric as lightning
    import torch

    from launcher.core.specs import parse_spec
    from launcher.frameworks.torch import TorchAdapter
    from launcher.frameworks.torch import networks as nets

    torch.set_num_threads(args.threads)
    splits = digits_splits(args.rows)
    adapter = TorchAdapter(device={"name": "cpu", "accelerator": "cpu", "devices": 1, "strategy": "auto"},
                             num_threads=args.threads)
    specs = {"mlp": {"type": "mlp", "hidden_sizes": [128, 64], "dropout": 0.1},
             "cnn": {"type": "cnn", "channels": [32, 64], "kernel_sizes": [3, 3], "hidden_sizes": [128],
                     "dropout": 0.1, "norm": "batch"}}
    print(f"torch {torch.__version__}, lightning-fabric {lightning.__version__}, {args.threads} threads, "
          f"{len(splits.X_train)} training rows, batch {args.batch_size}, "
          f"{-(-len(splits.X_train) // args.batch_size)} steps/epoch")
    short, long_ = 2, args.epochs
    for name in args.models:
        spec = specs[name]
        times = {"hand": {}, "launcher": {}, "no-ckpt": {}}
        launcher_fit(adapter, spec, splits, 1, args.batch_size, 1e-3, 0, None)  # warm-up: imports, first calls
        hand_loop(nets.build_network(parse_spec(spec), splits.schema), splits, 1, args.batch_size, 1e-3, 0)
        for _ in range(args.repeats):
            for epochs in (short, long_):
                with tempfile.TemporaryDirectory() as tmp:
                    t = launcher_fit(adapter, spec, splits, epochs, args.batch_size, 1e-3, 0, Path(tmp))
                times["launcher"][epochs] = min(times["launcher"].get(epochs, 1e9), t)
                t = launcher_fit(adapter, spec, splits, epochs, args.batch_size, 1e-3, 0, None)
                times["no-ckpt"][epochs] = min(times["no-ckpt"].get(epochs, 1e9), t)
                torch.manual_seed(0)
                net = nets.build_network(parse_spec(spec), splits.schema)
                t = hand_loop(net, splits, epochs, args.batch_size, 1e-3, 0)
                times["hand"][epochs] = min(times["hand"].get(epochs, 1e9), t)
        per_epoch = {k: (v[long_] - v[short]) / (long_ - short) for k, v in times.items()}
        fixed = {k: v[short] - short * per_epoch[k] for k, v in times.items()}
        print(f"{name}: per epoch  hand {per_epoch['hand'] * 1e3:7.1f} ms | launcher {per_epoch['launcher'] * 1e3:7.1f} ms"
              f" ({per_epoch['launcher'] / per_epoch['hand']:.2f}x) | launcher without checkpoints "
              f"{per_epoch['no-ckpt'] * 1e3:7.1f} ms ({per_epoch['no-ckpt'] / per_epoch['hand']:.2f}x)")
        print(f"{name}: fixed cost per fit  hand {fixed['hand'] * 1e3:6.1f} ms | launcher {fixed['launcher'] * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
