"""The config tree: every option composes, bad options list the valid ones, experiments apply
their overrides, and a user's ./conf joins the search path ahead of the shipped tree."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException

from launcher.core.paths import CONFIG_DIR

from helpers import results, trials_csv

GROUPS = {g: sorted(p.stem for p in (CONFIG_DIR / g).glob("*.yaml"))
          for g in ("framework", "model", "task", "data", "device", "trainer", "experiment", "hparams_search")}


def _compose(*overrides, hydra_cfg=False):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="launcher.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_cfg)


def test_the_config_tree_is_the_top_level_conf_folder():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    assert (repo / "conf" / "train.yaml").is_file()
    assert CONFIG_DIR.resolve() == (repo / "conf").resolve()


def test_default_config_is_a_small_sklearn_job():
    cfg = _compose()
    assert cfg.framework.name == "sklearn"
    assert cfg.data.name == "iris"
    assert cfg.model.type == "estimator"
    assert cfg.framework.device.name == "auto"  # the device group reaches the adapter


def test_runs_and_sweeps_go_under_outputs():
    cfg = _compose(hydra_cfg=True)
    assert cfg.hydra.run.dir.startswith("outputs/") and not cfg.hydra.run.dir.startswith("outputs/multirun")
    assert cfg.hydra.sweep.dir.startswith("outputs/multirun/")


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() if g not in ("experiment",
                                                                                       "hparams_search")
                                          for o in opts])
def test_every_option_composes(group, option):
    cfg = _compose(f"{group}={option}")
    assert cfg[group] is not None
    if group in ("framework", "model", "data", "device", "task"):
        assert cfg[group].name == option


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(MissingConfigException) as err:
        _compose("model=no_such_model")
    message = str(err.value)
    assert "no_such_model" in message
    assert "random_forest" in message and "logistic_regression" in message


def test_the_documented_model_set_is_there():
    for name in ("mlp", "random_forest", "extra_trees", "hist_gradient_boosting", "logistic_regression",
                 "svm", "knn", "kmeans", "cnn", "rnn", "transformer"):
        assert name in GROUPS["model"]
    for name in ("iris", "wine", "breast_cancer", "digits", "diabetes", "synthetic", "csv"):
        assert name in GROUPS["data"]
    assert GROUPS["device"] == ["auto", "cpu", "gpu"]


def test_shipped_experiments_apply_their_overrides_and_the_command_line_wins():
    cfg = _compose("experiment=digits_cnn")
    assert (cfg.framework.name, cfg.model.name, cfg.data.name) == ("pytorch", "cnn", "digits")
    assert cfg.trainer.scheduler == "cosine" and cfg.trainer.early_stopping.monitor == "val_accuracy"
    cfg = _compose("experiment=digits_cnn", "trainer.max_epochs=3")
    assert cfg.trainer.max_epochs == 3
    cfg = _compose("experiment=churn_search", "data.path=my.csv", hydra_cfg=True)
    assert cfg.data.path == "my.csv" and cfg.trainer.cv_folds == 5
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.sweeper.n_trials == 20
    cfg = _compose("experiment=compare_frameworks", hydra_cfg=True)
    assert cfg.hydra.sweeper.params.framework == "sklearn,pytorch,tensorflow,jax"


USER_MODEL = """\
name: my_net
type: mlp
hidden_sizes: [12]
activation: tanh
dropout: 0.0
norm: none
"""
USER_EXPERIMENT = """\
# @package _global_
defaults:
  - override /model: my_net
  - override /data: wine
trainer:
  max_epochs: 3
"""
# Replaces the shipped logistic_regression option for this project.
USER_OVERRIDE = """\
name: logistic_regression
type: estimator
targets:
  classification: sklearn.linear_model.LogisticRegression
estimator:
  _target_: null
  C: 0.123
"""


@pytest.fixture
def project(tmp_path):
    """A user's project: its own conf/ with a model, an experiment, a search and an override."""
    for rel, text in {"conf/model/my_net.yaml": USER_MODEL, "conf/experiment/mine.yaml": USER_EXPERIMENT,
                      "conf/model/logistic_regression.yaml": USER_OVERRIDE,
                      "conf/hparams_search/mine.yaml": textwrap.dedent("""\
                          # @package _global_
                          defaults:
                            - override /hydra/sweeper: optuna
                          hydra:
                            sweeper:
                              n_trials: 2
                              params:
                                model.estimator.C: choice(0.5, 0.25)
                          """)}.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.slow
def test_a_users_conf_folder_is_on_the_search_path(project, cli):
    info = cli("--info", "searchpath")
    assert info.returncode == 0, info.stderr
    rows = [line for line in info.stdout.splitlines() if "|" in line]
    user = next(i for i, line in enumerate(rows) if f"file://{project}/conf" in line)
    shipped = next(i for i, line in enumerate(rows) if "pkg://launcher.conf" in line)
    assert user < shipped  # the user's options win over shipped ones of the same name

    res = cli("experiment=mine", "framework=pytorch", "device=cpu", "save_model=false",
              "hydra.run.dir=outputs/mine")
    assert res.returncode == 0, res.stderr
    record = json.loads((project / "outputs" / "mine" / "metrics.json").read_text())
    assert (record["model"], record["data"], record["epochs"]) == ("my_net", "wine", 3)

    cfg = cli("model=logistic_regression", "--cfg", "job")
    assert "C: 0.123" in cfg.stdout
    res = cli("-m", "hparams_search=mine", "model=logistic_regression", "save_model=false",
              "hydra.sweep.dir=outputs/search")
    assert res.returncode == 0, res.stderr
    # The trials drew from the user's search space, and each job trained with its trial's value
    # (not the C of the user's model option, 0.123, nor the shipped one).
    sweep = project / "outputs" / "search"
    trials = trials_csv(sweep)
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        job = yaml.safe_load((Path(trial["user_attrs_run_dir"]) / ".hydra" / "config.yaml").read_text())
        assert job["model"]["estimator"]["C"] == float(trial["params_model.estimator.C"]) in (0.5, 0.25)
    assert results(sweep)["best_params"]["model.estimator.C"] in (0.5, 0.25)


def test_the_search_path_plugin_leaves_other_hydra_apps_alone(tmp_path, monkeypatch):
    from hydra.core.config_search_path import ConfigSearchPath
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl

    from hydra_plugins.launcher_searchpath.searchpath import UserConfSearchPath

    (tmp_path / "conf").mkdir()
    monkeypatch.chdir(tmp_path)
    other: ConfigSearchPath = ConfigSearchPathImpl()
    other.append("main", "file:///somewhere/else")
    UserConfSearchPath().manipulate_search_path(other)
    assert [e.path for e in other.get_path()] == ["file:///somewhere/else"]
    ours: ConfigSearchPath = ConfigSearchPathImpl()
    ours.append("main", "pkg://launcher.conf")
    UserConfSearchPath().manipulate_search_path(ours)
    assert [e.path for e in ours.get_path()] == [f"file://{tmp_path}/conf", "pkg://launcher.conf"]
