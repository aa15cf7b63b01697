"""The run's parameters and tags as a tracker records them.

The composed config is flattened as written, interpolations unresolved: `${oc.env:API_KEY}`
is recorded as that text, never as the value of the variable.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from launcher.artifacts import git_commit
from launcher.core.paths import original_cwd


def flat_params(cfg: Any) -> dict[str, str]:
    """{"model.hidden_sizes": "[64, 32]", "trainer.lr": "0.001", ...} from a config."""
    tree = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            out[prefix] = node if isinstance(node, str) else json.dumps(node, default=str)

    walk("", tree)
    return out


def run_tags(**known: Any) -> dict[str, str]:
    """What the run is (framework, model, task, dataset), where it ran, and from which commit."""
    tags = {k: str(v) for k, v in known.items() if v is not None}
    tags["host"] = platform.node()
    commit = git_commit(original_cwd())
    if commit:
        tags["git_commit"] = commit
    return tags


def sweep_job() -> dict[str, str] | None:
    """For a job of a multirun: its trial number, its overrides and the sweep directory."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hc = HydraConfig.get()
    return {"trial": str(hc.job.num), "trial.overrides": " ".join(hc.overrides.task),
            "sweep_dir": str(Path(hc.runtime.cwd) / str(hc.sweep.dir))}
