"""The config tree composes for every option, and bad options fail with the valid ones listed."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException

from launcher.paths import CONFIG_DIR

GROUPS = {g: sorted(p.stem for p in (CONFIG_DIR / g).glob("*.yaml"))
          for g in ("framework", "model", "task", "data", "device", "trainer")}


def _compose(*overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_default_config_is_a_small_sklearn_job():
    cfg = _compose()
    assert cfg.framework.name == "sklearn"
    assert cfg.data.name == "iris"
    assert cfg.model.type == "estimator"
    assert cfg.framework.device.name == "auto"  # the device group reaches the adapter


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
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
