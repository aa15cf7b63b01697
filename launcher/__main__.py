"""python -m launcher [overrides]: train, evaluate and save one model; -m for a grid or a sweep.

Also installed as the `launcher` command (the same app; Hydra's tab completion works for it).
`--help` lists the config groups and their options; `--cfg job` prints the composed config.
"""
from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from launcher.core.errors import LauncherError

log = logging.getLogger("launcher")


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path="pkg://launcher.conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from launcher.pipeline.train import train

    try:
        return train(cfg)
    except LauncherError as exc:
        log.error("error: %s", exc)  # into the run's log
        print(f"error: {exc}", file=sys.stderr)
        if _multirun():
            # One bad combination in a grid (say sklearn x cnn) must not end the sweep:
            # the job is recorded as failed and the sweep goes on.
            return float("nan")
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
