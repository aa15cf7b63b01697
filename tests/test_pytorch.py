"""The PyTorch adapter (Lightning Fabric) on tiny data: build, fit, resume, save, load, refuse.

Every test trains for 1-4 epochs on a few hundred rows; the quality targets on digits and
diabetes are checked by benchmarks/neural_quality.py --frameworks pytorch (minutes, not seconds).
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")

import torch  # noqa: E402

from launcher.core.errors import ArtifactError, ConfigError  # noqa: E402
from launcher.core.types import DataSchema, History  # noqa: E402
from launcher.data import synthetic_splits  # noqa: E402
from helpers import CPU, fit, image_splits_3x, settings  # noqa: E402
from launcher.frameworks.torch import TorchAdapter  # noqa: E402



@pytest.fixture(scope="module")
def adapter():
    return TorchAdapter(device=CPU, num_threads=1)


@pytest.fixture(scope="module")
def image_splits():
    return image_splits_3x()


@pytest.fixture(scope="module")
def regression_splits():
    return synthetic_splits(n=240, features=6, classes=0, seed=1)


def test_importing_the_adapter_and_plots_does_not_import_torch():
    code = ("import sys, launcher, launcher.frameworks.torch, launcher.plots; "
            "heavy = [m for m in ('torch', 'lightning', 'lightning_fabric', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_status_reports_version_and_devices(adapter):
    status = adapter.status()
    assert status.installed and status.version == torch.__version__
    assert status.devices[-1] == "cpu"


@pytest.mark.parametrize("spec", [
    {"type": "mlp", "hidden_sizes": [16, 8], "norm": "batch"},
    {"type": "mlp", "hidden_sizes": [16], "norm": "layer", "activation": "gelu"},
    {"type": "cnn", "channels": [4, 8], "kernel_sizes": [3, 3], "hidden_sizes": [16]},
    {"type": "cnn", "channels": [4], "kernel_sizes": [2], "pooling": "avg", "norm": "layer", "hidden_sizes": []},
    {"type": "rnn", "hidden_size": 8},
    {"type": "rnn", "cell": "gru", "hidden_size": 8, "num_layers": 2, "bidirectional": True, "dropout": 0.1},
    {"type": "transformer", "d_model": 16, "heads": 2, "layers": 1, "ff_size": 16},
    {"type": "transformer", "d_model": 16, "heads": 4, "layers": 1, "ff_size": 16, "pooling": "cls",
     "positional": "sinusoidal", "encoding": "features"},
], ids=lambda s: "-".join(str(v) for v in s.values())[:40])
def test_every_architecture_trains_and_predicts_probabilities(adapter, image_splits, spec):
    model, history = fit(adapter, image_splits, spec, max_epochs=1)
    assert [set(e) >= {"epoch", "train_loss", "val_loss", "val_accuracy"} for e in history.epochs] == [True]
    assert history.device == "cpu" and history.best_epoch == 1
    proba = adapter.predict(model, image_splits.X_test)
    assert proba.shape == (len(image_splits.X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "rnn"])
def test_regression_learns_and_reports_rmse_in_target_units(adapter, regression_splits, kind):
    spec = {"type": kind, "encoding": "features"} if kind == "rnn" else {"type": kind}
    # the data layer hands over a standardised y and the target's spread (here 50 units)
    splits = replace(regression_splits, target_scale=50.0)
    model, history = fit(adapter, splits, spec, max_epochs=4, lr=0.02)
    last = history.epochs[-1]
    assert last["val_rmse"] == pytest.approx(last["val_loss"] ** 0.5 * 50.0, rel=1e-4)
    assert history.epochs[-1]["val_loss"] < history.epochs[0]["val_loss"]
    out = adapter.predict(model, splits.X_test)
    assert out.shape == (len(splits.X_test),) and np.corrcoef(out, splits.y_test)[0, 1] > 0.5


def test_same_seed_same_run_and_another_seed_another(adapter, image_splits):
    spec = {"type": "mlp", "hidden_sizes": [16], "dropout": 0.3}
    m1, h1 = fit(adapter, image_splits, spec, seed=5)
    m2, h2 = fit(adapter, image_splits, spec, seed=5)
    m3, h3 = fit(adapter, image_splits, spec, seed=6)
    assert [e["val_loss"] for e in h1.epochs] == [e["val_loss"] for e in h2.epochs]
    np.testing.assert_array_equal(adapter.predict(m1, image_splits.X_test), adapter.predict(m2, image_splits.X_test))
    assert h1.epochs[-1]["val_loss"] != h3.epochs[-1]["val_loss"]


def test_best_and_last_checkpoints_are_written_in_the_run_dir(adapter, image_splits, tmp_path):
    _, history = fit(adapter, image_splits, {"type": "mlp"}, workdir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt", "checksums.json", "last.ckpt"]
    assert history.extra["checkpoints"]["last"] == str(tmp_path / "checkpoints" / "last.ckpt")
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["recorder"]["epochs"][-1]["epoch"] == 2 and ckpt["launcher"]["spec"]["type"] == "mlp"
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert best["epoch"] == history.best_epoch


SPEC = {"type": "mlp", "hidden_sizes": [16], "dropout": 0.2, "norm": "batch"}


def test_resume_two_then_four_epochs_matches_a_straight_four_epoch_run(adapter, image_splits, tmp_path):
    straight, h_straight = fit(adapter, image_splits, SPEC, tmp_path / "a", max_epochs=4, optimizer="adamw",
                               weight_decay=0.01)
    fit(adapter, image_splits, SPEC, tmp_path / "b", max_epochs=2, optimizer="adamw", weight_decay=0.01)
    resumed, h_resumed = fit(adapter, image_splits, SPEC, tmp_path / "c", max_epochs=4, optimizer="adamw",
                             weight_decay=0.01, resume_from=str(tmp_path / "b"))
    assert [e["epoch"] for e in h_resumed.epochs] == [1, 2, 3, 4]  # history continues across the resume
    assert [e["val_loss"] for e in h_resumed.epochs] == [e["val_loss"] for e in h_straight.epochs]
    assert h_resumed.best_epoch == h_straight.best_epoch
    np.testing.assert_array_equal(adapter.predict(straight, image_splits.X_test),
                                  adapter.predict(resumed, image_splits.X_test))
    assert h_resumed.extra["resumed_from"].endswith("b/checkpoints/last.ckpt")


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("scheduler,optimizer", [("cosine", "sgd"), ("step", "adam"), ("plateau", "adam")])
def test_an_interrupted_run_resumes_to_the_same_result(adapter, image_splits, tmp_path, scheduler, optimizer):
    settings = {"max_epochs": 4, "scheduler": scheduler, "optimizer": optimizer, "grad_clip": 1.0,
                "early_stopping": {"enabled": True, "patience": 3}}
    straight, h_straight = fit(adapter, image_splits, SPEC, tmp_path / "a", **settings)

    def crash_after_two(epoch, metrics):
        if epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        fit(adapter, image_splits, SPEC, tmp_path / "b", report=crash_after_two, **settings)
    ckpt = tmp_path / "b" / "checkpoints" / "last.ckpt"
    resumed, h_resumed = fit(adapter, image_splits, SPEC, tmp_path / "c", resume_from=str(ckpt), **settings)
    assert [(e["val_loss"], e["lr"]) for e in h_resumed.epochs] == [(e["val_loss"], e["lr"]) for e in h_straight.epochs]
    np.testing.assert_array_equal(adapter.predict(straight, image_splits.X_test),
                                  adapter.predict(resumed, image_splits.X_test))
    lrs = [e["lr"] for e in h_straight.epochs]
    if scheduler != "plateau":
        assert lrs[-1] < lrs[0]


def test_resume_refuses_a_checkpoint_of_another_model_or_other_settings(adapter, image_splits, tmp_path):
    fit(adapter, image_splits, {"type": "mlp", "hidden_sizes": [8]}, tmp_path / "a", max_epochs=1)
    with pytest.raises(ConfigError, match="different model"):
        fit(adapter, image_splits, {"type": "mlp", "hidden_sizes": [16]}, resume_from=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match=r"other settings \(trainer.lr: 0.01 -> 0.5\)"):
        fit(adapter, image_splits, {"type": "mlp", "hidden_sizes": [8]}, lr=0.5, resume_from=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="no checkpoints/last.ckpt"):
        adapter.check({"type": "mlp"}, image_splits.schema, settings(resume_from=str(tmp_path)))


def test_a_pruned_trial_reaches_the_caller_as_trial_pruned(adapter, image_splits):
    optuna = pytest.importorskip("optuna")
    seen = []

    def report(epoch, metrics):
        seen.append((epoch, sorted(metrics)))
        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    with pytest.raises(optuna.TrialPruned):
        fit(adapter, image_splits, {"type": "mlp"}, report=report, max_epochs=3)
    assert seen == [(1, ["epoch", "lr", "seconds", "train_loss", "val_accuracy", "val_loss"])]


def test_early_stopping_on_the_validation_metric(adapter, image_splits):
    # a learning rate too small to change the accuracy: no improvement after epoch 1
    _, history = fit(adapter, image_splits, {"type": "mlp", "dropout": 0.0}, max_epochs=10, lr=1e-12,
                     early_stopping={"enabled": True, "patience": 2, "monitor": "val_accuracy"})
    assert len(history.epochs) == 3 and history.best_epoch == 1 and history.extra["stopped_early"]


def test_bf16_mixed_precision_trains_on_cpu(adapter, image_splits):
    model, history = fit(adapter, image_splits, {"type": "cnn", "channels": [4], "kernel_sizes": [3]},
                         max_epochs=1, precision="bf16-mixed")
    assert history.extra["precision"] == "bf16-mixed"
    assert np.isfinite(adapter.predict(model, image_splits.X_test)).all()


def test_num_threads_is_applied_for_the_fit_and_restored_after(image_splits):
    torch.set_num_threads(2)
    _, history = fit(TorchAdapter(device=CPU), image_splits, {"type": "mlp"}, max_epochs=1, num_threads=1)
    assert history.extra["threads"] == 1
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("spec,schema_shape,trainer,message", [
    ({"type": "cnn"}, None, {}, "model=cnn needs an image shape"),
    ({"type": "cnn", "channels": [4, 4, 4], "kernel_sizes": [3, 3, 3]}, (1, 4, 4), {}, "below 1x1"),
    ({"type": "rnn"}, None, {}, "model.encoding=features"),
    ({"type": "transformer", "d_model": 16, "heads": 3}, (4, 4), {}, "a divisor of d_model"),
    ({"type": "mlp"}, None, {"precision": "16-mixed"}, "16-mixed needs a GPU"),
    ({"type": "mlp"}, None, {"precision": "64"}, "expected one of: 32, bf16-mixed, 16-mixed"),
    ({"type": "mlp"}, None, {"optimizer": "lbfgs"}, "expected one of: adam, adamw, sgd"),
    ({"type": "mlp"}, None, {"scheduler": "onecycle"}, "none, cosine, step, plateau"),
    ({"type": "mlp"}, None, {"batch_size": 0}, "positive integer"),
    ({"type": "mlp"}, None, {"early_stopping": {"enabled": True, "monitor": "val_r2"}}, "does not apply to classification"),
])
def test_check_refuses_bad_input_before_training(adapter, spec, schema_shape, trainer, message):
    schema = DataSchema("classification", 16, [], [0, 1], schema_shape)
    with pytest.raises(ConfigError, match=message):
        adapter.check(spec, schema, settings(**trainer))


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="a GPU is present")
def test_device_gpu_without_a_gpu_is_a_clear_error(image_splits):
    gpu = TorchAdapter(device={"name": "gpu", "accelerator": "gpu", "devices": 1, "strategy": "auto"})
    with pytest.raises(ConfigError, match="asks for a GPU.*use device=cpu or device=auto"):
        gpu.check({"type": "mlp"}, image_splits.schema, settings())
    auto = TorchAdapter(device={"name": "auto", "accelerator": "auto", "devices": "auto", "strategy": "auto"})
    _, history = fit(auto, image_splits, {"type": "mlp"}, max_epochs=1)
    assert history.device == "cpu"


def test_save_and_load_without_pickle(adapter, image_splits, tmp_path):
    model, _ = fit(adapter, image_splits, {"type": "transformer", "d_model": 16, "heads": 2, "layers": 1},
                   max_epochs=1)
    adapter.save(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "network.json"]
    info = json.loads((tmp_path / "network.json").read_text())
    assert info["spec"]["type"] == "transformer" and info["schema"]["input_shape"] == [1, 4, 4]
    loaded = adapter.load(tmp_path)
    np.testing.assert_array_equal(adapter.predict(model, image_splits.X_test),
                                  adapter.predict(loaded, image_splits.X_test))
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ArtifactError, match="model.safetensors"):
        adapter.load(tmp_path)


def test_a_plain_line_per_epoch_when_output_is_not_a_terminal(adapter, image_splits, caplog):
    with caplog.at_level(logging.INFO, logger="launcher"):
        fit(adapter, image_splits, {"type": "mlp"})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  train_loss=") and "val_accuracy=" in lines[0]


def test_plots_are_png_files(tmp_path):
    from launcher import plots

    history = History(epochs=[{"epoch": i, "train_loss": 1 / i, "val_loss": 1.2 / i, "val_accuracy": 0.5 + i / 10}
                              for i in range(1, 4)], best_epoch=3)
    curve = plots.learning_curve(history, tmp_path / "curve.png")
    matrix = plots.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2], ["a", "b", "c"], tmp_path / "cm.png")
    for path in (curve, matrix):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.learning_curve(History(), tmp_path / "none.png") is None


def test_lightning_refusing_the_device_settings_is_a_config_error(image_splits):
    odd = TorchAdapter(device={"name": "cpu", "accelerator": "cpu", "devices": 1, "strategy": "no_such_strategy"})
    with pytest.raises(ConfigError, match="Lightning refused device=cpu.*no_such_strategy"):
        fit(odd, image_splits, {"type": "mlp"}, max_epochs=1)


def test_a_last_batch_of_one_row_does_not_break_batch_norm(adapter):
    splits = synthetic_splits(n=260, features=4, classes=2, seed=2)  # 130 training rows
    model, history = fit(adapter, splits, {"type": "mlp", "hidden_sizes": [8], "norm": "batch"}, batch_size=43,
                         max_epochs=1)  # 43 + 43 + 43 + 1: the lone row joins the batch before
    assert len(history.epochs) == 1 and np.isfinite(history.epochs[0]["train_loss"])
