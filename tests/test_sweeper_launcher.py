"""The sweeper with the real launcher (python -m launcher -m hparams_search=...), the shipped
search configs, and a study shared through PostgreSQL."""
from __future__ import annotations

import json
import os
import subprocess
import uuid
import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from launcher.core.paths import CONFIG_DIR
from helpers import app_command, env, launcher_command, results, run, states, study_trials

SEARCHES = sorted(p.stem for p in (Path(CONFIG_DIR) / "hparams_search").glob("*.yaml"))


@pytest.mark.parametrize("search", SEARCHES)
def test_shipped_search_configs_compose_and_name_real_keys(search):
    from launcher.sweeper.search_space import parse_search_space

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"hparams_search={search}"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.startswith("hydra_plugins.launcher_sweeper.")
    assert sweeper.direction in ("maximize", "minimize") and 0 < sweeper.n_trials <= 100
    # hydra-optuna-sweeper's default stops at the first failure; a shipped search says its own
    assert 0 < sweeper.max_failure_rate < 1 and sweeper.plots is True
    space = parse_search_space(OmegaConf.to_container(sweeper.params), [])
    assert space.distributions, "a search needs a search space"
    for key in [*space.distributions, *space.fixed]:
        assert OmegaConf.select(cfg, key.lstrip("+"), default="MISSING") != "MISSING", key
    for dist in space.distributions.values():  # bounded spaces
        assert getattr(dist, "choices", None) or dist.high - dist.low < 1e7


@pytest.mark.slow
def test_launcher_sweep_with_joblib(tmp_path):
    sweep = tmp_path / "sweep"
    run(launcher_command(sweep, "hparams_search=logistic_regression_optuna", "data=iris",
                         "save_model=false", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                         "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=3",
                         "hydra.sweeper.plots=false"), tmp_path, timeout=180)
    res = results(sweep)
    scores = {}
    for number in range(3):
        metrics = json.loads((sweep / str(number) / "metrics.json").read_text())
        scores[number] = metrics["objective"]["value"]
        assert metrics["objective"]["name"] == "val/accuracy"
    assert res["trials"] == {"COMPLETE": 3}
    assert res["best_value"] == pytest.approx(max(scores.values()))
    assert res["best_run_dir"] == str(sweep / str(res["best_trial"]))
    assert any(o.startswith("model.estimator.C=") for o in res["best_overrides"])


@pytest.mark.slow
def test_two_processes_share_a_postgresql_study(tmp_path):
    url = os.environ.get("LAUNCHER_TEST_POSTGRES_URL")
    if not url:
        reason = ("LAUNCHER_TEST_POSTGRES_URL is not set: the PostgreSQL shared-study test did NOT "
                  "run. Start a server with `eval \"$(.ci/postgres.sh)\"` to run it.")
        warnings.warn(reason)
        pytest.skip(reason)
    name = f"pg_{uuid.uuid4().hex[:8]}"
    procs = [
        # the first trial of each process waits for the other's: both take a share
        subprocess.Popen(app_command(tmp_path / f"sweep{i}", f"meet={tmp_path / 'meet'}",
                                     "hydra.sweeper.n_trials=6",
                                     f"hydra.sweeper.study_name={name}",
                                     "hydra.sweeper.storage_env=LAUNCHER_TEST_POSTGRES_URL",
                                     f"hydra.sweeper.sampler.seed={i}"),
                         cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
        for i in range(2)
    ]
    output = ""
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        output += out
        assert proc.returncode == 0, out[-3000:]
    trials = study_trials(url, name)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 6
    assert {Path(t.user_attrs["run_dir"]).parent.name for t in complete} == {"sweep0", "sweep1"}
    assert all(len(t.intermediate_values) == 3 for t in complete)  # jobs reached the study too
    password = _password(url)
    assert password and password not in output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="ignore"), path


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    return make_url(url).password


# The launcher plugins of the tested set (constraints.txt): each preset composes into that
# plugin's launcher with the keys the README tells a user to change. A missing plugin fails here.
TESTED_PRESETS = {
    "cores": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher (a dependency)",
              {"n_jobs": -1, "prefer": "processes"}),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "pip install 'launcher[slurm]'",
              # one task per device (tasks_per_node: ${device.devices}); GPUs per node, not per task
              {"partition": None, "timeout_min": 60, "gpus_per_task": None, "cpus_per_task": 4,
               "mem_gb": 16, "account": None, "qos": None, "setup": []}),
    "local_submitit": ("hydra_plugins.hydra_submitit_launcher", "pip install 'launcher[slurm]'",
                       {"timeout_min": 60, "cpus_per_task": 1, "gpus_per_node": 0, "mem_gb": 4}),
}


@pytest.mark.parametrize("preset", sorted(TESTED_PRESETS))
def test_launcher_presets_of_the_tested_set_compose(preset):
    import importlib.util

    plugin, install, keys = TESTED_PRESETS[preset]
    assert importlib.util.find_spec(plugin) is not None, f"{plugin} is missing: {install}"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={preset}"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.startswith(plugin + ".")
    assert {key: OmegaConf.to_container(launcher)[key] for key in keys} == keys


def test_the_ray_preset_names_its_missing_plugin():
    """hydra-ray-launcher is outside the tested set (README: it pins cloudpickle<3): here the
    preset fails with Hydra's message naming the plugin's config, as the README says."""
    import importlib.util

    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is not None:
        pytest.skip("hydra-ray-launcher is installed here, outside the tested set")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        with pytest.raises(Exception, match="Could not load 'hydra/launcher/ray'"):
            compose("train", overrides=["hydra/launcher=local_ray"], return_hydra_config=True)


@pytest.mark.slow
def test_a_poor_pytorch_trial_is_pruned_through_the_launcher(tmp_path):
    """The whole path: the PyTorch adapter reports each epoch to the study, the median pruner
    stops the poor trial, and the sweep records it as PRUNED and goes on."""
    sweep = tmp_path / "sweep"
    run(launcher_command(
        sweep, "framework=pytorch", "model=mlp", "data=iris", "device=cpu", "save_model=false", "plots=false",
        "trainer.max_epochs=4", "trainer.early_stopping.enabled=false",
        "hydra/sweeper=optuna", "hydra/sweeper/pruner=median", "hydra.sweeper.direction=maximize",
        "hydra.sweeper.n_trials=2", "hydra.sweeper.plots=false",
        "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.pruner.n_warmup_steps=0",
        "trainer.lr=tag(log, interval(1e-7, 1e-1))",
        "hydra.sweeper.enqueue_trials=[{trainer.lr:0.05},{trainer.lr:1e-7}]",
    ), tmp_path, timeout=240)
    good, poor = study_trials(f"sqlite:///{sweep / 'optuna.db'}")
    assert good.state.name == "COMPLETE" and sorted(good.intermediate_values) == [1, 2, 3, 4]
    assert poor.state.name == "PRUNED" and len(poor.intermediate_values) < 4
    assert results(sweep)["trials"] == {"COMPLETE": 1, "PRUNED": 1}
    assert not (sweep / "1" / "metrics.json").exists()  # a pruned run does not pose as finished


@pytest.mark.slow
def test_sweep_through_submitit_local_processes_sharing_one_sqlite_study(tmp_path):
    """The local_submitit preset: each trial in its own process (submitit's local executor),
    two at a time, all reporting to the one SQLite study through their environment."""
    sweep, meet = tmp_path / "sweep", tmp_path / "meet"
    run(app_command(sweep, "hydra.searchpath=[pkg://launcher.conf]", "hydra/launcher=local_submitit",
                    "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=3", f"meet={meet}",
                    "meet_from=1"), tmp_path, timeout=240)
    trials = study_trials(f"sqlite:///{sweep / 'optuna.db'}")
    assert states(trials) == {"COMPLETE": 3}
    pids = {(sweep / str(t.number) / "pid").read_text() for t in trials}
    assert len(pids) == 3  # one process per trial
    assert len(list(meet.iterdir())) == 2  # trials 1 and 2 ran at once
    assert all(len(t.intermediate_values) == 3 for t in trials)  # each reached its trial
