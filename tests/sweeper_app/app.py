"""A tiny Hydra app for the sweeper tests: a quadratic objective with switches for failing,
returning NaN, reporting per-epoch scores (pruning), two objectives, and for synchronising
with the test through files (never through timing):

    hold=<path> hold_from=<n>   jobs numbered n and later wait while <path> exists
    meet=<dir> meet_count=<k>   jobs numbered meet_from and later mark <dir>/<pid> and wait
                                until k processes have (proves k jobs ran at once, in k
                                processes)
"""
import json
import math
import os
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


def wait_until(condition, what: str, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.02)


@hydra.main(version_base="1.3", config_path="conf", config_name="app")
def main(cfg):
    from launcher.sweeper.pruning import current_trial, reporter

    hydra_cfg = HydraConfig.get()
    out = Path(hydra_cfg.runtime.output_dir)
    (out / "trial.json").write_text(json.dumps(current_trial()))
    (out / "pid").write_text(str(os.getpid()))
    if cfg.hold and hydra_cfg.job.num >= cfg.hold_from:
        wait_until(lambda: not Path(cfg.hold).exists(), f"{cfg.hold} to go", limit=600)
    if cfg.meet and hydra_cfg.job.num >= cfg.meet_from:
        Path(cfg.meet).mkdir(parents=True, exist_ok=True)
        (Path(cfg.meet) / str(os.getpid())).write_text("")
        wait_until(lambda: len(list(Path(cfg.meet).iterdir())) >= cfg.meet_count,
                   f"{cfg.meet_count} processes in {cfg.meet}")
    if cfg.mode == "fail" or (cfg.fail_above is not None and cfg.x > cfg.fail_above):
        raise ValueError("this trial fails on purpose")
    if cfg.mode == "nan" or (cfg.nan_below is not None and cfg.x < cfg.nan_below):
        return float("nan")
    loss = (cfg.x - 2.0) ** 2 + (cfg.y + 1) ** 2
    report = reporter(cfg)
    for epoch in range(cfg.epochs):
        if report is not None:
            report(epoch, {"val_loss": loss + cfg.epochs - epoch})
    (out / "done").write_text("ok")
    if cfg.objectives == 2:
        return [loss, abs(cfg.x)]
    return loss


def suggest_y(cfg, trial) -> None:
    """A custom_search_space function (hydra.sweeper.custom_search_space=app.suggest_y)."""
    trial.suggest_int("y", -3, 3)


if __name__ == "__main__":
    main()
