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
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from launcher.core.errors import ArtifactError, ConfigError
from launcher.core.trainer import CheckpointPolicy, Stopwatch, TrainerSettings, TrainingInterrupted
from launcher.io import verify, write_verified

FORMAT = "launcher-keras-checkpoint/1"
LAST, BEST = "last.npz", "best.npz"


class Checkpoints:
    """last.npz and best.npz under <run dir>/checkpoints.

    Written beside the final name and renamed, so a kill mid-write leaves the previous file
    intact (launcher.io.write_verified, which records the checksum). When the policy skips a
    write, the epoch's state (already a copy) is kept and written by `flush` if the fit stops
    before the next write; Ctrl-C then ends with TrainingInterrupted, naming the epoch saved.
    """

    def __init__(self, workdir: Path, spec: dict[str, Any], schema: Any, settings: TrainerSettings) -> None:
        self.dir = Path(workdir) / "checkpoints"
        self.last, self.best = self.dir / LAST, self.dir / BEST
        self.meta = {"format": FORMAT, "spec": spec, "schema": schema.to_dict(),
                     "trainer": settings.fixed()}
        self.policy = CheckpointPolicy()
        self.written_epoch: int | None = None
        self.pending: dict[str, Any] | None = None
        self.pending_best: dict[str, Any] | None = None
        self.dir.mkdir(parents=True, exist_ok=True)

    def epoch_end(self, state: dict[str, Any], best: list[np.ndarray] | None, seconds: float, final: bool) -> None:
        if best is not None:
            self.pending_best = {"net": best, "epoch": state["recorder"]["best_epoch"]}
        if self.policy.due(seconds, final):
            clock = Stopwatch()
            self._write(state)
            self.policy.wrote(clock.seconds())
        else:
            self.pending = state

    def flush(self) -> None:
        if self.pending is not None:
            self._write(self.pending)

    def _write(self, state: dict[str, Any]) -> None:
        save(self.last, state["net"], state["optimizer"],
              {"launcher": self.meta, "recorder": state["recorder"], "schedule": state["schedule"]})
        self.written_epoch = int(state["recorder"]["epochs"][-1]["epoch"])
        if self.pending_best is not None:
            save(self.best, self.pending_best["net"], [], {"launcher": self.meta, "epoch": self.pending_best["epoch"]})
            self.pending_best = None
        self.pending = None

    def keep_best(self, source: Path) -> None:
        """A resumed run whose best epoch came before the resume keeps that best.npz."""
        if source.resolve() != self.best.resolve():
            write_verified(self.best, lambda tmp: shutil.copyfile(source, tmp))

    def __enter__(self) -> "Checkpoints":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            return
        self.flush()
        if issubclass(exc_type, KeyboardInterrupt) and self.written_epoch is not None:
            raise TrainingInterrupted(self.written_epoch, self.last) from exc


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
