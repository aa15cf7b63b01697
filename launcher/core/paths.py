"""Where things are: the shipped config tree, the user's working directory, the run directory."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

# The config tree is the package `launcher.conf` (the repository's top-level conf/, shipped in
# the wheel): Hydra reads it as pkg://launcher.conf, tools that list options read it here.
CONFIG_PACKAGE = "launcher.conf"
CONFIG_DIR = Path(str(resources.files(CONFIG_PACKAGE)))
# A conf/ folder in the directory a command starts from joins Hydra's search path ahead of the
# shipped tree (hydra_plugins/launcher_searchpath): the user's own configs.
USER_CONFIG_DIR = "conf"


def original_cwd() -> Path:
    """The directory the command was started from (relative data paths resolve against it)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.cwd)
    return Path.cwd()


def run_dir() -> Path:
    """The current Hydra job's output directory, or the working directory outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def _user_dir(group: str) -> Path:
    return original_cwd() / USER_CONFIG_DIR / group


def config_options(group: str) -> list[str]:
    """The options of a config group: the shipped ones and the user's ./conf ones."""
    names = {p.stem for p in (CONFIG_DIR / group).glob("*.yaml")}
    if _user_dir(group).is_dir():
        names |= {p.stem for p in _user_dir(group).glob("*.yaml")}
    return sorted(names)


def config_file(group: str, name: str) -> Path:
    """The file of an option, the user's ./conf first (as on Hydra's search path)."""
    user = _user_dir(group) / f"{name}.yaml"
    return user if user.is_file() else CONFIG_DIR / group / f"{name}.yaml"
