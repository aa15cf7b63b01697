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


# -- clean ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """Two different tables that share a file name (a/train.csv is easy, b/train.csv is noise),
    each searched over three models as a Hydra multirun, every run with its model saved."""
    import numpy as np
    import pandas as pd

    root = tmp_path_factory.mktemp("clean")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        x = rng.normal(size=(200, 3))
        y = (x[:, 0] + x[:, 1] > 0).astype(int) if name == "a" else rng.integers(0, 2, 200)
        (root / name).mkdir()
        pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": y}).to_csv(root / name / "train.csv", index=False)
        run(launcher_command(root / "outputs" / "multirun" / name, "data=csv", f"data.path={name}/train.csv",
                             "data.target=y", "model=knn,logistic_regression,random_forest"), root)
    return root


def scores(root):
    """{dataset folder name: {run dir: val accuracy}} from the runs' own metrics.json."""
    out = {}
    for metrics in sorted(root.glob("outputs/multirun/*/*/metrics.json")):
        out.setdefault(metrics.parts[-3], {})[metrics.parent] = json.loads(metrics.read_text())["objective"]["value"]
    return out


def test_clean_lists_first_and_deletes_only_when_told(two_datasets):
    before = sorted(two_datasets.glob("outputs/multirun/*/*/model"))
    assert len(before) == 6
    proc = subprocess.run([sys.executable, "-m", "launcher.runs", "clean", "--keep-best", "1"], cwd=two_datasets,
                          env=env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert "4 model folder(s) to delete" in proc.stdout and "add yes=true" in proc.stdout
    assert sorted(two_datasets.glob("outputs/multirun/*/*/model")) == before  # no terminal, no yes=true
    assert not list(two_datasets.glob("outputs/multirun/*/*/cleaned.json"))


def test_clean_on_a_terminal_asks_and_deletes_nothing_without_a_yes(two_datasets):
    import os
    import pty

    before = sorted(two_datasets.glob("outputs/multirun/*/*/model"))
    terminal, stdin = pty.openpty()
    try:
        os.write(terminal, b"n\n")  # the answer, waiting in the terminal's input
        proc = subprocess.run([sys.executable, "-m", "launcher.runs", "clean", "keep_best=1"], cwd=two_datasets,
                              env=env(), capture_output=True, text=True, timeout=60, stdin=stdin)
    finally:
        os.close(terminal)
        os.close(stdin)
    assert proc.returncode == 0, proc.stderr
    assert "delete these 4 model folder(s)? [y/N]" in proc.stdout and proc.stdout.rstrip().endswith("nothing deleted")
    assert sorted(two_datasets.glob("outputs/multirun/*/*/model")) == before


def test_clean_keeps_the_best_model_of_each_dataset(two_datasets):
    by_dataset = scores(two_datasets)
    # The noisy table's best run scores below the easy table's worst: ranked together, as clean
    # did before, the noisy table would lose every model.
    assert max(by_dataset["b"].values()) < min(by_dataset["a"].values())
    out = runs_cli(two_datasets, "clean", "keep_best=1", "yes=true")
    assert "deleted 4 model folder(s)" in out
    for name, runs in by_dataset.items():
        kept = [d for d in runs if (d / "model").is_dir()]
        assert len(kept) == 1, (name, out)
        assert runs[kept[0]] == max(runs.values())
        for d in set(runs) - set(kept):
            note = json.loads((d / "cleaned.json").read_text())
            assert note["command"] == "python -m launcher.runs clean keep_best=1 yes=true"
            assert "train.csv (target y)" in note["reason"]
    again = runs_cli(two_datasets, "clean", "keep_best=1", "yes=true")  # the last model of each stays
    assert again.startswith("0 model folder(s) to delete") and "2 keep their model files" in again


def test_clean_refuses_keep_best_0(two_datasets):
    proc = subprocess.run([sys.executable, "-m", "launcher.runs", "clean", "keep_best=0", "yes=true"],
                          cwd=two_datasets, env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: keep_best=0 would delete the last model")
    assert len(proc.stderr.strip().splitlines()) == 1
