"""``hydra/sweeper=optuna``: this project's Optuna sweeper (the work is in launcher.sweeper).

Hydra imports every module under hydra_plugins when it starts, so this module stays light:
Optuna is imported only when a sweep runs.

Configs written for hydra-optuna-sweeper name its class,
``hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper`` (lightning-hydra-template's
``hparams_search`` configs do). Hydra finds a plugin by ``<class.__module__>.<class name>``
among the classes its scan met, so ``OfficialNameOptunaSweeper`` below carries that module
name; ``hydra_plugins/hydra_optuna_sweeper.py`` makes the name importable (also outside a Hydra
app). Where the official package is installed, every Hydra start says so
(``official_plugin_message``) instead of one plugin silently shadowing the other.
"""
from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, List

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from launcher.sweeper.official import official_plugin_message
from launcher.sweeper.config import OFFICIAL_MODULE, register_configs

register_configs()


class OptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        from launcher.core.errors import ConfigError
        from launcher.sweeper.optuna_sweeper import OptunaSweeperImpl

        with _errors_in_one_line():  # not Hydra's "Error in call to target ..." around it
            conflict = official_plugin_message()
            if conflict:
                raise ConfigError(conflict)
            self.sweeper = OptunaSweeperImpl(**settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.launcher = self.sweeper.launcher

    def sweep(self, arguments: List[str]) -> None:
        with _errors_in_one_line():
            return self.sweeper.sweep(arguments)


@contextmanager
def _errors_in_one_line() -> Iterator[None]:
    """Bad sweep settings, too many failures, no result: one line and its exit code, as
    everywhere in launcher."""
    from launcher.core.errors import LauncherError

    try:
        yield
    except LauncherError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


class OfficialNameOptunaSweeper(OptunaSweeper):
    """This sweeper, under the class name hydra-optuna-sweeper's configs give."""


OfficialNameOptunaSweeper.__module__ = OFFICIAL_MODULE
OfficialNameOptunaSweeper.__name__ = OfficialNameOptunaSweeper.__qualname__ = "OptunaSweeper"


# Said at every Hydra start while the environment holds both plugins: which one Hydra runs then
# depends on the order of its plugin scan.
_conflict = official_plugin_message()
if _conflict:
    warnings.warn(_conflict, UserWarning, stacklevel=1)
