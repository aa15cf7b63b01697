"""The commands the robot runs, exactly as it prints them.

A robot experiment is reproducible by construction: each step is `python -m launcher ...` with
the emitted files and, on the command line, only what belongs to this one invocation:

    search    experiment=robot/<slug> hparams_search=robot/<slug>
              hydra.sweep.dir=<experiment>/sweeps/<slug>       where its records go
              hydra.sweeper.timeout=<seconds>                  this run's deadline
              hydra/launcher=joblib hydra.launcher.n_jobs=<k> hydra.sweeper.n_jobs=<k>
                                                               trials side by side, one per core
    baseline  experiment=robot/<slug> model=<cheapest strong learner> <its starting point>
              trainer.refit=true save_model=true hydra.run.dir=<experiment>/baseline
    final     a trial's own overrides, trainer.cv_folds=null trainer.refit=true save_model=true
              hydra.run.dir=<experiment>/final/<i>

Everything else (splits, folds, threads per trial, no model per trial) is in the emitted files.
Each command runs from the project directory (the one whose conf/ holds the files) with
OMP_NUM_THREADS=1 (ENV); printed, it says both, starting with `cd <project> &&` when that is not
the directory the robot was started from.
Paths are written relative to the project directory when they are inside it.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path


# The environment the robot gives its commands, printed with them: the libraries' own thread
# pools (OpenMP, BLAS) start with one thread before a run applies trainer.num_threads.
ENV = {"OMP_NUM_THREADS": "1"}


@dataclass
class Invocation:
    project: Path  # where the commands run: its conf/ holds the emitted files
    cores: int  # trials (and final fits) side by side

    def path(self, path: Path) -> str:
        """`path` as the commands write it: relative to the project when inside it."""
        path = Path(path).absolute()
        try:
            return str(path.relative_to(self.project.absolute()))
        except ValueError:
            return str(path)

    def argv(self, args: list[str]) -> list[str]:
        """The process to start (run with cwd=project)."""
        return [sys.executable, "-m", "launcher", *args]

    def shown(self, args: list[str]) -> str:
        """The command as a person types it, from the directory the robot was started in."""
        text = " ".join([*(f"{k}={v}" for k, v in ENV.items()), "python -m launcher", *map(shlex.quote, args)])
        if self.project.absolute() != Path.cwd().absolute():
            text = f"cd {shlex.quote(str(self.project))} && {text}"
        return text

    def search(self, slug: str, sweep_dir: Path, timeout: float) -> list[str]:
        args = ["-m", f"experiment=robot/{slug}", f"hparams_search=robot/{slug}",
                f"hydra.sweep.dir={self.path(sweep_dir)}", f"hydra.sweeper.timeout={timeout:.1f}"]
        if self.cores > 1:
            args += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={self.cores}",
                     f"hydra.sweeper.n_jobs={self.cores}"]
        return args

    def baseline(self, slug: str, start: list[str], run_dir: Path | None = None) -> list[str]:
        """`start`: the model option and its starting values (model=..., model.estimator.x=...)."""
        return [f"experiment=robot/{slug}", *start, "trainer.refit=true", "save_model=true",
                *([f"hydra.run.dir={self.path(run_dir)}"] if run_dir is not None else [])]

    def final(self, overrides: list[str], run_dir: Path) -> list[str]:
        # A trial's own overrides (its experiment, its parameters), then one fit on every row.
        again = ("save_model=", "trainer.refit=", "trainer.cv_folds=")
        kept = [o for o in overrides if not o.startswith(again)]
        return [*kept, "trainer.cv_folds=null", "trainer.refit=true", "save_model=true",
                f"hydra.run.dir={self.path(run_dir)}"]
