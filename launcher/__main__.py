"""python -m launcher [overrides]: train, evaluate and save one model; -m for a grid or a sweep.

Also installed as the `launcher` command (the same app; Hydra's tab completion works for it).
`--help` lists the config groups and their options; `--cfg job` prints the composed config.

A bad input is one `error: ...` line on stderr (also written to the run's log) and exit status
2 (130 for Ctrl-C); `hydra.verbose=true` shows the traceback as well. A failed run's directory
gets failed.json, which python -m launcher.runs lists. In a grid a failed job does not stop the
others: launcher.callbacks sums the failures up at the end.
"""
from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

# Before Hydra and pandas, on purpose: skops (the scikit-learn model format) names scipy's ufuncs,
# when it is first imported to save a model, by scanning sys.modules in import order until it
# finds each one. Imported first, scipy.special sits near the front of that order: 0.4 s less per
# saved scikit-learn model (measured, benchmarks/launcher_overhead.py). Every run imports it anyway,
# through scikit-learn.
import scipy.special  # noqa: F401  isort: skip

import hydra
from omegaconf import DictConfig

from launcher.core import cli
from launcher.core.errors import LauncherError

log = logging.getLogger("launcher")


def run() -> None:
    """The command (python -m launcher, and the `launcher` script)."""
    cli.run_hydra_app(main)


@hydra.main(version_base="1.3", config_path="pkg://launcher.conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from launcher.pipeline.train import train

    try:
        return train(cfg)
    except LauncherError as exc:
        return _failed(exc, f"error: {exc}")
    except Exception as exc:  # a bug, not bad input: keep its traceback
        if not _multirun():
            raise
        return _failed(exc, f"error: {type(exc).__name__}: {exc} (traceback in the run's log)",
                       traceback.format_exc())


def _failed(exc: BaseException, line: str, trace: str | None = None) -> float:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    _record_failure(Path(hc.runtime.output_dir), exc, list(hc.overrides.task))
    if _multirun() and "OptunaSweeper" in str(hc.sweeper.get("_target_", "")) and not hc.verbose:
        # The Optuna sweeper records the trial as failed and says so in one console line; its
        # trial-log callback writes the traceback into the trial's log: nothing more here.
        raise exc
    _to_log_files(line + ("\n" + trace if trace else ""))
    print(line, file=sys.stderr)
    if hc.verbose:  # hydra.verbose=true: the traceback too
        raise exc
    if _multirun():
        return float("nan")  # a grid goes on; launcher.callbacks reports the failures at its end
    sys.exit(getattr(exc, "exit_code", 1))


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


def _to_log_files(message: str) -> None:
    """The error into the run's log file only: the console gets it once, on stderr."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for logger in (logging.getLogger(), log):
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)


def _record_failure(run_dir: Path, exc: BaseException, overrides: list[str]) -> None:
    from launcher.io import write_json
    from launcher.runs import FAILED

    try:
        write_json(run_dir / FAILED, {"error": str(exc), "type": type(exc).__name__, "overrides": overrides})
    except OSError:  # the run directory itself is the problem: the error line says so
        pass


if __name__ == "__main__":
    run()
