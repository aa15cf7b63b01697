"""Hydra callbacks of the launcher app (registered in conf/train.yaml under hydra.callbacks).

Before a run or a multirun: the output directory must be creatable, checked before Hydra
creates it, so a bad `hydra.run.dir` is one error line instead of a traceback.

After a multirun (a grid through Hydra's basic sweeper): the jobs that failed (their run
directories hold failed.json, written by python -m launcher) are summed up in a few lines, and
the command exits with status 1 unless `allow_failed_jobs=true`. An Optuna sweep has its own
rule for failures (hydra.sweeper.max_failure_rate) and its own results files: it is left to it.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from launcher.core import cli


class LauncherCallbacks(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        cli.release_stderr()  # the config composed: stderr is the run's from now on
        _check_writable(str(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        cli.release_stderr()
        _check_writable(str(config.hydra.sweep.dir), "hydra.sweep.dir")
        # A data-parallel PyTorch grid outside SLURM is refused here, before its first job (each
        # job would refuse itself, one after another).
        from launcher.core.errors import ConfigError
        from launcher.frameworks.torch.cluster import check_sweep

        try:
            check_sweep(config)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if "OptunaSweeper" in str(config.hydra.sweeper.get("_target_", "")):
            return
        from launcher.runs import FAILED  # here, not at the top: a single run does not need launcher.runs

        sweep = Path(str(config.hydra.sweep.dir))
        jobs = sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)) \
            if sweep.is_dir() else []
        failed = [(job, _read(job / FAILED)) for job in jobs if (job / FAILED).is_file()]
        if not failed:
            return
        lines = [f"{len(failed)} of {len(jobs)} job(s) failed"
                 + ("" if config.get("allow_failed_jobs") else " (allow_failed_jobs=true makes this a warning)") + ":"]
        for job, record in failed[:10]:
            overrides = " ".join(record.get("overrides") or [])
            lines.append(f"  #{job.name} {overrides}: {record.get('error', '?')}")
        if len(failed) > 10:
            lines.append(f"  ... and {len(failed) - 10} more (python -m launcher.runs root={sweep})")
        print(("warning: " if config.get("allow_failed_jobs") else "error: ") + "\n".join(lines), file=sys.stderr)
        if not config.get("allow_failed_jobs"):
            sys.exit(1)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _check_writable(directory: str, setting: str) -> None:
    """The nearest existing folder of `directory` must take a new folder; nothing is left behind."""
    path = Path(directory).expanduser().absolute()
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    problem = None
    if not ancestor.is_dir():
        problem = f"{ancestor} is a file, not a folder"
    else:
        try:
            Path(tempfile.mkdtemp(dir=ancestor, prefix=".launcher-check-")).rmdir()
        except OSError as exc:
            problem = f"{ancestor} does not take new folders ({exc.strerror or exc})"
    if problem:
        print(f"error: cannot create the run directory {path}: {problem}; set {setting} to a writable "
              "directory", file=sys.stderr)
        sys.exit(2)
