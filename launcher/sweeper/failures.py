"""A failed trial: its traceback in the trial's own log file, one line on the console.

The traceback is written by a Hydra callback (``TrialLog``, added to ``hydra.callbacks`` by the
sweeper's config) in the job's own process, at the end of the job: Hydra's ``run_job`` keeps
the exception there with its traceback, whereas what reaches the sweep process from a joblib,
submitit or Ray worker is the exception pickled without it. The sweep process then prints one
line per failed trial naming that file (``log_file``), so both sides derive the path the same way.
"""
from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

log = logging.getLogger(__name__)


def log_file(hydra_cfg: Any) -> Path | None:
    """The job's log file: the first file handler of ``hydra.job_logging`` (Hydra's default is
    ``<run dir>/<job name>.log``), else that default path; None without a run directory."""
    from omegaconf import OmegaConf

    try:
        handlers = OmegaConf.select(hydra_cfg, "hydra.job_logging.handlers") or {}
        for handler in handlers.values():
            if handler is not None and handler.get("filename"):
                return Path(str(handler.filename)).absolute()
        hydra = hydra_cfg.hydra
        return Path(str(hydra.runtime.output_dir)) / f"{hydra.job.name}.log"
    except Exception:  # an unresolvable interpolation, a config without a run directory
        return None


def one_line(error: BaseException | str) -> str:
    """The first non-empty line of an error, with its type when it is an exception."""
    text = str(error) if isinstance(error, str) else f"{type(error).__name__}: {error}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(error).__name__ if isinstance(error, BaseException) else ""
    return lines[0] + (" ..." if len(lines) > 1 else "")


def is_pruned(error: BaseException | None) -> bool:
    """optuna.TrialPruned, told by name so that this module never imports Optuna."""
    return error is not None and any(cls.__name__ == "TrialPruned" for cls in type(error).__mro__)


class TrialLog(Callback):
    """In the job's process, after a trial that raised: its traceback into the trial's log."""

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        from launcher.sweeper import compat

        if job_return.status != JobStatus.FAILED:
            return
        error = compat.job_error(job_return)
        path = log_file(config)
        if error is None or is_pruned(error) or path is None:
            return
        text = "Trial failed:\n" + "".join(
            traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
        record = log.makeRecord(log.name, logging.ERROR, __file__, 0, text, None, None)
        handlers = [h for h in logging.getLogger().handlers
                    if isinstance(h, logging.FileHandler) and h.baseFilename == os.fspath(path)]
        try:
            for handler in handlers:  # the job's own file handler: its format, its file
                handler.handle(record)
            if not handlers:  # job logging without a file: the file is written here
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(text + "\n")
        except OSError as exc:  # the trial is recorded as failed anyway; say where it went wrong
            log.warning("could not write the traceback to %s: %s", path, exc)
