"""A Hydra-configured training launcher for scikit-learn, PyTorch (Lightning Fabric),
TensorFlow/Keras and JAX (Flax, Optax), with a robot maker that plans and runs experiments.

`import launcher` stays light: frameworks load only when a run needs them, and the names below
are resolved on first use. The Python API is launcher.api and launcher.robot;
`python -m launcher` trains, `python -m launcher.robot` plans and runs a task.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "MLFrameworkManager": "launcher.api",
    "FrameworkManager": "launcher.api",
    "Framework": "launcher.api",
    "PyTorchFramework": "launcher.api",
    "TensorFlowFramework": "launcher.api",
    "ScikitLearnFramework": "launcher.api",
    "JAXFramework": "launcher.api",
    "FrameworkStatus": "launcher.core.types",
    "DataSchema": "launcher.core.types",
    "Splits": "launcher.core.types",
    "History": "launcher.core.types",
    "LauncherError": "launcher.core.errors",
    "MLRobotMaker": "launcher.robot.maker",
    "RobotMaker": "launcher.robot.maker",
    "MLTask": "launcher.robot.task",
    "MLModelBlueprint": "launcher.robot.blueprint",
    "MLExperiment": "launcher.robot.run",
    "AutoML": "launcher.automl",
    "NeuralClassifier": "launcher.estimators",
    "NeuralRegressor": "launcher.estimators",
    "TabularClassifier": "launcher.estimators",
    "TabularRegressor": "launcher.estimators",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'launcher' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
