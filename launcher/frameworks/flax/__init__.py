"""JAX: the portable MLP, CNN, RNN and Transformer in Flax (NNX), trained with Optax.

networks.py  the Flax builds of the portable specs (launcher.core.specs)
loop.py      the compiled training loop: one jitted program per epoch, checkpoints, resume
state.py     parameters and checkpoints as named arrays in msgpack files (no pickle)

This module imports neither jax nor flax at import time (framework discovery and
`import launcher` stay light); its methods do, after setting what JAX reads only once, when
its backends start: XLA_PYTHON_CLIENT_PREALLOCATE (framework.preallocate; false by default, so
a GPU run takes memory as it needs it instead of 75% of the card up front) and, for device=cpu,
the CPU as the only platform (no GPU context for a CPU run). Both apply to the process: once
JAX has started, later runs in the same process keep what the first one set.

Saved models are `model.msgpack` (parameters and batch statistics as named arrays, Flax's msgpack
serialization) plus `network.json` (spec and schema): loading rebuilds the network from JSON and
fills it with arrays whose names, shapes and dtypes must all match, so nothing unpickles and
a file of another network is refused.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from launcher.core.adapter import Adapter
from launcher.core.errors import ArtifactError, ConfigError
from launcher.core.paths import original_cwd
from launcher.core.specs import NETWORK_TYPES, check_network
from launcher.core.trainer import TrainerSettings
from launcher.core.types import DataSchema, History, Report, Splits
from launcher.frameworks import network_file
from launcher.frameworks.checkpoints import resume_checkpoint

WEIGHTS = "model.msgpack"  # beside network_file.NETWORK
LAST_CHECKPOINT, BEST_CHECKPOINT = "last.msgpack", "best.msgpack"  # under <run dir>/checkpoints
FORMAT = "launcher-flax/1"
PREDICT_CHUNK = 8192
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "tpu")

log = logging.getLogger("launcher")

# True once this adapter made the CPU JAX's only platform (device=cpu before JAX started).
_cpu_only = False


@dataclass
class FlaxModel:
    """A portable network (`net`, an nnx.Module) with the spec and schema it was built from."""

    net: Any
    spec: Any
    schema: DataSchema
    fitted: bool = False


class FlaxAdapter(Adapter):
    name = "jax"
    module = "jax"
    packages = ("jax", "jaxlib", "flax", "optax")
    model_types = NETWORK_TYPES
    trains_in_epochs = True

    def __init__(self, device: Any = None, enabled: bool = True, preallocate: bool = False,
                 compilation_cache: str | None = None) -> None:
        super().__init__(device=device, enabled=enabled)
        if not isinstance(preallocate, bool):
            raise ConfigError(f"framework.preallocate={preallocate!r} is invalid; expected true or false")
        if compilation_cache is not None and (not isinstance(compilation_cache, str) or not compilation_cache):
            raise ConfigError(f"framework.compilation_cache={compilation_cache!r} is invalid; expected a directory "
                              "or null")
        self.preallocate = preallocate
        self.compilation_cache = None if compilation_cache is None else os.path.expanduser(compilation_cache)

    # -- JAX, started with this adapter's process settings ----------------------------------------
    def _wanted(self) -> str:
        return str(self.device.get("accelerator") or self.device.get("name") or "auto").lower()

    def _jax(self) -> Any:
        """jax, after the settings that JAX reads once, when its backends start."""
        global _cpu_only
        import jax
        from jax._src import xla_bridge  # backends_are_initialized: no public equivalent

        bridge = logging.getLogger("jax._src.xla_bridge")
        if bridge.level == logging.NOTSET:  # its INFO lines (no TPU library here...) are not news in a run log
            bridge.setLevel(logging.WARNING)
        wanted = "true" if self.preallocate else "false"
        if self.compilation_cache:
            # JAX's persistent cache: a program compiled once (here, or by another process) loads from
            # disk. It applies if set before this process's first compilation.
            cache = str(original_cwd() / self.compilation_cache)  # relative: to where the command ran
            if jax.config.jax_compilation_cache_dir != cache:
                jax.config.update("jax_compilation_cache_dir", cache)
                jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
        if not xla_bridge.backends_are_initialized():
            os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = wanted
            if self._wanted() == "cpu" and not os.environ.get("JAX_PLATFORMS") and not jax.config.jax_platforms:
                jax.config.update("jax_platforms", "cpu")
                _cpu_only = True
        elif os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE") != wanted and not _cpu_only \
                and any(d.platform != "cpu" for d in jax.devices()):
            log.warning("jax: framework.preallocate=%s does not apply: JAX started earlier in this process "
                        "with XLA_PYTHON_CLIENT_PREALLOCATE=%s; run in a new process to change it",
                        str(self.preallocate).lower(), os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"))
        return jax

    def devices(self) -> list[str]:
        jax = self._jax()
        return [str(d) for d in jax.devices() if d.platform != "cpu"] + ["cpu"]

    def placement(self) -> Any:
        """The jax.Device to train on: auto = JAX's default (a GPU or TPU if it has one, else the CPU)."""
        d, wanted = self.device, self._wanted()
        if wanted not in ACCELERATORS:
            raise ConfigError(f"device.accelerator={wanted!r} is not one framework=jax can use; expected one of: "
                              f"{', '.join(ACCELERATORS)}")
        devices = d.get("devices", 1)
        if devices not in (None, "auto", 1):
            raise ConfigError(f"device.devices={devices}: framework=jax trains on one device; use device.devices=1 "
                              "(several GPUs: framework=pytorch with device.strategy=ddp)")
        if (d.get("strategy") or "auto") != "auto":
            raise ConfigError(f"device.strategy={d.get('strategy')} is for framework=pytorch; framework=jax "
                              "takes device.strategy=auto")
        jax = self._jax()
        platform = {"cuda": "gpu"}.get(wanted, wanted)
        try:
            found = jax.devices() if platform == "auto" else jax.devices(platform)
        except RuntimeError:
            found = []
        if found:
            return found[0]
        if _cpu_only:
            raise ConfigError(f"device={d.get('name', wanted)}: JAX in this process was started for the CPU only "
                              "(by an earlier device=cpu run); run it in a new process")
        seen = sorted({x.platform for x in jax.devices()}) if platform != "cpu" else []
        raise ConfigError(f"device={d.get('name', wanted)} asks for a {platform.upper()}, but JAX {jax.__version__} "
                          f"sees none (platforms: {', '.join(seen) or 'none'}); use device=cpu or device=auto, "
                          "or install JAX for your accelerator (pip install 'jax[cuda12]') on a machine with one")

    # -- before training ------------------------------------------------------------------------
    def check(self, spec: dict[str, Any], schema: DataSchema, settings: TrainerSettings) -> None:
        check_network("jax", spec, schema)
        settings.check_task(schema.task)
        self._check_precision(settings.precision)
        self.placement()
        if settings.resume_from:
            resume_checkpoint(settings.resume_from, LAST_CHECKPOINT, self.name, "JAX")

    @staticmethod
    def _check_precision(precision: str) -> None:
        if precision == "16-mixed":
            raise ConfigError("trainer.precision=16-mixed is not available with framework=jax (float16 training "
                              "needs loss scaling, which this adapter does not do); use trainer.precision=bf16-mixed "
                              "or 32")

    # -- the five verbs -------------------------------------------------------------------------
    def build(self, spec: dict[str, Any], schema: DataSchema) -> FlaxModel:
        parsed = check_network("jax", spec, schema)
        self._jax()
        from launcher.frameworks.flax.networks import abstract_network

        # shapes only: fit draws the weights from the run's seed (predict or save before any
        # fit use key 0)
        return FlaxModel(abstract_network(parsed, schema), parsed, schema)

    def fit(self, model: FlaxModel, data: Splits, settings: TrainerSettings, *, workdir: Path | None = None,
            report: Report | None = None) -> History:
        self._check_precision(settings.precision)
        device = self.placement()
        from launcher.frameworks.flax import loop

        if settings.num_threads:
            log.warning("jax: trainer.num_threads=%d is not applied: XLA sizes its CPU thread pool when it "
                        "starts (limit the process's CPUs instead, e.g. taskset)", settings.num_threads)
        resume = resume_checkpoint(settings.resume_from, LAST_CHECKPOINT, self.name, "JAX")
        return loop.fit(model, data, settings, device, workdir=workdir, report=report, resume=resume)

    def predict(self, model: FlaxModel, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != model.schema.n_features:
            raise ConfigError(f"the model expects rows of {model.schema.n_features} features, got shape {X.shape}")
        self._jax()
        from launcher.frameworks.flax import loop

        return loop.predict(model, X, PREDICT_CHUNK)

    def save(self, model: FlaxModel, directory: Path) -> None:
        self._jax()
        import flax
        import jax

        from launcher.frameworks.flax import state
        from launcher.frameworks.flax.loop import materialise, split_model

        materialise(model)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _, params, stats = split_model(model.net)
        state.write(directory / WEIGHTS, {"format": FORMAT, "params": state.to_arrays(params),
                                          "batch_stats": state.to_arrays(stats)})
        network_file.write(directory, FORMAT, model, jax=jax.__version__, flax=flax.__version__)

    def load(self, directory: Path) -> FlaxModel:
        directory = Path(directory)
        spec, schema, _ = network_file.read(directory, FORMAT, WEIGHTS, "JAX")
        self._jax()
        from flax import nnx

        from launcher.frameworks.flax import state
        from launcher.frameworks.flax.loop import split_model
        from launcher.frameworks.flax.networks import abstract_network

        graphdef, params, stats = split_model(abstract_network(spec, schema))
        try:
            content = state.read(directory / WEIGHTS)
            if content.get("format") != FORMAT:
                raise state.StateError(f"format {content.get('format')!r}, expected {FORMAT!r}")
            params = state.from_arrays(params, content.get("params"), "params")
            stats = state.from_arrays(stats, content.get("batch_stats"), "batch_stats")
        except (state.StateError, OSError) as exc:
            raise ArtifactError(f"{directory / WEIGHTS} does not hold the weights of this {spec.type}: {exc}") from None
        return FlaxModel(nnx.merge(graphdef, params, stats), spec, schema, fitted=True)
