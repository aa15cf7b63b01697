"""framework=pytorch through the real commands: train each architecture, predict, resume, refuse."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")

pytestmark = pytest.mark.slow

SMALL = {"mlp": [], "cnn": ["model.channels=[8,16]", "model.hidden_sizes=[32]"],
         "rnn": ["model.hidden_size=16"], "transformer": ["model.d_model=16", "model.heads=2", "model.layers=1",
                                                          "model.ff_size=32"]}


def train_args(model: str, run: str, *extra: str) -> list[str]:
    return ["framework=pytorch", f"model={model}", "data=digits", "device=cpu", "trainer.max_epochs=2",
            "trainer.num_threads=1", f"hydra.run.dir={run}", *SMALL[model], *extra]


@pytest.mark.parametrize("model", ["mlp", "cnn", "rnn", "transformer"])
def test_each_architecture_trains_end_to_end(cli, tmp_path, model):
    res = cli(*train_args(model, "run"))
    assert res.returncode == 0, res.stderr
    run = tmp_path / "run"
    record = json.loads((run / "metrics.json").read_text())
    assert record["framework"] == "pytorch" and record["model"] == model and record["device"] == "cpu"
    assert record["epochs"] == 2 and 0.2 < record["test"]["accuracy"] <= 1.0
    assert {"best.ckpt", "last.ckpt"} <= {p.name for p in (run / "checkpoints").iterdir()}
    assert (run / "learning_curve.png").is_file() and (run / "confusion_matrix.png").is_file()
    meta = json.loads((run / "model" / "metadata.json").read_text())
    assert {"model.safetensors", "network.json"} <= set(meta["checksums"])
    log = (run / "train.log").read_text()
    assert "epoch 1/2  train_loss=" in log and "epoch 2/2" in log
    if model == "mlp":  # the saved model serves launcher.predict
        from sklearn.datasets import load_digits

        digits = load_digits()
        pd.DataFrame(digits.data[:25], columns=digits.feature_names).to_csv(tmp_path / "new.csv", index=False)
        res = cli(f"run={run}", "input=new.csv", "output=pred.csv", "proba=true", module="launcher.predict")
        assert res.returncode == 0, res.stderr
        pred = pd.read_csv(tmp_path / "pred.csv")
        assert len(pred) == 25 and set(pred["target"]) <= set(range(10))
        assert (pred.filter(like="proba_").sum(axis=1).round(5) == 1).all()


def test_resume_from_a_run_directory(cli, tmp_path):
    assert cli(*train_args("mlp", "first", "trainer.max_epochs=1")).returncode == 0
    res = cli(*train_args("mlp", "second", "trainer.resume_from=first"))
    assert res.returncode == 0, res.stderr
    record = json.loads((tmp_path / "second" / "metrics.json").read_text())
    assert record["epochs"] == 2
    log = (tmp_path / "second" / "train.log").read_text()
    assert "resuming from" in log and "epoch 1/2" not in log and "epoch 2/2" in log


@pytest.mark.parametrize("args,message", [
    (["model=cnn", "data=iris"], "model=cnn needs an image shape"),
    (["model=rnn", "data=wine"], "model.encoding=features"),
    (["model=transformer", "data=digits", "model.heads=3"], "a divisor of d_model"),
    (["model=mlp", "data=iris", "trainer.precision=16-mixed"], "16-mixed needs a GPU"),
    (["model=mlp", "data=iris", "device=gpu"], "asks for a GPU"),
])
def test_bad_input_is_one_clear_message_before_training(cli, tmp_path, args, message):
    try:
        import torch

        if "device=gpu" in args and torch.cuda.is_available():
            pytest.skip("a GPU is present")
    except ImportError:
        pass
    res = cli("framework=pytorch", "hydra.run.dir=bad", *args)
    assert res.returncode != 0
    output = res.stdout + res.stderr  # the message is logged (console) and may go to either stream
    assert message in output and "Traceback" not in output
    assert not Path(tmp_path / "bad" / "checkpoints").exists()
    assert not (tmp_path / "bad" / "model").exists()


def test_refit_trains_on_every_non_test_row_for_the_best_epoch_count(cli, tmp_path):
    res = cli(*train_args("mlp", "run", "trainer.max_epochs=4", "trainer.refit=true"))
    assert res.returncode == 0, res.stderr
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    rows = record["rows"]
    assert record["refit"] == {"rows": rows["train"] + rows["val"], "epochs": record["best_epoch"]}
    assert record["test"]["accuracy"] > 0.2
    assert "refit on all" in (tmp_path / "run" / "train.log").read_text()
