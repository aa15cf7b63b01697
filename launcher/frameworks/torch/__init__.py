"""PyTorch: the portable MLP, CNN, RNN and Transformer, trained through Lightning Fabric.

networks.py  the PyTorch builds of the portable specs (launcher.core.specs)
loop.py      the training loop on Fabric: devices, precision, DDP, checkpoints, resume

This module imports neither torch nor Lightning at import time (framework discovery and
`import launcher` stay light); its methods do.

Saved models are `model.safetensors` plus `network.json` (spec and schema): loading rebuilds the
network from JSON and reads the weights with safetensors, so nothing unpickles.

Data parallel: `device.devices=N device.strategy=ddp` (GPUs, or N CPU processes with gloo),
`device.num_nodes` machines of N each. Outside a cluster job Fabric starts the extra processes by
re-running the command; under Hydra they get `hydra.run.dir=<the same run dir>`, so there is one
run directory. Inside a SLURM job SLURM starts them (one task per device); cluster.py chooses
Fabric's cluster environment and refuses layouts that cannot start. Each process takes its
share of every batch (batch_size is per process); validation sums are reduced over processes,
so every process sees the same metrics and they stop together. Only the first process writes
(History.writer).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from launcher.core.adapter import Adapter
from launcher.core.errors import ArtifactError, ConfigError
from launcher.core.specs import NETWORK_TYPES, check_network
from launcher.core.trainer import TrainerSettings
from launcher.core.types import DataSchema, History, Report, Splits
from launcher.frameworks import network_file
from launcher.frameworks.checkpoints import resume_checkpoint
from launcher.frameworks.torch import cluster

WEIGHTS = "model.safetensors"  # beside network_file.NETWORK
FORMAT = "launcher-torch/2"
PREDICT_CHUNK = 8192


@dataclass
class TorchModel:
    """A portable network (`net`, a torch.nn.Module) with the spec and schema it was built from."""

    net: Any
    spec: Any
    schema: DataSchema
    fitted: bool = False


class TorchAdapter(Adapter):
    name = "pytorch"
    module = "torch"
    packages = ("torch", "lightning-fabric", "safetensors")
    model_types = NETWORK_TYPES
    trains_in_epochs = True

    def __init__(self, device: Any = None, enabled: bool = True, num_threads: int | None = None,
                 backend_mkl: bool = True) -> None:
        super().__init__(device=device, enabled=enabled)
        if num_threads is not None and (not isinstance(num_threads, int) or isinstance(num_threads, bool)
                                        or num_threads < 1):
            raise ConfigError(f"framework.num_threads={num_threads!r} is invalid; expected a positive integer "
                              "or null")
        if not isinstance(backend_mkl, bool):
            raise ConfigError(f"framework.backend_mkl={backend_mkl!r} is invalid; expected true or false")
        self.num_threads, self.backend_mkl = num_threads, backend_mkl

    def devices(self) -> list[str]:
        import torch

        found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            found.append("mps")
        return found + ["cpu"]

    # -- before training ------------------------------------------------------------------------
    def check(self, spec: dict[str, Any], schema: DataSchema, settings: TrainerSettings) -> None:
        check_network("pytorch", spec, schema)
        settings.check_task(schema.task)
        accelerator, devices, _, num_nodes = self.placement()
        self._check_precision(settings.precision, accelerator)
        cluster.check_processes(devices, num_nodes, _in_multirun())
        if settings.resume_from:
            resume_checkpoint(settings.resume_from, "last.ckpt", self.name, "PyTorch")

    def placement(self) -> tuple[str, Any, Any, int]:
        """(accelerator, devices, strategy, num_nodes) for Fabric; auto = cuda, then mps, then cpu."""
        import torch

        d = self.device
        wanted = str(d.get("accelerator") or d.get("name") or "auto").lower()
        cuda = torch.cuda.is_available()
        mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
        if wanted == "auto":
            accelerator = "cuda" if cuda else "mps" if mps else "cpu"
        elif wanted in ("gpu", "cuda"):
            if not (cuda or (mps and wanted == "gpu")):
                raise ConfigError(
                    f"device={d.get('name', wanted)} asks for a GPU, but torch {torch.__version__} sees none "
                    f"(CUDA available: {cuda}, MPS available: {mps}); use device=cpu or device=auto, or "
                    "install a CUDA build of torch on a machine with a GPU")
            accelerator = "cuda" if cuda else "mps"
        elif wanted == "mps":
            if not mps:
                raise ConfigError("device.accelerator=mps asks for Apple's GPU, which torch does not see here; "
                                  "use device=cpu or device=auto")
            accelerator = "mps"
        elif wanted == "cpu":
            accelerator = "cpu"
        else:
            raise ConfigError(f"device.accelerator={wanted!r} is unknown; expected one of: auto, cpu, cuda, gpu, mps")
        devices = d.get("devices", 1)
        if devices in (None, "auto"):
            devices = 1  # several devices only when asked for: device.devices=4 device.strategy=ddp
        if isinstance(devices, Sequence) and not isinstance(devices, str):
            devices = list(devices)  # GPU indices, e.g. device.devices=[0,2]
        if not isinstance(devices, (int, list)) or isinstance(devices, bool) or not devices \
                or (isinstance(devices, int) and devices < 1):
            raise ConfigError(f"device.devices={devices!r} is invalid; expected a positive number of devices "
                              "(or a list of GPU indices)")
        if accelerator == "cuda" and isinstance(devices, int) and devices > torch.cuda.device_count():
            raise ConfigError(f"device.devices={devices} but only {torch.cuda.device_count()} CUDA GPU(s) are visible"
                              + (f" in SLURM job {os.environ.get('SLURM_JOB_ID')}: ask for them with "
                                 f"hydra.launcher.gpus_per_node={devices}" if cluster.in_slurm_step() else ""))
        num_nodes = d.get("num_nodes", 1)
        if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) or num_nodes < 1:
            raise ConfigError(f"device.num_nodes={num_nodes!r} is invalid; expected a positive number of machines")
        return accelerator, devices, d.get("strategy") or "auto", num_nodes

    @staticmethod
    def _check_precision(precision: str, accelerator: str) -> None:
        import torch

        if precision == "16-mixed" and accelerator == "cpu":
            raise ConfigError("trainer.precision=16-mixed needs a GPU; on the CPU use trainer.precision=bf16-mixed "
                              "or 32")
        if precision == "bf16-mixed" and accelerator == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"trainer.precision=bf16-mixed is not supported by {torch.cuda.get_device_name()}; "
                              "use trainer.precision=16-mixed or 32")

    # -- the five verbs -------------------------------------------------------------------------
    def build(self, spec: dict[str, Any], schema: DataSchema) -> TorchModel:
        from launcher.frameworks.torch.networks import build_network

        parsed = check_network("pytorch", spec, schema)
        return TorchModel(build_network(parsed, schema), parsed, schema)

    def fit(self, model: TorchModel, data: Splits, settings: TrainerSettings, *, workdir: Path | None = None,
            report: Report | None = None) -> History:
        from lightning_fabric.utilities.exceptions import MisconfigurationException

        from launcher.frameworks.torch import loop

        placement = self.placement()
        self._check_precision(settings.precision, placement[0])
        resume = resume_checkpoint(settings.resume_from, "last.ckpt", self.name, "PyTorch")
        with self._threads(settings.num_threads), self._deterministic(settings.deterministic, placement[0]):
            try:
                return loop.fit(model, data, settings, placement, workdir=workdir, report=report, resume=resume)
            except (MisconfigurationException, ValueError) as exc:
                if "strategy" in str(exc).lower() or "accelerator" in str(exc).lower() \
                        or "device" in str(exc).lower():
                    raise ConfigError(f"Lightning refused device={self.device.get('name')} (accelerator "
                                      f"{placement[0]}, devices {placement[1]}, strategy {placement[2]}, "
                                      f"num_nodes {placement[3]}): {exc}") from None
                raise

    def predict(self, model: TorchModel, X: np.ndarray) -> np.ndarray:
        import torch

        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != model.schema.n_features:
            raise ConfigError(f"the model expects rows of {model.schema.n_features} features, got shape {X.shape}")
        net = model.net.cpu().eval()
        parts = []
        with self._threads(None), torch.inference_mode():
            for start in range(0, len(X), PREDICT_CHUNK):
                out = net(torch.from_numpy(X[start:start + PREDICT_CHUNK])).float()
                parts.append((out.squeeze(-1) if model.schema.task == "regression" else torch.softmax(out, -1)).numpy())
        if not parts:
            return np.zeros((0,) if model.schema.task == "regression" else (0, model.schema.n_outputs), np.float32)
        return np.concatenate(parts)

    def save(self, model: TorchModel, directory: Path) -> None:
        import torch
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
        save_file(state, str(directory / WEIGHTS), metadata={"format": FORMAT})
        network_file.write(directory, FORMAT, model, torch=torch.__version__)

    def load(self, directory: Path) -> TorchModel:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from launcher.frameworks.torch.networks import build_network

        directory = Path(directory)
        spec, schema, _ = network_file.read(directory, FORMAT, WEIGHTS, "PyTorch")
        net = build_network(spec, schema)
        try:
            net.load_state_dict(load_file(str(directory / WEIGHTS)), strict=True)
        except (SafetensorError, RuntimeError, OSError) as exc:
            raise ArtifactError(f"{directory / WEIGHTS} does not hold the weights of this {spec.type}: {exc}") from None
        return TorchModel(net.eval(), spec, schema, fitted=True)

    # -- process-wide torch settings, set for a call and restored after -------------------------
    @contextmanager
    def _threads(self, threads: int | None) -> Iterator[None]:
        import torch

        threads = threads or self.num_threads
        before = torch.get_num_threads(), torch.backends.mkldnn.enabled
        if threads:
            torch.set_num_threads(int(threads))
        torch.backends.mkldnn.enabled = self.backend_mkl
        try:
            yield
        finally:
            torch.set_num_threads(before[0])
            torch.backends.mkldnn.enabled = before[1]

    @staticmethod
    @contextmanager
    def _deterministic(wanted: bool, accelerator: str) -> Iterator[None]:
        import torch

        before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
        # Some CUDA kernels have no deterministic version: warn there rather than fail.
        torch.use_deterministic_algorithms(wanted, warn_only=accelerator != "cpu")
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def _in_multirun() -> bool:
    """Whether this job is one of a Hydra multirun (a grid or a sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
