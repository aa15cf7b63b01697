"""The PyTorch training loop, on Lightning Fabric.

Fabric places the network and the batches on the device, applies the precision (bf16/16-bit
autocast, gradient scaling) and runs one process per GPU under DDP; the loop itself is the plain
zero_grad / backward / clip / step a person writes by hand, so an epoch costs what a hand-written
loop costs (benchmarks/pytorch_epoch.py measures it). Everything that is the same in every
framework (settings, learning-rate schedule, batch order, history, early stopping, pruning
reports, the epoch line) comes from launcher.core.trainer.

A fit with a run directory keeps `checkpoints/last.ckpt` (weights, optimizer, schedule, history:
the end of the latest epoch, written as core.trainer.CheckpointPolicy says) and
`checkpoints/best.ckpt` (the weights of the best epoch); `trainer.resume_from` continues from
last.ckpt with the same result as an uninterrupted run. Reading a checkpoint uses
torch.load(weights_only=True): tensors and plain data only, no pickled code.

Imports torch and Lightning at the top: only the adapter imports this module, inside fit().
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning_fabric import Fabric
from torch import nn

from launcher.core.errors import ArtifactError, ConfigError
from launcher.core.trainer import (EpochDisplay, EpochRecorder, LRSchedule, Stopwatch, TrainerSettings,
                                   batch_order, check_resumable, epoch_metrics, epoch_seed)
from launcher.core.types import History, Report, Splits
from launcher.frameworks.checkpoints import EpochCheckpoints
from launcher.frameworks.torch import cluster
from launcher.frameworks.torch.networks import build_network
from launcher.io import verify, write_verified

log = logging.getLogger("launcher")

FABRIC_PRECISION = {"32": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}
CHECKPOINT_FORMAT = "launcher-torch-checkpoint/2"
VAL_CHUNK = 4096


def make_optimizer(net: nn.Module, s: TrainerSettings) -> torch.optim.Optimizer:
    params = net.parameters()
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    return torch.optim.SGD(params, lr=s.lr, weight_decay=s.weight_decay, momentum=s.momentum)


def loss_fn(out: torch.Tensor, y: torch.Tensor, regression: bool) -> torch.Tensor:
    if regression:
        return nn.functional.mse_loss(out.squeeze(-1).float(), y)
    return nn.functional.cross_entropy(out.float(), y)


def fit(model: Any, data: Splits, s: TrainerSettings, placement: tuple[str, Any, Any, int], *,
        workdir: Path | None, report: Report | None, resume: Path | None) -> History:
    """Train model.net in place; returns the history. `placement` is (accelerator, devices,
    strategy, num_nodes) as the adapter resolved it from the device config."""
    accelerator, devices, strategy, num_nodes = placement
    # A checkpoint that cannot continue here is refused before any other process starts.
    saved = read_checkpoint(resume) if resume is not None else None
    if saved is not None:
        check_resumable(resume, _per_process(resume, saved["launcher"], s, cluster.processes(devices, num_nodes)),
                        asdict(model.spec), model.schema.to_dict(), s)
    fabric = Fabric(accelerator=accelerator, devices=devices, strategy=strategy, num_nodes=num_nodes,
                    precision=FABRIC_PRECISION[s.precision], plugins=[cluster.environment()])
    fabric.launch()  # several devices outside SLURM: starts the other processes, which re-run the command
    fabric.seed_everything(s.seed, verbose=False)
    if not model.fitted:  # initial weights drawn from the run's seed
        model.net = build_network(model.spec, model.schema)
    regression = model.schema.task == "regression"
    if fabric.world_size == 1 and s.precision == "32":
        # Fabric's module and optimizer wrappers do nothing on one device at full precision but
        # cost ~50 us a step (7% of a small MLP's epoch, benchmarks/pytorch_epoch.py): the
        # plain module and optimizer there, on Fabric's device.
        net = model.net.to(fabric.device)
        optimizer = make_optimizer(net, s)
        backward, clip = _plain_backward, _plain_clip
    else:
        net, optimizer = fabric.setup(model.net, make_optimizer(model.net, s))
        backward = fabric.backward

        def clip(net: nn.Module, optimizer: Any, max_norm: float) -> None:
            fabric.clip_gradients(net, optimizer, max_norm=max_norm, error_if_nonfinite=False)
    schedule = LRSchedule(s)
    display = EpochDisplay(s.max_epochs, f"pytorch {model.spec.type}") if fabric.is_global_zero else None
    recorder = EpochRecorder(s, report, display, is_writer=fabric.is_global_zero)
    checkpoints = Checkpoints(workdir, fabric, model, s) if workdir is not None else None
    best_state: dict[str, torch.Tensor] | None = None
    if fabric.is_global_zero:
        log.info("pytorch: %s %s on %s (precision %s, %d threads)", model.spec.type, model.schema.task,
                 accelerator if fabric.world_size == 1 else f"{fabric.world_size} x {accelerator}", s.precision,
                 torch.get_num_threads())
    if resume is not None and saved is not None:
        best_state = _restore(resume, saved, net, optimizer, recorder, schedule)
        log.info("pytorch: resuming from %s at epoch %d", resume, recorder.next_epoch)
        if checkpoints is not None and best_state is not None:
            checkpoints.keep_best(resume.parent / "best.ckpt")

    device = fabric.device
    X = torch.as_tensor(np.ascontiguousarray(data.X_train, dtype=np.float32), device=device)
    y = torch.as_tensor(np.asarray(data.y_train, dtype=np.float32 if regression else np.int64), device=device)
    Xv = torch.as_tensor(np.ascontiguousarray(data.X_val, dtype=np.float32), device=device)
    yv = torch.as_tensor(np.asarray(data.y_val, dtype=np.float32 if regression else np.int64), device=device)
    rank, world = fabric.global_rank, fabric.world_size
    val_rows = torch.arange(rank, len(Xv), world, device=device)  # each process validates its share

    with ExitStack() as stack:
        if display is not None:
            stack.enter_context(display)
        if checkpoints is not None:
            stack.enter_context(checkpoints)  # on an interrupt or error: the latest epoch is written
        for epoch in range(recorder.next_epoch, s.max_epochs + 1):
            clock = Stopwatch()
            lr = schedule.lr(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            torch.manual_seed(epoch_seed(s.seed, epoch))  # dropout: the same whether resumed or not
            net.train()
            loss_sum = torch.zeros((), device=device)
            rows = 0
            for idx in _shard(batch_order(len(X), s.batch_size * world, s.seed, epoch), rank, world):
                index = torch.from_numpy(idx).to(device, non_blocking=True)
                xb, yb = X[index], y[index]
                loss = loss_fn(net(xb), yb, regression)
                optimizer.zero_grad(set_to_none=True)
                backward(loss)
                if s.grad_clip:
                    clip(net, optimizer, s.grad_clip)
                optimizer.step()
                loss_sum += loss.detach() * len(idx)
                rows += len(idx)
            sums = {"train_loss": loss_sum, "train_n": torch.tensor(float(rows), device=device),
                    **_validate(net, Xv[val_rows], yv[val_rows], regression)}
            if world > 1:
                sums = fabric.all_reduce(sums, reduce_op="sum")
            row = {"epoch": epoch, **epoch_metrics({k: float(v) for k, v in sums.items()}, regression,
                                                   data.target_scale), "lr": lr, "seconds": clock.seconds()}
            schedule.observe(row.get("val_loss"))

            def on_recorded(improved: bool, final: bool, row: dict = row) -> None:
                nonlocal best_state
                if improved:
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
                if checkpoints is not None:
                    state = {"net": net.state_dict(), "optimizer": optimizer.state_dict(),
                             "recorder": recorder.state_dict(), "schedule": schedule.state_dict()}
                    checkpoints.epoch_end(state, best_state if improved else None, row["seconds"], final)

            if recorder.end_epoch(row, on_recorded):
                break

    if best_state is not None:
        model.net.load_state_dict(best_state)
    model.net.cpu().eval()
    model.fitted = True
    extra: dict[str, Any] = {"precision": s.precision, "accelerator": accelerator, "devices": devices,
                             "strategy": str(strategy), "stopped_early": recorder.stopped_early,
                             "threads": torch.get_num_threads()}
    if checkpoints is not None:
        extra["checkpoints"] = {"best": str(checkpoints.best), "last": str(checkpoints.last)}
    if resume is not None:
        extra["resumed_from"] = str(resume)
    return History(epochs=recorder.epochs, device=str(fabric.device), best_epoch=recorder.best_epoch,
                   extra=extra, writer=fabric.is_global_zero)


def _plain_backward(loss: torch.Tensor) -> None:
    loss.backward()


def _plain_clip(net: nn.Module, optimizer: Any, max_norm: float) -> None:
    torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)


def _shard(batches: list[np.ndarray], rank: int, world: int) -> list[np.ndarray]:
    """One process's part of each batch (all of it on one device). Batches too small to give
    every process a row are dropped: under DDP every process must take every step."""
    if world == 1:
        return batches
    return [np.array_split(b, world)[rank] for b in batches if len(b) >= world]


@torch.no_grad()
def _validate(net: nn.Module, X: torch.Tensor, y: torch.Tensor, regression: bool) -> dict[str, torch.Tensor]:
    """Sums over the validation rows (one host sync per epoch, after all chunks)."""
    net.eval()
    out: dict[str, torch.Tensor] = {}

    def add(name: str, value: torch.Tensor) -> None:
        out[name] = out[name] + value if name in out else value

    zero = torch.zeros((), device=X.device)
    add("val_n", zero + len(X))
    for start in range(0, len(X), VAL_CHUNK):
        xb, yb = X[start:start + VAL_CHUNK], y[start:start + VAL_CHUNK]
        pred = net(xb)
        add("val_loss", loss_fn(pred, yb, regression) * len(xb))
        if regression:
            p = pred.squeeze(-1).float()
            add("val_sse", ((p - yb) ** 2).sum())
            add("val_sum_y", yb.sum())
            add("val_sum_y2", (yb ** 2).sum())
        else:
            add("val_correct", (pred.argmax(-1) == yb).sum().float())
    return out


class Checkpoints(EpochCheckpoints):
    """last.ckpt and best.ckpt (see launcher.frameworks.checkpoints for when they are written);
    only the first process writes. The held state is a copy: the live tensors move on."""

    def __init__(self, workdir: Path, fabric: Fabric, model: Any, settings: TrainerSettings) -> None:
        super().__init__(workdir, {"format": CHECKPOINT_FORMAT, "spec": asdict(model.spec),
                                   "schema": model.schema.to_dict(), "trainer": settings.fixed(),
                                   "processes": fabric.world_size},
                         writer=fabric.is_global_zero)

    def hold(self, state: dict[str, Any]) -> dict[str, Any]:
        return _copy(state)

    def write_last(self, state: dict[str, Any]) -> None:
        _save(self.last, {**state, "launcher": self.meta})

    def write_best(self, best: dict[str, Any]) -> None:
        _save(self.best, {"net": best["weights"], "epoch": best["epoch"], "launcher": self.meta})


def _save(path: Path, state: dict[str, Any]) -> None:
    write_verified(path, lambda tmp: torch.save(state, tmp))


def _copy(state: Any) -> Any:
    """A deep copy of a state (tensors cloned to the CPU), taken at an epoch's end."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _copy(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_copy(v) for v in state)
    return state


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents: tensors and plain data only (weights_only=True)."""
    try:
        verify(path, "checkpoint")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except ArtifactError as exc:
        raise ConfigError(f"trainer.resume_from: {exc}") from None
    except Exception as exc:  # torch's own message spans lines: its first says what it found
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"trainer.resume_from={path} is not a readable checkpoint: {first}") from None
    meta = state.get("launcher") if isinstance(state, dict) else None
    if not meta or meta.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"trainer.resume_from={path} was not written by this version of launcher's "
                          "PyTorch adapter; start a new run")
    return state


def _per_process(path: Path, saved: dict[str, Any], s: TrainerSettings, processes: int) -> dict[str, Any]:
    """The checkpoint's settings as this run's process count sees them. Every process holds the
    same weights and optimizer state, so a checkpoint continues on another number of processes
    when the global batch (trainer.batch_size x processes) stays the one it was trained with:
    the batches of every later epoch are then the same rows."""
    before = saved.get("processes", 1)
    trainer = dict(saved.get("trainer") or {})
    if before == processes or "batch_size" not in trainer:
        return saved
    batch = trainer["batch_size"] * before
    if batch % processes or s.batch_size * processes != batch:
        raise ConfigError(
            f"trainer.resume_from={path} was trained on {before} process(es) with trainer.batch_size="
            f"{trainer['batch_size']} (a global batch of {batch}); this run has {processes} process(es) with "
            f"trainer.batch_size={s.batch_size}: "
            + (f"set trainer.batch_size={batch // processes} to keep the global batch" if batch % processes == 0
               else f"{batch} rows do not split evenly over {processes} processes; resume on a process count "
                    f"that divides {batch}"))
    return {**saved, "trainer": {**trainer, "batch_size": s.batch_size}}


def _restore(path: Path, state: dict[str, Any], net: nn.Module, optimizer: Any, recorder: EpochRecorder,
             schedule: LRSchedule) -> dict[str, torch.Tensor] | None:
    """Continue from a checkpoint (read and checked); returns the best weights when the best
    epoch came before it."""
    net.load_state_dict(state["net"])
    optimizer.load_state_dict(state["optimizer"])
    recorder.load_state_dict(state["recorder"])
    schedule.load_state_dict(state["schedule"])
    best = path.parent / "best.ckpt"
    if recorder.best_epoch is not None and best.is_file():
        saved = read_checkpoint(best)
        if saved.get("epoch") == recorder.best_epoch:
            return saved["net"]
    return None
