"""``hydra/sweeper=optuna``: this project's Optuna sweeper (the work is in launcher.sweeper).

Hydra imports every module under hydra_plugins when it starts, so this module stays light:
Optuna is imported only when a sweep runs.

Configs written for hydra-optuna-sweeper name its class,
``hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper`` (lightning-hydra-template's
``hparams_search`` configs do). Hydra finds a plugin by ``<class.__module__>.<class name>``
among the classes its scan met, then imports that module by name; so ``OfficialNameOptunaSweeper``
below carries that module name, and ``_provide_official_name`` puts a module of that name in
``sys.modules`` (in memory: no file of the official package is shipped, so an environment that
also installs hydra-optuna-sweeper keeps both packages' files intact). Where the official package
is installed, it keeps its name, and every Hydra start says so (``official_plugin_message``)
instead of one plugin silently shadowing the other.
"""
from __future__ import annotations

import sys
import types
import warnings
from typing import Any, List

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
        from launcher.core.errors import LauncherError

        try:
            return self.sweeper.sweep(arguments)
        except LauncherError as error:  # bad sweep settings, too many failures: one line, as everywhere
            print(f"error: {error}", file=sys.stderr)
            sys.exit(error.exit_code)


class OfficialNameOptunaSweeper(OptunaSweeper):
    """This sweeper, under the class name hydra-optuna-sweeper's configs give."""


OfficialNameOptunaSweeper.__module__ = OFFICIAL_MODULE
OfficialNameOptunaSweeper.__name__ = OfficialNameOptunaSweeper.__qualname__ = "OptunaSweeper"


def _provide_official_name() -> None:
    """Make ``hydra_plugins.hydra_optuna_sweeper.optuna_sweeper`` importable, holding this
    sweeper, unless the official package is installed (then the name is its)."""
    package_name = OFFICIAL_MODULE.rsplit(".", 1)[0]
    if official_plugin_message() or OFFICIAL_MODULE in sys.modules:
        return
    package = types.ModuleType(package_name, "launcher's stand-in for hydra-optuna-sweeper")
    package.__path__ = []  # a package, with nothing on disk
    package.__launcher_alias__ = True
    module = types.ModuleType(OFFICIAL_MODULE, "launcher's Optuna sweeper, by the official name")
    module.OptunaSweeper = OfficialNameOptunaSweeper
    package.optuna_sweeper = module
    sys.modules.setdefault(package_name, package)
    sys.modules[OFFICIAL_MODULE] = module


_provide_official_name()

# Said at every Hydra start while the environment holds both plugins: which one Hydra runs then
# depends on the order of its plugin scan.
_conflict = official_plugin_message()
if _conflict:
    warnings.warn(_conflict, UserWarning, stacklevel=1)
