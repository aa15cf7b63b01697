"""The one event stream of a run, fanned out to the writers its `logger` config chose."""
from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from launcher.core.errors import ConfigError, LauncherError, one_of
from launcher.tracking.params import flat_params, run_tags
from launcher.tracking.writer import Writer

log = logging.getLogger("launcher")

# logger name -> (module:class, the package it needs, the extra that installs it)
WRITERS = {
    "csv": ("launcher.tracking.csv_log:CsvWriter", None),
    "tensorboard": ("launcher.tracking.tensorboard_log:TensorBoardWriter", "tensorboard"),
    "mlflow": ("launcher.tracking.mlflow_log:MlflowWriter", "mlflow"),
    "wandb": ("launcher.tracking.wandb_log:WandbWriter", "wandb"),
}


def open_tracker(cfg: Mapping[str, Any], out: Path) -> "Tracker":
    """The writers of `cfg.logger` (a mapping: writer name -> its settings; null or empty: none),
    each checked now (its package installed, its server reachable), before any data is read."""
    chosen = cfg.get("logger")
    if not chosen or secondary_process():
        return Tracker([])
    if not isinstance(chosen, Mapping):
        raise ConfigError(f"logger={chosen!r} is invalid; choose one of the logger group's options "
                          f"(logger=csv, logger=mlflow, ...) or map names to settings: {one_of(WRITERS)}")
    if isinstance(chosen, DictConfig):
        chosen = OmegaConf.to_container(chosen, resolve=True)
    writers = []
    for name, settings in chosen.items():
        if name not in WRITERS:
            raise ConfigError(f"logger.{name} is not a logger; expected one of: {one_of(WRITERS)}")
        if settings is None:  # logger.mlflow=null switches one of `many` off
            continue
        target, package = WRITERS[name]
        if package and importlib.util.find_spec(package) is None:
            raise ConfigError(f"logger={name} needs the {package} package, which is not installed: "
                              f'pip install "launcher[{name}]"')
        module, cls = target.split(":")
        writers.append(getattr(importlib.import_module(module), cls)(settings, out))
    return Tracker(writers)


class Tracker:
    """Events in, to every writer. `start` runs before training: a writer that cannot start
    fails the run there. Afterwards a writer's failure costs that writer only (a warning, and
    it records nothing more): tracking never changes a result nor fails a trained run."""

    def __init__(self, writers: list[Writer]) -> None:
        self.writers = list(writers)

    def __bool__(self) -> bool:
        return bool(self.writers)

    def start(self, cfg: Any, **tags: Any) -> None:
        if not self.writers:
            return
        params, tags = flat_params(cfg), run_tags(**tags)
        for writer in self.writers:
            try:
                writer.start(params, tags)
            except LauncherError:
                raise
            except Exception as exc:
                raise ConfigError(f"logger={writer.name} could not start its run: {type(exc).__name__}: "
                                  f"{_first_line(exc)}") from None

    def epoch(self, epoch: int, row: Mapping[str, Any]) -> None:
        """A finished epoch of the trainer core (train_loss, val_*, lr, seconds): the `report`
        callable a fit takes."""
        if self.writers:
            self._each("epoch", int(epoch), _numbers({k: v for k, v in row.items() if k != "epoch"}))

    def final(self, scores: Mapping[str, Any], step: int = 0) -> None:
        """{"val": {...}, "test": {...}, "cv": {...}} -> val/accuracy, test/accuracy, cv/accuracy_mean ..."""
        flat = {f"{part}/{name}": value for part, values in scores.items() if isinstance(values, Mapping)
                for name, value in values.items()}
        self._each("final", _numbers(flat), int(step))

    def artifacts(self, files: list[Path], model_dir: Path | None) -> None:
        self._each("artifacts", [f for f in files if f.is_file()],
                   model_dir if model_dir is not None and model_dir.is_dir() else None)

    def finish(self, status: str) -> None:
        self._each("finish", status)
        self.writers = []

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> None:
        if kind is None:
            self.finish("FINISHED")
        elif issubclass(kind, KeyboardInterrupt) or kind.__name__ in ("Interrupted", "TrialPruned"):
            self.finish("KILLED")
        else:
            self.finish("FAILED")

    def _each(self, event: str, *args: Any) -> None:
        for writer in list(self.writers):
            try:
                getattr(writer, event)(*args)
            except Exception as exc:  # noqa: BLE001  a tracker's failure is never the run's
                log.warning("logger=%s: recording %s failed (%s: %s); it records nothing more for this run",
                            writer.name, event, type(exc).__name__, _first_line(exc))
                self.writers.remove(writer)
                if event != "finish":
                    try:
                        writer.finish("FAILED")
                    except Exception:  # noqa: BLE001
                        pass


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers among `values` (a tracker's metric is a number)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


def secondary_process() -> bool:
    """One of several processes of a multi-GPU or multi-node run that is not rank 0: the first
    process alone records the run (the launcher that spawned the others names their rank)."""
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JAX_PROCESS_ID"):
        value = os.environ.get(name, "0")
        if value.isdigit() and int(value) > 0:
            return True
    return False
