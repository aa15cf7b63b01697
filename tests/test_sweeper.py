"""The Optuna sweeper, through real Hydra multiruns of a tiny app (tests/sweeper_app)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from launcher.core.errors import ConfigError
from helpers import app_command, env, results, run, states, study_trials, trials_csv

pytestmark = pytest.mark.slow


def sqlite(sweep_dir: Path) -> str:
    return f"sqlite:///{sweep_dir / 'optuna.db'}"


# -- grammar ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line, expected",
    [
        ("a=choice(1,x,[1,2])", ("Categorical", {"choices": (1, "x", "[1,2]")})),
        ("a=range(1,5)", ("Int", {"low": 1, "high": 4, "step": 1, "log": False})),
        ("a=range(0.1,0.5,0.1)", ("Float", {"low": 0.1, "high": 0.4, "step": 0.1})),
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


def test_fixed_values_and_command_line_win_over_params():
    from launcher.sweeper.search_space import parse_search_space

    space = parse_search_space(
        {"a": "interval(0, 1)", "b": 3, "c": [1, 2], "+d": "choice(x, y)"}, ["a=0.5", "e=choice(1,2)"]
    )
    assert space.fixed == {"a": "0.5", "b": "3", "c": "[1,2]"}
    assert sorted(space.distributions) == ["+d", "e"]
    assert sorted(space.overrides({"e": 2, "+d": "x"})) == ["+d=x", "a=0.5", "b=3", "c=[1,2]", "e=2"]


def test_reversed_interval_is_refused():
    from launcher.sweeper.search_space import parse_search_space

    with pytest.raises(ConfigError, match="low <= high"):
        parse_search_space({}, ["a=interval(5, 1)"])


def test_reporter_is_none_outside_a_sweep():
    from launcher.sweeper.pruning import reporter

    assert reporter(OmegaConf.create({"sweep_trial": None})) is None


# -- sweeps ------------------------------------------------------------------------------------
def test_sweep_writes_results_trials_csv_and_plots(tmp_path):
    sweep = tmp_path / "sweep"
    run(app_command(sweep, "hydra.sweeper.n_trials=4", "hydra.sweeper.plots=true"), tmp_path)

    trials = study_trials(sqlite(sweep))
    assert states(trials) == {"COMPLETE": 4}
    res = results(sweep)
    best = min(trials, key=lambda t: t.value)
    assert res["best_value"] == pytest.approx(best.value)
    assert res["best_params"] == best.params
    assert res["best_run_dir"] == str(sweep / str(best.number))
    rows = trials_csv(sweep)
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]
    assert {"params.x", "params.y", "value", "state"} <= set(rows[0])
    for name in ("optimization_history.png", "param_importances.png"):
        assert (sweep / name).read_bytes()[:4] == b"\x89PNG"
    # every trial ran in the sweep dir's subdirectory named by its trial number
    assert all((sweep / str(t.number) / "done").exists() for t in trials)


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


def test_timeout_stops_starting_new_trials(tmp_path):
    sweep = tmp_path / "sweep"
    start = time.monotonic()
    run(app_command(sweep, "sleep=1.0", "hydra.sweeper.n_trials=50", "hydra.sweeper.timeout=2.5"),
        tmp_path)
    elapsed = time.monotonic() - start
    trials = study_trials(sqlite(sweep))
    assert 2 <= len(trials) <= 4 and states(trials) == {"COMPLETE": len(trials)}
    assert elapsed < 20


def test_enqueued_points_run_first_and_once(tmp_path):
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


def test_killed_sweep_resumes_the_same_study(tmp_path):
    sweep = tmp_path / "sweep"
    command = app_command(sweep, "sleep=0.6", "hydra.sweeper.n_trials=6",
                          "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2")
    proc = subprocess.Popen(command, cwd=tmp_path, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (sweep / "2" / "pid").exists():  # trials 0 and 1 done, trial 2 running
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = study_trials(sqlite(sweep))
    assert states(before) == {"COMPLETE": 2, "RUNNING": 1}

    time.sleep(2)  # the killed trial's heartbeat goes stale
    proc = run(command, tmp_path)
    after = study_trials(sqlite(sweep))
    assert states(after) == {"COMPLETE": 6, "FAIL": 1}
    assert after[2].state.name == "FAIL"  # the interrupted trial ...
    retry = [t for t in after if t.user_attrs.get("retry_of") == 2]
    assert len(retry) == 1 and retry[0].params == after[2].params  # ... ran again, once
    for old in before[:2]:  # finished trials are kept, not repeated
        assert after[old.number].value == old.value
    assert [t.number for t in after] == list(range(7))
    assert "2 trial(s) already counted" in proc.stdout + proc.stderr


def test_two_processes_share_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    # the storage comes from the environment, the way a shared study is configured
    procs = [
        subprocess.Popen(app_command(tmp_path / f"sweep{i}", "sleep=0.3", "hydra.sweeper.n_trials=8",
                                     "hydra.sweeper.study_name=shared",
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
    sweep = tmp_path / "sweep"
    run(app_command(sweep, "sleep=1.5", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                           "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4"), tmp_path)
    trials = study_trials(sqlite(sweep))
    assert states(trials) == {"COMPLETE": 4}
    pids = {(sweep / str(t.number) / "pid").read_text() for t in trials}
    assert len(pids) >= 2  # ran in joblib's worker processes, not in the sweep process
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    overlaps = sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
    assert overlaps >= 2, spans


def test_multi_objective_study_writes_the_pareto_front(tmp_path):
    sweep = tmp_path / "sweep"
    run(app_command(sweep, "objectives=2", "hydra.sweeper.direction=[minimize,minimize]",
                    "hydra.sweeper.n_trials=4", "hydra.sweeper.plots=true"), tmp_path)
    res = results(sweep)
    assert res["directions"] == ["minimize", "minimize"] and res["solutions"]
    assert all(len(s["values"]) == 2 for s in res["solutions"])
    assert {"value_0", "value_1"} <= set(trials_csv(sweep)[0])
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
