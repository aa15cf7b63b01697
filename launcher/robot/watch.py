"""The robot's processes: each `python -m launcher` it starts runs in its own process group
with a hard deadline, and a search is watched while it runs (its trials read as they finish,
a progress line, stopped at its window's end, when the requirement is met, or when every trial
fails the same way)."""
from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from launcher.core.errors import LauncherError
from launcher.robot.budget import POLL, Clock
from launcher.robot.commands import ENV, Invocation
from launcher.robot.leaderboard import Leaderboard

log = logging.getLogger("launcher")
# Trials failing with one and the same error, none finished: the search stops and says why
# (a wrong task or a bad column fails every trial alike; waiting for more says nothing new).
SAME_FAILURES = 3


class Job:
    """One launcher process: started in the project directory, its output in `log_path`."""

    def __init__(self, inv: Invocation, args: list[str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.args, self.log_path = args, log_path
        self.command = inv.shown(args)
        with open(log_path, "a") as output:
            env = {**os.environ, **ENV, "PYTHONUNBUFFERED": "1"}  # ENV: printed with the command
            self.proc = subprocess.Popen(inv.argv(args), cwd=inv.project, env=env, stdout=output,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.stopped = False

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Stop the process and every process it started (its group)."""
        if self.proc.poll() is not None:
            return
        self.stopped = True
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=3)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def wait(self, deadline: float, tick: Callable[[], None] | None = None) -> bool:
        """Wait until the process ends or `deadline` (time.monotonic()) passes, then stop it;
        True when it ended by itself with status 0."""
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                self.proc.wait(timeout=min(POLL, max(0.01, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pass
            if tick is not None:
                tick()
        self.stop()
        return not self.stopped and self.proc.returncode == 0

    def error_line(self) -> str | None:
        """The launcher's one-line error, or the output's last line."""
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return None
        errors = [line for line in lines if line.startswith("error: ")]
        return errors[-1][len("error: "):] if errors else (lines[-1] if lines else None)


def same_failure(board: Leaderboard) -> str | None:
    """The error every trial failed with, once SAME_FAILURES did and none finished."""
    failures = board.failures()
    if board.finished or len(failures) < SAME_FAILURES:
        return None
    errors = {plain_error(t.error) for t in failures}
    return errors.pop() if len(errors) == 1 and "" not in errors else None


def plain_error(error: str | None) -> str:
    """An error line without its exception class (the sweeper writes `DataError: ...`, a run's
    failed.json the message alone)."""
    return re.sub(r"^\w+(Error|Exception): ", "", (error or "").strip().splitlines()[0] if error else "")


def run_search(job: Job, sweep_dir: Path, slug: str, board: Leaderboard, clock: Clock, window: Callable[[], float],
               enough: Callable[[], bool], tick: Callable[[], None]) -> None:
    """Watch a running search: stop it when `window()` (the time it may still take,
    re-estimated as trials finish) runs out, as soon as `enough()`, or when every trial fails
    alike (a LauncherError naming the error). `tick` is called every poll (the baseline beside
    it). Stopping kills the running trials: none can overrun."""
    progress = Progress(slug, board, clock)
    try:
        while job.running():
            if window() <= 0:
                log.info("robot: search %s stopped at the deadline (running trials are dropped)", slug)
                break
            try:
                job.proc.wait(timeout=POLL)
            except subprocess.TimeoutExpired:
                pass
            tick()
            board.add_sweep(sweep_dir, slug)
            progress.show()
            if enough():
                log.info("robot: the requirement is met: search %s stopped", slug)
                break
            failure = same_failure(board)
            if failure:
                raise LauncherError(f"every trial failed the same way: {failure} (the trials' logs: "
                                    f"{sweep_dir})")
    finally:
        job.stop()
        board.add_sweep(sweep_dir, slug)
        board.stop(slug)
        progress.done()
    code = job.proc.returncode
    if not job.stopped and code not in (0, None) and not board.finished:
        raise LauncherError(f"the search {slug} failed (exit {code}): {job.error_line()} (its log: {job.log_path})")


class Progress:
    """The robot's live view: one line redrawn on a terminal, plain lines otherwise."""

    def __init__(self, slug: str, board: Leaderboard, clock: Clock) -> None:
        self.slug, self.board, self.clock = slug, board, clock
        self.tty = sys.stderr.isatty()
        self.shown: tuple[int, Any] = (0, None)

    def line(self) -> str:
        trials = [t for t in self.board.trials if t.sweep == self.slug]
        done = sum(t.state == "COMPLETE" for t in trials)
        failed = sum(t.state == "FAIL" for t in trials)
        best = self.board.best()
        best_text = f"best {self.board.metric} {best.score:.4f} ({best.model})" if best else "no trial finished yet"
        return (f"robot: search {self.slug}: {done} trial(s) done" + (f", {failed} failed" if failed else "")
                + f" | {best_text} | {max(0.0, self.clock.left()):.0f}s of {self.clock.budget:g}s left")

    def show(self) -> None:
        done = sum(t.state == "COMPLETE" for t in self.board.trials if t.sweep == self.slug)
        best = self.board.best()
        key = (done, best.score if best else None)
        if self.tty:
            sys.stderr.write("\r" + self.line()[: max(20, shutil.get_terminal_size((100, 20)).columns - 1)] + "\x1b[K")
            sys.stderr.flush()
        elif key != self.shown and (key[1] != self.shown[1] or done % 10 == 0):
            log.info("%s", self.line())
        self.shown = key

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
        log.info("%s", self.line())
