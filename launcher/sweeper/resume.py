"""Exact resume after a crash: who owns a running trial, trials whose owner is gone, and a
sampler seed that does not replay the first run.

Each trial the sweeper asks for records its owner, the sweep process (host, boot, pid, process
start time), in the trial's system attributes. A RUNNING trial whose owner ran on this machine
and is gone is failed at once and queued again, through Optuna's
``RetryHeartbeatStaleTrialCallback``: the same callback Optuna's heartbeat calls for a trial
whose owner ran elsewhere and stopped beating for ``grace_period``. The failed trial stays in
the study as FAIL without a ``failure`` note (it does not count toward n_trials); its copy runs
under a new number and carries ``failed_trial`` / ``retry_history`` system attributes.

A sweep process claims a trial (owner, then heartbeat) within milliseconds of asking for it. A
process killed in between leaves a RUNNING trial with neither, which Optuna's heartbeat check
never judges; such an unclaimed trial is failed and re-queued once it is UNCLAIMED_AFTER seconds
old.

A sweep process beats a heartbeat (`Heartbeat`) for each trial it runs, so another machine's
sweep on the same storage can judge its trials.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
from functools import lru_cache
from typing import Any

from launcher.sweeper import compat

log = logging.getLogger(__name__)

OWNER_ATTR = "launcher:owner"
MAX_RETRY = 2
# A live process claims its trial within milliseconds; this leaves room for a storage lock wait.
UNCLAIMED_AFTER = 10.0


@lru_cache(maxsize=None)
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _started(pid: int) -> float | None:
    """The process's start time (tells a live process from a later one that reused its pid)."""
    try:
        import psutil

        return round(psutil.Process(pid).create_time(), 2)
    except Exception:
        return None


def _zombie(pid: int) -> bool:
    """A dead process its parent has not reaped yet."""
    try:
        import psutil

        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except Exception:
        return False


def owner(trial_number: int) -> dict[str, Any]:
    """This process, as recorded on a trial it asked for. The trial's number is part of the
    record: a re-queued copy inherits its original's attributes, and an inherited record
    (another number) judges nothing."""
    return {"trial": trial_number, "host": socket.gethostname(), "boot": _boot_id(),
            "pid": os.getpid(), "started": _started(os.getpid())}


def owner_gone(trial: Any) -> bool:
    """True when the trial's recorded owner ran on this machine (same host, same boot) and
    that process is no longer alive. A process on another machine is never judged here."""
    record = trial.system_attrs.get(OWNER_ATTR)
    if not isinstance(record, dict) or record.get("trial") != trial.number:
        return False
    if record.get("host") != socket.gethostname():
        return False
    if record.get("boot") != _boot_id():
        return False
    pid = int(record.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    if _zombie(pid):
        return True
    started = _started(pid)
    return record.get("started") is not None and started is not None \
        and abs(started - float(record["started"])) > 1.0


def _unclaimed(storage: Any, trial: Any) -> bool:
    """RUNNING for UNCLAIMED_AFTER seconds with no owner record and no heartbeat."""
    import datetime

    record = trial.system_attrs.get(OWNER_ATTR)
    if isinstance(record, dict) and record.get("trial") == trial.number:
        return False
    if trial.datetime_start is None:
        return False
    age = (datetime.datetime.now() - trial.datetime_start).total_seconds()
    if age < UNCLAIMED_AFTER:
        return False
    try:  # a heartbeat: a client that beats (Optuna's own optimize, say) owns it
        return not compat.has_heartbeat(storage, compat.trial_id(trial))
    except Exception:
        return False


def retry_callback() -> Any:
    """Optuna's re-queueing callback (failed trial -> a WAITING copy with its parameters)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


def fail_orphans(study: Any) -> list[tuple[int, int | None]]:
    """Fail and re-queue the RUNNING trials whose owner on this machine is gone, or that no
    process claimed; then those whose heartbeat is stale (owners elsewhere). Returns
    [(trial number, owner pid)] for the first two kinds."""
    import optuna
    from optuna.trial import TrialState

    storage = compat.study_storage(study)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner_gone(trial):
            pid = trial.system_attrs[OWNER_ATTR]["pid"]
            why = f"by process {pid}, which is gone"
        elif _unclaimed(storage, trial):
            pid, why = None, f"unclaimed for {UNCLAIMED_AFTER:g} s (its process died asking for it)"
        else:
            continue
        try:
            if not storage.set_trial_state_values(compat.trial_id(trial), state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished or failed by another process meanwhile
        failed.append((trial.number, pid))
        log.warning("Trial %d was left RUNNING %s: marked FAIL and queued again", trial.number, why)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry_callback()(study, storage.get_trial(compat.trial_id(trial)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # owners elsewhere, silent for grace_period
    return failed


def interrupted_numbers(trials: Any) -> dict[int, int]:
    """{interrupted trial number: the number of the trial that re-ran it}."""
    out = {}
    for trial in trials:
        history = trial.system_attrs.get("retry_history") or []
        if history:
            out[int(history[-1])] = trial.number
    return out


def resume_seed(seed: Any, n_trials_in_study: int) -> Any:
    """The seed for a run that continues a study holding trials: derived from the given seed
    and the study's size, so the run is reproducible but does not replay the first run's
    proposals (a seeded sampler in a new process starts its sequence over)."""
    if seed is None or n_trials_in_study == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([int(seed), n_trials_in_study]).generate_state(1)[0])


def is_local(trial: Any) -> bool:
    """Was this trial asked by a sweep process on this machine (whose liveness we can judge)?"""
    record = trial.system_attrs.get(OWNER_ATTR)
    return isinstance(record, dict) and record.get("host") == socket.gethostname()


class Heartbeat:
    """Records that this process is alive for each running trial, every interval seconds."""

    def __init__(self, storage: Any, interval: int | None) -> None:
        self.storage, self.interval = storage, interval
        self.trial_ids: set[int] = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = None
        if interval and hasattr(storage, "record_heartbeat"):
            self.thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self.thread.start()

    def add(self, trial_id: int) -> None:
        with self.lock:
            self.trial_ids.add(trial_id)
        if self.thread:
            self.storage.record_heartbeat(trial_id)

    def discard(self, trial_id: int) -> None:
        with self.lock:
            self.trial_ids.discard(trial_id)

    def stop(self) -> None:
        self.stopped.set()

    def _beat(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                ids = list(self.trial_ids)
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception as error:
                    log.debug("heartbeat for trial id %d failed: %s", trial_id, error)
