"""``hydra/sweeper=optuna``: this project's Optuna sweeper (the work is in launcher.sweeper).

Hydra imports every module under hydra_plugins when it starts, so this module stays light:
Optuna is imported only when a sweep runs.
"""
from __future__ import annotations

from typing import Any, List

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from launcher.sweeper.config import register_configs

register_configs()


class OptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        from launcher.sweeper.optuna_sweeper import OptunaSweeperImpl

        self.sweeper = OptunaSweeperImpl(**settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.launcher = self.sweeper.launcher

    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
