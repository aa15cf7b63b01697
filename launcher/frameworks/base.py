"""The adapter contract: the small part that differs between frameworks.

An adapter builds, fits, predicts, saves and loads. Data, metrics, artifacts and run records
are the same for every framework and live outside (`launcher.data`, `launcher.metrics`,
`launcher.artifacts`, `launcher.train`). Adapter modules import their framework lazily,
inside methods, so that `import launcher` and a scikit-learn run stay light.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

log = logging.getLogger(__name__)

Report = Callable[[int, dict[str, float]], None]

TASKS = ("classification", "regression", "clustering")


@dataclass
class DataSchema:
    """What a model needs to know about the data, after preprocessing."""

    task: str
    n_features: int
    feature_names: list[str] = field(default_factory=list)
    classes: list[Any] | None = None  # original class labels, index = encoded label
    input_shape: tuple[int, ...] | None = None  # declared per-sample shape, e.g. (1, 8, 8)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape) if self.input_shape else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataSchema":
        shape = d.get("input_shape")
        return cls(task=d["task"], n_features=int(d["n_features"]), feature_names=list(d.get("feature_names") or []),
                   classes=d.get("classes"), input_shape=tuple(shape) if shape else None)

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0

    @property
    def n_outputs(self) -> int:
        """Width of the network's last layer."""
        return self.n_classes if self.task == "classification" else 1


@dataclass
class Splits:
    """Preprocessed float32 features and encoded targets.

    Classification targets are int64 class indices into `schema.classes`; regression targets
    are float32; clustering targets are the known labels as indices, or None.
    """

    X_train: np.ndarray
    y_train: np.ndarray | None
    X_val: np.ndarray
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray | None
    schema: DataSchema


@dataclass
class History:
    """What a fit did: one dict of metrics per epoch (empty for one-shot estimators)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    device: str = "cpu"
    best_epoch: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FrameworkStatus:
    name: str
    installed: bool
    enabled: bool = True
    version: str | None = None
    devices: list[str] = field(default_factory=list)
    healthy: bool | None = None  # None: no health check was asked for
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Adapter:
    """Base class for the four framework adapters.

    Subclasses set `name`, `library` (the import name whose version is reported),
    `model_types` (the portable model types they can build) and implement the five verbs.
    """

    name: ClassVar[str] = ""
    library: ClassVar[str] = ""
    model_types: ClassVar[frozenset[str]] = frozenset()
    tasks: ClassVar[frozenset[str]] = frozenset({"classification", "regression"})

    def __init__(self, enabled: bool = True, device: Any = None, **settings: Any) -> None:
        self.enabled = bool(enabled)
        self.device = dict(device) if device else {"name": "auto"}
        self.settings = settings

    # -- discovery -------------------------------------------------------------------------
    def status(self, health_check: bool = False) -> FrameworkStatus:
        """Importable? Version, devices, optionally a tiny fit. Never raises."""
        st = FrameworkStatus(name=self.name, installed=False, enabled=self.enabled)
        try:
            module = importlib.import_module(self.library)
        except Exception as exc:  # ImportError, or a broken install raising anything
            st.detail = f"not installed ({type(exc).__name__}: {exc})"
            return st
        st.installed = True
        st.version = getattr(module, "__version__", None)
        try:
            st.devices = self.devices()
        except Exception as exc:
            st.detail = f"device query failed: {exc}"
        if health_check:
            try:
                self.health_check()
                st.healthy = True
            except Exception as exc:
                st.healthy = False
                st.detail = f"health check failed: {type(exc).__name__}: {exc}"
        return st

    def devices(self) -> list[str]:
        return ["cpu"]

    def supports(self, model_type: str) -> bool:
        return model_type in self.model_types

    def health_check(self) -> None:
        """Fit and predict a tiny model; raises if anything is wrong."""
        from launcher.data import synthetic_splits

        splits = synthetic_splits(n=64, features=4, classes=2, seed=0)
        spec = self.health_check_spec()
        model = self.build(spec, splits.schema)
        self.fit(model, splits, {"max_epochs": 1, "batch_size": 32, "seed": 0})
        out = self.predict(model, splits.X_test)
        if len(out) != len(splits.X_test) or not np.all(np.isfinite(out)):
            raise RuntimeError("predictions have the wrong length or are not finite")

    def health_check_spec(self) -> dict[str, Any]:
        return {"name": "mlp", "type": "mlp", "hidden_sizes": [8], "activation": "relu", "dropout": 0.0}

    # -- the contract ----------------------------------------------------------------------
    def build(self, spec: dict[str, Any], schema: DataSchema) -> Any:
        """Build an unfitted model from a model config. The returned object carries the
        schema as `.schema` (predict, save and the Python API read it)."""
        raise NotImplementedError

    def fit(self, model: Any, data: Splits, trainer: dict[str, Any], *,
            workdir: Path | None = None, report: Report | None = None) -> History:
        """Train `model` in place. `trainer` is the trainer config as a dict, plus `seed`.

        `workdir` is the run directory (checkpoints go under it); `report(epoch, metrics)`
        is given by a sweep and must be called after each epoch with the validation metrics
        ("val_loss", "val_<metric>"); it raises optuna.TrialPruned to stop a bad trial.
        """
        raise NotImplementedError

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k) for classification; values (n,) for regression;
        cluster ids (n,) for clustering."""
        raise NotImplementedError

    def save(self, model: Any, directory: Path) -> None:
        """Write the model into `directory` in a safe format (no pickle on the load path).
        Metadata and checksums are written around it by `launcher.artifacts`."""
        raise NotImplementedError

    def load(self, directory: Path) -> Any:
        raise NotImplementedError

    # -- the Python API its first users know (MLFrameworkManager-era names) ------------------
    def initialize(self) -> FrameworkStatus:
        """Check the framework is importable and usable; returns its status."""
        return self.status()

    def create_model(self, spec: dict[str, Any], schema: DataSchema | None = None) -> Any:
        """Build from a model config or the legacy {"type", "parameters"} form.

        With the legacy `layer_sizes: [inputs, hidden..., outputs]` the schema is read from
        the sizes (outputs > 1: that many classes; 1: regression)."""
        from launcher.api import legacy_schema, normalise_spec

        spec = normalise_spec(spec)
        schema = schema or legacy_schema(spec)
        return self.build(spec, schema)

    def train_model(self, model: Any, X, y, X_val=None, y_val=None, schema: DataSchema | None = None,
                    **trainer: Any) -> History:
        """Fit on arrays; a tenth of the rows is held out for validation when none is given."""
        from launcher.api import array_splits

        data = array_splits(X, y, X_val, y_val, schema or getattr(model, "schema", None))
        settings = {"max_epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "seed": 0,
                    "early_stopping": {"enabled": False}}
        settings.update(trainer)
        return self.fit(model, data, settings)

    def evaluate_model(self, model: Any, X, y, task: str | None = None) -> dict[str, float]:
        from launcher import metrics

        schema = getattr(model, "schema", None)
        task = task or (schema.task if schema else "classification")
        return metrics.compute(task, np.asarray(y), self.predict(model, np.asarray(X, dtype=np.float32)))

    def save_model(self, model: Any, directory) -> None:
        from launcher import artifacts

        artifacts.save_model(self, model, Path(directory))

    def load_model(self, directory) -> Any:
        from launcher import artifacts

        return artifacts.load_model(Path(directory), adapter=self)[0]
