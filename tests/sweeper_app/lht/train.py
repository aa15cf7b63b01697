"""A stand-in for lightning-hydra-template's train.py: it returns the metric the search config
names (optimized_metric), here a made-up validation accuracy of the sampled settings."""
import json
import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg) -> float:
    lr, batch = cfg.model.optimizer.lr, cfg.datamodule.batch_size
    sizes = cfg.model.net.lin1_size + cfg.model.net.lin2_size + cfg.model.net.lin3_size
    metrics = {"val/acc_best": 0.9 - 0.05 * abs(math.log10(lr) + 2.5) - batch / 1e4 + sizes / 1e5}
    out = Path(HydraConfig.get().runtime.output_dir)
    (out / "seen.json").write_text(json.dumps({"lr": lr, "batch_size": batch}))
    return metrics[cfg.optimized_metric]


if __name__ == "__main__":
    main()
