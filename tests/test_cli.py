"""The real commands, run as a user runs them: python -m launcher / .predict / .frameworks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import HEAVY, messy_frame


def only_run(root: Path) -> Path:
    runs = [p.parent for p in root.glob("outputs/*/*/metrics.json") if "multirun" not in p.parts]
    assert len(runs) == 1, runs
    return runs[0]


def test_default_job_writes_a_complete_run_directory(cli, tmp_path):
    res = cli()
    assert res.returncode == 0, res.stderr
    run = only_run(tmp_path)
    assert (run / ".hydra" / "config.yaml").is_file()
    assert (run / "train.log").read_text().count("test accuracy") == 1
    record = json.loads((run / "metrics.json").read_text())
    assert record["framework"] == "sklearn" and record["data"] == "iris"
    meta = json.loads((run / "model" / "metadata.json").read_text())
    assert set(meta["checksums"]) == {"model.skops", "schema.json", "preprocessing.json"}
    assert "git_commit" in meta and meta["versions"]["scikit-learn"]
    assert not list(run.glob(".*partial*")) and not list((run / "model").glob(".*tmp"))


@pytest.mark.slow
def test_multirun_grid(cli, tmp_path):
    res = cli("-m", "model=random_forest,logistic_regression", "data=iris")
    assert res.returncode == 0, res.stderr
    records = [json.loads(p.read_text()) for p in tmp_path.glob("outputs/multirun/*/*/*/metrics.json")]
    assert sorted(r["model"] for r in records) == ["logistic_regression", "random_forest"]


@pytest.mark.slow
def test_predict_on_a_raw_csv(cli, tmp_path, churn_csv):
    res = cli("data=csv", f"data.path={churn_csv.name}", "data.target=churned", "model=hist_gradient_boosting",
              "model.estimator.max_iter=20")
    assert res.returncode == 0, res.stderr
    run = only_run(tmp_path)
    new = messy_frame(n=15, seed=3).drop(columns=["churned"])
    new.to_csv(tmp_path / "new.csv", index=False)
    res = cli(f"run={run}", "input=new.csv", "output=pred.csv", "proba=true", module="launcher.predict")
    assert res.returncode == 0, res.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 15
    assert set(pred["churned"]) <= {"yes", "no", "unsure"}
    assert {"proba_no", "proba_yes", "proba_unsure"} <= set(pred.columns)
    assert (pred.filter(like="proba_").sum(axis=1).round(6) == 1).all()

    new.drop(columns=["age"]).assign(extra=1).to_csv(tmp_path / "bad.csv", index=False)
    res = cli(f"run={run}", "input=bad.csv", "output=bad_pred.csv", module="launcher.predict")
    assert res.returncode != 0
    assert "missing columns ['age']" in res.stderr and "unexpected columns ['extra']" in res.stderr
    assert not (tmp_path / "bad_pred.csv").exists()


@pytest.mark.slow
def test_regression_predictions_are_in_target_units(cli, tmp_path):
    assert cli("data=diabetes", "model=logistic_regression").returncode == 0
    run = only_run(tmp_path)
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    frame.drop(columns=["target"]).head(20).to_csv(tmp_path / "in.csv", index=False)
    res = cli(f"run={run}", "input=in.csv", "output=out.csv", module="launcher.predict")
    assert res.returncode == 0, res.stderr
    pred = pd.read_csv(tmp_path / "out.csv")["target"]
    assert 25 < pred.mean() < 350  # diabetes progression units, not standardised ones


def _write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return name


BAD = [
    ("unknown option", ["model=forest"], "Could not find 'model/forest'", "random_forest"),
    ("incompatible pair", ["framework=sklearn", "model=transformer"], "cannot build model=transformer", "pytorch"),
    ("missing csv", ["data=csv", "data.path=nope.csv", "data.target=y"], "CSV file not found", "data.path"),
    ("empty csv", ["data=csv", "data.path=empty.csv", "data.target=y"], "is empty", "header row"),
    ("missing target", ["data=csv", "data.path=ok.csv", "data.target=label"], "'label' is not in", "'y'"),
    ("one class", ["data=csv", "data.path=one.csv", "data.target=y"], "only one class", "at least two"),
    ("text regression target", ["data=csv", "data.path=text.csv", "data.target=y", "task=regression"],
     "non-numeric", "task=classification"),
    ("kmeans for regression", ["model=kmeans", "data=diabetes", "task=regression"], "cannot do regression",
     "random_forest"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,overrides,what,fix", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_with_one_clear_message(cli, tmp_path, case, overrides, what, fix):
    _write(tmp_path, "empty.csv", "")
    _write(tmp_path, "ok.csv", "x,y\n" + "".join(f"{i % 7},{i % 2}\n" for i in range(30)))
    _write(tmp_path, "one.csv", "x,y\n" + "".join(f"{i % 7},a\n" for i in range(30)))
    _write(tmp_path, "text.csv", "x,y\n" + "".join(f"{i % 7},v{i % 9}\n" for i in range(30)))
    res = cli(*overrides)
    assert res.returncode != 0
    output = res.stdout + res.stderr
    assert what in output and fix in output
    assert "Traceback" not in output
    assert not list(tmp_path.glob("outputs/*/*/model"))


@pytest.mark.slow
def test_frameworks_command_reports_every_framework(cli):
    res = cli("json=true", module="launcher.frameworks")
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    assert set(status) == {"pytorch", "tensorflow", "sklearn", "jax"}
    # Each framework's library, looked up here without the launcher: the report must agree.
    import importlib.metadata
    import importlib.util

    dists = importlib.metadata.packages_distributions()
    for name, module in {"pytorch": "torch", "tensorflow": "tensorflow", "jax": "jax", "sklearn": "sklearn"}.items():
        present = importlib.util.find_spec(module) is not None
        assert status[name]["installed"] is present, (name, status[name])
        if present:
            assert status[name]["version"] in {importlib.metadata.version(d) for d in dists[module]}, status[name]
        assert status[name]["enabled"] is True  # every framework config ships enabled: true
    res = cli("check=true", module="launcher.frameworks")
    assert res.returncode == 0 and "sklearn" in res.stdout
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()[1:]}
    assert rows["sklearn"][5] == "ok"
    assert "epoch" not in res.stdout + res.stderr  # a health check's fit is quiet
    dashed = cli("--json", module="launcher.frameworks")  # the --option form people also type
    assert dashed.returncode == 0 and json.loads(dashed.stdout) == status
    bad = cli("--jsn", module="launcher.frameworks")
    assert bad.returncode == 2 and bad.stderr.startswith("error: unexpected argument '--jsn'")
    assert "check, json, device" in bad.stderr


def test_import_and_sklearn_run_stay_light(tmp_path):
    code = (
        "import sys, runpy\n"
        "import launcher\n"
        f"heavy = {HEAVY!r}\n"
        "assert not [m for m in heavy if m in sys.modules], 'import launcher'\n"
        "sys.argv = ['launcher', 'model=logistic_regression', 'data=iris']\n"
        "try:\n    runpy.run_module('launcher', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("module", ["launcher.predict", "launcher.runs", "launcher.frameworks"])
def test_every_tool_takes_key_value_arguments_and_has_help(cli, module):
    res = cli("--help", module=module)
    assert res.returncode == 0 and "options (key=value):" in res.stdout
    res = cli("nonsense=1", module=module)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("error: unexpected argument 'nonsense=1'")


@pytest.mark.slow
def test_help_is_this_tools_own(cli):
    res = cli("--help")
    assert res.returncode == 0
    out = res.stdout
    assert out.startswith("launcher: train, evaluate and save a model")
    assert "Powered by Hydra" not in out
    for group in ("framework:", "model:", "data:", "device:", "experiment:", "hparams_search:"):
        assert group in out
    assert "hist_gradient_boosting" in out and "digits_cnn" in out
    assert out.count("python -m launcher") >= 5  # example commands


@pytest.mark.slow
def test_the_launcher_command_and_its_tab_completion(tmp_path):
    """The console script is the same app, and Hydra's completion works for it."""
    import os
    import shutil

    exe = shutil.which("launcher", path=os.path.dirname(sys.executable))
    assert exe, "the launcher console script is installed beside the interpreter"
    env = {**os.environ, "COMP_LINE": "launcher mod", "COMP_POINT": "12"}
    res = subprocess.run([exe, "-sc", "query=bash"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert "model=" in res.stdout.split()
    env["COMP_LINE"], env["COMP_POINT"] = "launcher model=hist", "19"
    res = subprocess.run([exe, "-sc", "query=bash"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert "model=hist_gradient_boosting" in res.stdout.split()
    install = subprocess.run([exe, "-sc", "install=bash"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "complete" in install.stdout and "launcher" in install.stdout
