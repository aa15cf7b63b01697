"""TensorFlow/Keras: the portable MLP, CNN, RNN and Transformer, Keras 3 on the TensorFlow backend.

runtime.py      TensorFlow's process-wide state: quiet import, devices, GPU memory, threads
networks.py     the Keras builds of the portable specs (Sequential or Functional)
loop.py         the fit: Keras' model.fit fed and steered by launcher.core.trainer
checkpoints.py  last.npz and best.npz: NumPy archives, checksum-verified (no TensorFlow)

This module imports neither TensorFlow nor Keras at import time (framework discovery and
`import launcher` stay light); its methods do.

`model.api` (a key of the model configs, ignored by the other frameworks) picks the Keras API:
`sequential` (a plain stack of layers), `functional`, or `auto`: Sequential where the network
is a plain stack (MLP, CNN, one-directional RNN), Functional where it is not (the Transformer's
residual blocks, a bidirectional RNN). The run records which was used (metadata.json,
"training": {"api": ...}).

The network is created in `fit`, not in `build`: TensorFlow fixes its thread pools and GPU
memory settings at its first operation, and fit is where the run's threads, device, seed and
precision are known. `build` validates everything and returns the model to fit.

Saved models are `model.keras` (loaded with safe_mode=True: no Lambda layer, no code from the
file; the two launcher layers are registered Keras serialisables) plus `network.json` (spec,
API and schema).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from launcher.core.adapter import Adapter
from launcher.core.errors import ArtifactError, ConfigError, one_of
from launcher.core.specs import NETWORK_TYPES, check_network
from launcher.core.trainer import TrainerSettings, check_resumable
from launcher.core.types import DataSchema, FrameworkStatus, History, Report, Splits
from launcher.frameworks import network_file
from launcher.frameworks.checkpoints import resume_checkpoint
from launcher.frameworks.keras import checkpoints, runtime

WEIGHTS = "model.keras"  # beside network_file.NETWORK
FORMAT = "launcher-keras/1"
PREDICT_CHUNK = 8192
APIS = ("auto", "sequential", "functional")
# Classes a saved model may name: Keras' own, and launcher's two registered layers.
SAFE_PACKAGES = ("keras",)
SAFE_REGISTERED = ("launcher>PositionEmbedding", "launcher>ClassToken")


def _tensorflow_distribution() -> str:
    """The installed TensorFlow distribution (tensorflow, tensorflow-cpu, ...), for the versions
    a saved model records; without importing it."""
    for name in ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel"):
        try:
            importlib_metadata.version(name)
            return name
        except importlib_metadata.PackageNotFoundError:
            continue
    return "tensorflow"


def network_api(config: Mapping[str, Any], spec: Any) -> str:
    """The Keras API a model config asks for, "auto" resolved; refused where it cannot build."""
    api = str(config.get("api", "auto") or "auto").lower()
    if api not in APIS:
        raise ConfigError(f"model.api={config.get('api')!r} is unknown; expected one of: {', '.join(APIS)}")
    stack = spec.type in ("mlp", "cnn") or (spec.type == "rnn" and not spec.bidirectional)
    if api == "auto":
        return "sequential" if stack else "functional"
    if api == "sequential" and spec.type == "transformer":
        raise ConfigError("model.api=sequential cannot build a transformer: its blocks add residual connections, "
                          "which a plain stack of layers cannot hold; use model.api=functional or auto")
    return api


@dataclass
class KerasModel:
    """A portable network's Keras build: `net` (a keras.Model, created by fit or load) with the
    spec, the Keras API and the schema it was built from."""

    spec: Any
    schema: DataSchema
    api: str
    net: Any = None
    fitted: bool = False
    predictor: Any = field(default=None, repr=False, compare=False)  # the compiled predict step


class KerasAdapter(Adapter):
    name = "tensorflow"
    module = "tensorflow"
    packages = (_tensorflow_distribution(), "keras")
    model_types = NETWORK_TYPES
    trains_in_epochs = True

    def __init__(self, device: Any = None, enabled: bool = True, gpu_support: bool = True,
                 memory_limit_mb: int | None = None, num_threads: int | None = None) -> None:
        super().__init__(device=device, enabled=enabled)
        if not isinstance(gpu_support, bool):
            raise ConfigError(f"framework.gpu_support={gpu_support!r} is invalid; expected true or false")
        for key, value in (("memory_limit_mb", memory_limit_mb), ("num_threads", num_threads)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"framework.{key}={value!r} is invalid; expected a positive integer or null")
        self.gpu_support, self.memory_limit_mb, self.num_threads = gpu_support, memory_limit_mb, num_threads

    # -- what this framework is, here ---------------------------------------------------------
    def status(self) -> FrameworkStatus:
        try:
            runtime.import_tensorflow()  # quietly, before the base class imports it
        except Exception:  # the base class reports a broken install
            pass
        return super().status()

    def devices(self) -> list[str]:
        found = [f"gpu:{i}" for i in range(len(runtime.gpus()))] if self.gpu_support else []
        return found + ["cpu"]

    # -- before training ------------------------------------------------------------------------
    def accelerator(self) -> str:
        """"cpu", "gpu" or "auto", from the device config and framework.gpu_support."""
        d = self.device
        wanted = str(d.get("accelerator") or d.get("name") or "auto").lower()
        wanted = "gpu" if wanted == "cuda" else wanted
        if wanted not in ("auto", "cpu", "gpu"):
            raise ConfigError(f"device.accelerator={wanted!r} is not available to framework=tensorflow; expected one "
                              "of: auto, cpu, gpu")
        devices = d.get("devices", 1)
        if devices not in (None, "auto", 1):
            raise ConfigError(f"device.devices={devices}: framework=tensorflow trains on one device; for several GPUs "
                              "use framework=pytorch (device.strategy=ddp), or device.devices=1")
        if str(d.get("strategy") or "auto") != "auto":
            raise ConfigError(f"device.strategy={d.get('strategy')} is not used by framework=tensorflow (one device); "
                              "use device.strategy=auto")
        if not self.gpu_support:
            if wanted == "gpu":
                raise ConfigError("device=gpu asks for a GPU, but framework.gpu_support=false hides them from "
                                  "TensorFlow; set framework.gpu_support=true or use device=cpu")
            return "cpu"
        return wanted

    def check(self, spec: Mapping[str, Any], schema: DataSchema, settings: TrainerSettings) -> None:
        parsed = self._check_model(spec, schema)
        settings.check_task(schema.task)
        accelerator = self.accelerator()
        if settings.precision == "16-mixed" and accelerator == "cpu":
            raise ConfigError("trainer.precision=16-mixed needs a GPU; on the CPU use trainer.precision=bf16-mixed "
                              "or 32")
        if settings.resume_from:  # the checkpoint must continue this very run
            path = resume_checkpoint(settings.resume_from, checkpoints.LAST, self.name, "TensorFlow")
            doc, _, _ = checkpoints.read(path)
            check_resumable(path, doc["launcher"], {**asdict(parsed), "api": network_api(spec, parsed)},
                            schema.to_dict(), settings)
        # TensorFlow fixes these when it starts: applied now (fit applies them again, a no-op),
        # so what cannot be honoured is refused before training.
        device = self._configure(settings)
        self._check_precision(settings.precision, device)

    def _check_model(self, spec: Mapping[str, Any], schema: DataSchema) -> Any:
        parsed = check_network("tensorflow", spec, schema)
        network_api(spec, parsed)
        return parsed

    def _configure(self, settings: TrainerSettings | None) -> str:
        threads = (settings.num_threads if settings is not None else None) or self.num_threads
        deterministic = settings.deterministic if settings is not None else False
        return runtime.configure(self.accelerator(), memory_limit_mb=self.memory_limit_mb, threads=threads,
                                 deterministic=deterministic)

    @staticmethod
    def _check_precision(precision: str, device: str) -> None:
        if precision == "16-mixed" and device == "cpu":
            raise ConfigError("trainer.precision=16-mixed needs a GPU, and TensorFlow sees none here; use "
                              "trainer.precision=bf16-mixed or 32")
        if precision == "bf16-mixed" and device != "cpu":
            tf, _ = runtime.import_tensorflow()
            details = tf.config.experimental.get_device_details(runtime.gpus()[0])
            capability = details.get("compute_capability") or (0, 0)
            if tuple(capability) < (8, 0):
                raise ConfigError(f"trainer.precision=bf16-mixed needs a GPU of compute capability 8.0 or newer; "
                                  f"{details.get('device_name', 'this GPU')} has {capability[0]}.{capability[1]}: use "
                                  "trainer.precision=16-mixed or 32")

    # -- the five verbs -------------------------------------------------------------------------
    def build(self, spec: Mapping[str, Any], schema: DataSchema) -> KerasModel:
        parsed = self._check_model(spec, schema)
        return KerasModel(parsed, schema, network_api(spec, parsed))

    def fit(self, model: KerasModel, data: Splits, settings: TrainerSettings, *, workdir: Path | None = None,
            report: Report | None = None) -> History:
        device = self._configure(settings)
        self._check_precision(settings.precision, device)
        resume = resume_checkpoint(settings.resume_from, checkpoints.LAST, self.name, "TensorFlow")
        from launcher.frameworks.keras import loop

        with runtime.scope(device):
            history = loop.fit(model, data, settings, device, workdir=workdir, report=report, resume=resume)
        history.extra["threads"] = runtime.threads()
        return history

    def network(self, model: KerasModel) -> Any:
        """The model's keras.Model; an unfitted model gets its initial weights now."""
        if model.net is None:
            from launcher.frameworks.keras import networks

            with runtime.scope(self._configure(None)):
                model.net = networks.build_network(model.spec, model.schema, model.api)
        return model.net

    def predict(self, model: KerasModel, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != model.schema.n_features:
            raise ConfigError(f"the model expects rows of {model.schema.n_features} features, got shape {X.shape}")
        regression = model.schema.task == "regression"
        if not len(X):
            return np.zeros((0,) if regression else (0, model.schema.n_outputs), np.float32)
        net = self.network(model)
        tf, _ = runtime.import_tensorflow()
        if model.predictor is None:
            @tf.function(input_signature=[tf.TensorSpec([None, model.schema.n_features], tf.float32)])
            def predictor(x: Any) -> Any:
                out = tf.cast(net(x, training=False), tf.float32)
                return tf.squeeze(out, -1) if regression else tf.nn.softmax(out, -1)

            model.predictor = predictor
        with runtime.scope(self._configure(None)):
            return np.concatenate([model.predictor(tf.constant(X[i:i + PREDICT_CHUNK])).numpy()
                                   for i in range(0, len(X), PREDICT_CHUNK)])

    def save(self, model: KerasModel, directory: Path) -> None:
        _, keras = runtime.import_tensorflow()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.network(model).save(directory / WEIGHTS)
        network_file.write(directory, FORMAT, model, api=model.api, keras=keras.__version__)

    def load(self, directory: Path) -> KerasModel:
        directory = Path(directory)
        spec, schema, api = network_file.read(directory, FORMAT, WEIGHTS, "TensorFlow",
                                              more=lambda info, spec: network_api({"api": info["api"]}, spec))
        _check_classes(directory / WEIGHTS)
        _, keras = runtime.import_tensorflow()
        from launcher.frameworks.keras import networks

        with runtime.scope(self._configure(None)):
            try:
                net = keras.saving.load_model(directory / WEIGHTS, compile=False, safe_mode=True)
            except Exception as exc:  # Keras raises ValueError, TypeError, OSError, KeyError, ... on bad files
                raise ArtifactError(f"{directory / WEIGHTS} could not be loaded safely: {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
            expected = networks.build_network(spec, schema, api)
        if [tuple(v.shape) for v in net.weights] != [tuple(v.shape) for v in expected.weights] \
                or tuple(net.input_shape) != (None, schema.n_features):
            raise ArtifactError(f"{directory / WEIGHTS} does not hold the {spec.type} that "
                                f"{network_file.NETWORK} describes; the artifact was modified: retrain")
        return KerasModel(spec, schema, api, net, fitted=True)


def _check_classes(path: Path) -> None:
    """Refuse a .keras file whose config names a class from outside Keras and launcher's two
    layers, before Keras reads it (Keras' safe mode refuses Lambda code; this also keeps every
    other package's classes out)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is not a Keras model file: {exc}") from None

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "class_name" in node and isinstance(node.get("config"), (dict, type(None))):
                module, registered = str(node.get("module") or ""), node.get("registered_name")
                if registered in SAFE_REGISTERED:
                    pass
                elif module.split(".")[0] not in SAFE_PACKAGES and module not in ("builtins", ""):
                    raise ArtifactError(f"{path} names {module}.{node['class_name']}, which is neither Keras' nor "
                                        f"launcher's; refused (allowed: keras.*, {one_of(SAFE_REGISTERED)})")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
