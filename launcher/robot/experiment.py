"""What a robot experiment found (MLExperiment): the leaderboard, the final model, its score as
selected and as honestly estimated, and the commands that ran."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.robot.leaderboard import Leaderboard, Trial
from launcher.robot.task import MLTask


@dataclass
class MLExperiment:
    """What the robot found: the leaderboard, the best run, its metrics and the model."""

    task: MLTask
    directory: Path
    leaderboard: Leaderboard
    best: Trial | None  # the best trial of the search (the final model is it, an ensemble, or a fallback)
    metrics: dict[str, Any]  # metric, score (the honest estimate), selected (the figure that chose it), ...
    model_path: Path | None
    requirement_met: bool | None  # on the honest estimate
    seconds: float
    report: Path | None = None
    ensemble: str | None = None  # what the ensemble step found, in words
    ensembled: bool = False  # the final model is an ensemble of the best trials
    status: str = "done"
    commands: list[str] = field(default_factory=list)
    final: Trial | None = None  # the trial whose model is the final one (None: an ensemble)
    fallback: str | None = None  # why the final model is not the one selected, when it is not
    estimate_method: str | None = None  # how the honest estimate was made, in one sentence

    @property
    def best_run(self) -> str | None:
        return self.best.run_dir if self.best else None

    @property
    def score(self) -> float | None:
        """The expected score of the final model: corrected for its selection (report.md)."""
        return self.metrics.get("score")

    @property
    def selected_score(self) -> float | None:
        """The figure that selected the final model (best cross-validated mean, or the
        ensemble's out-of-fold score): optimistic, kept beside the estimate."""
        return self.metrics.get("selected")

    @property
    def synthetic(self) -> bool:
        """The task gave only a shape: every score here is on synthetic data."""
        return self.task.dataset.kind == "shape"
