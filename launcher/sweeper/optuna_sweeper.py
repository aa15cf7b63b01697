"""The Optuna sweeper: ask the study for trials, run them through Hydra's launcher, tell results.

Dispatch: with a launcher that runs jobs elsewhere (joblib, submitit, ray), ``n_jobs`` trials are
in flight at once, each launched on its own as a batch of one from a small thread pool; when one
finishes the next is asked at once, so no core waits for the slowest trial of a batch, and each new
trial is sampled knowing every finished one. Hydra's basic launcher runs jobs inside this process,
so with it trials run one after another.

Budget: ``n_trials`` counts the study's trials in its storage (earlier sweeps and concurrent sweep
processes included): complete, pruned, running, and failed ones that ran and failed. A trial left
running by a sweep process that died (no heartbeat for ``grace_period``) is marked FAIL, does not
count, and its parameters are queued to run again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Sequence

from launcher.core.errors import ConfigError
from launcher.sweeper import compat
from launcher.sweeper.search_space import SearchSpace, encode_choice, grid_of, parse_search_space
from launcher.sweeper.storage import locate, open_storage

log = logging.getLogger(__name__)

VALID_DIRECTIONS = ("minimize", "maximize")


class OptunaSweeperImpl:
    def __init__(
        self,
        sampler: Any,
        direction: Any = "minimize",
        storage: str | None = None,
        storage_env: str | None = None,
        study_name: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 2,
        max_failure_rate: float = 0.5,
        timeout: float | None = None,
        pruner: Any = None,
        enqueue_trials: Any = None,
        params: Any = None,
        custom_search_space: str | None = None,
        metric: str | None = None,
        heartbeat_interval: int | None = 10,
        grace_period: int | None = None,
        plots: bool = True,
    ) -> None:
        self.sampler_spec = _plain(sampler) or {"_target_": "optuna.samplers.TPESampler"}
        self.directions = _directions(_plain(direction))
        self.storage, self.storage_env = storage, storage_env
        self.study_name = study_name
        self.n_trials, self.n_jobs = int(n_trials), int(n_jobs)
        self.max_failure_rate = float(max_failure_rate)
        self.timeout = float(timeout) if timeout is not None else None
        self.pruner_spec = _plain(pruner) or None
        self.enqueue_points = list(_plain(enqueue_trials) or [])
        self.params = _plain(params) or {}
        self.custom_search_space = custom_search_space
        self.metric = metric
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.plots = plots
        if self.n_trials < 0 or self.n_jobs < 1:
            raise ConfigError(f"n_trials must be >= 0 and n_jobs >= 1, got {self.n_trials} and {self.n_jobs}")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ConfigError(f"max_failure_rate must be within [0, 1], got {self.max_failure_rate}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {self.timeout}")
        self.config: Any = None
        self.launcher: Any = None
        self.hydra_context: Any = None

    # -- Hydra's Sweeper interface -------------------------------------------------------------
    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.raw_storage = compat.raw_value(config.hydra.sweeper, "storage")

    def sweep(self, arguments: list[str]) -> None:
        import optuna
        from omegaconf import OmegaConf

        from launcher.sweeper.results import write_plots, write_results

        space = parse_search_space(self.params, arguments)
        self.space = space
        location = locate(self.storage, self.storage_env, self.sweep_dir, self.raw_storage)
        self.location = location
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        sampler = self._sampler(space)
        study_name = self.study_name or default_study_name(
            str(self.config.hydra.job.name), arguments, self.params, self.directions
        )
        self.storage_obj = open_storage(
            location.url, self.heartbeat_interval, self.grace_period, retry_interrupted
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(
                study_name=study_name,
                storage=self.storage_obj,
                sampler=sampler,
                pruner=self._pruner(),
                directions=self.directions,
                load_if_exists=True,
            )
        found = [d.name.lower() for d in study.directions]
        if found != self.directions:
            raise ConfigError(
                f"study {study_name!r} in {location.display} optimizes {found}, but this sweep's "
                f"direction is {self.directions}; use another study_name or the same direction"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # trials of a sweep process that died
        known = self._count(study)
        log.info("Study %s in %s (%d trial(s) already counted toward n_trials=%d)",
                 study_name, location.display, known, self.n_trials)
        log.info("Sampler: %s; pruner: %s; directions: %s", type(sampler).__name__,
                 (self.pruner_spec or {}).get("_target_", "none"), self.directions)
        if self.study_name is None or self.storage is None and self.storage_env is None:
            log.info("To resume this study, run the same command again%s",
                     "" if self.storage or self.storage_env
                     else f" with hydra.sweep.dir={self.sweep_dir.absolute()}")
        self._enqueue(study, space)
        failed_out = self._run(study, space)
        extra = {"storage": location.display, "n_trials": self.n_trials,
                 "sweep_dir": str(self.sweep_dir.absolute())}
        write_results(study, self.sweep_dir, space.overrides, extra)
        if self.plots:
            try:
                write_plots(study, self.sweep_dir)
            except Exception as error:  # plots must not lose a finished sweep
                log.warning("plots not written: %s", error)
        self._log_best(study)
        if failed_out:
            raise RuntimeError(failed_out)

    # -- the trial loop -----------------------------------------------------------------------
    def _run(self, study: Any, space: SearchSpace) -> str | None:
        """Run trials until the budget is spent; returns the failure message if too many failed."""
        in_process = compat.runs_in_process(self.launcher)
        slots = 1 if in_process else self.n_jobs
        if in_process and self.n_jobs > 1:
            log.info("the basic launcher runs jobs in this process, one at a time; "
                     "use hydra/launcher=joblib to run %d at once", self.n_jobs)
        pool = _Inline() if slots == 1 else ThreadPoolExecutor(slots, thread_name_prefix="trial")
        heartbeat = _Heartbeat(self.storage_obj, self.heartbeat_interval)
        started = time.monotonic()
        in_flight: dict[Future, Any] = {}
        stop: str | None = None
        failed_out: str | None = None
        validated = False
        try:
            while True:
                while stop is None and len(in_flight) < slots:
                    if self.timeout is not None and time.monotonic() - started >= self.timeout:
                        stop = f"time budget of {self.timeout:g}s spent"
                        break
                    trial = self._ask(study, space)
                    if trial is None:
                        stop = f"n_trials={self.n_trials} reached"
                        break
                    heartbeat.add(compat.trial_id(trial))
                    overrides = space.overrides(trial.params) + [self._link(study, trial)]
                    if not validated:  # a bad override is a config error, not a failed trial
                        try:
                            self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
                        except Exception:
                            self._tell(study, trial, None, "FAIL", "the overrides do not compose")
                            raise
                        validated = True
                    in_flight[pool.submit(self._launch, overrides, trial.number)] = trial
                if not in_flight:
                    break
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    trial = in_flight.pop(future)
                    self._record(study, trial, future.result())
                    heartbeat.discard(compat.trial_id(trial))
                if failed_out is None:
                    failed_out = self._failure_check(study)
                    if failed_out:
                        stop = "too many failures"
        finally:
            heartbeat.stop()
            pool.shutdown(wait=True)
        log.info("Sweep stopped: %s", stop)
        return failed_out

    def _launch(self, overrides: Sequence[str], number: int) -> Any:
        try:
            return self.launcher.launch([list(overrides)], initial_job_idx=number)[0]
        except Exception as error:  # e.g. a joblib worker killed by the OS
            return error

    def _ask(self, study: Any, space: SearchSpace) -> Any:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        if self._count(study) >= self.n_trials:
            return None
        with warnings.catch_warnings():  # "Heartbeat ... supposed to be used with Study.optimize":
            warnings.simplefilter("ignore", UserWarning)  # this sweeper records the heartbeats
            trial = study.ask(fixed_distributions=space.distributions)
        if self.custom_search_space:
            from hydra.utils import get_method

            get_method(self.custom_search_space)(self.config, trial)
        # Another sweep process may have asked at the same moment: the lower trial numbers win.
        rank = sum(1 for t in study.get_trials(deepcopy=False)
                   if t.number <= trial.number and _counts(t))
        if rank > self.n_trials:
            trial.set_user_attr("skipped", "n_trials reached by another sweep process")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return None
        return trial

    def _record(self, study: Any, trial: Any, outcome: Any) -> None:
        import optuna
        from hydra.core.utils import JobStatus

        run_dir = None
        if isinstance(outcome, BaseException):
            state, values, failure = "FAIL", None, f"launcher error: {type(outcome).__name__}: {outcome}"
        else:
            run_dir = _run_dir(outcome)
            if outcome.status == JobStatus.COMPLETED:
                values, failure = self._values(outcome.return_value)
                state = "COMPLETE" if failure is None else "FAIL"
            else:
                error = compat.job_error(outcome)
                values = None
                if isinstance(error, optuna.TrialPruned) or type(error).__name__ == "TrialPruned":
                    state, failure = "PRUNED", None
                else:
                    state, failure = "FAIL", f"{type(error).__name__}: {error}"
                    log.warning("Trial %d failed: %s", trial.number, failure,
                                exc_info=(type(error), error, error.__traceback__))
        if run_dir:
            trial.set_user_attr("run_dir", run_dir)
            self._check_direction(run_dir)
        self._tell(study, trial, values, state, failure)

    def _tell(self, study: Any, trial: Any, values: Any, state: str, failure: str | None) -> None:
        from optuna.trial import TrialState

        from launcher.sweeper.results import write_results

        try:
            if failure:
                trial.set_user_attr("failure", failure[:2000])
            study.tell(trial, values, state=TrialState[state])
        except Exception as error:  # e.g. marked stale by another process meanwhile
            log.warning("Trial %d could not be recorded: %s", trial.number, error)
            return
        shown = values if values is None or len(values) > 1 else values[0]
        log.info("Trial %d %s%s%s", trial.number, state.lower(),
                 f" with value {shown}" if values else "", f": {failure}" if failure else "")
        try:
            write_results(study, self.sweep_dir, self.space.overrides,
                          {"storage": self.location.display, "n_trials": self.n_trials,
                           "sweep_dir": str(self.sweep_dir.absolute())})
        except Exception as error:
            log.warning("results not updated: %s", error)

    def _values(self, returned: Any) -> tuple[list[float] | None, str | None]:
        n = len(self.directions)
        try:
            values = [float(returned)] if n == 1 else [float(v) for v in returned]
        except (TypeError, ValueError):
            what = "a number" if n == 1 else f"a list of {n} numbers"
            return None, f"the task function returned {returned!r}; expected {what}"
        if len(values) != n:
            return None, f"the task function returned {len(values)} values for {n} objectives"
        if not all(math.isfinite(v) for v in values):
            return None, f"the task function returned a non-finite value {values}"
        return values, None

    def _failure_check(self, study: Any) -> str | None:
        failures = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("failure")]
        allowed = self.max_failure_rate * self.n_trials
        if len(failures) > allowed:
            last = failures[-1]
            return (f"{len(failures)} trial(s) failed, more than max_failure_rate="
                    f"{self.max_failure_rate:g} of n_trials={self.n_trials}; last failure "
                    f"(trial {last.number}): {last.user_attrs['failure']}")
        return None

    # -- pieces ---------------------------------------------------------------------------------
    def _count(self, study: Any) -> int:
        return sum(1 for t in study.get_trials(deepcopy=False) if _counts(t))

    def _link(self, study: Any, trial: Any) -> str:
        from launcher.sweeper.pruning import trial_link

        return trial_link(
            study.study_name, trial.number, compat.trial_id(trial), self.location.reference,
            self.directions[0] if len(self.directions) == 1 else None, self.metric,
            self.pruner_spec,
        )

    def _sampler(self, space: SearchSpace) -> Any:
        from hydra.utils import instantiate

        spec = dict(self.sampler_spec)
        if str(spec.get("_target_", "")).endswith("GridSampler"):
            grid = grid_of(space.distributions)
            spec["search_space"] = grid
            size = math.prod(len(v) for v in grid.values())
            if size < self.n_trials:
                log.info("GridSampler: n_trials %d -> %d (the grid's size)", self.n_trials, size)
                self.n_trials = size
        return instantiate(spec, _convert_="all")

    def _pruner(self) -> Any:
        from launcher.sweeper.pruning import make_pruner

        return make_pruner(self.pruner_spec)

    def _enqueue(self, study: Any, space: SearchSpace) -> None:
        for point in self.enqueue_points:
            unknown = sorted(set(point) - set(space.distributions))
            if unknown:
                raise ConfigError(
                    f"enqueue_trials: {unknown} not in the search space {sorted(space.distributions)}"
                )
            params = {key: _as_choice(space.distributions[key], value) for key, value in point.items()}
            study.enqueue_trial(params, user_attrs={"warm_start": True}, skip_if_exists=True)
        if self.enqueue_points:
            log.info("Warm start: %d point(s) queued (points already in the study are skipped)",
                     len(self.enqueue_points))

    _direction_warned = False

    def _check_direction(self, run_dir: str) -> None:
        if self._direction_warned or len(self.directions) != 1:
            return
        try:
            objective = json.loads((Path(run_dir) / "metrics.json").read_text())["objective"]
        except Exception:
            return
        if objective.get("direction") in VALID_DIRECTIONS and objective["direction"] != self.directions[0]:
            self._direction_warned = True
            log.warning("the runs report %s, to be %sd, but this study %ss it; set "
                        "hydra.sweeper.direction=%s", objective.get("name"), objective["direction"],
                        self.directions[0][:-1], objective["direction"])

    def _log_best(self, study: Any) -> None:
        from optuna.trial import TrialState

        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            log.warning("No trial completed")
        elif len(self.directions) == 1:
            best = study.best_trial
            log.info("Best value %s (trial %d): %s", best.value, best.number, best.params)
        else:
            log.info("Pareto front: %d trial(s)", len(study.best_trials))
        log.info("Results in %s", self.sweep_dir.absolute())


def retry_interrupted(study: Any, trial: Any) -> None:
    """Called for a trial whose sweep process stopped sending heartbeats: it is already FAIL;
    queue its parameters again (twice at most) so the interruption loses nothing."""
    retries = int(trial.user_attrs.get("retries", 0))
    if retries >= 2:
        log.warning("Trial %d was interrupted a third time; not retried", trial.number)
        return
    log.warning("Trial %d was left running by a sweep process that stopped; marked FAIL and "
                "queued again", trial.number)
    study.enqueue_trial(dict(trial.params),
                        user_attrs={"retry_of": trial.number, "retries": retries + 1})


def default_study_name(job_name: str, arguments: Sequence[str], params: Any, directions: Any) -> str:
    payload = json.dumps({"overrides": sorted(arguments), "params": params,
                          "directions": directions}, sort_keys=True, default=str)
    return f"{job_name}_{hashlib.sha1(payload.encode()).hexdigest()[:8]}"


def _counts(trial: Any) -> bool:
    """Does this trial count toward n_trials? (see the module docstring)"""
    name = trial.state.name
    if name in ("COMPLETE", "PRUNED", "RUNNING"):
        return True
    return name == "FAIL" and bool(trial.user_attrs.get("failure"))


def _as_choice(distribution: Any, value: Any) -> Any:
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return encode_choice(value)
    return value


def _run_dir(job_return: Any) -> str | None:
    try:
        return str(job_return.hydra_cfg.hydra.runtime.output_dir)
    except Exception:
        return None


def _directions(direction: Any) -> list[str]:
    items = direction if isinstance(direction, (list, tuple)) else [direction]
    names = [getattr(d, "name", d) for d in items]
    names = [str(d).lower() for d in names]
    bad = [d for d in names if d not in VALID_DIRECTIONS]
    if not names or bad:
        raise ConfigError(f"direction must be minimize, maximize or a list of them, got {direction!r}")
    return names


def _plain(value: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


class _Inline:
    """An executor that runs each call at once, in this thread (the basic launcher's case)."""

    def submit(self, fn: Any, *args: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


class _Heartbeat:
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
