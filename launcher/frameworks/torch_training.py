"""The Lightning side of the PyTorch adapter: the LightningModule, the data loaders and the
per-epoch bookkeeping (history, checkpoints, early stopping, sweep reports).

Imports torch and Lightning at the top; only `launcher.frameworks.pytorch` imports it, from
inside its methods.
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from launcher.frameworks.base import DataSchema
from launcher.frameworks.torch_networks import build_network

# -- the LightningModule ---------------------------------------------------------------------
class TorchModel(L.LightningModule):
    """A portable network plus what training needs: loss, optimizer, target scaling.

    `.spec` (the parsed spec) and `.schema` travel with it; `target_mean`/`target_std` scale a
    regression target to unit variance for training and are saved with the weights.
    """

    def __init__(self, spec, schema: DataSchema):
        super().__init__()
        self.spec, self.schema = spec, schema
        self.net = build_network(spec, schema)
        self.regression = schema.task == "regression"
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))
        self.automatic_optimization = False
        self.train_settings: dict[str, Any] = {}
        self.last_metrics: dict[str, float] = {}
        self._reset_sums()

    def forward(self, x):
        return self.net(x)

    def outputs(self, x):
        """Probabilities (classification) or values on the target's own scale (regression)."""
        out = self.net(x)
        if self.regression:
            return out.squeeze(-1) * self.target_std + self.target_mean
        return torch.softmax(out.float(), dim=-1)

    def _loss(self, out, y):
        if self.regression:
            return nn.functional.mse_loss(out.squeeze(-1).float(), (y - self.target_mean) / self.target_std)
        return nn.functional.cross_entropy(out.float(), y)

    def _reset_sums(self) -> None:
        self.sums: dict[str, Any] = {}

    def _add(self, name: str, value) -> None:
        self.sums[name] = self.sums[name] + value if name in self.sums else value

    # training
    def on_train_epoch_start(self) -> None:
        # Dropout noise is seeded per epoch, so a resumed run draws what an uninterrupted one does.
        seed = int(self.train_settings.get("seed", 0))
        torch.manual_seed((seed * 1_000_003 + self.current_epoch + 1) % (2**63 - 1))
        self.sums.pop("train_loss", None)
        self.sums.pop("train_n", None)

    def training_step(self, batch, batch_idx):
        # Manual optimisation: the same zero_grad/backward/clip/step a hand-written loop does,
        # through Lightning's precision and strategy plugins but without its closure machinery.
        optimizer = self.optimizers()
        x, y = batch
        loss = self._loss(self.net(x), y)
        optimizer.zero_grad()
        self.manual_backward(loss)
        clip = self.train_settings.get("grad_clip")
        if clip:
            self.clip_gradients(optimizer, gradient_clip_val=float(clip), gradient_clip_algorithm="norm")
        optimizer.step()
        self._add("train_loss", loss.detach() * len(y))
        self._add("train_n", len(y))

    def step_schedulers(self) -> None:
        """Once per epoch, after validation (the plateau scheduler watches val_loss)."""
        scheduler = self.lr_schedulers()
        if scheduler is None:
            return
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(self.last_metrics["val_loss"])
        else:
            scheduler.step()

    # validation: sums on the device, one sync per epoch
    def on_validation_epoch_start(self) -> None:
        for key in [k for k in self.sums if k.startswith("val_")]:
            del self.sums[key]

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self.net(x)
        self._add("val_loss", self._loss(out, y).detach() * len(y))
        self._add("val_n", len(y))
        if self.regression:
            pred = out.squeeze(-1).float() * self.target_std + self.target_mean
            centred = y - self.target_mean  # sums of centred values stay accurate in float32
            self._add("val_sse", ((pred - y) ** 2).sum())
            self._add("val_sum_y", centred.sum())
            self._add("val_sum_y2", (centred ** 2).sum())
        else:
            self._add("val_correct", (out.argmax(-1) == y).sum())

    def epoch_metrics(self) -> dict[str, float]:
        """This epoch's train loss and validation metrics, summed over all processes."""
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            dtype = torch.float32 if self.device.type == "mps" else torch.float64
            s = {k: float(trainer.strategy.reduce(torch.as_tensor(v, dtype=dtype, device=self.device),
                                                  reduce_op="sum")) for k, v in sorted(self.sums.items())}
        else:
            s = {k: float(v) for k, v in self.sums.items()}
        row: dict[str, float] = {}
        if s.get("train_n"):
            row["train_loss"] = s["train_loss"] / s["train_n"]
        n = s.get("val_n", 0)
        if n:
            row["val_loss"] = s["val_loss"] / n
            if self.regression:
                sst = s["val_sum_y2"] - s["val_sum_y"] ** 2 / n
                row["val_r2"] = 1.0 - s["val_sse"] / sst if sst > 0 else float("nan")
                row["val_rmse"] = math.sqrt(s["val_sse"] / n)
            else:
                row["val_accuracy"] = s["val_correct"] / n
        return row

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or "val_n" not in self.sums:
            return
        self.last_metrics = self.epoch_metrics()
        # Logged once per epoch for the progress bar and the plateau scheduler.
        metrics = {k: v for k, v in self.last_metrics.items() if math.isfinite(v)}
        self.log_dict({k: torch.tensor(v) for k, v in metrics.items()}, prog_bar=True, sync_dist=False)

    # optimisation
    def configure_optimizers(self):
        t = self.train_settings
        name = str(t.get("optimizer", "adam")).lower()
        lr, wd = float(t.get("lr", 1e-3)), float(t.get("weight_decay", 0.0) or 0.0)
        params = self.parameters()
        if name == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=wd)
        elif name == "adamw":
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        else:
            opt = torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=float(t.get("momentum", 0.9)))
        scheduler = str(t.get("scheduler") or "none").lower()
        epochs = max(1, int(t.get("max_epochs", 1)))
        if scheduler == "none":
            return opt
        if scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        elif scheduler == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.1)
        else:  # plateau
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
        # stepped by step_schedulers() once per epoch
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    # checkpoints carry the architecture, so a resume can check it fits
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["launcher"] = {"spec": asdict(self.spec), "schema": self.schema.to_dict()}


# -- data ------------------------------------------------------------------------------------
class Batches(torch.utils.data.Dataset):
    """In-memory tensors indexed by a whole batch of indices at once (no per-row collate)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, regression: bool):
        self.X = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))
        self.y = torch.as_tensor(np.asarray(y, dtype=np.float32 if regression else np.int64))

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], self.y[index]


class EpochBatches(torch.utils.data.Sampler):
    """Index batches, shuffled by (seed, epoch): epoch k is the same whether or not the run
    was resumed. Lightning calls `set_epoch` before each epoch."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int):
        self.n, self.batch_size, self.shuffle, self.seed, self.epoch = n, batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        batches = (self.n + self.batch_size - 1) // self.batch_size
        return batches - 1 if self._lone_last() else batches

    def _lone_last(self) -> bool:
        # a last batch of one row would break batch normalisation: it joins the batch before
        return self.n > self.batch_size and self.n % self.batch_size == 1

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        batches = list(order.split(self.batch_size))
        if self._lone_last():
            batches[-2:] = [torch.cat(batches[-2:])]
        return iter(batches)


def loader(X, y, regression: bool, batch_size: int, shuffle: bool, seed: int, distributed: bool = False):
    data = Batches(X, y, regression)
    if distributed:  # plain loader: Lightning swaps in a DistributedSampler per process
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.X, data.y),
                                           batch_size=batch_size, shuffle=shuffle)
    return torch.utils.data.DataLoader(data, sampler=EpochBatches(len(data), batch_size, shuffle, seed),
                                       batch_size=None)


# -- per-epoch bookkeeping -------------------------------------------------------------------
class EpochRecorder(L.Callback):
    """History, best/last checkpoints, early stopping, the sweep's `report`, the log line.

    One callback owns all of it so that everything is updated before the checkpoints of an
    epoch are written; its state is saved in each checkpoint, so a resumed run continues the
    same history, best score and patience count.
    """

    def __init__(self, monitor: str, mode: str, patience: int | None, checkpoint_dir, report, log_line,
                 max_epochs: int):
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.checkpoint_dir, self.report, self.log_line, self.max_epochs = checkpoint_dir, report, log_line, max_epochs
        self.epochs: list[dict[str, float]] = []
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.started = 0.0
        self.lr = float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "best_score": self.best_score, "best_epoch": self.best_epoch,
                "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = [dict(e) for e in state["epochs"]]
        self.best_score, self.best_epoch, self.wait = state["best_score"], state["best_epoch"], state["wait"]

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()
        self.lr = float(trainer.optimizers[0].param_groups[0]["lr"])  # the rate this epoch trains with

    def _improved(self, value: float) -> bool:
        if self.best_score is None or math.isnan(self.best_score):
            return not math.isnan(value)
        return value < self.best_score if self.mode == "min" else value > self.best_score

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch + 1, **pl_module.last_metrics}
        row["lr"] = self.lr
        row["seconds"] = time.perf_counter() - self.started
        self.epochs.append(row)
        pl_module.step_schedulers()  # before the checkpoint, so a resume starts from the stepped state
        value = row.get(self.monitor, float("nan"))
        improved = self._improved(value)
        if improved:
            self.best_score, self.best_epoch, self.wait = value, row["epoch"], 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}
        else:
            self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            trainer.should_stop = True
        if self.checkpoint_dir is not None:
            last = self.checkpoint_dir / "last.ckpt"
            # Lightning's weights_only here means "omit optimizer and loop state" on *save*:
            # a resume needs them. Loading stays torch.load(weights_only=True) (see pytorch.py).
            trainer.save_checkpoint(last, weights_only=False)
            if improved and trainer.is_global_zero:  # the same state: copy rather than serialise twice
                shutil.copyfile(last, self.checkpoint_dir / "best.ckpt")
        if trainer.is_global_zero:
            self.log_line(row, self.max_epochs)
        if self.report is not None:
            self.report(row["epoch"], dict(row))
