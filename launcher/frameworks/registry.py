"""Which frameworks exist, which adapter serves each, and what each can do here.

The framework configs (conf/framework/<name>.yaml) are the one place that says which adapter
class serves a framework and which settings it takes; everything here reads them, so the
command line, the Python API and `python -m launcher.frameworks` agree. Looking up an adapter
class imports its module, which imports no framework: it is cheap.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from importlib import metadata as importlib_metadata
from typing import Any, Mapping

import numpy as np
from omegaconf import DictConfig, OmegaConf

from launcher.core.adapter import Adapter
from launcher.core.errors import ConfigError, one_of
from launcher.core.paths import CONFIG_DIR
from launcher.core.trainer import TrainerSettings
from launcher.core.types import FrameworkStatus

FRAMEWORKS = ("pytorch", "tensorflow", "sklearn", "jax")
# Other names people use for the same frameworks (the first users' `scikit_learn` among them).
ALIASES = {"scikit_learn": "sklearn", "scikit-learn": "sklearn", "torch": "pytorch", "keras": "tensorflow",
           "tf": "tensorflow", "flax": "jax"}
# Keys of a framework config that are not settings of the adapter.
NOT_SETTINGS = ("_target_", "name")
# The import name and distribution behind each framework, for status when there is no adapter.
LIBRARIES = {"pytorch": ("torch", "torch"), "tensorflow": ("tensorflow", "tensorflow"),
             "sklearn": ("sklearn", "scikit-learn"), "jax": ("jax", "jax")}


def canonical(name: str) -> str:
    name = ALIASES.get(str(name), str(name))
    if name not in FRAMEWORKS:
        raise ConfigError(f"unknown framework {name!r}; expected one of: {one_of(FRAMEWORKS)}")
    return name


def framework_config(name: str, device: str | Mapping[str, Any] = "auto",
                     settings: Mapping[str, Any] | None = None) -> DictConfig:
    """The framework config of `name` as `python -m launcher framework=<name>` composes it,
    with `settings` applied the way `framework.<key>=<value>` overrides are."""
    name = canonical(name)
    base = OmegaConf.load(CONFIG_DIR / "framework" / f"{name}.yaml")
    settings = dict(settings or {})
    if "device" in settings:  # the first users' shape: {"device": "auto", ...}
        device = settings.pop("device")
    check_settings(name, base, settings)
    if isinstance(device, str):
        path = CONFIG_DIR / "device" / f"{device}.yaml"
        if not path.is_file():
            raise ConfigError(f"device={device!r} is unknown; expected one of: auto, cpu, gpu")
        device = OmegaConf.load(path)
    root = OmegaConf.create({"framework": base, "device": device})
    root.framework = OmegaConf.merge(root.framework, settings)
    return root.framework


def check_settings(name: str, config: DictConfig, settings: Mapping[str, Any]) -> None:
    known = [k for k in config if k not in NOT_SETTINGS]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(f"framework.{unknown[0]} is not a setting of framework={name}; expected one of: "
                          f"{one_of(known)}")


def adapter_class(name: str) -> type[Adapter] | None:
    """The adapter class a framework config names, or None if this version has none."""
    target = str(OmegaConf.load(CONFIG_DIR / "framework" / f"{canonical(name)}.yaml")._target_)
    module, _, cls = target.rpartition(".")
    if importlib.util.find_spec(module) is None:
        return None
    return getattr(importlib.import_module(module), cls)


def available() -> list[str]:
    """Frameworks with an adapter in this version."""
    return [name for name in FRAMEWORKS if adapter_class(name) is not None]


def supporting(model_type: str) -> list[str]:
    """Frameworks whose adapter builds `model_type`."""
    return [name for name in FRAMEWORKS
            if (cls := adapter_class(name)) is not None and model_type in cls.model_types]


def instantiate(framework_cfg: DictConfig, check_enabled: bool = True) -> Adapter:
    """The adapter a (composed) framework config names; refused clearly when disabled, when this
    version has no adapter for it, or when a setting is unknown."""
    from hydra.utils import instantiate as hydra_instantiate

    name = canonical(framework_cfg.get("name"))
    if check_enabled and not framework_cfg.get("enabled", True):
        raise ConfigError(f"framework={name} is disabled (framework.enabled=false); enable it with "
                          f"framework.enabled=true or pick another framework")
    if adapter_class(name) is None:
        raise ConfigError(f"framework={name} has no adapter in this version of launcher; available: "
                          f"{one_of(available())}")
    shipped = OmegaConf.load(CONFIG_DIR / "framework" / f"{name}.yaml")
    values = OmegaConf.to_container(framework_cfg, resolve=True)
    check_settings(name, shipped, {k: v for k, v in values.items() if k not in NOT_SETTINGS})
    kwargs = {k: v for k, v in values.items() if k not in NOT_SETTINGS}
    return hydra_instantiate({"_target_": str(framework_cfg._target_)}, **kwargs)


def status(name: str, device: str | Mapping[str, Any] = "auto", settings: Mapping[str, Any] | None = None,
           health_check: bool = False) -> FrameworkStatus:
    """Installed? Version, devices, enabled; with health_check a tiny fit. Never raises."""
    try:
        name = canonical(name)
        cfg = framework_config(name, device, settings)
    except ConfigError as exc:
        return FrameworkStatus(name=str(name), installed=False, enabled=False, detail=str(exc))
    enabled = bool(cfg.get("enabled", True))
    try:
        adapter = instantiate(cfg, check_enabled=False)
    except ConfigError as exc:
        return _library_status(name, enabled, str(exc))
    st = adapter.status()
    if health_check and st.installed and enabled:
        try:
            run_health_check(adapter)
            st.healthy = True
        except Exception as exc:  # a health check reports, it does not raise
            st.healthy = False
            st.detail = f"health check failed: {type(exc).__name__}: {exc}"
    if not enabled:
        st.detail = (st.detail + "; " if st.detail else "") + "disabled by framework.enabled=false"
    return st


def run_health_check(adapter: Adapter) -> None:
    """Fit and predict a tiny model on synthetic data; raises if anything is wrong."""
    from launcher.data import synthetic_splits

    splits = synthetic_splits(n=64, features=4, classes=2, seed=0)
    model = adapter.build(adapter.health_check_spec(), splits.schema)
    settings = TrainerSettings(max_epochs=1, batch_size=32, early_stopping=False)
    adapter.check(adapter.health_check_spec(), splits.schema, settings)
    quiet = logging.getLogger("launcher")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # a health check's epoch line is not news
    try:
        adapter.fit(model, splits, settings)
    finally:
        quiet.setLevel(level)
    out = adapter.predict(model, splits.X_test)
    if len(out) != len(splits.X_test) or not np.all(np.isfinite(out)):
        raise RuntimeError("predictions have the wrong length or are not finite")


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
