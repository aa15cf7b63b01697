"""Per-epoch cost of each logger against none, for the PyTorch MLP on digits (issue 20).

The fit is the launcher's own (the torch adapter, checkpoints in the run directory as in a real
run) and the logger gets each epoch exactly as in `python -m launcher logger=...`: through the
tracker's `epoch` callable handed to the fit as its per-epoch report. The timed span is the fit
plus the final metrics (which send what MLflow's writer still holds), so nothing a logger
defers escapes the measurement. Per-epoch time is marginal, (long fit - short
fit) / extra epochs: the run's start (MLflow's run creation, W&B's service) and end are fixed
costs, reported on their own line. The loggers take turns and the best of --repeats is kept.

    eval "$(.ci/mlflow.sh)"                  # a local MLflow server (SQLite); else mlflow is skipped
    WANDB_SILENT=true python benchmarks/logger_overhead.py
    python benchmarks/logger_overhead.py --loggers none csv tensorboard
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from pytorch_epoch import digits_splits

SPEC = {"type": "mlp", "hidden_sizes": [128, 64], "dropout": 0.1}


def fit_seconds(adapter, splits, logger: str, epochs: int, root: Path, threads: int) -> tuple[float, float, float]:
    """(seconds of fit + final metrics, seconds of the run's start and finish, seconds spent in
    the logger's epoch calls) with `logger`."""
    from launcher.core.trainer import TrainerSettings
    from launcher.tracking import open_tracker

    out = Path(tempfile.mkdtemp(dir=root))
    fixed = time.perf_counter()
    tracker = open_tracker({"logger": None if logger == "none" else {logger: {"log_model": False} if logger in (
        "mlflow", "wandb") else {}}}, out)
    tracker.start({"benchmark": "logger_overhead", "model": SPEC, "trainer": {"max_epochs": epochs}},
                  framework="pytorch", model="mlp", task="classification", dataset="digits")
    fixed = time.perf_counter() - fixed
    model = adapter.build(SPEC, splits.schema)
    settings = TrainerSettings(max_epochs=epochs, batch_size=64, lr=1e-3, early_stopping=False, num_threads=threads)
    in_calls = [0.0]

    def report(epoch, row):  # the tracker's epoch call, timed
        t = time.perf_counter()
        tracker.epoch(epoch, row)
        in_calls[0] += time.perf_counter() - t

    start = time.perf_counter()
    adapter.fit(model, splits, settings, workdir=out, report=report if tracker else None)
    tracker.final({"val": {"accuracy": 0.5}}, epochs)
    seconds = time.perf_counter() - start
    end = time.perf_counter()
    tracker.finish("FINISHED")
    fixed += time.perf_counter() - end
    shutil.rmtree(out, ignore_errors=True)
    return seconds, fixed, in_calls[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loggers", nargs="+", default=["none", "csv", "tensorboard", "mlflow", "wandb"])
    parser.add_argument("--epochs", type=int, default=22, help="long fit; the short fit has 2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from launcher.frameworks.torch import TorchAdapter

    loggers = list(args.loggers)
    if "mlflow" in loggers and not os.environ.get("MLFLOW_TRACKING_URI", "").startswith("http"):
        print("mlflow: skipped (no server: eval \"$(.ci/mlflow.sh)\" sets MLFLOW_TRACKING_URI)")
        loggers.remove("mlflow")
    torch.set_num_threads(args.threads)
    splits = digits_splits(None)
    adapter = TorchAdapter(device={"name": "cpu", "accelerator": "cpu", "devices": 1, "strategy": "auto"},
                           num_threads=args.threads)
    short, long_ = 2, args.epochs
    times: dict[str, dict[int, float]] = {name: {} for name in loggers}
    fixed: dict[str, float] = {}
    calls: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in loggers:  # warm-up: imports, first calls, W&B's service
            fit_seconds(adapter, splits, name, 1, Path(tmp), args.threads)
        for _ in range(args.repeats):
            for epochs in (short, long_):
                for name in loggers:
                    seconds, start_end, in_calls = fit_seconds(adapter, splits, name, epochs, Path(tmp),
                                                               args.threads)
                    times[name][epochs] = min(times[name].get(epochs, 1e9), seconds)
                    fixed[name] = min(fixed.get(name, 1e9), start_end)
                    if epochs == long_:
                        calls[name] = min(calls.get(name, 1e9), in_calls / epochs)
    per_epoch = {name: (t[long_] - t[short]) / (long_ - short) for name, t in times.items()}
    base = per_epoch.get("none")
    print(f"torch {torch.__version__}, {args.threads} threads, digits ({len(splits.X_train)} training rows), "
          f"MLP {SPEC['hidden_sizes']}, batch 64; epochs {short} and {long_}, best of {args.repeats}")
    print("marginal: (long fit - short fit) / extra epochs; in call: the time inside the logger's epoch call,\n"
          "which other processes on the machine disturb far less; the ratios are against none's marginal epoch")
    for name in loggers:
        ratio = f"{per_epoch[name] / base:.3f}x" if base else "-"
        call_ratio = f"{(base + calls[name]) / base:.3f}x" if base else "-"
        print(f"{name:12s} marginal {per_epoch[name] * 1e3:7.2f} ms/epoch ({ratio})   in call "
              f"{calls[name] * 1e3:6.3f} ms/epoch ({call_ratio})   run start + end {fixed[name] * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
