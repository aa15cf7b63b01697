"""A Hydra-configured training launcher for PyTorch, TensorFlow, scikit-learn and JAX.

`import launcher` stays light: frameworks load only when a run needs them. The names below
are resolved on first use.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "FrameworkManager": "launcher.frameworks.manager",
    "MLFrameworkManager": "launcher.frameworks.manager",
    "FrameworkStatus": "launcher.frameworks.base",
    "DataSchema": "launcher.frameworks.base",
    "Splits": "launcher.frameworks.base",
    "LauncherError": "launcher.errors",
    "ScikitLearnFramework": ("launcher.frameworks.sklearn", "SklearnAdapter"),
    "SklearnAdapter": "launcher.frameworks.sklearn",
    "PyTorchFramework": ("launcher.frameworks.pytorch", "PyTorchAdapter"),
    "PyTorchAdapter": "launcher.frameworks.pytorch",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'launcher' has no attribute {name!r}")
    target = _LAZY[name]
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
