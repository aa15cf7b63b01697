"""python -m launcher.runs on real runs and a real sweep of the launcher."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import env, launcher_command, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Two single runs and one Optuna sweep of the launcher, in outputs/ and outputs/multirun/."""
    root = tmp_path_factory.mktemp("project")
    for model, name in (("knn", "a"), ("logistic_regression", "b")):
        run([sys.executable, "-m", "launcher", "data=iris", f"model={model}", "save_model=false",
             f"hydra.run.dir=outputs/day/{name}"], root)
    run(launcher_command(root / "outputs" / "multirun" / "day" / "search", "hparams_search=logistic_regression_optuna",
                         "data=iris", "save_model=false", "hydra.sweeper.n_trials=2",
                         "hydra.sweeper.plots=false"), root)
    return root


def runs_cli(root, *args):
    proc = subprocess.run([sys.executable, "-m", "launcher.runs", *args], cwd=root, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_lists_runs_and_sweeps_with_scores(project):
    listed = json.loads(runs_cli(project, "json=true"))
    by_path = {e["path"].split("/")[-1]: e for e in listed}
    assert set(by_path) == {"a", "b", "search"}
    assert by_path["a"]["kind"] == "run" and by_path["a"]["model"] == "knn"
    sweep = by_path["search"]
    assert sweep["kind"] == "sweep" and sweep["trials"] == {"COMPLETE": 2}
    assert sweep["objective"] == "val/accuracy" and 0 < sweep["value"] <= 1
    newest = [e["path"].split("/")[-1] for e in listed]
    assert newest[0] == "search"  # newest first by default


def test_best_first_and_root_argument(project, tmp_path):
    listed = json.loads(runs_cli(tmp_path, f"root={project}", "sort=best", "json=true"))
    values = [e["value"] for e in listed]
    assert values == sorted(values, reverse=True)
    table = runs_cli(tmp_path, f"root={project}", "sort=best", "limit=2")
    assert len(table.strip().splitlines()) == 2 + 2  # header, rule, two entries
    assert "val/accuracy" in table


def test_compare_shows_metrics_and_differing_config(project):
    out = runs_cli(project, "compare", "outputs/day/a", "outputs/day/b", "outputs/multirun/day/search")
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "val/accuracy" in lines and "test/accuracy" in lines
    assert "knn" in lines["model"] and "logistic_regression" in lines["model"]
    assert "model.name" in lines
