"""Where things are: the packaged config tree, the user's working directory, the run directory."""
from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "conf"


def original_cwd() -> Path:
    """The directory the command was started from (relative data paths resolve against it)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.cwd)
    except ImportError:  # pragma: no cover - hydra is a core dependency
        pass
    return Path.cwd()


def run_dir() -> Path:
    """The current Hydra job's output directory, or the working directory outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()
