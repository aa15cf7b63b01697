"""The Optuna sweeper, through real Hydra multiruns of a tiny app (tests/sweeper_app)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from launcher.core.errors import ConfigError
from helpers import APP, app_command, env, results, run, states, study_trials, trials_csv

pytestmark = pytest.mark.slow


def sqlite(sweep_dir: Path) -> str:
    return f"sqlite:///{sweep_dir / 'optuna.db'}"


# -- grammar ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line, expected",
    [
        ("a=choice(1,x,[1,2])", ("Categorical", {"choices": (1, "x", "[1,2]")})),
        ("a=range(1,5)", ("Int", {"low": 1, "high": 5, "step": 1, "log": False})),  # stop included
        ("a=range(0.1,0.5,0.1)", ("Float", {"low": 0.1, "high": 0.5, "step": 0.1})),
        ("a=range(0.5,5.5,step=1)", ("Float", {"low": 0.5, "high": 5.5, "step": 1.0})),
        ("a=range(0,10,3)", ("Int", {"low": 0, "high": 9, "step": 3})),  # the last whole step
        ("a=interval(1,10)", ("Float", {"low": 1.0, "high": 10.0, "log": False, "step": None})),
        ("a=int(interval(1,10))", ("Int", {"low": 1, "high": 10, "log": False})),
        ("a=tag(log,interval(0.001,1))", ("Float", {"low": 0.001, "high": 1.0, "log": True})),
        ("a=tag(log,int(interval(8,64)))", ("Int", {"low": 8, "high": 64, "log": True})),
        ("a=shuffle(range(1,4))", ("Categorical", {})),
    ],
)
def test_grammar_maps_to_optuna_distributions(line, expected):
    from launcher.sweeper.search_space import parse_search_space

    kind, attrs = expected
    dist = parse_search_space({}, [line]).distributions["a"]
    assert type(dist).__name__ == f"{kind}Distribution"
    for name, value in attrs.items():
        got = getattr(dist, name)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value


def test_grid_ranges_exclude_their_stop_as_the_official_grid_does():
    from launcher.sweeper.search_space import grid_of, parse_search_space

    space = parse_search_space({"a": "range(1, 3)", "b": "range(-1.0, 1.0, step=1)"}, [], grid=True)
    assert grid_of(space.distributions) == {"a": [1, 2], "b": [-1.0, 0.0]}


def test_fixed_values_and_command_line_win_over_params():
    from launcher.sweeper.search_space import parse_search_space

    space = parse_search_space(
        {"a": "interval(0, 1)", "b": 3, "c": [1, 2], "+d": "choice(x, y)"},
        ["a=0.5", "e=choice(1,2)", "~z"],
    )
    assert space.fixed == {"a": "0.5", "b": "3", "c": "[1,2]"}
    assert sorted(space.distributions) == ["+d", "e"]
    assert sorted(space.overrides({"e": 2, "+d": "x"})) == [
        "+d=x", "a=0.5", "b=3", "c=[1,2]", "e=2", "~z"]


def test_reversed_interval_is_refused():
    from launcher.sweeper.search_space import parse_search_space

    with pytest.raises(ConfigError, match="low <= high"):
        parse_search_space({}, ["a=interval(5, 1)"])


def test_reporter_is_none_outside_a_sweep(monkeypatch):
    from launcher.sweeper.pruning import reporter

    monkeypatch.delenv("LAUNCHER_OPTUNA_TRIAL", raising=False)
    assert reporter(OmegaConf.create({"task": {"metric": "accuracy"}})) is None
    monkeypatch.setenv("LAUNCHER_OPTUNA_TRIAL", "")  # declared by hydra/sweeper/job_env, unset
    assert reporter(OmegaConf.create({})) is None


def test_the_trial_link_survives_hydra_override_quoting():
    """The per-job override carries any study name or storage path intact, without leaving
    a trace in the job's config or its override_dirname."""
    import json

    from hydra import compose, initialize_config_dir

    from launcher.sweeper.pruning import trial_override

    link = {"study": "it's a \\ ${oc.env:HOME} study", "trial": 3, "trial_id": 4,
            "storage": "sqlite:////tmp/a b/optuna.db", "direction": "minimize", "metric": None,
            "pruner": {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 1}}
    with initialize_config_dir(config_dir=str(APP.parent / "conf"), version_base="1.3"):
        cfg = compose("app", overrides=[trial_override(link), "x=1.5"], return_hydra_config=True)
    assert json.loads(cfg.hydra.job.env_set.LAUNCHER_OPTUNA_TRIAL) == link
    assert cfg.hydra.job.override_dirname == "x=1.5"
    assert list(cfg.hydra.overrides.task) == ["x=1.5"]
    assert set(cfg) - {"hydra"} == {"x", "y", "mode", "fail_above", "nan_below", "epochs",
                                     "objectives", "hold", "hold_from", "meet", "meet_count",
                                     "meet_from"}


# -- sweeps ------------------------------------------------------------------------------------
def wait_for(condition, what: str, proc, limit: float = 120) -> None:
    """Poll a file or the storage until `condition` holds (the deadline only guards a hang)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, f"the sweep ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {limit}s"
        time.sleep(0.05)


def count_complete(url: str) -> int:
    try:
        return states(study_trials(url)).get("COMPLETE", 0)
    except Exception:  # no database or study yet
        return 0


def test_sweep_writes_results_trials_csv_and_plots(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run(app_command(sweep, "hydra.sweeper.n_trials=4", "hydra.sweeper.plots=true",
                           "hydra.sweeper.sampler.n_startup_trials=2", "epochs=2"), tmp_path)

    trials = study_trials(sqlite(sweep))
    assert states(trials) == {"COMPLETE": 4}
    res = results(sweep)
    best = min(trials, key=lambda t: t.value)
    assert res["best_value"] == pytest.approx(best.value)
    assert res["best_params"] == best.params
    assert res["best_run_dir"] == str(sweep / str(best.number))
    rows = trials_csv(sweep)  # Optuna's trials_dataframe()
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]
    assert {"params_x", "params_y", "value", "state", "user_attrs_run_dir", "note"} <= set(rows[0])
    for name in ("optimization_history.png", "param_importances.png"):
        assert (sweep / name).read_bytes()[:4] == b"\x89PNG"
    # every trial ran in the sweep dir's subdirectory named by its trial number
    assert all((sweep / str(t.number) / "done").exists() for t in trials)
    # fixed parameters are kept in the trial's user_attrs, as hydra-optuna-sweeper's docs say
    assert all(t.user_attrs["epochs"] == "2" for t in trials)
    assert "n_trials=4 counts the whole study (n_trials_scope=study): 4 trial(s) to run" in proc.stdout


def test_failed_and_nan_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    run(app_command(sweep, "fail_above=3.5", "nan_below=-3.5", "hydra.sweeper.n_trials=5",
                    "hydra.sweeper.max_failure_rate=0.5",
                    "hydra.sweeper.enqueue_trials=[{x:3.9,y:0},{x:-3.9,y:0}]"), tmp_path)
    trials = study_trials(sqlite(sweep))
    assert len(trials) == 5
    assert trials[0].state.name == "FAIL" and "fails on purpose" in trials[0].user_attrs["failure"]
    assert trials[1].state.name == "FAIL" and "non-finite" in trials[1].user_attrs["failure"]
    assert states(trials)["COMPLETE"] >= 2
    notes = [r["note"] for r in trials_csv(sweep)]
    assert "fails on purpose" in notes[0] and "non-finite" in notes[1]


def test_too_many_failures_stop_the_sweep_with_an_error(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run(app_command(sweep, "mode=fail", "hydra.sweeper.n_trials=10",
                           "hydra.sweeper.max_failure_rate=0.2"), tmp_path, check=False)
    assert proc.returncode != 0
    assert "max_failure_rate=0.2" in proc.stderr
    trials = study_trials(sqlite(sweep))
    assert states(trials) == {"FAIL": 3}  # more than 0.2 * 10
    assert results(sweep)["trials"] == {"FAIL": 3}


def test_by_default_one_failure_ends_the_sweep_as_in_hydra_optuna_sweeper(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run(app_command(sweep, "mode=fail", "hydra.sweeper.n_trials=5"), tmp_path, check=False)
    assert proc.returncode != 0 and "max_failure_rate=0 " in proc.stderr
    assert states(study_trials(sqlite(sweep))) == {"FAIL": 1}


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_failed_trial_is_one_console_line_and_no_completed_trial_fails_the_sweep(tmp_path, launcher):
    """Each failed trial: one line (its number, parameters, the error, its log), the traceback
    in the trial's own log, also from a joblib worker; and with no trial completed the sweep
    fails even where max_failure_rate=1.0 tolerates every failure."""
    sweep = tmp_path / "sweep"
    parallel = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]
    proc = run(app_command(sweep, "mode=fail", "hydra.sweeper.n_trials=3",
                           "hydra.sweeper.max_failure_rate=1.0",
                           *(parallel if launcher == "joblib" else [])), tmp_path, check=False)
    console = proc.stdout + proc.stderr
    assert "Traceback" not in console
    trials = study_trials(sqlite(sweep))
    assert states(trials) == {"FAIL": 3}
    for t in trials:
        log_file = sweep / str(t.number) / "app.log"
        lines = [line for line in console.splitlines() if f"Trial {t.number} failed" in line]
        assert len(lines) == 1, console
        assert f"(x={t.params['x']!r} y={t.params['y']})" in lines[0]
        assert lines[0].endswith(f": ValueError: this trial fails on purpose; traceback in {log_file}")
        logged = log_file.read_text()
        assert "Traceback (most recent call last)" in logged
        assert logged.rstrip().endswith("ValueError: this trial fails on purpose")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: no trial completed (3 failed), so the sweep has no result")
    assert errors[0].endswith(f"trial 2's log: {sweep / '2' / 'app.log'}")
    assert results(sweep)["trials"] == {"FAIL": 3}  # the results are written all the same


def test_a_sweep_with_a_completed_trial_keeps_its_tolerance(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run(app_command(sweep, "fail_above=0.0", "hydra.sweeper.n_trials=3",
                           "hydra.sweeper.max_failure_rate=1.0",
                           "hydra.sweeper.enqueue_trials=[{x:3.0},{x:-1.0}]"), tmp_path)
    assert states(study_trials(sqlite(sweep)))["COMPLETE"] >= 1
    assert "Trial 0 failed (x=3.0 y=" in proc.stdout and "error:" not in proc.stderr


def test_pruned_trial_is_recorded_as_pruned(tmp_path):
    sweep = tmp_path / "sweep"
    run(app_command(sweep, "epochs=4", "hydra.sweeper.n_trials=2", "hydra/sweeper/pruner=median",
                    "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.pruner.n_warmup_steps=0",
                    "hydra.sweeper.enqueue_trials=[{x:2.0,y:-1},{x:-4.0,y:2}]"), tmp_path)
    first, second = study_trials(sqlite(sweep))
    assert first.state.name == "COMPLETE" and len(first.intermediate_values) == 4
    assert second.state.name == "PRUNED"
    assert list(second.intermediate_values) == [0]  # stopped after its first report
    assert not (sweep / "1" / "done").exists()


def test_a_spent_time_budget_starts_no_new_trial(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run(app_command(sweep, "hydra.sweeper.n_trials=50", "hydra.sweeper.timeout=1e-9"),
               tmp_path, check=False)
    assert study_trials(sqlite(sweep)) == []  # the budget is checked before each trial
    assert "Sweep stopped: time budget of 1e-09s spent" in proc.stdout
    # and a sweep that ends without a completed trial has no result: it fails, saying why
    assert proc.returncode == 1
    assert "error: no trial completed (none ran: time budget of 1e-09s spent)" in proc.stderr


def test_enqueued_points_run_first_and_once_and_both_budget_scopes(tmp_path):
    sweep = tmp_path / "sweep"
    command = app_command(sweep, "hydra.sweeper.n_trials=3",
                          "hydra.sweeper.enqueue_trials=[{x:2.0,y:-1},{x:1.0}]")
    run(command, tmp_path)
    trials = study_trials(sqlite(sweep))
    assert trials[0].params == {"x": 2.0, "y": -1} and trials[0].value == 0.0
    assert trials[1].params["x"] == 1.0
    assert results(sweep)["best_trial"] == 0
    # the same command with a larger budget resumes: the warm-start points are not queued again
    run(command[:-2] + ["hydra.sweeper.n_trials=5", command[-1]], tmp_path)
    trials = study_trials(sqlite(sweep))
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert sum(1 for t in trials if t.params.get("x") == 2.0 and t.params.get("y") == -1) == 1
    # hydra-optuna-sweeper's count: n_trials more per run
    proc = run(command[:-2] + ["hydra.sweeper.n_trials=2", "hydra.sweeper.n_trials_scope=invocation",
                               command[-1]], tmp_path)
    assert len(study_trials(sqlite(sweep))) == 7
    assert "n_trials=2 more (n_trials_scope=invocation): 2 trial(s) to run" in proc.stdout


@pytest.mark.parametrize("moment", ["between trials", "inside a trial"])
def test_a_sweep_killed_with_sigkill_resumes_exactly(tmp_path, moment):
    """n_trials=10 on SQLite, the whole process group killed with SIGKILL around trial 3, then
    the same command at once: exactly 10 finished trials, none RUNNING, no parameters twice."""
    from launcher.sweeper import resume

    sweep, hold = tmp_path / "sweep", tmp_path / "hold"
    hold.write_text("jobs from number 3 on wait while this file exists")
    # A heartbeat could not reveal the orphan within the test: the owner check must.
    command = app_command(sweep, "hydra.sweeper.n_trials=10", f"hold={hold}", "hold_from=3",
                          "hydra.sweeper.heartbeat_interval=600")
    proc = subprocess.Popen(command, cwd=tmp_path, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if moment == "between trials":  # trial 2 just told
            wait_for(lambda: count_complete(sqlite(sweep)) >= 3, "3 complete trials", proc)
        else:  # trial 3's job is running
            wait_for(lambda: (sweep / "3" / "pid").exists(), "trial 3's job", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    hold.unlink()
    before = study_trials(sqlite(sweep))
    running = [t.number for t in before if t.state.name == "RUNNING"]
    assert states(before)["COMPLETE"] == 3 and running in ([], [3])
    if moment == "inside a trial":
        assert running == [3]

    out = run(command, tmp_path).stdout
    after = study_trials(sqlite(sweep))
    complete = [t for t in after if t.state.name == "COMPLETE"]
    assert len(complete) == 10 and "RUNNING" not in states(after)
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 10  # nothing replayed
    for old in before[:3]:  # finished trials are kept, not repeated
        assert after[old.number].value == old.value
    # Killed between asking for trial 3 and claiming it, the rerun counts trial 3 until it is
    # UNCLAIMED_AFTER old, then fails and re-queues it: 6 to run at the start, 10 in the end.
    unclaimed = running and resume.OWNER_ATTR not in before[3].system_attrs
    assert f"{6 if unclaimed else 7} trial(s) to run" in out
    if running:  # the interrupted trial was failed at once and ran again, once
        assert after[3].state.name == "FAIL" and "failure" not in after[3].user_attrs
        assert "Trial 3 was left RUNNING " in out
        if moment == "inside a trial":
            assert f"Trial 3 was left RUNNING by process {proc.pid}, which is gone" in out
        retry = [t for t in after if t.system_attrs.get("failed_trial") == 3]
        # (the original's parameters; killed while its parameters were being sampled, the
        # ones it had, the rest sampled afresh)
        assert len(retry) == 1 and after[3].params.items() <= retry[0].params.items()
        assert retry[0].state.name == "COMPLETE"
        assert "interrupted; re-run as trial" in trials_csv(sweep)[3]["note"]
    assert states(after) == {"COMPLETE": 10, **({"FAIL": 1} if running else {})}


def test_orphans_are_told_from_live_trials_without_waiting_for_heartbeats(tmp_path):
    """A RUNNING trial whose owner process on this machine is gone fails at once and is queued
    again; one a live process owns stays; one nobody claimed fails once UNCLAIMED_AFTER old."""
    import datetime
    import sys

    import optuna

    from launcher.sweeper import resume
    from launcher.sweeper.storage import open_storage

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = optuna.create_study(storage=open_storage(sqlite(tmp_path), 600, None,
                                                     resume.retry_callback()))
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    now = datetime.datetime.now()
    for number, (pid, age) in enumerate([(dead.pid, 1), (os.getpid(), 1), (None, 1), (None, 60)]):
        system_attrs = {}
        if pid:
            system_attrs[resume.OWNER_ATTR] = {**resume.owner(number), "pid": pid}
        study.add_trial(optuna.trial.FrozenTrial(
            number=number, state=optuna.trial.TrialState.RUNNING, value=None,
            datetime_start=now - datetime.timedelta(seconds=age), datetime_complete=None,
            params={"x": number / 10}, distributions=dist, user_attrs={},
            system_attrs=system_attrs, intermediate_values={}, trial_id=number))
    failed = resume.fail_orphans(study)
    assert [number for number, _ in failed] == [0, 3]
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["FAIL", "RUNNING", "RUNNING", "FAIL",
                                              "WAITING", "WAITING"]
    assert [t.params for t in trials[4:]] == [{"x": 0.0}, {"x": 0.3}]  # queued again
    assert resume.interrupted_numbers(trials) == {0: 4, 3: 5}


def test_two_processes_share_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    meet = tmp_path / "meet"  # the first trial of each process waits for the other's
    # the storage comes from the environment, the way a shared study is configured
    procs = [
        subprocess.Popen(app_command(tmp_path / f"sweep{i}", "hydra.sweeper.n_trials=8",
                                     "hydra.sweeper.study_name=shared", f"meet={meet}",
                                     "hydra.sweeper.storage_env=LAUNCHER_OPTUNA_STORAGE",
                                     f"hydra.sweeper.sampler.seed={i}"),
                         cwd=tmp_path, env=env(LAUNCHER_OPTUNA_STORAGE=url),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
    trials = study_trials(url, "shared")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 8
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in trials)
    assert all(t.user_attrs.get("skipped") for t in trials if t.state.name == "FAIL")
    owners = {Path(t.user_attrs["run_dir"]).parent.name for t in complete}
    assert owners == {"sweep0", "sweep1"}  # both processes took a share


def test_joblib_launcher_keeps_trials_in_flight(tmp_path):
    sweep, meet = tmp_path / "sweep", tmp_path / "meet"
    # the first trial runs alone (the launcher starts its workers), then two at a time
    run(app_command(sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"meet={meet}",
                    "meet_from=1", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4"), tmp_path)
    trials = study_trials(sqlite(sweep))
    assert states(trials) == {"COMPLETE": 4}
    assert len(list(meet.iterdir())) >= 2  # two jobs waited for each other: in flight at once
    # each job, in a joblib worker, reached its own trial through its environment
    assert all(len(t.intermediate_values) == 3 for t in trials)


def test_multi_objective_study_writes_the_pareto_front(tmp_path):
    sweep = tmp_path / "sweep"
    run(app_command(sweep, "objectives=2", "hydra.sweeper.direction=[minimize,minimize]",
                    "hydra.sweeper.n_trials=4", "hydra.sweeper.plots=true"), tmp_path)
    res = results(sweep)
    assert res["directions"] == ["minimize", "minimize"] and res["solutions"]
    assert all(len(s["values"]) == 2 for s in res["solutions"])
    assert {"values_0", "values_1"} <= set(trials_csv(sweep)[0])
    assert (sweep / "optimization_history_0.png").exists()


def test_password_in_storage_config_is_refused_and_not_echoed(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run(app_command(sweep, "hydra.sweeper.storage=postgresql://u:s3cretpw@127.0.0.1:1/db"),
               tmp_path, check=False)
    assert proc.returncode != 0
    assert "storage_env" in proc.stderr
    assert "s3cretpw" not in proc.stdout + proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not any("s3cretpw" in p.read_text(errors="ignore") for p in written)


def test_storage_env_that_is_unset_is_named_in_the_error(tmp_path):
    proc = run(app_command(tmp_path / "sweep", "hydra.sweeper.storage_env=NO_SUCH_STORAGE_VAR"),
               tmp_path, check=False)
    assert proc.returncode != 0 and "NO_SUCH_STORAGE_VAR" in proc.stderr


# -- a drop-in for hydra-optuna-sweeper -----------------------------------------------------------
def test_defaults_are_hydra_optuna_sweepers():
    """hydra-optuna-sweeper 1.3.0's OptunaSweeperConf and TPE preset, key by key."""
    from hydra import compose, initialize_config_dir

    from launcher.sweeper.config import OptunaSweeperConf

    with initialize_config_dir(config_dir=str(APP.parent / "conf"), version_base="1.3"):
        cfg = compose("kwargs", return_hydra_config=True)  # sets n_trials, n_jobs, params, seed
    sweeper = cfg.hydra.sweeper
    official = {"storage": None, "study_name": None, "max_failure_rate": 0.0,
                "search_space": None, "custom_search_space": None}
    assert {key: sweeper[key] for key in official} == official
    assert getattr(sweeper.direction, "name", sweeper.direction) == "minimize"
    assert (OptunaSweeperConf.n_trials, OptunaSweeperConf.n_jobs) == (20, 2)
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert (sweeper.sampler.n_startup_trials, sweeper.sampler.n_ei_candidates) == (10, 24)
    assert sweeper.sampler.multivariate in (None, False)


def test_sampler_configs_are_typed_partial_and_refuse_motpe():
    from optuna.samplers import CmaEsSampler, GridSampler, RandomSampler

    from launcher.sweeper.optuna_sweeper import OptunaSweeperImpl
    from launcher.sweeper.samplers import make_sampler
    from launcher.sweeper.search_space import parse_search_space

    def sampler(sweeper, space, study_size=0):  # what a sweep makes of hydra.sweeper.sampler
        return make_sampler(sweeper.sampler_spec, space, study_size, sweeper.n_trials)

    space = parse_search_space({"a": "choice(1, 2)", "b": "range(0, 4, 2)"}, [])
    partial = OptunaSweeperImpl(sampler={"_target_": "optuna.samplers.RandomSampler",
                                         "_partial_": True, "seed": 3})
    assert isinstance(sampler(partial, space)[0], RandomSampler)
    grid = OptunaSweeperImpl(sampler={"_target_": "optuna.samplers.GridSampler", "_partial_": True})
    grid_space = parse_search_space({"a": "choice(1, 2)", "b": "range(0, 4, 2)"}, [], grid=True)
    made, _, n_trials = sampler(grid, grid_space)
    assert isinstance(made, GridSampler) and n_trials == 4  # 2 x 2 points
    cmaes = OptunaSweeperImpl(sampler={"_target_": "optuna.samplers.CmaEsSampler", "seed": 1,
                                       "n_startup_trials": 1, "use_separable_cma": False})
    assert isinstance(sampler(cmaes, space)[0], CmaEsSampler)
    resumed, reseeded, _ = sampler(partial, space, 5)
    assert reseeded[0] == 3 and reseeded[1] != 3  # a resumed study does not replay seed 3
    # _target_ switched to another class over the tpe preset: the preset's keys are dropped
    tpe_keys = {"n_startup_trials": 10, "n_ei_candidates": 24, "multivariate": False, "seed": 1}
    switched = OptunaSweeperImpl(sampler={"_target_": "optuna.samplers.RandomSampler", **tpe_keys})
    assert isinstance(sampler(switched, space)[0], RandomSampler)
    wrong = OptunaSweeperImpl(sampler={"_target_": "optuna.samplers.RandomSampler",
                                       "n_startup_trials": 5})
    with pytest.raises(ConfigError, match="RandomSampler takes no argument n_startup_trials"):
        sampler(wrong, space)
    with pytest.raises(ConfigError, match="The 'motpe' sampler was removed in Optuna 4.0. Use "
                                          "'hydra/sweeper/sampler=tpe' instead"):
        OptunaSweeperImpl(sampler={"_target_": "optuna.samplers.MOTPESampler"})


# The keys of hydra-optuna-sweeper's sampler presets and their defaults: 1.2.0's config.py and
# its HEAD's (the Optuna 4 port: gp, qmc, and motpe as a target that raises). A config written
# for it may set any of them. Differences kept on purpose (README, "Differences"): TPE's
# deprecated keys are null (HEAD too: setting one makes Optuna warn), CMA-ES's inc_popsize is
# Optuna's -1 (2 makes Optuna 4.4+ warn and has no effect without restarts).
OFFICIAL_PRESETS = {
    "tpe": {"seed": None, "consider_prior": None, "prior_weight": None, "consider_magic_clip": None,
            "consider_endpoints": None, "n_startup_trials": 10, "n_ei_candidates": 24,
            "multivariate": False, "warn_independent_sampling": None},
    "random": {"seed": None},
    "cmaes": {"seed": None, "x0": None, "sigma0": None, "independent_sampler": None,
              "warn_independent_sampling": True, "consider_pruned_trials": False,
              "restart_strategy": None, "inc_popsize": -1, "use_separable_cma": False,
              "source_trials": None},
    "nsgaii": {"seed": None, "population_size": 50, "mutation_prob": None, "crossover_prob": 0.9,
               "swapping_prob": 0.5, "constraints_func": None},
    "grid": {"_partial_": True},
    "gp": {"seed": None, "independent_sampler": None, "n_startup_trials": 10,
           "deterministic_objective": False, "constraints_func": None,
           "warn_independent_sampling": True},
    "qmc": {"seed": None, "qmc_type": "sobol", "scramble": False, "independent_sampler": None,
            "warn_asynchronous_seeding": True, "warn_independent_sampling": True},
    "motpe": {"seed": None, "consider_prior": True, "prior_weight": 1.0,
              "consider_magic_clip": True, "consider_endpoints": False, "n_startup_trials": 10,
              "n_ehvi_candidates": 24},
}


def compose_app(*overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(APP.parent / "conf"), version_base="1.3"):
        return compose("app", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("preset", sorted(OFFICIAL_PRESETS))
def test_sampler_presets_declare_the_official_keys_with_the_official_defaults(preset):
    from launcher.sweeper.config import SAMPLERS

    sampler = OmegaConf.structured(SAMPLERS[preset])  # what hydra/sweeper/sampler=<preset> gives
    assert {key: sampler.get(key, "MISSING") for key in OFFICIAL_PRESETS[preset]} == OFFICIAL_PRESETS[preset]


def test_the_tpe_preset_keeps_optunas_constant_liar_off():
    """hydra-optuna-sweeper (and Optuna before 5.0) run TPE without the constant liar; Optuna 5
    turns it on by default. Off: with 4 trials in flight it found worse optima (README)."""
    from optuna.samplers import TPESampler

    from launcher.sweeper.samplers import make_sampler
    from launcher.sweeper.search_space import parse_search_space

    spec = OmegaConf.to_container(compose_app().hydra.sweeper.sampler)
    assert spec["constant_liar"] is False
    sampler = make_sampler(spec, parse_search_space({"x": "interval(0, 1)"}, []), 0, 1)[0]
    assert isinstance(sampler, TPESampler) and sampler._constant_liar is False


# A user's search config for each preset, every official key set (tests/sweeper_app/conf/presets),
# with the parts of the user's module (sampler_parts) that must reach Optuna's sampler.
PRESET_CONFIGS = {
    "tpe": {"constraints_func"},
    "cmaes": {"independent_sampler"},
    "cmaes_source_trials": {"independent_sampler", "source_trials"},
    "nsgaii": {"constraints_func", "mutation", "crossover"},
    "nsgaiii": {"constraints_func", "mutation", "crossover"},
    "gp": {"constraints_func", "independent_sampler"},
    "qmc": {"independent_sampler"},
}


@pytest.mark.parametrize("name", sorted(PRESET_CONFIGS))
def test_a_search_config_setting_every_key_of_a_preset_reaches_the_sampler(name, monkeypatch):
    import warnings

    import optuna

    from launcher.sweeper.samplers import make_sampler
    from launcher.sweeper.search_space import parse_search_space

    monkeypatch.syspath_prepend(str(APP.parent))  # the user's module, as on their path
    import sampler_parts

    sampler_parts.CALLS.clear()
    given = OmegaConf.load(APP.parent / "conf" / "presets" / f"{name}.yaml").hydra.sweeper.sampler
    assert set(OFFICIAL_PRESETS.get(name, {})) <= set(given)  # the config sets every official key
    spec = OmegaConf.to_container(compose_app(f"+presets={name}").hydra.sweeper.sampler)
    assert {key: spec[key] for key in given} == OmegaConf.to_container(given)
    space = parse_search_space({"x": "interval(-4.0, 4.0)", "y": "range(-3, 3)", "c": "choice(a, b)"}, [])
    with warnings.catch_warnings():  # Optuna's deprecation and experimental warnings
        warnings.simplefilter("ignore")
        sampler = make_sampler(spec, space, 0, 6)[0]
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: t.suggest_float("x", -4, 4) ** 2 + t.suggest_int("y", -3, 3)
                       + (t.suggest_categorical("c", ["a", "b"]) == "a"),
                       n_trials=3 if name == "gp" else 6)
    assert set(sampler_parts.CALLS) == PRESET_CONFIGS[name]


def test_the_motpe_preset_says_what_hydra_optuna_sweeper_says_in_one_line(tmp_path):
    """A config written for 1.2.0's motpe preset composes, and the sweep stops before it starts
    with the official HEAD's message, through the official HEAD's target."""
    assert compose_app("+presets=motpe").hydra.sweeper.sampler._target_ == \
        "hydra_plugins.hydra_optuna_sweeper.config.raise_motpe_removed"
    sweep = tmp_path / "sweep"
    proc = run(app_command(sweep, "+presets=motpe"), tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: hydra.sweeper.sampler: The 'motpe' sampler was removed in Optuna 4.0. Use "
        "'hydra/sweeper/sampler=tpe' instead. TPESampler now handles multi-objective optimization.")
    assert not sweep.exists()


def test_the_official_class_path_resolves_in_a_fresh_interpreter(tmp_path):
    """hydra.utils.get_class / instantiate on hydra-optuna-sweeper's names, outside any Hydra
    app (no plugin scan), and without importing Optuna."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from hydra.utils import get_class, instantiate\n"
        "cls = get_class('hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper')\n"
        "from hydra_plugins.launcher_sweeper.optuna_sweeper import OptunaSweeper\n"
        "assert issubclass(cls, OptunaSweeper), cls\n"
        "assert 'optuna' not in sys.modules\n"
        "try:\n"
        "    instantiate({'_target_': 'hydra_plugins.hydra_optuna_sweeper.config.raise_motpe_removed'})\n"
        "except Exception as error:\n"
        "    print(error.__cause__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("The 'motpe' sampler was removed in Optuna 4.0.")


def test_cmaes_preset_runs_out_of_the_box(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run(app_command(sweep, "hydra/sweeper/sampler=cmaes", "hydra.sweeper.sampler.seed=1",
                           "hydra.sweeper.sampler.n_startup_trials=1", "hydra.sweeper.params.y=-1",
                           "hydra.sweeper.n_trials=3"), tmp_path)
    assert "Sampler: CmaEsSampler" in proc.stdout
    assert states(study_trials(sqlite(sweep))) == {"COMPLETE": 3}


def test_custom_search_space_may_not_suggest_a_fixed_parameter(tmp_path):
    proc = run(app_command(tmp_path / "sweep", "hydra.sweeper.custom_search_space=app.suggest_y",
                           "y=1"), tmp_path, check=False)
    assert proc.returncode != 0
    assert "custom_search_space suggested ['y'], which params or the command line fix (y=1)" \
        in proc.stderr


def test_a_kwargs_app_gets_exactly_the_users_config(tmp_path):
    """No bookkeeping key: `objective(**cfg)` works, override_dirname run directories read as
    the trial's own overrides, and no "Launching" line shows the storage."""
    sweep = tmp_path / "sweep"
    app = APP.parent / "kwargs_app.py"
    proc = run([app_command(sweep)[0], str(app), "-m", f"hydra.sweep.dir={sweep}"], tmp_path)
    trials = study_trials(sqlite(sweep))
    assert states(trials) == {"COMPLETE": 3}
    for t in trials:
        overrides = [f"x={t.params['x']!r}", f"y={t.params['y']}"]
        run_dir = sweep / ",".join(overrides)
        assert t.user_attrs["run_dir"] == str(run_dir)
        assert OmegaConf.load(run_dir / ".hydra" / "config.yaml") == {"x": t.params["x"],
                                                                      "y": t.params["y"]}
        assert list(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")) == overrides
    launching = [line for line in proc.stdout.splitlines() if " : x=" in line]
    assert len(launching) == 3
    assert not any("sqlite" in line or "LAUNCHER_OPTUNA" in line for line in launching)


def test_lightning_hydra_template_search_config_runs_unchanged(tmp_path):
    """lightning-hydra-template's hparams_search/mnist_optuna.yaml, as shipped: it names
    hydra-optuna-sweeper's class and sets hydra.mode=MULTIRUN (no -m)."""
    sweep = tmp_path / "sweep"
    app = APP.parent / "lht" / "train.py"
    proc = run([app_command(sweep)[0], str(app), "hparams_search=mnist_optuna",
                f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=4"], tmp_path)
    assert "Sampler: TPESampler" in proc.stdout
    trials = study_trials(sqlite(sweep))
    assert states(trials) == {"COMPLETE": 4}
    res = results(sweep)
    assert res["directions"] == ["maximize"]
    assert res["best_value"] == pytest.approx(max(t.value for t in trials))
    assert set(res["best_params"]) == {"model.optimizer.lr", "datamodule.batch_size",
                                       "model.net.lin1_size", "model.net.lin2_size",
                                       "model.net.lin3_size"}
    for t in trials:  # each job saw its trial's values
        seen = json.loads((sweep / str(t.number) / "seen.json").read_text())
        assert seen == {"lr": t.params["model.optimizer.lr"],
                        "batch_size": t.params["datamodule.batch_size"]}
        assert 0.0001 <= seen["lr"] <= 0.1


STAND_IN = '''
from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from pathlib import Path

class OptunaSweeper(Sweeper):
    def __init__(self, **kwargs):
        pass
    def setup(self, *, hydra_context, task_function, config):
        self.config = config
    def sweep(self, arguments):
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        (Path(str(self.config.hydra.sweep.dir)) / "official_ran").write_text("yes")

ConfigStore.instance().store(group="hydra/sweeper", name="optuna", provider="optuna_sweeper",
    node={"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"})
'''


@pytest.mark.parametrize("first_on_path", ["hydra-optuna-sweeper", "launcher"])
def test_hydra_optuna_sweeper_installed_beside_is_named_not_silently_shadowed(tmp_path, first_on_path):
    """The official plugin's package on the path (a stand-in with its module names), before or
    after launcher's: every start says so, and launcher's sweeper, which takes hydra/sweeper=optuna
    whichever comes first (its hydra_plugins module is scanned last, or its file at the official
    name comes first), refuses to run beside it; the stand-in never runs in its place."""
    from helpers import ROOT

    package = tmp_path / "site" / "hydra_plugins" / "hydra_optuna_sweeper"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "optuna_sweeper.py").write_text(STAND_IN)
    site = str(tmp_path / "site")
    path = [site, str(ROOT)] if first_on_path == "hydra-optuna-sweeper" else [str(ROOT), site]
    sweep = tmp_path / "sweep"
    proc = run(app_command(sweep, "hydra.sweeper.n_trials=1"), tmp_path, check=False,
               PYTHONPATH=os.pathsep.join(path))
    assert "hydra-optuna-sweeper (unknown version, " in proc.stderr
    assert "pip uninstall hydra-optuna-sweeper" in proc.stderr
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "error: hydra-optuna-sweeper (unknown version, ")
    assert not (sweep / "official_ran").exists()
