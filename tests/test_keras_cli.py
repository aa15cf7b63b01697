"""framework=tensorflow through the real commands: a multirun beside PyTorch, the saved model
served by launcher.predict, a pruned Optuna trial, and bad input refused before training."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers import launcher_command, results, run, study_trials

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

pytestmark = pytest.mark.slow

NOISE = ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "tf.function retracing")


def test_pytorch_and_tensorflow_side_by_side_in_one_multirun(tmp_path, capsys):
    pytest.importorskip("torch")
    sweep = tmp_path / "sweep"
    proc = run(launcher_command(sweep, "framework=pytorch,tensorflow", "model=mlp", "data=digits", "device=cpu",
                                "trainer.max_epochs=2", "trainer.num_threads=1", "trainer.refit=true"),
               tmp_path, timeout=240)
    output = proc.stdout + proc.stderr
    assert not [n for n in NOISE if n in output], output[-3000:]  # TensorFlow's start-up log stays quiet
    torch_run, tf_run = sweep / "0", sweep / "1"
    record = json.loads((tf_run / "metrics.json").read_text())
    assert record["framework"] == "tensorflow" and record["device"] == "cpu" and record["epochs"] == 2
    assert 0.5 < record["test"]["accuracy"] <= 1.0
    rows = record["rows"]  # the saved model: refit on every non-test row for the best epoch count
    assert record["refit"] == {"rows": rows["train"] + rows["val"], "epochs": record["best_epoch"]}
    meta = json.loads((tf_run / "model" / "metadata.json").read_text())
    assert {"model.keras", "network.json", "preprocessing.json"} <= set(meta["checksums"])
    assert meta["training"]["api"] == "sequential" and meta["training"]["threads"] == 1
    assert meta["versions"]["keras"] and meta["framework"] == "tensorflow"
    assert {p.name for p in (tf_run / "checkpoints").iterdir()} == {"best.npz", "last.npz", "checksums.json"}
    assert (tf_run / "learning_curve.png").is_file() and (tf_run / "confusion_matrix.png").is_file()
    log = (tf_run / "train.log").read_text()
    assert "epoch 1/2  train_loss=" in log and "epoch 2/2" in log
    # the same metric names per epoch and in the record, whichever framework trained
    torch_record = json.loads((torch_run / "metrics.json").read_text())
    assert set(torch_record["test"]) == set(record["test"]) and set(torch_record["val"]) == set(record["val"])
    from launcher.runs import main as runs

    assert runs(["compare", str(torch_run), str(tf_run)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "pytorch" in lines["framework"] and "tensorflow" in lines["framework"]
    assert len(lines["test/accuracy"].split()) == 3  # the name, then one value per run

    # the saved Keras model serves launcher.predict, raw columns in, labels and probabilities out
    from sklearn.datasets import load_digits

    from launcher.predict import main as predict

    digits = load_digits()
    pd.DataFrame(digits.data[:25], columns=digits.feature_names).to_csv(tmp_path / "new.csv", index=False)
    assert predict([f"run={tf_run}", f"input={tmp_path / 'new.csv'}", f"output={tmp_path / 'pred.csv'}",
                    "proba=true"]) == 0
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 25 and set(pred["target"]) <= set(range(10))
    assert (pred.filter(like="proba_").sum(axis=1).round(5) == 1).all()


def test_a_poor_tensorflow_trial_is_pruned_through_the_launcher(tmp_path):
    """The Keras adapter reports each epoch to the study; the median pruner stops the poor
    trial after an epoch report, and the sweep records it as PRUNED."""
    sweep = tmp_path / "sweep"
    run(launcher_command(
        sweep, "framework=tensorflow", "model=mlp", "data=iris", "device=cpu", "save_model=false", "plots=false",
        "trainer.max_epochs=2", "trainer.early_stopping.enabled=false",
        "hydra/sweeper=optuna", "hydra/sweeper/pruner=median", "hydra.sweeper.direction=maximize",
        "hydra.sweeper.n_trials=2", "hydra.sweeper.plots=false",
        "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.pruner.n_warmup_steps=0",
        "trainer.lr=tag(log, interval(1e-7, 1e-1))",
        "hydra.sweeper.enqueue_trials=[{trainer.lr:0.05},{trainer.lr:1e-7}]",
    ), tmp_path, timeout=240)
    good, poor = study_trials(f"sqlite:///{sweep / 'optuna.db'}")
    assert good.state.name == "COMPLETE" and sorted(good.intermediate_values) == [1, 2]
    assert poor.state.name == "PRUNED" and sorted(poor.intermediate_values) == [1]  # stopped after epoch 1
    assert results(sweep)["trials"] == {"COMPLETE": 1, "PRUNED": 1}
    assert not (sweep / "1" / "metrics.json").exists()


def test_bad_input_is_one_clear_message_before_training(cli, tmp_path):
    res = cli("framework=tensorflow", "model=transformer", "data=digits", "model.api=sequential", "hydra.run.dir=bad")
    assert res.returncode != 0
    output = res.stdout + res.stderr
    assert "model.api=sequential cannot build a transformer" in output and "Traceback" not in output
    assert not Path(tmp_path / "bad" / "checkpoints").exists() and not (tmp_path / "bad" / "model").exists()
