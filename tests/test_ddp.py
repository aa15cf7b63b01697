"""Data-parallel PyTorch (DDP on 2 CPU processes, gloo) through the real command, without SLURM:
the same result as one process with the same global batch, one writer, resume across process
counts, and DDP inside a multirun refused before it can start a sweep per process.

Tolerance: with dropout off, 2 processes x trainer.batch_size=32 take the same steps on the same
rows as 1 process x 64 (DDP averages the two halves' gradients); what differs is the order of
float sums (the all-reduce) and a last batch that does not split evenly. Every epoch's losses
agree within 0.1% (relative) and the accuracy within one validation row.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")

pytestmark = pytest.mark.slow

EPOCH = re.compile(r"epoch (\d+)/\d+  train_loss=([\d.]+)  val_loss=([\d.]+)  val_accuracy=([\d.]+)")
BASE = ["framework=pytorch", "model=mlp", "model.dropout=0", "data=digits", "device=cpu", "trainer.num_threads=1",
        "trainer.early_stopping.enabled=false", "plots=false"]
DDP = ["device.devices=2", "device.strategy=ddp"]


def epochs(text: str) -> dict[int, tuple[float, float, float]]:
    return {int(m[1]): (float(m[2]), float(m[3]), float(m[4])) for m in EPOCH.finditer(text)}


def assert_same_curve(one: dict, two: dict, val_rows: int) -> None:
    assert one.keys() == two.keys() and one
    for epoch in one:
        (t1, v1, a1), (t2, v2, a2) = one[epoch], two[epoch]
        assert t2 == pytest.approx(t1, rel=1e-3) and v2 == pytest.approx(v1, rel=1e-3), (epoch, one[epoch], two[epoch])
        assert abs(a2 - a1) <= 1 / val_rows + 1e-4, (epoch, a1, a2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process x batch 64 and two processes x batch 32, 4 epochs each, models saved."""
    from helpers import run_cli

    root = tmp_path_factory.mktemp("ddp")
    out = {}
    for name, extra in (("one", ["trainer.batch_size=64"]), ("two", [*DDP, "trainer.batch_size=32"])):
        res = run_cli(*BASE, *extra, "trainer.max_epochs=4", f"hydra.run.dir={name}", cwd=root)
        assert res.returncode == 0, res.stderr[-3000:]
        out[name] = res
    return root, out


def test_two_processes_train_like_one_with_the_same_global_batch(runs):
    root, res = runs
    one, two = (json.loads((root / n / "metrics.json").read_text()) for n in ("one", "two"))
    assert_same_curve(epochs((root / "one" / "train.log").read_text()), epochs((root / "two" / "train.log").read_text()),
                      one["rows"]["val"])
    assert two["test"]["accuracy"] == pytest.approx(one["test"]["accuracy"], abs=1 / one["rows"]["test"] + 1e-9)
    meta = json.loads((root / "two" / "model" / "metadata.json").read_text())
    assert meta["training"]["devices"] == 2 and meta["training"]["strategy"] == "ddp"


def test_only_the_first_process_writes(runs):
    root, res = runs
    files = {p.relative_to(root / "one").as_posix() for p in (root / "one").rglob("*") if p.is_file()}
    files_two = {p.relative_to(root / "two").as_posix() for p in (root / "two").rglob("*") if p.is_file()}
    # the second process keeps only its own log (Hydra's, named for it); every artifact is rank 0's
    assert files_two - files == {"train_ddp_process_1.log"}
    assert "epoch" not in (root / "two" / "train_ddp_process_1.log").read_text()
    printed = res["two"].stdout + res["two"].stderr
    assert len(epochs(printed)) == 4 and len(EPOCH.findall(printed)) == 4  # each epoch line once


def test_a_checkpoint_resumes_on_another_process_count_with_the_same_global_batch(runs):
    from helpers import run_cli

    root, _ = runs
    # two processes x 32 for 2 epochs, then one process x 64 to epoch 4: the curve of the
    # uninterrupted one-process run (the same global batch throughout)
    assert run_cli(*BASE, *DDP, "trainer.batch_size=32", "trainer.max_epochs=2", "save_model=false",
                   "hydra.run.dir=half", cwd=root).returncode == 0
    res = run_cli(*BASE, "trainer.batch_size=64", "trainer.max_epochs=4", "trainer.resume_from=half",
                  "hydra.run.dir=resumed", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    resumed = epochs((root / "resumed" / "train.log").read_text())
    full = epochs((root / "one" / "train.log").read_text())
    assert set(resumed) == {3, 4}
    assert_same_curve({e: full[e] for e in (3, 4)}, resumed,
                      json.loads((root / "one" / "metrics.json").read_text())["rows"]["val"])

    # the same per-process batch on one process would halve the global batch: refused, with the fix
    res = run_cli(*BASE, "trainer.batch_size=32", "trainer.max_epochs=4", "trainer.resume_from=half",
                  "hydra.run.dir=refused", cwd=root)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "trained on 2 process(es)" in res.stderr and "set trainer.batch_size=64" in res.stderr
    assert not (root / "refused" / "model").exists() and not (root / "refused" / "metrics.json").exists()


def test_two_machines_join_through_the_environment_rendezvous(runs):
    """device.num_nodes=2 as two commands on this machine, one process each, joined as two nodes
    through MASTER_ADDR/MASTER_PORT/NODE_RANK (as on machines without a scheduler)."""
    import socket
    import subprocess

    from helpers import PYTHON, env

    root, _ = runs
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    procs = [subprocess.Popen([PYTHON, "-m", "launcher", *BASE, "device.strategy=ddp", "++device.num_nodes=2",
                               "trainer.batch_size=32", "trainer.max_epochs=4", "save_model=false",
                               f"hydra.run.dir=node{rank}"],
                              cwd=root, env=env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), NODE_RANK=str(rank)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    val_rows = json.loads((root / "one" / "metrics.json").read_text())["rows"]["val"]
    assert_same_curve(epochs((root / "one" / "train.log").read_text()), epochs((root / "node0" / "train.log").read_text()),
                      val_rows)
    assert "GLOBAL_RANK: 1" in (root / "node1" / "train.log").read_text()
    assert sorted(p.name for p in (root / "node1").iterdir()) == [".hydra", "train.log"]  # rank 1 wrote no artifact


def test_ddp_inside_a_multirun_is_refused_instead_of_a_sweep_per_process(tmp_path):
    from helpers import run_cli

    res = run_cli("-m", *BASE, *DDP, "trainer.max_epochs=1", "trainer.lr=0.01,0.02", "hydra.sweep.dir=grid",
                  cwd=tmp_path, timeout=240)
    output = res.stdout + res.stderr
    assert res.returncode != 0
    assert output.count("Launching 2 jobs locally") <= 1  # no process started a sweep of its own
    assert "inside a multirun (-m) cannot start" in res.stderr and "hydra/launcher=slurm" in res.stderr
    assert not list(Path(tmp_path / "grid").rglob("metrics.json")) and not EPOCH.search(output)
