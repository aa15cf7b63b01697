"""framework=jax through the real commands: a grid beside PyTorch, TensorFlow and scikit-learn compared with
launcher.runs, predictions from the saved model, a clear refusal, and pruning in an Optuna sweep."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers import launcher_command, results, run, study_trials

pytest.importorskip("jax")
pytest.importorskip("flax")

pytestmark = pytest.mark.slow


def test_a_grid_of_frameworks_runs_and_compares_side_by_side(tmp_path, cli):
    pytest.importorskip("torch")
    grid = tmp_path / "grid"
    run(launcher_command(grid, "framework=pytorch,tensorflow,jax,sklearn", "model=mlp", "data=digits", "device=cpu",
                         "trainer.max_epochs=2"), tmp_path, timeout=300)
    jobs = {json.loads((d / "metrics.json").read_text())["framework"]: d for d in grid.iterdir()
            if (d / "metrics.json").is_file()}
    assert set(jobs) == {"pytorch", "tensorflow", "jax", "sklearn"}
    records = {name: json.loads((d / "metrics.json").read_text()) for name, d in jobs.items()}
    assert len({tuple(sorted(r["test"])) for r in records.values()}) == 1  # the same metric names
    jax_run, record = jobs["jax"], records["jax"]
    assert record["device"] == "cpu" and record["epochs"] == 2 and 0.3 < record["test"]["accuracy"] <= 1.0
    assert {"best.msgpack", "last.msgpack"} <= {p.name for p in (jax_run / "checkpoints").iterdir()}
    assert (jax_run / "learning_curve.png").is_file() and (jax_run / "confusion_matrix.png").is_file()
    meta = json.loads((jax_run / "model" / "metadata.json").read_text())
    assert {"model.msgpack", "network.json", "preprocessing.json"} <= set(meta["checksums"])
    assert meta["versions"]["flax"] and meta["versions"]["optax"] and meta["training"]["compilations"] >= 1
    log = (jax_run / "train.log").read_text()
    assert "epoch 1/2  train_loss=" in log and "val_accuracy=" in log and "epoch 2/2" in log

    from sklearn.datasets import load_digits

    digits = load_digits()
    pd.DataFrame(digits.data[:25], columns=digits.feature_names).to_csv(tmp_path / "new.csv", index=False)
    res = cli(f"run={jax_run}", "input=new.csv", "output=pred.csv", "proba=true", module="launcher.predict")
    assert res.returncode == 0, res.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 25 and set(pred["target"]) <= set(range(10))
    assert (pred.filter(like="proba_").sum(axis=1).round(5) == 1).all()

    frameworks = ("pytorch", "tensorflow", "jax", "sklearn")
    res = cli("compare", *(str(jobs[f]) for f in frameworks), module="launcher.runs")
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines() if line.strip()}
    assert rows["framework"] == list(frameworks)
    assert len(rows["test/accuracy"]) == 4 and "-" not in rows["test/accuracy"]
    listed = json.loads(cli("json=true", f"root={tmp_path}", module="launcher.runs").stdout)
    assert [(e["kind"], e["trials"]) for e in listed] == [("sweep", {"COMPLETE": 4})]


def test_device_gpu_without_a_gpu_is_one_clear_message(cli, tmp_path):
    import jax

    if any(d.platform != "cpu" for d in jax.devices()):
        pytest.skip("a GPU is present")
    res = cli("framework=jax", "model=mlp", "data=iris", "device=gpu", "hydra.run.dir=bad")
    assert res.returncode != 0
    output = res.stdout + res.stderr
    assert "device=gpu asks for a GPU, but JAX" in output and "use device=cpu or device=auto" in output
    assert "Traceback" not in output and not (tmp_path / "bad" / "model").exists()


def test_a_poor_jax_trial_is_pruned_through_the_launcher(tmp_path):
    """The JAX loop reports each epoch to the study; the median pruner stops the poor trial, which
    the sweep records as PRUNED. The trials differ in the learning rate only: one compilation."""
    sweep = tmp_path / "sweep"
    run(launcher_command(
        sweep, "framework=jax", "model=mlp", "data=iris", "device=cpu", "save_model=false", "plots=false",
        "trainer.max_epochs=4", "trainer.early_stopping.enabled=false",
        "hydra/sweeper=optuna", "hydra/sweeper/pruner=median", "hydra.sweeper.direction=maximize",
        "hydra.sweeper.n_trials=2", "hydra.sweeper.plots=false",
        "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.pruner.n_warmup_steps=0",
        "trainer.lr=tag(log, interval(1e-7, 1e-1))",
        "hydra.sweeper.enqueue_trials=[{trainer.lr:0.05},{trainer.lr:1e-7}]",
    ), tmp_path, timeout=240)
    good, poor = study_trials(f"sqlite:///{sweep / 'optuna.db'}")
    assert good.state.name == "COMPLETE" and sorted(good.intermediate_values) == [1, 2, 3, 4]
    assert poor.state.name == "PRUNED" and len(poor.intermediate_values) < 4
    assert results(sweep)["trials"] == {"COMPLETE": 1, "PRUNED": 1}
    assert not Path(sweep / "1" / "metrics.json").exists()  # a pruned run does not pose as finished
