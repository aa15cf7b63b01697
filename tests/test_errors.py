"""Failure as users meet it, through the real commands: one `error:` line on stderr and nothing
else, a non-zero exit, no traceback, nothing half-written; multiruns that tell the truth;
interrupts that say how to resume; progress that reads the same on a terminal and in the log."""
from __future__ import annotations

import json
import os
import pty
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import env, run_cli

pytestmark = pytest.mark.slow

TORCH = ["framework=pytorch", "device=cpu", "trainer.num_threads=1"]


def _files(tmp_path: Path) -> None:
    pd.DataFrame({"x": range(40), "y": [i % 2 for i in range(40)]}).to_csv(tmp_path / "ok.csv", index=False)
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "blocker").write_text("a file where a folder should be")


ONE_LINE = [
    ("unknown option", ["model=forest"], "Could not find 'model/forest'; Available options in 'model': catboost, cnn,"),
    ("unknown key", ["nonsense=1"], "Could not override 'nonsense'. To append to your config use +nonsense=1"),
    ("csv without path", ["data=csv"], "data=csv needs data.path; add e.g. data.path=churn.csv"),
    ("csv without target", ["data=csv", "data.path=ok.csv"], "data=csv needs data.target"),
    ("path is a folder", ["data=csv", "data.path=folder.csv", "data.target=y"], "is a directory; set data.path"),
    ("run dir under a file", ["hydra.run.dir=blocker/run"], "cannot create the run directory"),
    ("run dir not creatable", ["hydra.run.dir=/proc/launcher-test/run"], "set hydra.run.dir to a writable"),
    ("epochs not a number, sklearn", ["trainer.max_epochs=abc"], "trainer.max_epochs='abc' is invalid"),
    ("epochs not a number, pytorch", [*TORCH, "model=mlp", "trainer.max_epochs=abc"],
     "trainer.max_epochs='abc' is invalid"),
    ("layer width not a number", [*TORCH, "model=mlp", "model.hidden_sizes=[abc]"],
     "model.hidden_sizes=['abc'] is invalid for mlp"),
    ("estimator argument", ["model.estimator.n_estimators=abc"], "'n_estimators' parameter of RandomForestClassifier"),
    ("unknown trainer key", ["+trainer.epochs=3"], "trainer.epochs is not a trainer setting"),
    ("unknown framework setting", ["+framework.threads=2"], "framework.threads is not a setting of framework=sklearn"),
    ("gpu for pytorch", ["framework=pytorch", "model=mlp", "device=gpu"], "asks for a GPU"),
]


@pytest.mark.parametrize("case,args,message", ONE_LINE, ids=[c[0] for c in ONE_LINE])
def test_bad_input_is_one_error_line_on_stderr(cli, tmp_path, case, args, message):
    if case == "gpu for pytorch":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    _files(tmp_path)
    res = cli(*args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.stderr
    assert "error" not in res.stdout.lower() and "Traceback" not in res.stdout + res.stderr
    assert not list(tmp_path.rglob("model/metadata.json"))


def test_the_error_is_in_the_runs_log_and_the_run_is_listed_as_failed(cli, tmp_path):
    res = cli("data=csv", "data.path=missing.csv", "data.target=y", "hydra.run.dir=outputs/day/bad")
    assert res.returncode == 2
    run = tmp_path / "outputs" / "day" / "bad"
    assert "error: CSV file not found" in (run / "train.log").read_text()
    failure = json.loads((run / "failed.json").read_text())
    assert failure["type"] == "DataError" and "data.path=missing.csv" in failure["overrides"]
    listed = json.loads(cli("json=true", module="launcher.runs").stdout)
    assert [(e["status"], e["error"].split(":")[0]) for e in listed] == [("failed", "CSV file not found")]


def test_hydra_verbose_shows_the_traceback_too(cli, tmp_path):
    res = cli("trainer.max_epochs=abc", "hydra.verbose=true")
    assert res.returncode != 0 and "error: trainer.max_epochs='abc'" in res.stderr
    assert "ConfigError" in res.stderr  # the exception, not only the line


def test_sklearn_on_a_gpu_request_says_so(cli, tmp_path):
    res = cli("device=gpu", "save_model=false")
    assert res.returncode == 0
    assert "scikit-learn runs on the CPU: device=gpu does not apply" in res.stdout + res.stderr


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """One trained and saved run, fitted once for the tampering cases."""
    where = tmp_path_factory.mktemp("saved")
    res = run_cli("model=logistic_regression", "hydra.run.dir=run", cwd=where)
    assert res.returncode == 0, res.stderr
    return where / "run"


def _replaced_with_its_checksum(path: Path) -> None:
    """Not a zip, under the model file's name, with metadata.json's checksum updated to match:
    the checksums pass, the format does not."""
    import hashlib

    path.write_bytes(b"model weights, honest")
    meta_path = path.parent / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["checksums"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("target,corrupt,message", [
    ("model.skops", lambda p: p.write_bytes(p.read_bytes()[:-10]), "does not match its checksum"),
    ("preprocessing.json", lambda p: p.write_text("{}"), "does not match its checksum"),
    ("metadata.json", lambda p: p.write_text("{not json"), "metadata.json is corrupted"),
    ("model.skops", _replaced_with_its_checksum, "cannot be read as a sklearn model (BadZipFile"),
])
def test_a_tampered_model_is_refused_with_one_line(cli, tmp_path, saved_run, target, corrupt, message):
    shutil.copytree(saved_run, tmp_path / "run")  # each case tampers with its own copy
    corrupt(tmp_path / "run" / "model" / target)
    pd.DataFrame({"sepal length (cm)": [5.0], "sepal width (cm)": [3.0], "petal length (cm)": [1.0],
                  "petal width (cm)": [0.2]}).to_csv(tmp_path / "in.csv", index=False)
    res = cli("run=run", "input=in.csv", "output=out.csv", module="launcher.predict")
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert not (tmp_path / "out.csv").exists()


def test_a_tampered_pytorch_model_and_checkpoint_are_refused(cli, tmp_path):
    pytest.importorskip("torch")
    assert cli(*TORCH, "model=mlp", "data=iris", "trainer.max_epochs=2", "hydra.run.dir=run").returncode == 0
    weights = tmp_path / "run" / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    pd.DataFrame({"sepal length (cm)": [5.0], "sepal width (cm)": [3.0], "petal length (cm)": [1.0],
                  "petal width (cm)": [0.2]}).to_csv(tmp_path / "in.csv", index=False)
    res = cli("run=run", "input=in.csv", "output=out.csv", module="launcher.predict")
    assert res.returncode == 2 and "model.safetensors" in res.stderr and "checksum" in res.stderr
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:-100])  # truncated, as by a full disk
    res = cli(*TORCH, "model=mlp", "data=iris", "trainer.max_epochs=3", "trainer.resume_from=run",
              "hydra.run.dir=again")
    assert res.returncode == 2 and "last.ckpt does not match its checksum" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "again" / "model").exists()


# -- multirun --------------------------------------------------------------------------------------
def test_a_grid_with_failed_jobs_sums_them_up_and_fails(cli, tmp_path):
    res = cli("-m", "model=logistic_regression,kmeans,knn", "data=diabetes", "task=regression",
              "save_model=false", "hydra.sweep.dir=grid")
    assert res.returncode == 1
    summary = res.stderr[res.stderr.index("error: 1 of 3 job(s) failed"):]
    line = summary.splitlines()[1]
    assert line.startswith("  #1 model=kmeans data=diabetes task=regression") and "kmeans cannot do regression" in line
    assert (tmp_path / "grid" / "0" / "metrics.json").is_file() and (tmp_path / "grid" / "2" / "metrics.json").is_file()
    listed = json.loads(cli("root=grid", "json=true", module="launcher.runs").stdout)
    assert listed[0]["trials"] == {"COMPLETE": 2, "FAIL": 1}

    res = cli("-m", "model=logistic_regression,kmeans", "data=diabetes", "task=regression", "save_model=false",
              "allow_failed_jobs=true", "hydra.sweep.dir=grid2")
    assert res.returncode == 0 and "warning: 1 of 2 job(s) failed" in res.stderr


# -- interrupts and resume ----------------------------------------------------------------------------
def test_ctrl_c_says_where_the_run_stopped_and_how_to_resume(tmp_path):
    pytest.importorskip("torch")
    args = [*TORCH, "model=mlp", "data=digits", "trainer.max_epochs=100000", "trainer.early_stopping.enabled=false",
            "hydra.run.dir=run"]
    proc = subprocess.Popen([sys.executable, "-m", "launcher", *args], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not ckpt.exists():  # wait on the file (polled, with a deadline), not on a fixed sleep
        assert proc.poll() is None, proc.communicate()
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no checkpoint within 240 s: {proc.communicate()}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    line = err.strip().splitlines()[-1]
    match = re.fullmatch(r"error: interrupted at epoch (\d+)/100000; its checkpoint is in .*/run/checkpoints\. "
                         r"Resume with: (python -m launcher .*)", line)
    assert match, err
    epoch, command = int(match.group(1)), match.group(2)
    import torch

    saved = torch.load(ckpt, weights_only=True)
    assert saved["recorder"]["epochs"][-1]["epoch"] == epoch  # the epoch it names is the one saved
    resume = shlex.split(command)[3:]  # python -m launcher ...
    assert "trainer.max_epochs=100000" in resume and f"trainer.resume_from={tmp_path / 'run'}" in resume
    resume = [a if not a.startswith("trainer.max_epochs=") else f"trainer.max_epochs={epoch + 2}" for a in resume]
    res = subprocess.run([sys.executable, "-m", "launcher", *resume, "hydra.run.dir=resumed"], cwd=tmp_path,
                         env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text())["epochs"] == epoch + 2


def test_runs_in_a_custom_run_dir_are_found_given_that_root(cli, tmp_path):
    assert cli("save_model=false", "hydra.run.dir=experiments/first").returncode == 0
    listed = json.loads(cli("root=experiments", "json=true", module="launcher.runs").stdout)
    assert [Path(e["path"]).name for e in listed] == ["first"]


# -- progress ---------------------------------------------------------------------------------------------
def _run_in_terminal(tmp_path: Path, args: list[str], columns: int) -> str:
    """Run the launcher with stdout and stderr on a pseudo-terminal of `columns` (0: no size)."""
    master, slave = pty.openpty()
    if columns:
        import fcntl

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {k: v for k, v in env().items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "launcher", *args], cwd=tmp_path, env=environment,
                            stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("columns", [0, 100])
def test_epochs_read_the_same_on_a_terminal_and_in_the_log(tmp_path, columns):
    pytest.importorskip("torch")
    args = [*TORCH, "model=mlp", "data=iris", "trainer.max_epochs=3", "trainer.early_stopping.enabled=false",
            "hydra.run.dir=run"]
    shown = _run_in_terminal(tmp_path, args, columns)
    log_lines = [line for line in (tmp_path / "run" / "train.log").read_text().splitlines() if " - epoch " in line]
    assert [line.split(" - ", 1)[1].split()[1] for line in log_lines] == ["1/3", "2/3", "3/3"]
    if columns:  # a bar counting epochs, and no epoch lines between its redraws
        assert re.search(r"3/3 \[", shown) and " - epoch 1/3" not in shown
    else:  # no size: plain lines
        assert "epoch 1/3" in shown and "epoch 3/3" in shown
