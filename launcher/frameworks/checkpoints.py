"""The per-epoch checkpoint writer the neural adapters share: when to write, what is pending,
and what Ctrl-C says. Each adapter only says how its state goes to a file.

`last` (the state to resume from) and `best` (the best epoch's weights) live under
<run dir>/checkpoints. A file is written beside its final name and renamed
(launcher.io.write_verified, which records its checksum), so a kill mid-write leaves the previous
checkpoint intact. When core.trainer.CheckpointPolicy skips a write (it keeps checkpointing
under a small share of the training time), the epoch's state is held and written by `flush` if
the fit stops before the next write; Ctrl-C then ends with TrainingInterrupted, naming the epoch
that was saved.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from launcher.core.trainer import CheckpointPolicy, Stopwatch, TrainingInterrupted
from launcher.io import write_verified


class EpochCheckpoints:
    LAST = "last.ckpt"
    BEST = "best.ckpt"

    def __init__(self, workdir: Path, meta: Any, writer: bool = True) -> None:
        self.dir = Path(workdir) / "checkpoints"
        self.last, self.best = self.dir / self.LAST, self.dir / self.BEST
        self.meta = meta  # the run's identity (spec, schema, fixed settings), stored in every file
        self.writer = writer  # only one process of a multi-device run writes
        self.policy = CheckpointPolicy()
        self.written_epoch: int | None = None
        self.pending: dict[str, Any] | None = None
        self.pending_best: dict[str, Any] | None = None
        if writer:
            self.dir.mkdir(parents=True, exist_ok=True)

    # -- what an adapter provides ------------------------------------------------------------------
    def write_last(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def write_best(self, best: dict[str, Any]) -> None:
        """`best` is {"weights": ..., "epoch": n}."""
        raise NotImplementedError

    def hold(self, state: dict[str, Any]) -> dict[str, Any]:
        """The state to keep until the next write: a copy where the live values move on."""
        return state

    # -- shared -----------------------------------------------------------------------------------
    def epoch_end(self, state: dict[str, Any], best: Any, seconds: float, final: bool) -> None:
        """`state` has the recorder's state under "recorder"; `best` is this epoch's weights when
        it is the best so far, else None."""
        if not self.writer:
            return
        if best is not None:
            self.pending_best = {"weights": best, "epoch": state["recorder"]["best_epoch"]}
        if self.policy.due(seconds, final):
            clock = Stopwatch()
            self._write(state)
            self.policy.wrote(clock.seconds())
        else:
            self.pending = self.hold(state)

    def flush(self) -> None:
        if self.writer and self.pending is not None:
            self._write(self.pending)

    def _write(self, state: dict[str, Any]) -> None:
        self.write_last(state)
        self.written_epoch = int(state["recorder"]["epochs"][-1]["epoch"])
        if self.pending_best is not None:
            self.write_best(self.pending_best)
            self.pending_best = None
        self.pending = None

    def keep_best(self, source: Path) -> None:
        """A resumed run whose best epoch came before the resume keeps that best file."""
        if self.writer and source.resolve() != self.best.resolve():
            write_verified(self.best, lambda tmp: shutil.copyfile(source, tmp))

    def __enter__(self) -> "EpochCheckpoints":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            return
        self.flush()
        if issubclass(exc_type, KeyboardInterrupt) and self.written_epoch is not None and self.writer:
            raise TrainingInterrupted(self.written_epoch, self.last) from exc
