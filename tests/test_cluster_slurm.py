"""SLURM for real: the `slurm` preset against a running SLURM controller (started by
`eval "$(.ci/slurm.sh)"`, a single node of 2 CPUs in CI), and cluster hygiene on a machine where
SLURM's client is installed.

The cluster tests skip, loudly, when no SLURM cluster answers here; when CI said it started one
(LAUNCHER_TEST_SLURM=1) a cluster that does not answer is a failure. Jobs are tiny and ask only
for what a 2-CPU node has (hydra.launcher.cpus_per_task=1 hydra.launcher.mem_gb=1).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import warnings

import pytest

from helpers import PYTHON, env, launcher_command, run, run_cli

RESOURCES = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
             "hydra.launcher.timeout_min=5"]
EPOCH = re.compile(r"epoch (\d+)/\d+  train_loss=([\d.]+)  val_loss=([\d.]+)  val_accuracy=([\d.]+)")


@pytest.fixture(scope="session")
def slurm_node() -> str:
    """The idle node of the SLURM cluster that answers here (once per test session)."""
    problem = None
    if shutil.which("sinfo") is None:
        problem = "`sinfo` is not on PATH"
    else:
        res = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, timeout=30)
        idle = [line.split()[0] for line in res.stdout.splitlines() if line.split()[1:] == ["idle"]]
        if res.returncode != 0:
            problem = f"`sinfo` failed ({' '.join(res.stderr.split())[:200]})"
        elif not idle:
            problem = f"no SLURM node is idle ({res.stdout.strip()[:200] or 'none listed'})"
        else:
            return idle[0]
    if os.environ.get("LAUNCHER_TEST_SLURM") == "1":
        pytest.fail(f"LAUNCHER_TEST_SLURM=1 but the cluster does not answer: {problem}")
    reason = (f"{problem}: the SLURM tests did NOT run. Start a throwaway cluster with "
              "`eval \"$(.ci/slurm.sh)\"` (root; installs SLURM with apt-get) to run them.")
    warnings.warn(reason)
    pytest.skip(reason)


@pytest.mark.slow
def test_a_grid_runs_as_slurm_jobs_with_results_on_the_driver(tmp_path, slurm_node):
    sweep = tmp_path / "grid"
    run(launcher_command(sweep, *RESOURCES, "model=random_forest,logistic_regression"), cwd=tmp_path, timeout=300)
    jobs = {}
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        meta = json.loads((sweep / job / "model" / "metadata.json").read_text())
        assert metrics["model"] == ("random_forest", "logistic_regression")[int(job)]
        assert meta["slurm"] == metrics["slurm"] and meta["slurm"]["node"] == slurm_node
        assert meta["slurm"]["tasks"] == "1" and meta["slurm"]["partition"]
        jobs[job] = meta["slurm"]
    # two jobs of one array, each its own SLURM job
    assert jobs["0"]["array_job_id"] == jobs["1"]["array_job_id"] and jobs["0"]["job_id"] != jobs["1"]["job_id"]
    assert {jobs[j]["array_task_id"] for j in jobs} == {"0", "1"}


@pytest.mark.slow
def test_data_parallel_training_as_one_slurm_job_with_a_task_per_device(tmp_path, slurm_node):
    """2 tasks of one job train the MLP like one process does with the same global batch (every
    epoch's losses within 0.1%, accuracy within one row: tests/test_ddp.py says why); rank 0
    alone writes the artifacts."""
    common = ["framework=pytorch", "model=mlp", "model.dropout=0", "data=digits", "device=cpu",
              "trainer.num_threads=1", "trainer.early_stopping.enabled=false", "trainer.max_epochs=3", "plots=false"]
    single = run_cli(*common, "trainer.batch_size=64", "hydra.run.dir=single", cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    sweep = tmp_path / "ddp"
    run(launcher_command(sweep, *RESOURCES, *common, "device.devices=2", "device.strategy=ddp",
                         "trainer.batch_size=32"), cwd=tmp_path, timeout=300)
    record = json.loads((sweep / "0" / "metrics.json").read_text())
    assert record["slurm"]["tasks"] == "2" and record["slurm"]["node"] == slurm_node
    meta = json.loads((sweep / "0" / "model" / "metadata.json").read_text())
    assert meta["training"]["devices"] == 2 and meta["slurm"]["job_id"] == record["slurm"]["job_id"]

    one = {int(m[1]): m.groups()[1:] for m in EPOCH.finditer((tmp_path / "single" / "train.log").read_text())}
    log = (sweep / "0" / "train.log").read_text()  # both tasks log here; epoch lines are rank 0's
    two = {int(m[1]): m.groups()[1:] for m in EPOCH.finditer(log)}
    assert len(EPOCH.findall(log)) == 3 and one.keys() == two.keys() == {1, 2, 3}
    val_rows = record["rows"]["val"]
    for epoch in one:
        t1, v1, a1 = map(float, one[epoch])
        t2, v2, a2 = map(float, two[epoch])
        assert t2 == pytest.approx(t1, rel=1e-3) and v2 == pytest.approx(v1, rel=1e-3), (epoch, one[epoch], two[epoch])
        assert abs(a2 - a1) <= 1 / val_rows + 1e-4
    assert "GLOBAL_RANK: 1" in log  # the second task took part
    # rank 0 alone wrote: one model, one checkpoint pair, no second process's files
    assert sorted(p.name for p in (sweep / "0" / "checkpoints").iterdir() if p.suffix == ".ckpt") == \
        ["best.ckpt", "last.ckpt"]
    assert not [p for p in (sweep / "0").rglob("*") if ".partial-" in p.name]


# -- hygiene: SLURM's client on PATH outside a job --------------------------------------------------
@pytest.fixture
def login_node_env(tmp_path) -> dict[str, str]:
    """The environment of a login node: an `srun` on PATH (the real one where SLURM is
    installed, else a stand-in: Lightning only looks for the file), no job's variables."""
    folder = tmp_path / "slurm-client"
    folder.mkdir()
    (folder / "srun").write_text("#!/bin/sh\nexit 1\n")
    (folder / "srun").chmod(0o755)
    out = env(PATH=f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return {k: v for k, v in out.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}


@pytest.mark.slow
def test_with_srun_on_path_a_pytorch_run_is_quiet_and_a_bad_input_is_one_line(tmp_path, login_node_env):
    pytest.importorskip("torch")
    args = [PYTHON, "-m", "launcher", "framework=pytorch", "model=mlp", "data=iris", "device=cpu",
            "trainer.max_epochs=1", "trainer.num_threads=1"]
    res = subprocess.run([*args, "hydra.run.dir=ok"], cwd=tmp_path, env=login_node_env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and res.stderr == "" and "`srun`" not in res.stdout, res.stderr
    res = subprocess.run([*args, "trainer.resume_from=missing", "hydra.run.dir=bad"], cwd=tmp_path,
                         env=login_node_env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stderr.startswith("error: trainer.resume_from")
