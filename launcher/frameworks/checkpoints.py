"""The per-epoch checkpoint writer the neural adapters share: when to write, what is pending,
and what Ctrl-C says. Each adapter only says how its state goes to a file.

`last` (the state to resume from) and `best` (the best epoch's weights) live under
<run dir>/checkpoints. A file is written beside its final name and renamed
(launcher.io.write_verified, which records its checksum), so a kill mid-write leaves the previous
checkpoint intact. When core.trainer.CheckpointPolicy skips a write (it keeps checkpointing
under a small share of the training time), the epoch's state is held and written by `flush` if
the fit stops before the next write; Ctrl-C then ends with TrainingInterrupted, naming the epoch
that was saved.

`resume_checkpoint` finds what `trainer.resume_from` names and refuses a checkpoint another
framework wrote before any framework's loader reads it: a loader's own message about a file
it cannot read misleads (torch.load suggests weights_only=False, the unsafe option).
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

from launcher.core.errors import ConfigError
from launcher.core.paths import original_cwd
from launcher.core.trainer import CheckpointPolicy, Stopwatch, TrainingInterrupted, find_checkpoint
from launcher.io import write_verified

# The first byte of a msgpack map (fixmap of 1-15 entries, map16, map32): Flax's checkpoints.
_MSGPACK_MAP = {*range(0x81, 0x90), 0xDE, 0xDF}


def written_by(path: Path) -> str | None:
    """Which framework wrote a checkpoint file, told from its bytes without loading it:
    pytorch (torch.save's zip, which holds data.pkl), tensorflow (the Keras adapter's NumPy
    archive: .npy members only), jax (Flax's msgpack map); None when it is none of these."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
                return "pytorch"
            return "tensorflow" if names and all(n.endswith(".npy") for n in names) else None
        return "jax" if head and head[0] in _MSGPACK_MAP else None
    except (OSError, zipfile.BadZipFile):
        return None


def resume_checkpoint(resume_from: str | None, filename: str, framework: str, label: str) -> Path | None:
    """The checkpoint `trainer.resume_from` names (a run directory or the file; `filename`:
    this framework's, under checkpoints/), refused when another framework wrote it; None
    when there is nothing to resume."""
    if not resume_from:
        return None
    try:
        path = find_checkpoint(resume_from, filename, label)
    except ConfigError:
        for other in _last_checkpoints(resume_from):  # a run directory of another framework?
            _refuse_foreign(resume_from, other, framework)
        raise
    _refuse_foreign(resume_from, path, framework)
    return path


def _last_checkpoints(resume_from: str) -> list[Path]:
    folder = Path(str(resume_from)).expanduser()
    folder = folder if folder.is_absolute() else original_cwd() / folder
    return sorted([*folder.glob("checkpoints/last.*"), *folder.glob("last.*")]) if folder.is_dir() else []


def _refuse_foreign(resume_from: str, path: Path, framework: str) -> None:
    writer = written_by(path)
    if writer is not None and writer != framework:
        raise ConfigError(f"trainer.resume_from={resume_from}: this checkpoint ({path.name}) was written by {writer}; "
                          f"framework={framework} cannot resume it: use framework={writer}")


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
