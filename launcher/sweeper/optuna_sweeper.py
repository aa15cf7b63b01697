"""The Optuna sweeper: ask the study for trials, run them through Hydra's launcher, tell results.

Dispatch: with a launcher that runs jobs elsewhere (joblib, submitit, ray), ``n_jobs`` trials are
in flight at once, each launched on its own as a batch of one from a small thread pool; when one
finishes the next is asked at once, so no core waits for the slowest trial of a batch, and each new
trial is sampled knowing every finished one. Hydra's basic launcher runs jobs inside this process,
so with it trials run one after another.

Budget (``n_trials_scope``): ``study`` (the default) counts the study's trials in its storage,
earlier runs and concurrent sweep processes included: complete, pruned, running, and failed
ones that ran and failed; a rerun of the same command finishes the budget. ``invocation`` runs
``n_trials`` more each time, as hydra-optuna-sweeper does. A trial left running by a sweep
process that is gone is failed and re-run (resume.py); it does not count.
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

from launcher.core.errors import ConfigError, LauncherError
from launcher.sweeper import compat, resume
from launcher.sweeper.config import TRIAL_ENV, Direction
from launcher.sweeper.failures import is_pruned, log_file, one_line
from launcher.sweeper.official import SweepStart, log_differences, search_space_distributions
from launcher.sweeper.samplers import check_sampler, is_grid, make_sampler
from launcher.sweeper.search_space import SearchSpace, encode_choice, parse_search_space, render_value
from launcher.sweeper.storage import locate, open_storage

log = logging.getLogger(__name__)


class SweepFailed(LauncherError):
    """More trials failed than hydra.sweeper.max_failure_rate allows (the results are written)."""

    exit_code = 1

VALID_DIRECTIONS = ("minimize", "maximize")
SCOPES = ("study", "invocation")


class OptunaSweeperImpl:
    # The first ten parameters in hydra-optuna-sweeper's order; then this project's.
    def __init__(
        self,
        sampler: Any = None,
        direction: Any = Direction.minimize,
        storage: Any = None,
        study_name: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 2,
        max_failure_rate: float = 0.0,
        search_space: Any = None,
        custom_search_space: str | None = None,
        params: Any = None,
        n_trials_scope: str = "study",
        storage_env: str | None = None,
        timeout: float | None = None,
        pruner: Any = None,
        enqueue_trials: Any = None,
        metric: str | None = None,
        heartbeat_interval: int | None = 10,
        grace_period: int | None = None,
        plots: bool = False,
    ) -> None:
        self.sampler_spec = _plain(sampler) or {"_target_": "optuna.samplers.TPESampler"}
        self.directions = _directions(_plain(direction))
        self.storage, self.storage_env = storage, storage_env
        self.study_name = study_name
        self.n_trials, self.n_jobs = int(n_trials), int(n_jobs)
        self.max_failure_rate = float(max_failure_rate)
        self.search_space = _plain(search_space)
        self.params = _plain(params)
        self.scope = str(n_trials_scope)
        self.timeout = float(timeout) if timeout is not None else None
        self.pruner_spec = _plain(pruner) or None
        self.enqueue_points = list(_plain(enqueue_trials) or [])
        self.metric = metric
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.plots = plots
        if self.n_trials < 0 or self.n_jobs < 1:
            raise ConfigError(f"hydra.sweeper: n_trials must be >= 0 and n_jobs >= 1, got "
                              f"{self.n_trials} and {self.n_jobs}")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ConfigError(f"hydra.sweeper.max_failure_rate must be within [0, 1], got "
                              f"{self.max_failure_rate}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"hydra.sweeper.timeout must be a positive number of seconds, got "
                              f"{self.timeout}")
        if self.scope not in SCOPES:
            raise ConfigError(f"hydra.sweeper.n_trials_scope must be study or invocation, got "
                              f"{self.scope!r}")
        check_sampler(self.sampler_spec)
        # Resolved through Hydra's instantiate, which refuses the targets its policy blocks
        # (os.system, ...), as hydra-optuna-sweeper does.
        self.custom_search_space_extender = None
        if custom_search_space:
            from hydra.utils import instantiate

            self.custom_search_space_extender = instantiate(
                {"_target_": custom_search_space, "_partial_": True})
        self.config: Any = None
        self.launcher: Any = None
        self.hydra_context: Any = None
        self.logs: dict[int, Path] = {}  # the log files of this run's failed trials
        self.stopped: str | None = None  # why the trial loop ended

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
        # hydra/sweeper/job_env declares the variable, so a plain override sets it per job;
        # a sweeper config that dropped that default gets the appending form.
        env_set = config.hydra.job.get("env_set") or {}
        self.env_prefix = "" if TRIAL_ENV in env_set else "++"

    def search_space_config(self, arguments: Sequence[str] = ()) -> SearchSpace:
        """The search space: deprecated search_space, then params, then the command line."""
        grid = is_grid(self.sampler_spec)
        space = SearchSpace(distributions=search_space_distributions(self.search_space, self.params))
        given = parse_search_space(self.params, arguments, grid=grid)
        space.distributions.update(given.distributions)
        for key in given.fixed:
            space.distributions.pop(key, None)
        space.fixed, space.deletions = given.fixed, given.deletions
        return space

    def sweep(self, arguments: list[str]) -> None:
        import optuna
        from omegaconf import OmegaConf

        from launcher.sweeper.results import write_plots, write_results

        self.space = space = self.search_space_config(arguments)
        location = self.location = locate(self.storage, self.storage_env, self.sweep_dir,
                                          self.raw_storage)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        study_name = self.study_name or default_study_name(
            str(self.config.hydra.job.name), arguments, self.params, self.directions
        )
        self.storage_obj = open_storage(location.url, self.heartbeat_interval, self.grace_period,
                                        resume.retry_callback())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(
                study_name=study_name, storage=self.storage_obj,
                sampler=optuna.samplers.RandomSampler(),  # replaced below, once the study is read
                pruner=self._pruner(), directions=self.directions, load_if_exists=True,
            )
        found = [d.name.lower() for d in study.directions]
        if found != self.directions:
            raise ConfigError(
                f"study {study_name!r} in {location.display} optimizes {found}, but this sweep's "
                f"direction is {self.directions}; use another study_name or the same direction"
            )
        orphans = resume.fail_orphans(study)
        size = len(study.get_trials(deepcopy=False))
        study.sampler, reseeded, self.n_trials = make_sampler(self.sampler_spec, space, size, self.n_trials)
        counted = self._count(study)
        self.asked = 0
        if self.scope == "study":
            to_run = max(0, self.n_trials - counted)
            how = f"n_trials={self.n_trials} counts the whole study (n_trials_scope=study)"
        else:
            to_run = self.n_trials
            how = f"n_trials={self.n_trials} more (n_trials_scope=invocation)"
        log.info("Study %s in %s: %d trial(s) counted already%s; %s: %d trial(s) to run",
                 study_name, location.display, counted,
                 f", {len(orphans)} interrupted and queued again" if orphans else "", how, to_run)
        log.info("Sampler: %s; pruner: %s; directions: %s", type(study.sampler).__name__,
                 (self.pruner_spec or {}).get("_target_", "none"), self.directions)
        in_process = compat.runs_in_process(self.launcher)
        log_differences(SweepStart(
            in_memory_default=self.storage is None and self.storage_env is None,
            derived_name=self.study_name is None, counted=counted, scope=self.scope,
            n_jobs=self.n_jobs, in_process=in_process, max_failure_rate=self.max_failure_rate,
            reseeded=reseeded))
        if self.study_name is None or self.storage is None and self.storage_env is None:
            log.info("To resume this study, run the same command again%s",
                     "" if self.storage or self.storage_env
                     else f" with hydra.sweep.dir={self.sweep_dir.absolute()}")
        self._enqueue(study, space)
        failed_out = self._run(study, space, in_process)
        write_results(study, self.sweep_dir, space.overrides, self._extra())
        if self.plots:
            try:
                write_plots(study, self.sweep_dir)
            except Exception as error:  # plots must not lose a finished sweep
                log.warning("plots not written: %s", error)
        self._log_best(study)
        failed_out = failed_out or self._without_result(study)
        if failed_out:
            raise SweepFailed(failed_out)

    # -- the trial loop -----------------------------------------------------------------------
    def _run(self, study: Any, space: SearchSpace, in_process: bool) -> str | None:
        """Run trials until the budget is spent; returns the failure message if too many failed."""
        slots = 1 if in_process else self.n_jobs
        pool = _Inline() if slots == 1 else ThreadPoolExecutor(slots, thread_name_prefix="trial")
        heartbeat = resume.Heartbeat(self.storage_obj, self.heartbeat_interval)
        started = time.monotonic()
        in_flight: dict[Future, Any] = {}
        stop: str | None = None
        failed_out: str | None = None
        validated = False
        # The first trial runs alone: a launcher starts its backend on its first launch (Ray
        # its local instance, joblib its workers), and two threads doing that at once collide
        # (measured with hydra-ray-launcher: "Perhaps you called ray.init twice by accident?").
        warmed = slots == 1
        self.mine: set[int] = set()
        try:
            while True:
                started_now = 0
                while stop is None and len(in_flight) < (slots if warmed else 1):
                    if self.timeout is not None and time.monotonic() - started >= self.timeout:
                        stop = f"time budget of {self.timeout:g}s spent"
                        break
                    trial = self._ask(study, space, heartbeat)
                    if trial is None:
                        if not in_flight and self._wait_for_others(study):
                            continue  # a trial elsewhere was failed and queued again
                        stop = f"n_trials={self.n_trials} reached"
                        break
                    overrides = space.overrides(trial.params) + [self._link(study, trial)]
                    if not validated:  # a bad override is a config error, not a failed trial
                        try:
                            self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
                        except Exception:
                            self._tell(study, trial, None, "FAIL", "the overrides do not compose")
                            raise
                        validated = True
                    in_flight[pool.submit(self._launch, overrides, trial.number)] = trial
                    started_now += 1
                if started_now:
                    self._show_running(study)
                if not in_flight:
                    break
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    trial = in_flight.pop(future)
                    self._record(study, trial, future.result())
                    heartbeat.discard(compat.trial_id(trial))
                    warmed = True
                if failed_out is None:
                    failed_out = self._failure_check(study)
                    if failed_out:
                        stop = "too many failures"
        finally:
            heartbeat.stop()
            pool.shutdown(wait=True)
        log.info("Sweep stopped: %s", stop)
        self.stopped = stop
        return failed_out

    def _show_running(self, study: Any) -> None:
        from launcher.sweeper.results import write_trials

        try:
            write_trials(study, self.sweep_dir)
        except Exception as error:  # the record of a running trial must not stop the sweep
            log.warning("trials.csv not updated: %s", error)

    def _launch(self, overrides: Sequence[str], number: int) -> Any:
        try:
            return self.launcher.launch([list(overrides)], initial_job_idx=number)[0]
        except Exception as error:  # e.g. a joblib worker killed by the OS
            return error

    def _ask(self, study: Any, space: SearchSpace, heartbeat: Any) -> Any:
        import optuna

        resume.fail_orphans(study)
        if self.scope == "invocation" and self.asked >= self.n_trials:
            return None
        if self.scope == "study" and self._count(study) >= self.n_trials:
            return None
        with warnings.catch_warnings():  # "Heartbeat ... supposed to be used with Study.optimize":
            warnings.simplefilter("ignore", UserWarning)  # this sweeper records the heartbeats
            trial = study.ask(fixed_distributions=space.distributions)
        self.asked += 1
        self.mine.add(trial.number)
        # Claimed at once: owner first (a rerun on this machine judges it), then the heartbeat
        # (Optuna's check for owners elsewhere). resume.py covers a death between ask and claim.
        storage = compat.study_storage(study)
        trial_id = compat.trial_id(trial)
        storage.set_trial_system_attr(trial_id, resume.OWNER_ATTR, resume.owner(trial.number))
        heartbeat.add(trial_id)
        history = storage.get_trial_system_attrs(trial_id).get("retry_history")
        if history:
            log.info("Trial %d re-runs trial %d, which was interrupted", trial.number, history[-1])
        try:
            for name, value in space.fixed.items():  # as hydra-optuna-sweeper records them
                trial.set_user_attr(name, value)
            if self.custom_search_space_extender is not None:
                from launcher.sweeper.official import check_overlap

                self.custom_search_space_extender(self.config, trial)
                check_overlap(trial, space.fixed)
        except Exception as error:
            self._tell(study, trial, None, "FAIL", f"custom_search_space: {error}")
            raise
        if self.scope == "study":
            # Another sweep process may have asked at the same moment: the lower numbers win.
            rank = sum(1 for t in study.get_trials(deepcopy=False)
                       if t.number <= trial.number and _counts(t))
            if rank > self.n_trials:
                trial.set_user_attr("skipped", "n_trials reached by another sweep process")
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return None
        return trial

    def _wait_for_others(self, study: Any) -> bool:
        """At the end of the budget, trials still RUNNING under owners on other machines may
        be orphans that only their heartbeat can reveal: wait until they finish or are failed
        and queued again. True when the budget has room again."""
        from optuna.trial import TrialState

        if self.scope != "study":
            return False
        waited = False
        while True:
            running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                       if t.number not in self.mine and not resume.is_local(t)]
            if not running:
                return waited and self._count(study) < self.n_trials
            if not waited:
                log.info("Waiting for %d trial(s) running in sweep processes on other machines "
                         "(one that stopped is detected after its grace period)", len(running))
            waited = True
            threading.Event().wait(min(5.0, float(self.heartbeat_interval or 5)))
            resume.fail_orphans(study)

    def _record(self, study: Any, trial: Any, outcome: Any) -> None:
        from hydra.core.utils import JobStatus

        run_dir = traceback_in = None
        if isinstance(outcome, BaseException):  # the launcher itself failed: no trial log
            state, values, failure = "FAIL", None, f"launcher error: {type(outcome).__name__}: {outcome}"
            log.debug("Trial %d: the launcher failed", trial.number,
                      exc_info=(type(outcome), outcome, outcome.__traceback__))
        else:
            run_dir, where = _run_dir(outcome), log_file(outcome.hydra_cfg)
            if outcome.status == JobStatus.COMPLETED:
                values, failure = self._values(outcome.return_value)
                state = "COMPLETE" if failure is None else "FAIL"
            else:
                error = compat.job_error(outcome)
                values = None
                if is_pruned(error):
                    state, failure = "PRUNED", None
                else:  # its traceback is in the trial's log (failures.TrialLog wrote it there)
                    state, failure = "FAIL", f"{type(error).__name__}: {error}"
                    traceback_in = where
            if state == "FAIL" and where is not None:
                self.logs[trial.number] = where
        if run_dir:
            trial.set_user_attr("run_dir", run_dir)
            self._check_direction(run_dir)
        self._tell(study, trial, values, state, failure, traceback_in)

    def _tell(self, study: Any, trial: Any, values: Any, state: str, failure: str | None,
              traceback_in: Path | None = None) -> None:
        from optuna.trial import TrialState

        from launcher.sweeper.results import write_results

        try:
            if failure:
                trial.set_user_attr("failure", failure[:2000])
            study.tell(trial, values, state=TrialState[state])
        except RuntimeError as error:
            # GridSampler stops the study once its grid is covered; tell has stored the trial.
            if "Study.stop" not in str(error):
                log.warning("Trial %d could not be recorded: %s", trial.number, error)
                return
        except Exception as error:  # e.g. marked stale by another process meanwhile
            log.warning("Trial %d could not be recorded: %s", trial.number, error)
            return
        if failure:  # one line on the console; the traceback is in the trial's log
            log.warning("Trial %d failed (%s): %s%s", trial.number,
                        " ".join(f"{k}={render_value(v)}" for k, v in trial.params.items()),
                        one_line(failure), f"; traceback in {traceback_in}" if traceback_in else "")
        else:
            shown = values if values is None or len(values) > 1 else values[0]
            log.info("Trial %d %s%s", trial.number, state.lower(),
                     f" with value {shown}" if values else "")
        try:
            write_results(study, self.sweep_dir, self.space.overrides, self._extra())
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
        failures = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("failure")
                    and (self.scope == "study" or t.number in self.mine)]
        allowed = self.max_failure_rate * self.n_trials
        if len(failures) > allowed:
            last = failures[-1]
            return (f"{len(failures)} trial(s) failed, more than max_failure_rate="
                    f"{self.max_failure_rate:g} of n_trials={self.n_trials}; last failure "
                    f"(trial {last.number}): {one_line(last.user_attrs['failure'])}"
                    + self._log_of(last.number))
        return None

    def _without_result(self, study: Any) -> str | None:
        """A sweep in which no trial completed has no result, whatever max_failure_rate
        tolerates: the message for its error line, else None."""
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        if self.n_trials == 0 or any(t.state == TrialState.COMPLETE for t in trials):
            return None
        counts: dict[str, int] = {}
        for t in trials:
            if t.state != TrialState.WAITING and not t.user_attrs.get("skipped"):
                name = {"FAIL": "failed"}.get(t.state.name, t.state.name.lower())
                counts[name] = counts.get(name, 0) + 1
        what = ", ".join(f"{n} {name}" for name, n in counts.items()) or f"none ran: {self.stopped}"
        return (f"no trial completed ({what}), so the sweep has no result; max_failure_rate="
                f"{self.max_failure_rate:g} tolerates failed trials, not a sweep without a "
                "completed one" + (self._log_of(max(self.logs)) if self.logs else ""))

    def _log_of(self, number: int) -> str:
        where = self.logs.get(number)
        return f"; trial {number}'s log: {where}" if where else ""

    # -- pieces ---------------------------------------------------------------------------------
    def _count(self, study: Any) -> int:
        return sum(1 for t in study.get_trials(deepcopy=False) if _counts(t))

    def _extra(self) -> dict[str, Any]:
        return {"storage": self.location.display, "n_trials": self.n_trials,
                "n_trials_scope": self.scope, "sweep_dir": str(self.sweep_dir.absolute())}

    def _link(self, study: Any, trial: Any) -> str:
        from launcher.sweeper.pruning import trial_override

        return self.env_prefix + trial_override({
            "study": study.study_name, "trial": trial.number, "trial_id": compat.trial_id(trial),
            "storage": self.location.reference,
            "direction": self.directions[0] if len(self.directions) == 1 else None,
            "metric": self.metric, "pruner": self.pruner_spec,
        })

    def _pruner(self) -> Any:
        from launcher.sweeper.pruning import make_pruner

        return make_pruner(self.pruner_spec)

    def _enqueue(self, study: Any, space: SearchSpace) -> None:
        import optuna

        for point in self.enqueue_points:
            unknown = sorted(set(point) - set(space.distributions))
            if unknown and self.custom_search_space_extender is None:
                raise ConfigError(
                    f"hydra.sweeper.enqueue_trials: {unknown} not in the search space "
                    f"{sorted(space.distributions)}"
                )
            # Keys of a custom (conditional) space are drawn by its function, which gets the
            # queued value back from Optuna: they are queued as given.
            params = {key: _as_choice(space.distributions[key], value) if key in space.distributions else value
                      for key, value in point.items()}
            with warnings.catch_warnings():  # skip_if_exists is marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
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

        # (without a completed trial, the sweep's error line says so: _without_result)
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if completed and len(self.directions) == 1:
            best = study.best_trial
            log.info("Best parameters: %s", best.params)
            log.info("Best value: %s (trial %d)", best.value, best.number)
        elif completed:
            log.info("Number of Pareto solutions: %d", len(study.best_trials))
        log.info("Results in %s", self.sweep_dir.absolute())


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
        raise ConfigError(f"hydra.sweeper.direction must be minimize, maximize or a list of "
                          f"them, got {direction!r}")
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
