"""optuna-dashboard on a sweep's storage, as the README shows it: started on a loopback port,
the study read back over its HTTP JSON API."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import PYTHON, launcher_command, results, run

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(importlib.util.find_spec("optuna_dashboard") is None,
                    reason="optuna-dashboard is not installed (pip install optuna-dashboard): NOT tested")
def test_optuna_dashboard_serves_a_sweeps_study(tmp_path):
    run(launcher_command(tmp_path / "sweep", "hparams_search=logistic_regression_optuna", "hydra.sweeper.n_trials=3",
                         "hydra.sweeper.n_jobs=1", "hydra.sweeper.storage=sqlite:///study.db",
                         "hydra.sweeper.study_name=tiny", "hydra.sweeper.plots=false", "save_model=false"),
        cwd=tmp_path, timeout=300)
    best = results(tmp_path / "sweep")
    url = f"http://127.0.0.1:{free_port()}"
    log = open(tmp_path / "dashboard.log", "wb")
    dashboard = subprocess.Popen([str(Path(PYTHON).parent / "optuna-dashboard"), "sqlite:///study.db", "--host",
                                  "127.0.0.1", "--port", url.rsplit(":", 1)[1]], cwd=tmp_path, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/api/studies", timeout=2) as answer:
                    studies = json.load(answer)["study_summaries"]
                break
            except OSError:
                assert dashboard.poll() is None, (tmp_path / "dashboard.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "optuna-dashboard: no answer after 120 s"
                time.sleep(0.3)
        (study,) = [s for s in studies if s["study_name"] == "tiny"]
        with urllib.request.urlopen(f"{url}/api/studies/{study['study_id']}", timeout=10) as answer:
            detail = json.load(answer)
    finally:
        os.killpg(dashboard.pid, signal.SIGTERM)
        dashboard.wait(timeout=30)
        log.close()
    assert detail["directions"] == ["maximize"]
    trials = detail["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2] and {t["state"] for t in trials} == {"Complete"}
    assert max(t["values"][0] for t in trials) == pytest.approx(best["best_value"])
    assert {p["name"] for p in trials[0]["params"]} >= {"model.estimator.C"}
