"""The framework-free half of neural training, shared by the PyTorch, Keras and Flax adapters.

What is the same whatever the framework lives here, once:

    TrainerSettings  the `trainer` group, validated (types, ranges, choices) before any
                     framework is imported; errors name the key and what would be right
    LRSchedule       the learning rate of each epoch (cosine, step, plateau, warm-up)
    batch_order      the shuffled batches of an epoch, a pure function of (seed, epoch), so a
                     resumed run sees what an uninterrupted one does, in every framework
    epoch_metrics    an epoch's losses and validation metrics from its sums (RMSE in the
                     target's units), so every framework reports the same numbers by name
    EpochRecorder    the per-epoch record: history, best epoch, early stopping, the epoch
                     line and progress bar, the sweep's pruning report; its state goes into
                     every checkpoint so a resume continues it
    find_checkpoint  `trainer.resume_from` (a run directory or a file) -> the checkpoint
    check_resumable  a checkpoint fixes the architecture and the optimisation; a resume that
                     changes them is refused with the differences listed

Epochs are 1-based everywhere: in the bar, the log lines, the history and the checkpoints.
"""
from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from launcher.core.errors import ConfigError, one_of
from launcher.core.types import Report

log = logging.getLogger("launcher")

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "step", "plateau")
PRECISIONS = ("32", "bf16-mixed", "16-mixed")
# monitor -> "min" | "max"
MONITORS = {"val_loss": "min", "val_accuracy": "max", "val_r2": "max", "val_rmse": "min"}
MONITORS_FOR_TASK = {"classification": ("val_loss", "val_accuracy"),
                     "regression": ("val_loss", "val_r2", "val_rmse")}
# The plateau scheduler halves the rate after this many epochs without a lower val_loss.
PLATEAU_PATIENCE, PLATEAU_FACTOR = 2, 0.5
# Settings a checkpoint fixes: resuming with other values would not continue the same run.
FIXED_BY_CHECKPOINT = ("optimizer", "lr", "weight_decay", "momentum", "scheduler", "warmup_epochs",
                       "batch_size", "grad_clip", "precision", "seed")


@dataclass(frozen=True)
class TrainerSettings:
    """The `trainer` config group, validated. Every neural framework reads it the same way."""

    max_epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9           # sgd only
    scheduler: str = "none"
    warmup_epochs: int = 0          # linear warm-up before the schedule
    grad_clip: float | None = None  # max global gradient norm
    early_stopping: bool = True
    patience: int = 5
    monitor: str = "val_loss"
    precision: str = "32"
    num_threads: int | None = None
    deterministic: bool = True
    resume_from: str | None = None
    cv_folds: int | None = None
    seed: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], seed: Any = 0) -> "TrainerSettings":
        """Validate a trainer config (a dict as composed by Hydra) and the run's seed."""
        config = dict(config)
        stopping = config.pop("early_stopping", None) or {}
        if not isinstance(stopping, Mapping):
            raise ConfigError(f"trainer.early_stopping={stopping!r} is invalid; expected a mapping with "
                              "enabled, patience and monitor")
        stopping = dict(stopping)
        names = {f.name for f in fields(cls)} - {"early_stopping", "patience", "monitor", "seed"}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ConfigError(f"trainer.{unknown[0]} is not a trainer setting; expected one of: "
                              f"{one_of(names | {'early_stopping'})}")
        unknown = sorted(set(stopping) - {"enabled", "patience", "monitor"})
        if unknown:
            raise ConfigError(f"trainer.early_stopping.{unknown[0]} is not a setting; expected one of: "
                              "enabled, monitor, patience")
        d = cls()
        get = config.get
        precision = str(get("precision", d.precision))
        precision = "32" if precision in ("32-true", "32.0") else precision
        settings = cls(
            max_epochs=_int("max_epochs", get("max_epochs", d.max_epochs), minimum=1),
            batch_size=_int("batch_size", get("batch_size", d.batch_size), minimum=1),
            optimizer=_choice("optimizer", get("optimizer", d.optimizer), OPTIMIZERS),
            lr=_number("lr", get("lr", d.lr), positive=True),
            weight_decay=_number("weight_decay", get("weight_decay", d.weight_decay) or 0.0),
            momentum=_number("momentum", get("momentum", d.momentum)),
            scheduler=_choice("scheduler", get("scheduler") or "none", SCHEDULERS),
            warmup_epochs=_int("warmup_epochs", get("warmup_epochs", 0) or 0, minimum=0),
            grad_clip=None if get("grad_clip") is None else _number("grad_clip", get("grad_clip"), positive=True),
            early_stopping=_bool("early_stopping.enabled", stopping.get("enabled", d.early_stopping)),
            patience=_int("early_stopping.patience", stopping.get("patience", d.patience), minimum=1),
            monitor=_choice("early_stopping.monitor", stopping.get("monitor") or "val_loss", tuple(MONITORS)),
            precision=_choice("precision", precision, PRECISIONS),
            num_threads=None if get("num_threads") is None else _int("num_threads", get("num_threads"), minimum=1),
            deterministic=_bool("deterministic", get("deterministic", d.deterministic)),
            resume_from=None if get("resume_from") in (None, "") else str(get("resume_from")),
            cv_folds=None if get("cv_folds") is None else _int("cv_folds", get("cv_folds"), minimum=2),
            seed=_int("seed", seed, minimum=0, key="seed"),
        )
        if settings.momentum < 0 or settings.momentum >= 1:
            raise ConfigError(f"trainer.momentum={settings.momentum!r} is invalid; expected a number in [0, 1)")
        if settings.weight_decay < 0:
            raise ConfigError(f"trainer.weight_decay={settings.weight_decay!r} is invalid; expected >= 0")
        if settings.warmup_epochs >= settings.max_epochs and settings.warmup_epochs:
            raise ConfigError(f"trainer.warmup_epochs={settings.warmup_epochs} leaves no epoch after the warm-up "
                              f"(trainer.max_epochs={settings.max_epochs}); use fewer warm-up epochs")
        return settings

    def check_task(self, task: str) -> None:
        """The monitored value must exist for the task."""
        valid = MONITORS_FOR_TASK.get(task, ())
        if self.monitor not in valid:
            raise ConfigError(f"trainer.early_stopping.monitor={self.monitor} does not apply to {task}; "
                              f"expected one of: {one_of(valid)}")

    @property
    def mode(self) -> str:
        return MONITORS[self.monitor]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fixed(self) -> dict[str, Any]:
        """What a checkpoint records and a resume must keep."""
        return {k: getattr(self, k) for k in FIXED_BY_CHECKPOINT}


def _int(name: str, value: Any, minimum: int, key: str | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{key or 'trainer.' + name}={value!r} is invalid; expected {expected}")
    return value


def _number(name: str, value: Any, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise ConfigError(f"trainer.{name}={value!r} is invalid; expected a {'positive ' if positive else ''}number")
    return float(value)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    text = str(value).lower()
    if text not in choices:
        raise ConfigError(f"trainer.{name}={value!r} is unknown; expected one of: {', '.join(choices)}")
    return text


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"trainer.{name}={value!r} is invalid; expected true or false")
    return value


# -- learning rate ---------------------------------------------------------------------------
class LRSchedule:
    """The learning rate each epoch trains with (epochs are 1-based), the same in every framework.

    none      the base rate
    cosine    from the base rate to 0 over the epochs after the warm-up
    step      x0.1 every max(1, (max_epochs - warm-up) // 3) epochs
    plateau   x0.5 once val_loss has not improved for 2 epochs in a row (`observe` each epoch)
    warm-up   `warmup_epochs` epochs rising linearly to the base rate first
    """

    def __init__(self, settings: TrainerSettings) -> None:
        self.s = settings
        self.factor = 1.0  # plateau's accumulated reduction
        self.best_loss = math.inf
        self.bad_epochs = 0

    def lr(self, epoch: int) -> float:
        s, base = self.s, self.s.lr
        if epoch <= s.warmup_epochs:
            return base * epoch / (s.warmup_epochs + 1)
        k = epoch - s.warmup_epochs - 1  # 0 for the first epoch after the warm-up
        span = max(1, s.max_epochs - s.warmup_epochs)
        if s.scheduler == "cosine":
            return base * 0.5 * (1.0 + math.cos(math.pi * k / span))
        if s.scheduler == "step":
            return base * 0.1 ** (k // max(1, span // 3))
        if s.scheduler == "plateau":
            return base * self.factor
        return base

    def observe(self, val_loss: float | None) -> None:
        """After each epoch's validation (plateau only)."""
        if self.s.scheduler != "plateau" or val_loss is None or math.isnan(val_loss):
            return
        if val_loss < self.best_loss * (1 - 1e-4) if self.best_loss > 0 else val_loss < self.best_loss:
            self.best_loss, self.bad_epochs = val_loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= PLATEAU_PATIENCE:
            self.factor *= PLATEAU_FACTOR
            self.bad_epochs = 0

    def state_dict(self) -> dict[str, float]:
        return {"factor": self.factor, "best_loss": self.best_loss, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.factor, self.best_loss = float(state["factor"]), float(state["best_loss"])
        self.bad_epochs = int(state["bad_epochs"])


# -- batches ---------------------------------------------------------------------------------
def batch_order(n: int, batch_size: int, seed: int, epoch: int, shuffle: bool = True,
                last: str = "merge") -> list[np.ndarray]:
    """The index batches of one epoch: a pure function of (seed, epoch).

    last="merge": a last batch of a single row joins the one before (batch normalisation cannot
    normalise one row); last="drop": the last incomplete batch is dropped, so every batch has
    the same shape (compiled steps, JAX); last="keep": as it comes.
    """
    if shuffle:
        order = np.random.Generator(np.random.PCG64([seed, epoch, 7919])).permutation(n)
    else:
        order = np.arange(n)
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if last == "drop" and len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    elif last == "merge" and len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [np.concatenate(batches[-2:])]
    return batches


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for the randomness inside epoch `epoch` (dropout): resumable, unlike a running RNG."""
    return int(np.random.SeedSequence([seed, epoch, 1_000_003]).generate_state(1)[0])


def epoch_metrics(sums: Mapping[str, float], regression: bool, target_scale: float) -> dict[str, float]:
    """An epoch's train loss and validation metrics from its sums (reduced over processes):
    train_loss, train_n, val_n, val_loss (sums of per-row losses), val_correct (classification),
    val_sse, val_sum_y, val_sum_y2 (regression). RMSE is in the target's units: the data layer
    standardised y, target_scale undoes it."""
    row: dict[str, float] = {}
    if sums.get("train_n"):
        row["train_loss"] = sums["train_loss"] / sums["train_n"]
    n = sums.get("val_n", 0.0)
    if n:
        row["val_loss"] = sums["val_loss"] / n
        if regression:
            sst = sums["val_sum_y2"] - sums["val_sum_y"] ** 2 / n
            row["val_r2"] = 1.0 - sums["val_sse"] / sst if sst > 0 else float("nan")
            row["val_rmse"] = (sums["val_sse"] / n) ** 0.5 * target_scale
        else:
            row["val_accuracy"] = sums["val_correct"] / n
    return row


# -- the per-epoch record --------------------------------------------------------------------
class EpochRecorder:
    """History, best epoch, early stopping, the epoch line, and the sweep's report.

    After each epoch's validation the adapter calls `end_epoch(row, on_recorded)`: the row joins
    the history and the best score and patience are updated; `on_recorded(improved, final)` then
    lets the adapter checkpoint (so a report that prunes or an interrupt that follows still
    leaves this epoch resumable); then the epoch line is logged and the report is made. It
    returns True when training should stop (patience spent, or the last epoch): `final`.
    """

    def __init__(self, settings: TrainerSettings, report: Report | None = None,
                 display: "EpochDisplay | None" = None, is_writer: bool = True) -> None:
        self.settings = settings
        self.report, self.display, self.is_writer = report, display, is_writer
        self.epochs: list[dict[str, float]] = []
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    @property
    def next_epoch(self) -> int:
        return len(self.epochs) + 1

    def improved(self, value: float) -> bool:
        if value is None or math.isnan(value):
            return False
        if self.best_score is None:
            return True
        return value < self.best_score if self.settings.mode == "min" else value > self.best_score

    def end_epoch(self, row: dict[str, float], on_recorded: Callable[[bool, bool], None] | None = None) -> bool:
        s = self.settings
        self.epochs.append(row)
        value = row.get(s.monitor, math.nan)
        improved = self.improved(value)
        if improved:
            self.best_score, self.best_epoch, self.wait = float(value), int(row["epoch"]), 0
        else:
            self.wait += 1
        final = (s.early_stopping and self.wait >= s.patience) or int(row["epoch"]) >= s.max_epochs
        if on_recorded is not None:
            on_recorded(improved, final)
        if self.is_writer and self.display is not None:
            self.display.epoch(row)
        if self.report is not None:
            self.report(int(row["epoch"]), dict(row))
        return final

    @property
    def stopped_early(self) -> bool:
        return bool(self.epochs) and int(self.epochs[-1]["epoch"]) < self.settings.max_epochs

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": [dict(e) for e in self.epochs], "best_score": self.best_score,
                "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epochs = [dict(e) for e in state["epochs"]]
        self.best_score, self.best_epoch, self.wait = state["best_score"], state["best_epoch"], int(state["wait"])


def epoch_line(row: Mapping[str, float], max_epochs: int) -> str:
    parts = [f"{k}={row[k]:.4f}" for k in row
             if k.startswith(("train_", "val_")) and isinstance(row[k], (int, float)) and not math.isnan(row[k])]
    return f"epoch {int(row['epoch'])}/{max_epochs}  {'  '.join(parts)}  ({row.get('seconds', 0.0):.2f}s)"


class EpochDisplay:
    """The per-epoch display: one log line per epoch (always, so the run's log file has them),
    and in a terminal a progress bar over the epochs that replaces those lines on the console.

    `bar=False` keeps the lines on the console too (Keras draws its own bar: the adapter asks
    for none here). A terminal that reports no size gets the plain lines.
    """

    def __init__(self, max_epochs: int, name: str, bar: bool | None = None, start_epoch: int = 1) -> None:
        self.max_epochs = max_epochs
        if bar is None:
            bar = sys.stderr.isatty() and shutil.get_terminal_size(fallback=(0, 0)).columns > 0
        self.bar = None
        self._filter: _DropEpochLines | None = None
        if bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max_epochs, initial=start_epoch - 1, desc=name, unit="epoch",
                            leave=True, dynamic_ncols=True)
            self._filter = _DropEpochLines.install()

    def epoch(self, row: Mapping[str, float]) -> None:
        log.info(epoch_line(row, self.max_epochs), extra={"epoch_line": True})
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in row.items()
                                  if k.startswith("val_") and isinstance(v, float) and not math.isnan(v)},
                                 refresh=False)
            self.bar.update(int(row["epoch"]) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._filter is not None:
            self._filter.remove()
            self._filter = None

    def __enter__(self) -> "EpochDisplay":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _DropEpochLines(logging.Filter):
    """On console handlers while a bar is drawn: the epoch lines go to files only."""

    def __init__(self, handlers: list[logging.Handler]) -> None:
        super().__init__()
        self.handlers = handlers

    @classmethod
    def install(cls) -> "_DropEpochLines":
        consoles = []
        for logger in (logging.getLogger(), log):
            for h in logger.handlers:
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                    consoles.append(h)
        f = cls(consoles)
        for h in consoles:
            h.addFilter(f)
        return f

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "epoch_line", False)

    def remove(self) -> None:
        for h in self.handlers:
            h.removeFilter(self)


class CheckpointPolicy:
    """When an adapter writes last.ckpt: after every epoch, unless epochs are so short that
    writing each would cost more than `budget` (2.5%) of the training time (tiny networks on small
    data: a 15 ms epoch and a 2 ms write); then after enough epochs to keep within it. The final
    epoch is always written, and an adapter keeps the unwritten latest epoch in memory and
    writes it (`flush`) when the fit is interrupted or fails, so Ctrl-C, a pruned trial or an
    error loses nothing; only a hard kill can lose the few unwritten epochs.
    """

    def __init__(self, budget: float = 0.025) -> None:
        self.budget = budget
        self.write_seconds: float | None = None  # how long the last write took
        self.training_seconds = 0.0  # since the last write

    def due(self, epoch_seconds: float, final: bool) -> bool:
        self.training_seconds += epoch_seconds
        return final or self.write_seconds is None or self.training_seconds * self.budget >= self.write_seconds

    def wrote(self, seconds: float) -> None:
        self.write_seconds, self.training_seconds = seconds, 0.0


# -- resume ----------------------------------------------------------------------------------
def find_checkpoint(resume_from: str, filename: str, framework: str) -> Path:
    """The checkpoint a `trainer.resume_from` value names: a run directory (its
    checkpoints/<filename>) or the file itself; relative paths are from where the command ran."""
    from launcher.core.paths import original_cwd

    path = Path(str(resume_from)).expanduser()
    if not path.is_absolute():
        path = original_cwd() / path
    if path.is_dir():
        for candidate in (path / "checkpoints" / filename, path / filename):
            if candidate.is_file():
                return candidate
        raise ConfigError(f"trainer.resume_from={resume_from}: no checkpoints/{filename} in that directory; "
                          f"give the run directory of a {framework} run, or its checkpoint file")
    if not path.is_file():
        raise ConfigError(f"trainer.resume_from={resume_from}: no such file or directory; give a run "
                          "directory or a checkpoint file")
    return path


def check_resumable(path: Path, saved: Mapping[str, Any], spec: Mapping[str, Any],
                    schema: Mapping[str, Any], settings: TrainerSettings) -> None:
    """Refuse a resume that would not continue the saved run: another architecture or data
    shape, or other optimisation settings (raise max_epochs to train further)."""
    if saved.get("spec") != dict(spec) or saved.get("schema", {}).get("n_features") != schema.get("n_features") \
            or saved.get("schema", {}).get("classes") != schema.get("classes"):
        raise ConfigError(
            f"trainer.resume_from={path} holds a different model or data: saved spec {saved.get('spec')} with "
            f"{saved.get('schema', {}).get('n_features')} features; this run: {dict(spec)} with "
            f"{schema.get('n_features')}. Resume with the same model and data settings")
    before = saved.get("trainer") or {}
    now = settings.fixed()
    changed = [f"trainer.{k}: {before[k]!r} -> {now[k]!r}" for k in now if k in before and before[k] != now[k]]
    if changed:
        raise ConfigError(f"trainer.resume_from={path} was trained with other settings ({'; '.join(changed)}); "
                          "a checkpoint continues the run it came from: resume with its settings (only "
                          "trainer.max_epochs and early stopping may change), or start a new run")


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start
