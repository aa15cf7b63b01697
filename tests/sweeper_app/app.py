"""A tiny Hydra app for the sweeper tests: a quadratic objective with switches for failing,
returning NaN, reporting per-epoch scores (pruning), sleeping and two objectives."""
import math
import os
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="app")
def main(cfg):
    from launcher.sweeper.pruning import reporter

    out = Path(HydraConfig.get().runtime.output_dir)
    (out / "pid").write_text(str(os.getpid()))
    if cfg.sleep:
        time.sleep(cfg.sleep)
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


if __name__ == "__main__":
    main()
