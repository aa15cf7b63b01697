"""The Python API over the same core: framework manager, adapters on arrays."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris

import launcher
from launcher.errors import ConfigError


def test_manager_lists_and_reports_every_framework_without_crashing():
    fm = launcher.FrameworkManager()
    assert fm.list_frameworks() == ["pytorch", "tensorflow", "sklearn", "jax"]
    status = fm.status()
    assert set(status) == set(fm.list_frameworks())
    assert status["sklearn"].installed and status["sklearn"].devices == ["cpu"]
    assert launcher.MLFrameworkManager is launcher.FrameworkManager


def test_health_check_fits_a_tiny_model():
    st = launcher.FrameworkManager().get_framework_status("sklearn", health_check=True)
    assert st.healthy is True


def test_disabled_framework_is_reported_and_refused():
    fm = launcher.FrameworkManager(settings={"sklearn": {"enabled": False}})
    assert fm.get_framework_status("sklearn").enabled is False
    assert "disabled" in fm.get_framework_status("sklearn").detail
    with pytest.raises(ConfigError, match="framework.enabled=true"):
        fm.get_framework("sklearn")


def test_unknown_framework_names_the_known_ones():
    with pytest.raises(ConfigError, match="jax, pytorch, sklearn, tensorflow"):
        launcher.FrameworkManager().get_framework("mxnet")


def test_sklearn_adapter_on_arrays_with_the_legacy_names(tmp_path):
    X, y = load_iris(return_X_y=True)
    sk = launcher.FrameworkManager().get_framework("sklearn")
    assert isinstance(sk, launcher.ScikitLearnFramework)
    from launcher import DataSchema

    schema = DataSchema("classification", 4, classes=[0, 1, 2])
    model = sk.create_model({"type": "random_forest", "parameters": {"n_estimators": 30}}, schema)
    assert model.estimator.n_estimators == 30
    sk.train_model(model, X, y)
    scores = sk.evaluate_model(model, X, y)
    assert scores["accuracy"] > 0.9
    sk.save_model(model, tmp_path / "m")
    again = sk.load_model(tmp_path / "m")
    np.testing.assert_allclose(sk.predict(again, X.astype(np.float32)), sk.predict(model, X.astype(np.float32)))
