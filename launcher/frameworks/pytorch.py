"""PyTorch through Lightning: the portable MLP, CNN, RNN and Transformer.

torch and Lightning are imported inside the methods, so importing this module (framework
discovery, `python -m launcher.frameworks`) stays light. The networks live in
`launcher.frameworks.torch_networks`; the LightningModule, loaders and per-epoch
bookkeeping in `launcher.frameworks.torch_training`.

A fit writes `<run dir>/checkpoints/best.ckpt` (best validation score so far) and `last.ckpt`
(end of the latest epoch); `trainer.resume_from=<run dir or .ckpt>` continues from one. The
saved model is `model.safetensors` plus `network.json` (spec and schema): loading it never
unpickles anything. Checkpoints are read with `torch.load(weights_only=True)`.

Several GPUs: `device=gpu device.devices=4 device.strategy=ddp`. Lightning starts one process
per GPU by re-running the command; under Hydra it passes `hydra.run.dir=<the same run dir>`
(and `hydra.output_subdir=null`) to the extra processes, so there is one run directory. Each
process trains on its shard of every batch order (`batch_size` is per process); validation
sums are reduced over processes, so every process sees the same metrics and stops together.
Only global rank 0 logs epoch lines and writes checkpoints (`History.extra["global_rank"]`
tells the caller whether it is rank 0).
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from launcher.architectures import NETWORK_TYPES, image_shape, parse_spec, sequence_shape
from launcher.errors import ArtifactError, ConfigError, one_of
from launcher.frameworks.base import Adapter, DataSchema, History, Report, Splits

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "step", "plateau")
PRECISIONS = {"32": "32-true", "32-true": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}
MONITORS = {"val_loss": "min", "val_accuracy": "max", "val_r2": "max", "val_rmse": "min"}
WEIGHTS, NETWORK = "model.safetensors", "network.json"
FORMAT = "launcher-torch/1"


class PyTorchAdapter(Adapter):
    name = "pytorch"
    library = "torch"
    model_types = NETWORK_TYPES

    def __init__(self, name: str = "pytorch", enabled: bool = True, num_threads: int | None = None,
                 device: Any = None, **settings: Any) -> None:
        super().__init__(enabled=enabled, device=device, **settings)
        self.num_threads = num_threads

    # -- discovery -------------------------------------------------------------------------
    def devices(self) -> list[str]:
        import torch

        found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            found.append("mps")
        return found + ["cpu"]

    # -- checks before any training --------------------------------------------------------
    def check(self, spec: dict[str, Any], schema: DataSchema, trainer: dict[str, Any]) -> None:
        """Refuse what cannot work, before anything is trained (ConfigError says what would)."""
        if schema.task not in self.tasks:
            raise ConfigError(f"framework=pytorch does classification and regression, not {schema.task}; "
                              "use framework=sklearn for clustering (model=kmeans)")
        parsed = parse_spec(spec)
        if parsed.type == "cnn":
            image_shape(parsed, schema)
        elif parsed.type in ("rnn", "transformer"):
            sequence_shape(parsed, schema)
        self._monitor(self._settings(trainer)["monitor"], schema.task)
        self._precision(trainer, self._placement()[0])
        if trainer.get("resume_from"):
            self._checkpoint_path(trainer["resume_from"])

    def _settings(self, t: dict[str, Any]) -> dict[str, Any]:
        def positive_int(key):
            value = t.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"trainer.{key}={value!r} is invalid; expected a positive integer")
            return value

        positive_int("max_epochs")
        positive_int("batch_size")
        optimizer = str(t.get("optimizer", "adam")).lower()
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"trainer.optimizer={optimizer!r} is unknown; expected one of: {one_of(OPTIMIZERS)}")
        scheduler = str(t.get("scheduler") or "none").lower()
        if scheduler not in SCHEDULERS:
            raise ConfigError(f"trainer.scheduler={scheduler!r} is unknown; expected one of: {one_of(SCHEDULERS)}")
        lr = t.get("lr", 1e-3)
        if not isinstance(lr, (int, float)) or not lr > 0:
            raise ConfigError(f"trainer.lr={lr!r} is invalid; expected a positive number")
        clip = t.get("grad_clip")
        if clip is not None and (not isinstance(clip, (int, float)) or clip <= 0):
            raise ConfigError(f"trainer.grad_clip={clip!r} is invalid; expected a positive max norm, or null")
        es = dict(t.get("early_stopping") or {})
        monitor = es.get("monitor") or "val_loss"
        if monitor not in MONITORS:
            raise ConfigError(f"trainer.early_stopping.monitor={monitor!r} is unknown; expected one of: "
                              f"{one_of(MONITORS)}")
        return {"optimizer": optimizer, "scheduler": scheduler, "monitor": monitor,
                "patience": int(es.get("patience", 5)) if es.get("enabled", False) else None}

    @staticmethod
    def _monitor(monitor: str, task: str) -> str:
        valid = ("val_loss", "val_r2", "val_rmse") if task == "regression" else ("val_loss", "val_accuracy")
        if monitor not in valid:
            raise ConfigError(f"trainer.early_stopping.monitor={monitor} does not apply to {task}; expected one "
                              f"of: {one_of(valid)}")
        return monitor

    def _placement(self) -> tuple[str, Any, Any]:
        """(accelerator, devices, strategy) for Lightning; auto = cuda, then mps, then cpu."""
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
        if accelerator == "cuda" and isinstance(devices, int) and devices > torch.cuda.device_count():
            raise ConfigError(f"device.devices={devices} but only {torch.cuda.device_count()} CUDA GPU(s) are visible")
        return accelerator, devices, d.get("strategy") or "auto"

    def _precision(self, t: dict[str, Any], accelerator: str) -> str:
        import torch

        raw = str(t.get("precision", "32"))
        if raw not in PRECISIONS:
            raise ConfigError(f"trainer.precision={raw!r} is unknown; expected one of: 32, bf16-mixed, 16-mixed")
        precision = PRECISIONS[raw]
        if precision == "16-mixed" and accelerator == "cpu":
            raise ConfigError("trainer.precision=16-mixed needs a GPU; on the CPU use trainer.precision=bf16-mixed "
                              "or 32")
        if precision == "bf16-mixed" and accelerator == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"trainer.precision=bf16-mixed is not supported by {torch.cuda.get_device_name()}; "
                              "use trainer.precision=16-mixed or 32")
        return precision

    # -- the contract ----------------------------------------------------------------------
    def build(self, spec: dict[str, Any], schema: DataSchema):
        from launcher.frameworks.torch_training import TorchModel

        if schema.task not in self.tasks:
            raise ConfigError(f"framework=pytorch does classification and regression, not {schema.task}")
        model = TorchModel(parse_spec(spec), schema)
        model.fitted = False
        return model

    def fit(self, model, data: Splits, trainer: dict[str, Any], *, workdir: Path | None = None,
            report: Report | None = None) -> History:
        import lightning as L
        import torch
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        from launcher.frameworks import torch_networks as nets, torch_training as tn

        t = dict(trainer)
        opts = self._settings(t)
        accelerator, devices, strategy = self._placement()
        precision = self._precision(t, accelerator)
        seed = int(t.get("seed", 0) or 0)
        threads = t.get("num_threads") or self.num_threads
        if threads:
            torch.set_num_threads(int(threads))
        resume = self._checkpoint_path(t["resume_from"]) if t.get("resume_from") else None
        fit_args: dict[str, Any] = {}
        if resume is not None:
            self._check_checkpoint(resume, model)
            import inspect

            if "weights_only" not in inspect.signature(L.Trainer.fit).parameters:
                raise ConfigError(f"trainer.resume_from needs lightning>=2.6 (weights-only checkpoint loading); "
                                  f"this is lightning {L.__version__}: pip install -U 'lightning>=2.6'")
            fit_args = {"ckpt_path": str(resume), "weights_only": True}  # tensors and plain data only

        L.seed_everything(seed, workers=True, verbose=False)
        if not getattr(model, "fitted", True):  # initial weights drawn from the run's seed
            model.net = nets.build_network(model.spec, model.schema)
        t.update(seed=seed, optimizer=opts["optimizer"], scheduler=opts["scheduler"])
        model.train_settings = t
        regression = model.schema.task == "regression"
        if regression:
            y = np.asarray(data.y_train, dtype=np.float64)
            model.target_mean.fill_(float(y.mean()))
            model.target_std.fill_(float(y.std()) or 1.0)

        distributed = (isinstance(devices, int) and devices > 1) or (isinstance(devices, (list, tuple)) and
                                                                     len(devices) > 1) or "ddp" in str(strategy)
        batch = int(t["batch_size"])
        train_dl = tn.loader(data.X_train, data.y_train, regression, batch, True, seed, distributed)
        val_dl = tn.loader(data.X_val, data.y_val, regression, max(batch, 1024), False, seed, distributed)

        self._monitor(opts["monitor"], model.schema.task)
        checkpoint_dir = None
        if workdir is not None:
            checkpoint_dir = Path(workdir) / "checkpoints"
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
        monitor = self._monitor(opts["monitor"], model.schema.task)
        recorder = tn.EpochRecorder(monitor, MONITORS[monitor], opts["patience"], checkpoint_dir, report,
                                    _log_epoch, int(t["max_epochs"]))
        deterministic = bool(t.get("deterministic", True))
        if deterministic and accelerator != "cpu":
            deterministic = "warn"  # some CUDA kernels have no deterministic version; warn, do not fail
        tty = sys.stdout.isatty()
        quiet = _quiet_lightning().__enter__()
        try:
            try:
                pl = L.Trainer(
                    accelerator=accelerator, devices=devices, strategy=strategy, precision=precision,
                    max_epochs=int(t["max_epochs"]), deterministic=deterministic,
                    callbacks=[recorder], logger=False, enable_checkpointing=False, enable_model_summary=False,
                    enable_progress_bar=tty, num_sanity_val_steps=0, log_every_n_steps=1,
                    default_root_dir=str(workdir) if workdir is not None else None,
                )
            except (MisconfigurationException, ValueError) as exc:
                raise ConfigError(f"Lightning refused device={self.device.get('name')} (accelerator {accelerator}, "
                                  f"devices {devices}, strategy {strategy}): {exc}") from None
            if pl.is_global_zero:
                log.info("pytorch: %s %s on %s (precision %s, %d threads)%s", model.spec.type, model.schema.task,
                         accelerator if devices == 1 else f"{devices} x {accelerator}", precision,
                         torch.get_num_threads(), f", resuming from {resume}" if resume else "")
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*does not have many workers.*")
                warnings.filterwarnings("ignore", message=".*number of training batches.*")
                warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")  # Lightning vs torch 2.13
                pl.fit(model, train_dl, val_dl, **fit_args)
        finally:
            quiet.__exit__()

        best_state = recorder.best_state
        if best_state is None and recorder.best_epoch is not None and resume is not None:
            best_file = resume.parent / "best.ckpt"  # the best epoch came before the resume
            if best_file.is_file():
                best_state = torch.load(best_file, map_location="cpu", weights_only=True)["state_dict"]
                if checkpoint_dir is not None and not (checkpoint_dir / "best.ckpt").exists():
                    shutil.copy2(best_file, checkpoint_dir / "best.ckpt")
        if best_state is not None:
            model.load_state_dict(best_state)
        model.cpu().eval()
        model.fitted = True
        extra: dict[str, Any] = {"precision": precision, "accelerator": accelerator, "devices": devices,
                                 "strategy": str(strategy), "global_rank": pl.global_rank,
                                 "stopped_early": bool(recorder.epochs) and recorder.epochs[-1]["epoch"] < t["max_epochs"],
                                 "threads": torch.get_num_threads()}
        if checkpoint_dir is not None:
            extra["checkpoints"] = {"best": str(checkpoint_dir / "best.ckpt"), "last": str(checkpoint_dir / "last.ckpt")}
        if resume is not None:
            extra["resumed_from"] = str(resume)
        return History(epochs=recorder.epochs, device=str(pl.strategy.root_device), best_epoch=recorder.best_epoch,
                       extra=extra)

    def predict(self, model, X: np.ndarray) -> np.ndarray:
        import torch

        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != model.schema.n_features:
            raise ConfigError(f"the model expects rows of {model.schema.n_features} features, got shape {X.shape}")
        model.cpu().eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(X), 8192):
                parts.append(model.outputs(torch.from_numpy(X[start:start + 8192])).float().numpy())
        out = np.concatenate(parts) if parts else np.zeros((0, model.schema.n_outputs), dtype=np.float32)
        return out.reshape(-1) if model.schema.task == "regression" else out

    def save(self, model, directory: Path) -> None:
        from dataclasses import asdict

        import torch
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS), metadata={"format": FORMAT})
        info = {"format": FORMAT, "spec": asdict(model.spec), "schema": model.schema.to_dict(),
                "torch": torch.__version__}
        (directory / NETWORK).write_text(json.dumps(info, indent=2, default=str))

    def load(self, directory: Path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from launcher.frameworks.torch_training import TorchModel

        directory = Path(directory)
        for name in (WEIGHTS, NETWORK):
            if not (directory / name).is_file():
                raise ArtifactError(f"{directory} is not a saved PyTorch model: {name} is missing")
        try:
            info = json.loads((directory / NETWORK).read_text())
            spec, schema = parse_spec(info["spec"]), DataSchema.from_dict(info["schema"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"{directory / NETWORK} is unreadable: {exc}") from None
        model = TorchModel(spec, schema)
        try:
            model.load_state_dict(load_file(str(directory / WEIGHTS)), strict=True)
        except (SafetensorError, RuntimeError, OSError) as exc:
            raise ArtifactError(f"{directory / WEIGHTS} does not hold the weights of this {spec.type}: {exc}") from None
        model.fitted = True
        return model.eval()

    # -- checkpoints -----------------------------------------------------------------------
    @staticmethod
    def _checkpoint_path(value: Any) -> Path:
        from launcher.paths import original_cwd

        path = Path(str(value)).expanduser()
        if not path.is_absolute():
            path = original_cwd() / path
        if path.is_dir():
            for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
                if candidate.is_file():
                    return candidate
            raise ConfigError(f"trainer.resume_from={value}: no checkpoints/last.ckpt in that directory; "
                              "give a run directory of a PyTorch run, or a .ckpt file")
        if not path.is_file():
            raise ConfigError(f"trainer.resume_from={value}: no such file or directory; give a run directory "
                              "or a .ckpt file")
        return path

    @staticmethod
    def _check_checkpoint(path: Path, model) -> None:
        """The checkpoint must hold this very architecture (read without unpickling code)."""
        from dataclasses import asdict

        import torch

        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConfigError(f"trainer.resume_from={path} is not a readable checkpoint: {exc}") from None
        saved = ckpt.get("launcher") if isinstance(ckpt, dict) else None
        if not saved:
            raise ConfigError(f"trainer.resume_from={path} was not written by this launcher")
        if saved["spec"] != asdict(model.spec) or saved["schema"].get("n_features") != model.schema.n_features \
                or saved["schema"].get("classes") != model.schema.classes:
            raise ConfigError(
                f"trainer.resume_from={path} holds a different model or data: saved spec {saved['spec']} "
                f"with {saved['schema'].get('n_features')} features; this run: {asdict(model.spec)} with "
                f"{model.schema.n_features}. Resume with the same model and data settings")


def _log_epoch(row: dict[str, float], max_epochs: int) -> None:
    """One plain line per epoch when output is not a terminal (a terminal gets the progress bar)."""
    if sys.stdout.isatty():
        return
    parts = [f"{k}={row[k]:.4f}" for k in row if k.startswith(("train_", "val_")) and not math.isnan(row[k])]
    log.info("epoch %d/%d  %s  (%.2fs)", row["epoch"], max_epochs, "  ".join(parts), row.get("seconds", 0.0))


class _quiet_lightning:
    """Silence Lightning's start-up chatter (GPU/TPU availability, tips) during a fit."""

    names = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
             "lightning.fabric.utilities.seed", "lightning.pytorch.trainer.connectors.signal_connector")

    def __enter__(self):
        self.levels = {}
        for name in self.names:
            logger = logging.getLogger(name)
            self.levels[name] = logger.level
            logger.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc):
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
        return False
