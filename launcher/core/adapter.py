"""The adapter contract: the small part that differs between frameworks.

An adapter builds, fits, predicts, saves and loads, and says what it is: its name, the packages
a saved model records, the model types and tasks it can do, the devices it sees, and what it
refuses before training (`check`). Data, metrics, artifacts and run records are the same for
every framework and live outside. Adapter modules import their framework inside methods, so
that `import launcher` and a scikit-learn run stay light.

Every method below is part of the contract: callers never probe an adapter with getattr.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from launcher.core.trainer import TrainerSettings
from launcher.core.types import DataSchema, FrameworkStatus, History, Report, Splits


class Adapter(ABC):
    """One framework. Subclasses set the class attributes and implement the abstract methods.

    Construction takes the framework config's settings (the `framework` group, minus
    `_target_` and `name`) and the device config; it imports nothing heavy.
    """

    name: ClassVar[str]
    # The module imported to tell whether the framework is installed, and the distributions
    # whose versions a saved model records (the first is the framework itself).
    module: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]
    model_types: ClassVar[frozenset[str]]
    tasks: ClassVar[frozenset[str]] = frozenset({"classification", "regression"})
    # Trains in epochs and picks its best epoch on the validation rows (the neural frameworks).
    trains_in_epochs: ClassVar[bool] = False

    def __init__(self, device: Mapping[str, Any] | str | None = None, enabled: bool = True) -> None:
        """Subclasses add their framework settings as keyword arguments: the keys of
        conf/framework/<name>.yaml (besides _target_ and name), the one list of them."""
        if isinstance(device, str):
            device = {"name": device, "accelerator": device}
        self.device: dict[str, Any] = dict(device) if device else {"name": "auto", "accelerator": "auto"}
        self.enabled = bool(enabled)

    # -- what this framework is, here ---------------------------------------------------------
    def status(self) -> FrameworkStatus:
        """Installed? Version and devices. Never raises (a broken install is reported)."""
        st = FrameworkStatus(name=self.name, installed=False, enabled=self.enabled)
        try:
            importlib.import_module(self.module)
        except Exception as exc:  # ImportError, or a broken install raising anything
            st.detail = f"not installed ({type(exc).__name__}: {exc})"
            return st
        st.installed = True
        try:
            st.version = importlib_metadata.version(self.packages[0])
        except importlib_metadata.PackageNotFoundError:
            st.version = None
        try:
            st.devices = self.devices()
        except Exception as exc:
            st.detail = f"device query failed: {exc}"
        return st

    def devices(self) -> list[str]:
        """The devices this framework sees here, best first; "cpu" last."""
        return ["cpu"]

    def supports(self, model_type: str) -> bool:
        return model_type in self.model_types

    def model_tasks(self, spec: Mapping[str, Any]) -> frozenset[str]:
        """The tasks this framework can do with the model config `spec`."""
        return self.tasks if self.supports(spec.get("type")) else frozenset()

    def health_check_spec(self) -> dict[str, Any]:
        """The model `python -m launcher.frameworks check=true` fits on tiny data."""
        return {"name": "mlp", "type": "mlp", "hidden_sizes": [8], "activation": "relu", "dropout": 0.0}

    # -- before training ----------------------------------------------------------------------
    @abstractmethod
    def check(self, spec: Mapping[str, Any], schema: DataSchema, settings: TrainerSettings) -> None:
        """Refuse what cannot work here, before anything is trained, with a ConfigError that says
        what would: a model the data cannot feed, a setting this framework cannot honour, a
        device that is not there. The trainer settings are already validated."""

    # -- the five verbs -------------------------------------------------------------------------
    @abstractmethod
    def build(self, spec: Mapping[str, Any], schema: DataSchema) -> Any:
        """An unfitted model from a model config; it carries the schema as `.schema`."""

    @abstractmethod
    def fit(self, model: Any, data: Splits, settings: TrainerSettings, *,
            workdir: Path | None = None, report: Report | None = None) -> History:
        """Train `model` in place. `workdir` is the run directory (checkpoints go under it).
        `report(epoch, metrics)`, given by a sweep, is called after each epoch with the
        validation metrics; it raises optuna.TrialPruned to stop a poor trial."""

    @abstractmethod
    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k) for classification; values (n,) for regression, on the
        scale of the y the model was trained on; cluster ids (n,) for clustering."""

    @abstractmethod
    def save(self, model: Any, directory: Path) -> None:
        """Write the model into `directory` in a safe format (nothing on the load path runs
        code from the file). Metadata and checksums are written around it by artifacts."""

    @abstractmethod
    def load(self, directory: Path) -> Any:
        """The model `save` wrote; a malformed file raises ArtifactError."""
