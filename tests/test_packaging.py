"""The wheel: built from the checkout, installed into a fresh environment, run from an unrelated
directory. (.ci/run does the same with a full `pip install`; this test reuses the development
environment's dependencies so it takes seconds.)"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(base.glob("launcher-*.whl"))
    venv = base / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies come from this environment's site-packages, appended after the new
    # environment's own (a .pth line adds a path; it does not run that folder's .pth files, so the
    # editable install of the checkout stays out).
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    return wheel, python


@pytest.mark.slow
def test_the_wheel_ships_the_config_tree(wheel_env):
    wheel, _ = wheel_env
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("launcher/conf/train.yaml", "launcher/conf/model/mlp.yaml", "launcher/conf/experiment/digits_cnn.yaml",
                 "hydra_plugins/launcher_sweeper/optuna_sweeper.py",
                 "hydra_plugins/launcher_searchpath/searchpath.py"):
        assert name in names, name


@pytest.mark.slow
def test_the_installed_package_runs_from_anywhere_and_reports_bad_input_in_one_line(wheel_env, tmp_path):
    _, python = wheel_env
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import launcher; print(launcher.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert str(ROOT) not in where  # the installed copy, not the checkout
    res = subprocess.run([str(python), "-m", "launcher", "save_model=false"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert list(tmp_path.glob("outputs/*/*/metrics.json"))
    res = subprocess.run([str(python), "-m", "launcher", "data=csv", "data.path=missing.csv", "data.target=y"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"error: CSV file not found: {tmp_path / 'missing.csv'}; set data.path to "
                                       "an existing .csv file"]


def test_every_benchmark_the_docs_and_tests_name_exists():
    """A test or a README line that says "measured in benchmarks/<script>" sends the reader there."""
    texts = [ROOT / "README.md", *sorted((ROOT / "tests").glob("*.py")), *sorted((ROOT / "launcher").rglob("*.py"))]
    named = {m for path in texts for m in re.findall(r"benchmarks/[\w.-]+\.(?:py|sh)", path.read_text())}
    assert named, "the pattern finds the benchmarks the README names"
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []


def test_the_floors_ci_installs_are_pyprojects_lower_bounds():
    """.ci/run tests the core at .ci/minimum-versions.txt; that file must pin exactly the floors
    pyproject.toml declares, or CI tests versions no user is promised."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    declared = {}
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        name, floor = re.fullmatch(r"([\w.-]+)>=([\w.]+)(?:,<[\w.]+)?", requirement).groups()
        declared[name.lower()] = floor
    pinned = dict(line.split("==") for line in (ROOT / ".ci" / "minimum-versions.txt").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert pinned == declared
