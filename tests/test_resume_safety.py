"""Resuming and saving safely: a checkpoint is resumed only by the framework that wrote it,
scikit-learn refuses trainer.resume_from, and what a process killed mid-write leaves behind is
removed by the next write (never while the writer lives)."""
from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from launcher.core.errors import ConfigError
from launcher.io import atomic_dir, write_json, write_verified
from launcher.pipeline.train import train
from helpers import CPU, env, fit, image_splits_3x, settings

SPEC = {"type": "mlp", "hidden_sizes": [8]}


# -- a checkpoint of another framework ---------------------------------------------------------
@pytest.fixture(scope="module")
def splits():
    return image_splits_3x()


def _pytorch_run(workdir: Path, splits) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("lightning_fabric")
    from launcher.frameworks.torch import TorchAdapter

    fit(TorchAdapter(device=CPU, num_threads=1), splits, SPEC, workdir, max_epochs=1)
    return workdir / "checkpoints" / "last.ckpt"


def _jax_run(workdir: Path, splits) -> Path:
    pytest.importorskip("jax")
    pytest.importorskip("flax")
    from launcher.frameworks.flax import FlaxAdapter

    fit(FlaxAdapter(device=CPU), splits, SPEC, workdir, max_epochs=1)
    return workdir / "checkpoints" / "last.msgpack"


def _tensorflow_run(workdir: Path, splits) -> Path:
    """The Keras adapter's checkpoint writer is NumPy only: a real last.npz without TensorFlow."""
    from launcher.frameworks.keras import checkpoints

    (workdir / "checkpoints").mkdir(parents=True)
    path = workdir / "checkpoints" / checkpoints.LAST
    checkpoints.save(path, [np.zeros((16, 8), np.float32)], [np.zeros(1, np.float32)],
                     {"launcher": {"format": checkpoints.FORMAT}, "recorder": {}, "schedule": {}})
    return path


WRITERS = {"pytorch": _pytorch_run, "jax": _jax_run, "tensorflow": _tensorflow_run}


def _reader(name: str):
    if name == "pytorch":
        pytest.importorskip("torch")
        from launcher.frameworks.torch import TorchAdapter

        return TorchAdapter(device=CPU, num_threads=1)
    pytest.importorskip("jax")
    from launcher.frameworks.flax import FlaxAdapter

    return FlaxAdapter(device=CPU)


@pytest.mark.parametrize("writer,reader", [("jax", "pytorch"), ("tensorflow", "pytorch"), ("pytorch", "jax"),
                                           ("tensorflow", "jax")])
def test_a_checkpoint_of_another_framework_is_refused_naming_both(tmp_path, splits, writer, reader):
    checkpoint = WRITERS[writer](tmp_path / "run", splits)
    adapter = _reader(reader)
    expected = (f"was written by {writer}; framework={reader} cannot resume it: use framework={writer}")
    # the run directory, as the interrupted run's message gives it, is checked before training...
    with pytest.raises(ConfigError, match=expected) as err:
        adapter.check(SPEC, splits.schema, settings(resume_from=str(tmp_path / "run")))
    assert "weights_only" not in str(err.value)
    # ...and the file itself before any loader reads it
    with pytest.raises(ConfigError, match=expected) as err:
        fit(adapter, splits, SPEC, tmp_path / "next", resume_from=str(checkpoint))
    assert "weights_only" not in str(err.value) and checkpoint.name in str(err.value)
    assert not (tmp_path / "next" / "checkpoints").exists() or not any((tmp_path / "next" / "checkpoints").iterdir())


def test_its_own_framework_still_resumes_the_checkpoint(tmp_path, splits):
    """The refusal must not catch the framework that wrote the checkpoint."""
    _pytorch_run(tmp_path / "run", splits)
    _, history = fit(_reader("pytorch"), splits, SPEC, tmp_path / "next", max_epochs=2,
                     resume_from=str(tmp_path / "run"))
    assert [e["epoch"] for e in history.epochs] == [1, 2]


@pytest.mark.slow
def test_a_jax_checkpoint_given_to_pytorch_is_one_error_line(cli, tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    common = ("model=mlp", "data=iris", "device=cpu", "trainer.max_epochs=1")
    first = cli("framework=jax", *common, "hydra.run.dir=first")
    assert first.returncode == 0, first.stderr
    res = cli("framework=pytorch", *common, "trainer.resume_from=first/checkpoints/last.msgpack",
              "hydra.run.dir=second")
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")
    assert "was written by jax; framework=pytorch cannot resume it: use framework=jax" in res.stderr
    assert "weights_only" not in res.stderr and "Traceback" not in res.stderr


def test_scikit_learn_refuses_resume_from(make_cfg, tmp_path):
    (tmp_path / "earlier").mkdir()
    with pytest.raises(ConfigError, match="framework=sklearn fits model=random_forest in one go, so there is "
                                          "nothing to resume: drop trainer.resume_from"):
        train(make_cfg("framework=sklearn", "model=random_forest", f"trainer.resume_from={tmp_path / 'earlier'}"))
    assert not (tmp_path / "run" / "model").exists()


# -- what a killed writer leaves ---------------------------------------------------------------
WRITER = """
import os, signal, sys
from pathlib import Path
from launcher.io import atomic_dir, write_verified

kind, target, then = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

def stop(tmp):
    print(tmp, flush=True)
    if then == "die":
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a scheduler's kill -9 does
    sys.stdin.readline()  # alive until the test closes stdin

if kind == "model":
    with atomic_dir(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"w" * 4096)
        stop(tmp)
else:  # a checkpoint, written as the neural adapters write theirs
    write_verified(target, lambda tmp: (tmp.write_bytes(b"c" * 4096), stop(tmp)))
"""


def _start_writer(kind: str, target: Path, then: str) -> tuple[subprocess.Popen, Path]:
    """A process that stops in the middle of writing `target`: (the process, its temporary path)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(target), then], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    assert ready, "the writer did not start within 120 s"
    line = proc.stdout.readline().strip()
    assert line, proc.stderr.read()
    return proc, Path(line)


def _killed_write(kind: str, target: Path) -> Path:
    proc, partial = _start_writer(kind, target, "die")
    assert proc.wait(timeout=120) == -signal.SIGKILL
    assert partial.exists() and not target.exists()  # what the kill left
    return partial


@pytest.mark.parametrize("kind,name", [("model", "model"), ("checkpoint", "checkpoints/last.ckpt")])
def test_the_next_write_beside_a_killed_write_removes_its_leftover(tmp_path, kind, name):
    target = tmp_path / name
    partial = _killed_write(kind, target)
    assert ".partial-" in partial.name
    write_json(target.parent / "metrics.json", {"ok": True})
    assert not partial.exists()
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_a_write_in_progress_is_left_alone_until_its_process_is_gone(tmp_path):
    proc, partial = _start_writer("model", tmp_path / "model", "wait")
    try:
        with atomic_dir(tmp_path / "other") as tmp:
            (tmp / "f").write_text("x")
        write_verified(tmp_path / "last.ckpt", lambda tmp: tmp.write_bytes(b"x"))
        assert partial.exists() and (partial / "weights.bin").stat().st_size == 4096
    finally:
        proc.kill()
        proc.wait(timeout=120)
    write_json(tmp_path / "metrics.json", {})
    assert not partial.exists() and (tmp_path / "other" / "f").read_text() == "x"


def test_a_run_removes_what_a_run_killed_while_saving_left_beside_it(make_cfg, tmp_path, caplog):
    killed = tmp_path / "killed"
    (killed / ".hydra").mkdir(parents=True)  # a run directory, as Hydra starts one
    model = _killed_write("model", killed / "model")
    checkpoint = _killed_write("checkpoint", killed / "checkpoints" / "last.ckpt")
    dead_pid = model.name.split(".")[-2]  # the killed writer's
    unrelated = tmp_path / "notes" / f".draft.partial-{socket.gethostname()}.{dead_pid}.x"  # not a run directory
    unrelated.parent.mkdir()
    unrelated.write_text("keep")
    with caplog.at_level("INFO", logger="launcher"):
        train(make_cfg("data=iris", "model=logistic_regression", "save_model=false"))
    assert not model.exists() and not checkpoint.exists() and unrelated.exists()
    assert any("removed 2 unfinished file(s) left by runs killed while saving" in r.getMessage()
               for r in caplog.records)
