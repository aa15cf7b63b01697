"""Discovery and status of the framework adapters, from the `framework` config group.

The framework configs (launcher/conf/framework/*.yaml) are the one place that says which
adapter class serves a framework and with which settings; the manager reads them, so the
Python API and `python -m launcher` agree.
"""
from __future__ import annotations

import importlib.util
from importlib import metadata as importlib_metadata
from typing import Any

from omegaconf import DictConfig, OmegaConf

from launcher.errors import ConfigError, one_of
from launcher.frameworks.base import Adapter, FrameworkStatus
from launcher.paths import CONFIG_DIR

FRAMEWORKS = ("pytorch", "tensorflow", "sklearn", "jax")
# The import name and distribution behind each framework, for status before an adapter loads.
LIBRARIES = {"pytorch": ("torch", "torch"), "tensorflow": ("tensorflow", "tensorflow"),
             "sklearn": ("sklearn", "scikit-learn"), "jax": ("jax", "jax")}


def framework_config(name: str, device: str | dict = "auto", **settings: Any) -> DictConfig:
    path = CONFIG_DIR / "framework" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown framework {name!r}; expected one of: {one_of(FRAMEWORKS)}")
    device_cfg = OmegaConf.load(CONFIG_DIR / "device" / f"{device}.yaml") if isinstance(device, str) else device
    root = OmegaConf.create({"framework": OmegaConf.load(path), "device": device_cfg})
    root.framework = OmegaConf.merge(root.framework, settings)
    return root.framework


def instantiate_adapter(framework_cfg: DictConfig, check_enabled: bool = True) -> Adapter:
    """The adapter a framework config names, refused clearly if disabled or unavailable."""
    from hydra.utils import instantiate

    name = framework_cfg.get("name")
    if check_enabled and not framework_cfg.get("enabled", True):
        raise ConfigError(f"framework={name} is disabled (framework.enabled=false); enable it with "
                          f"framework.enabled=true or pick another framework")
    target = str(framework_cfg.get("_target_"))
    module = target.rpartition(".")[0]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"framework={name} has no adapter in this version of launcher ({module} is "
                          f"missing); available: {one_of(available_adapters())}")
    kwargs = {k: v for k, v in OmegaConf.to_container(framework_cfg, resolve=True).items()
              if k not in ("_target_", "name")}
    return instantiate({"_target_": target}, **kwargs)


def adapter_class(name: str) -> type[Adapter] | None:
    """The adapter class a framework config names, or None if this version has none.
    Adapter modules import no framework, so this is cheap."""
    target = str(OmegaConf.load(CONFIG_DIR / "framework" / f"{name}.yaml")._target_)
    module, _, cls = target.rpartition(".")
    if importlib.util.find_spec(module) is None:
        return None
    return getattr(importlib.import_module(module), cls)


def available_adapters() -> list[str]:
    return [name for name in FRAMEWORKS if adapter_class(name) is not None]


def frameworks_supporting(model_type: str) -> list[str]:
    """Frameworks whose adapter declares `model_type`."""
    return [name for name in FRAMEWORKS
            if (cls := adapter_class(name)) is not None and model_type in cls.model_types]


class FrameworkManager:
    """Which frameworks exist, which are usable here, and their adapters.

    `FrameworkManager(settings={"sklearn": {"n_jobs": 2}}, device="cpu")` applies framework
    settings the same way `framework.n_jobs=2 device=cpu` does on the command line."""

    def __init__(self, settings: dict[str, dict[str, Any]] | None = None, device: str = "auto"):
        self.settings = settings or {}
        self.device = device

    def list_frameworks(self) -> list[str]:
        return list(FRAMEWORKS)

    def config(self, name: str) -> DictConfig:
        return framework_config(name, self.device, **self.settings.get(name, {}))

    def get_framework(self, name: str) -> Adapter:
        """The adapter for `name`; a disabled or missing framework raises ConfigError."""
        return instantiate_adapter(self.config(name))

    def get_framework_status(self, name: str, health_check: bool = False) -> FrameworkStatus:
        """Installed? version, devices, enabled, optionally a tiny fit. Never raises."""
        try:
            cfg = self.config(name)
        except ConfigError as exc:
            return FrameworkStatus(name=name, installed=False, enabled=False, detail=str(exc))
        try:
            adapter = instantiate_adapter(cfg, check_enabled=False)
        except Exception as exc:
            return self._library_status(name, bool(cfg.get("enabled", True)), str(exc))
        status = adapter.status(health_check=health_check and adapter.enabled)
        if not adapter.enabled:
            status.detail = (status.detail + "; " if status.detail else "") + "disabled by framework.enabled=false"
        return status

    def status(self, health_check: bool = False) -> dict[str, FrameworkStatus]:
        return {name: self.get_framework_status(name, health_check) for name in FRAMEWORKS}

    @staticmethod
    def _library_status(name: str, enabled: bool, detail: str) -> FrameworkStatus:
        module, dist = LIBRARIES[name]
        installed = importlib.util.find_spec(module) is not None
        version = None
        if installed:
            try:
                version = importlib_metadata.version(dist)
            except importlib_metadata.PackageNotFoundError:
                pass
        return FrameworkStatus(name=name, installed=installed, enabled=enabled, version=version, detail=detail)


# The names the Python API's first users know.
MLFrameworkManager = FrameworkManager
