"""Keras checkpoints: `checkpoints/last.npz` and `checkpoints/best.npz` under a run directory.

last.npz holds every variable of the network (batch-norm statistics and dropout seed states
included) and of the optimizer, in their order, plus one JSON string: the spec, schema and fixed
trainer settings it was written with, the epoch history and the schedule's state. best.npz holds
the best epoch's network variables. NumPy archives of numbers and one string, read with
allow_pickle=False; written with launcher.io.write_verified (atomic, sha256 recorded in
checkpoints/checksums.json) and verified before reading.

NumPy only: the adapter reads a checkpoint's settings before TensorFlow is imported.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from launcher.core.errors import ArtifactError, ConfigError
from launcher.core.trainer import TrainerSettings
from launcher.frameworks.checkpoints import EpochCheckpoints
from launcher.io import verify, write_verified

FORMAT = "launcher-keras-checkpoint/1"
LAST, BEST = "last.npz", "best.npz"


class Checkpoints(EpochCheckpoints):
    """last.npz and best.npz (see launcher.frameworks.checkpoints for when they are written).
    The held state is already a copy: Keras variables are read out as NumPy arrays."""

    LAST, BEST = LAST, BEST  # the module's names, read by the adapter before TensorFlow loads

    def __init__(self, workdir: Path, spec: dict[str, Any], schema: Any, settings: TrainerSettings) -> None:
        super().__init__(workdir, {"format": FORMAT, "spec": spec, "schema": schema.to_dict(),
                                   "trainer": settings.fixed()})

    def write_last(self, state: dict[str, Any]) -> None:
        save(self.last, state["net"], state["optimizer"],
             {"launcher": self.meta, "recorder": state["recorder"], "schedule": state["schedule"]})

    def write_best(self, best: dict[str, Any]) -> None:
        save(self.best, best["weights"], [], {"launcher": self.meta, "epoch": best["epoch"]})


def save(path: Path, net: list[np.ndarray], optimizer: list[np.ndarray], doc: dict[str, Any]) -> None:
    arrays = {f"net/{i:05d}": a for i, a in enumerate(net)}
    arrays.update({f"optimizer/{i:05d}": a for i, a in enumerate(optimizer)})
    arrays["launcher.json"] = np.array(json.dumps(doc))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    write_verified(path, write)


def read(path: Path) -> tuple[dict[str, Any], list[np.ndarray], list[np.ndarray]]:
    """(document, network arrays, optimizer arrays) of a checkpoint; numbers and JSON only."""
    try:
        verify(path, "checkpoint")
    except ArtifactError as exc:
        raise ConfigError(f"trainer.resume_from: {exc}") from None
    try:
        with np.load(path, allow_pickle=False) as archive:
            doc = json.loads(str(archive["launcher.json"]))
            net = [archive[k] for k in sorted(k for k in archive.files if k.startswith("net/"))]
            opt = [archive[k] for k in sorted(k for k in archive.files if k.startswith("optimizer/"))]
    except Exception as exc:  # not a zip, a missing member, pickled objects, bad JSON
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"trainer.resume_from={path} is not a readable checkpoint: {first}") from None
    meta = doc.get("launcher") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f"trainer.resume_from={path} was not written by this version of launcher's "
                          "TensorFlow adapter; start a new run")
    return doc, net, opt
