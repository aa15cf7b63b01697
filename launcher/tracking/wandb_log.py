"""logger=wandb: a Weights & Biases run, offline by default (no account, no network).

Offline runs are written under <run dir>/wandb/offline-run-*; `wandb sync <that folder>` uploads
one later. mode=online needs an account (WANDB_API_KEY in the environment, never in a config)
and a reachable server (WANDB_BASE_URL, default https://api.wandb.ai): checked before training.
The jobs of a sweep share a W&B group, the sweep directory's name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from launcher.core.errors import ConfigError
from launcher.tracking.params import sweep_job
from launcher.tracking.writer import Writer, check_reachable

MODES = ("offline", "online", "disabled")


class WandbWriter(Writer):
    name = "wandb"
    defaults = {"mode": "offline", "project": "launcher", "entity": None, "name": None, "group": None,
                "tags": [], "log_model": True}

    def __init__(self, settings: Any, out: Path) -> None:
        super().__init__(settings, out)
        mode = str(self.settings["mode"])
        if mode not in MODES:
            raise ConfigError(f"logger.wandb.mode={mode!r} is invalid; expected one of: {', '.join(MODES)}")
        if mode == "online":
            check_reachable(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"), "/healthz",
                            "WANDB_BASE_URL (or logger.wandb.mode=offline)")
        self.run: Any = None

    def start(self, params: dict[str, str], tags: dict[str, str]) -> None:
        import wandb

        s = self.settings
        job = sweep_job()
        trial = {"trial": job["trial"], "trial.overrides": job["trial.overrides"]} if job else {}
        group = s["group"] or (Path(job["sweep_dir"]).name if job else None)
        self.run = wandb.init(mode=s["mode"], project=s["project"], entity=s["entity"], name=s["name"],
                              group=group, dir=str(self.out), config={**params, **trial},
                              tags=[*map(str, s["tags"] or []), *(f"{k}:{v}"[:64] for k, v in tags.items())],
                              settings=wandb.Settings(console="off", silent=True))

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.run.log({"epoch": epoch, **metrics}, step=epoch)

    def final(self, metrics: dict[str, float], step: int) -> None:
        self.run.summary.update(metrics)

    def artifacts(self, files: list[Path], model_dir: Path | None) -> None:
        import wandb

        for path in files:
            self.run.save(str(path), base_path=str(path.parent), policy="now")
        if model_dir is not None and self.settings["log_model"]:
            artifact = wandb.Artifact(f"model-{self.run.id}", type="model")
            artifact.add_dir(str(model_dir))
            self.run.log_artifact(artifact)

    def finish(self, status: str) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "FINISHED" else 1)
            self.run = None
