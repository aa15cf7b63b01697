"""The `logger` group without a server: csv, tensorboard, wandb (offline), the light import, the
refusals. MLflow against a real server: test_tracking_mlflow.py."""
from __future__ import annotations

import csv
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import run_cli
from launcher.core.errors import ConfigError
from launcher.pipeline.train import train

TRACKERS = ("mlflow", "tensorboard", "wandb")
PYTORCH_MLP = ("framework=pytorch", "model=mlp", "data=iris", "trainer.max_epochs=3", "device=cpu")


def run_dir(tmp_path: Path, run: str = "run") -> Path:
    return tmp_path / run


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_import_and_a_run_without_a_logger_import_no_tracker(tmp_path):
    # csv needs no tracker package; tensorboard's writer needs neither TensorFlow nor torch.
    code = (
        "import sys, runpy\n"
        "import launcher\n"
        f"heavy = {TRACKERS + ('tensorflow', 'torch')!r}\n"
        "assert not [m for m in heavy if m in sys.modules], 'import launcher'\n"
        "for i, extra in enumerate([[], ['logger=csv'], ['logger=tensorboard']]):\n"
        "    sys.argv = ['launcher', 'model=logistic_regression', 'data=iris', f'hydra.run.dir=r{i}', *extra]\n"
        "    try:\n        runpy.run_module('launcher', run_name='__main__')\n    except SystemExit:\n        pass\n"
        "    print('loaded:', sorted(m for m in heavy if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    loaded = [line for line in res.stdout.splitlines() if line.startswith("loaded:")]
    assert loaded == ["loaded: []", "loaded: []", "loaded: ['tensorboard']"]
    assert (tmp_path / "r2" / "tensorboard").is_dir() and not (tmp_path / "r0" / "csv").exists()


def test_csv_has_every_epoch_and_the_final_metrics(make_cfg, tmp_path):
    train(make_cfg(*PYTORCH_MLP, "logger=csv"))
    out = run_dir(tmp_path)
    epochs = read_csv(out / "csv" / "epochs.csv")
    assert [int(r["epoch"]) for r in epochs] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "seconds"} <= set(epochs[0])
    assert all(float(r["seconds"]) > 0 and float(r["lr"]) == 1e-3 for r in epochs)
    final = {r["name"]: float(r["value"]) for r in read_csv(out / "csv" / "final.csv")}
    record = json.loads((out / "metrics.json").read_text())
    assert final["val/accuracy"] == record["val"]["accuracy"]
    assert final["test/log_loss"] == record["test"]["log_loss"]
    # the last epoch's validation score is the one the epoch line reported
    assert float(epochs[-1]["val_accuracy"]) == pytest.approx(record["val"]["accuracy"], abs=1e-6) \
        or record["best_epoch"] != 3


def test_sklearn_cross_validation_is_recorded_without_epochs(make_cfg, tmp_path):
    train(make_cfg("model=logistic_regression", "data=iris", "trainer.cv_folds=3", "logger=csv"))
    out = run_dir(tmp_path)
    assert not (out / "csv" / "epochs.csv").exists()
    final = {r["name"]: float(r["value"]) for r in read_csv(out / "csv" / "final.csv")}
    cv = json.loads((out / "metrics.json").read_text())["cv"]
    assert final["cv/accuracy_mean"] == cv["accuracy_mean"] and final["cv/accuracy_std"] == cv["accuracy_std"]


def test_tensorboard_events_read_back_with_tensorboards_reader(make_cfg, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("TRACKING_TEST_SECRET", "hunter2-not-for-logs")
    train(make_cfg(*PYTORCH_MLP, "logger=[csv,tensorboard]", "+note=${oc.env:TRACKING_TEST_SECRET}"))
    out = run_dir(tmp_path)
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    epochs = read_csv(out / "csv" / "epochs.csv")
    for name in ("train_loss", "val_loss", "val_accuracy", "lr", "seconds"):
        scalars = events.Scalars(name)
        assert [s.step for s in scalars] == [1, 2, 3]
        assert [s.value for s in scalars] == pytest.approx([float(r[name]) for r in epochs], rel=1e-6)
    record = json.loads((out / "metrics.json").read_text())
    assert events.Scalars("test/accuracy")[0].value == pytest.approx(record["test"]["accuracy"], rel=1e-6)
    config = events.Tensors("config")[0].tensor_proto.string_val[0].decode()
    assert "| framework | pytorch |" in config.replace("tag.", "") and "| trainer.max_epochs | 3 |" in config
    # the config as written: the interpolation, never the environment variable's value
    assert "${oc.env:TRACKING_TEST_SECRET}" in config
    assert not [p for p in out.rglob("*") if p.is_file() and p.parent.name in ("csv", "tensorboard")
                and b"hunter2-not-for-logs" in p.read_bytes()]


def test_a_writer_that_fails_mid_run_costs_only_itself(make_cfg, tmp_path, caplog):
    plain = train(make_cfg(*PYTORCH_MLP, run="plain"))
    cfg = make_cfg(*PYTORCH_MLP, "logger=[csv,tensorboard]")
    (run_dir(tmp_path) / "csv").write_text("a file where the csv logger wants its folder")
    tracked = train(cfg)
    assert tracked == plain  # the same result, the run complete
    assert (run_dir(tmp_path) / "model" / "metadata.json").is_file()
    assert any("logger=csv: recording epoch failed" in r.getMessage() for r in caplog.records)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir(tmp_path) / "tensorboard"))
    events.Reload()
    assert len(events.Scalars("val_loss")) == 3  # the other writer went on


@pytest.mark.parametrize("overrides, message", [
    (["+logger.nonsense={}"], "logger.nonsense is not a logger; expected one of: csv, mlflow, tensorboard, wandb"),
    (["logger=csv", "+logger.csv.flush=1"], "logger.csv.flush is not a setting of the csv logger; expected one of: dir"),
    (["logger=csv", "logger.csv.dir=../elsewhere"], "logger.csv.dir='../elsewhere' is invalid"),
    (["logger=wandb", "logger.wandb.mode=cloud"], "logger.wandb.mode='cloud' is invalid; expected one of: offline"),
])
def test_bad_logger_settings_fail_before_training(make_cfg, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace("(", r"\(")
                       .replace(".", r"\.").replace("+", r"\+")):
        train(make_cfg("model=logistic_regression", *overrides))
    assert not (run_dir(tmp_path) / "metrics.json").exists()


@pytest.mark.parametrize("name", TRACKERS)
def test_a_tracker_not_installed_names_its_extra(make_cfg, tmp_path, monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)  # how Python sees a package that is not there
    with pytest.raises(ConfigError, match=rf'^logger={name} needs the {name} package, which is not installed: '
                                          rf'pip install "launcher\[{name}\]"$'):
        train(make_cfg("model=logistic_regression", f"logger={name}"))
    assert not (run_dir(tmp_path) / "metrics.json").exists()


# -- W&B offline: the run's .wandb file (LevelDB log records of W&B's protocol buffers) ------
def wandb_records(run_file: Path):
    """The records of an offline run file, read as `wandb sync` reads them."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0)
    block, pos, pending = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def items(entries) -> dict:
    return {e.key or "/".join(e.nested_key): json.loads(e.value_json) for e in entries}


def test_wandb_offline_run_is_read_back_from_its_files(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(make_cfg(*PYTORCH_MLP, "logger=wandb", "logger.wandb.project=tracking-test"))
    out = run_dir(tmp_path)
    (run_file,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    # W&B's service process writes the file; the run's exit record is its last.
    deadline = time.monotonic() + 60
    while not any(r.WhichOneof("record_type") == "exit" for r in wandb_records(run_file)):
        assert time.monotonic() < deadline, "no exit record in the offline run file after 60 s"
        time.sleep(0.2)
    history, summary, config, run = [], {}, {}, None
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(items(record.history.item))
        elif kind == "summary":
            summary.update(items(record.summary.update))
        elif kind == "config":
            config.update(items(record.config.update))
        elif kind == "run":
            run = record.run
            config.update(items(run.config.update))
    assert run is not None and run.project == "tracking-test" and "framework:pytorch" in run.tags
    assert [h["epoch"] for h in history] == [1, 2, 3] and all("val_loss" in h and "lr" in h for h in history)
    record = json.loads((out / "metrics.json").read_text())
    assert summary["test/accuracy"] == pytest.approx(record["test"]["accuracy"])
    assert config["trainer.max_epochs"] == "3" and config["model.name"] == "mlp"
    assert (run_file.parent / "files" / "metrics.json").is_file()


def test_no_environment_variable_value_lands_in_a_runs_files(tmp_path):
    """A config value that reads a variable (`${oc.env:...}`) is recorded as written in the
    model's metadata (which trackers upload), never as the variable's value."""
    secret = "sk-test-NEVER-RECORD-0123456789"
    res = run_cli("+api_key=${oc.env:LAUNCHER_TEST_SECRET}", "logger=csv", "hydra.run.dir=run", cwd=tmp_path,
                  env_extra={"LAUNCHER_TEST_SECRET": secret})
    assert res.returncode == 0, res.stderr
    metadata = (tmp_path / "run" / "model" / "metadata.json").read_text()
    assert "${oc.env:LAUNCHER_TEST_SECRET}" in metadata
    assert not [p for p in (tmp_path / "run").rglob("*") if p.is_file() and secret in p.read_text(errors="ignore")]
