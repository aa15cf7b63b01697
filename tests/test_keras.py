"""The TensorFlow/Keras adapter on tiny data: build, fit, resume, save, load, refuse.

Every fit is 1-4 epochs on a few hundred rows (most of a fit's time here is TensorFlow tracing
the train step); the quality targets on digits and diabetes are checked by
benchmarks/neural_quality.py --frameworks tensorflow (minutes, not seconds).
"""
from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import zipfile
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("keras")

from launcher.core.errors import ArtifactError, ConfigError  # noqa: E402
from launcher.core.specs import parse_spec  # noqa: E402
from launcher.core.trainer import TrainerSettings, TrainingInterrupted, batch_order  # noqa: E402
from launcher.core.types import DataSchema  # noqa: E402
from launcher.data import synthetic_splits  # noqa: E402
from helpers import CPU, fit, held_out_classes, image_splits_3x, settings  # noqa: E402
from launcher.frameworks.keras import KerasAdapter, network_api, runtime  # noqa: E402

tf, keras = runtime.import_tensorflow()
from launcher.frameworks.keras import checkpoints, loop, networks  # noqa: E402



@pytest.fixture(scope="module")
def adapter():
    return KerasAdapter(device=CPU)


@pytest.fixture(scope="module")
def image_splits():
    return image_splits_3x()


@pytest.mark.slow
def test_launcher_sklearn_and_pytorch_runs_never_import_tensorflow():
    code = ("import sys, launcher, launcher.frameworks.keras, launcher.api\n"
            "from launcher.frameworks import registry\n"
            "assert registry.adapter_class('tensorflow').__name__ == 'KerasAdapter'\n"
            "assert 'tensorflow' in registry.supporting('transformer')\n"
            "registry.run_health_check(registry.instantiate(registry.framework_config('sklearn', 'cpu')))\n"
            "registry.run_health_check(registry.instantiate(registry.framework_config('pytorch', 'cpu')))\n"
            "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_status_reports_version_and_devices(adapter):
    status = adapter.status()
    assert status.installed and status.version == tf.__version__
    assert status.devices[-1] == "cpu"
    assert KerasAdapter(device=CPU, gpu_support=False).devices() == ["cpu"]


# -- the same networks as PyTorch ------------------------------------------------------------
PORTABLE = [
    {"type": "mlp", "hidden_sizes": [16, 8], "norm": "batch"},
    {"type": "mlp", "hidden_sizes": [16], "norm": "layer", "activation": "leaky_relu"},
    {"type": "cnn", "channels": [4, 8], "kernel_sizes": [3, 3], "hidden_sizes": [16]},
    {"type": "cnn", "channels": [4], "kernel_sizes": [2], "pooling": "avg", "norm": "layer", "hidden_sizes": []},
    {"type": "rnn", "cell": "lstm", "hidden_size": 8, "num_layers": 2},
    {"type": "rnn", "cell": "gru", "hidden_size": 8, "num_layers": 2, "bidirectional": True, "dropout": 0.1},
    {"type": "transformer", "d_model": 16, "heads": 2, "layers": 2, "ff_size": 24},
    {"type": "transformer", "d_model": 16, "heads": 4, "layers": 1, "ff_size": 16, "pooling": "cls",
     "positional": "sinusoidal", "encoding": "features"},
]


@pytest.mark.parametrize("spec", PORTABLE, ids=lambda s: "-".join(str(v) for v in s.values())[:40])
def test_parameter_counts_agree_with_pytorch(image_splits, spec):
    pytest.importorskip("torch")
    from launcher.frameworks.torch.networks import build_network as torch_network

    parsed = parse_spec(spec)
    torch_count = sum(p.numel() for p in torch_network(parsed, image_splits.schema).parameters())
    keras_net = networks.build_network(parsed, image_splits.schema, network_api(spec, parsed))
    keras_count = networks.count_parameters(keras_net)
    if parsed.type == "rnn" and parsed.cell == "lstm":
        # PyTorch's LSTM has two bias vectors that are only ever summed (b_ih + b_hh); Keras' has one.
        directions = 2 if parsed.bidirectional else 1
        assert torch_count - keras_count == 4 * parsed.hidden_size * parsed.num_layers * directions
    else:
        assert keras_count == torch_count
    assert keras_net(np.zeros((2, 16), np.float32)).shape == (2, 3)


def test_the_keras_api_is_sequential_for_a_stack_and_functional_otherwise(adapter, image_splits):
    schema = image_splits.schema
    built = {name: adapter.network(adapter.build(spec, schema)) for name, spec in {
        "mlp": {"type": "mlp"}, "mlp-functional": {"type": "mlp", "api": "functional"},
        "rnn": {"type": "rnn", "hidden_size": 4}, "birnn": {"type": "rnn", "hidden_size": 4, "bidirectional": True},
        "birnn-sequential": {"type": "rnn", "hidden_size": 4, "bidirectional": True, "api": "sequential"},
        "transformer": {"type": "transformer", "d_model": 8, "heads": 2, "layers": 1, "ff_size": 8}}.items()}
    kinds = {name: type(net).__name__ for name, net in built.items()}
    assert kinds == {"mlp": "Sequential", "mlp-functional": "Functional", "rnn": "Sequential",
                     "birnn": "Functional", "birnn-sequential": "Sequential", "transformer": "Functional"}
    assert networks.count_parameters(built["mlp"]) == networks.count_parameters(built["mlp-functional"])
    with pytest.raises(ConfigError, match="model.api=sequential cannot build a transformer"):
        adapter.check({"type": "transformer", "api": "sequential"}, schema, settings())
    with pytest.raises(ConfigError, match="model.api='graph' is unknown; expected one of: auto, sequential"):
        adapter.build({"type": "mlp", "api": "graph"}, schema)


@pytest.mark.parametrize("spec", [
    {"type": "cnn", "channels": [4], "kernel_sizes": [3], "hidden_sizes": [8]},
    {"type": "rnn", "hidden_size": 8},
    {"type": "transformer", "d_model": 8, "heads": 2, "layers": 1, "ff_size": 8},
], ids=lambda s: s["type"])
def test_every_architecture_trains_and_predicts_probabilities(adapter, image_splits, spec):
    model, history = fit(adapter, image_splits, spec, max_epochs=1)
    assert [set(e) for e in history.epochs] == [{"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"}]
    assert history.device == "cpu" and history.best_epoch == 1
    assert history.extra["api"] == ("sequential" if spec["type"] != "transformer" else "functional")
    proba = adapter.predict(model, image_splits.X_test)
    assert proba.shape == (len(image_splits.X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_regression_learns_and_reports_rmse_in_target_units(adapter, caplog):
    # the data layer hands over a standardised y and the target's spread (here 50 units)
    splits = replace(synthetic_splits(n=240, features=6, classes=0, seed=1), target_scale=50.0)
    with caplog.at_level(logging.INFO, logger="launcher"):
        model, history = fit(adapter, splits, {"type": "mlp"}, max_epochs=4, lr=0.02)
    last = history.epochs[-1]
    assert set(last) == {"epoch", "train_loss", "val_loss", "val_r2", "val_rmse", "lr", "seconds"}
    assert last["val_rmse"] == pytest.approx(last["val_loss"] ** 0.5 * 50.0, rel=1e-4)
    assert last["val_r2"] > 0.8  # y is a linear function of X: an untrained network scores about 0
    out = adapter.predict(model, splits.X_test)
    assert out.shape == (len(splits.X_test),) and np.corrcoef(out, splits.y_test)[0, 1] > 0.5
    # one plain line per epoch when the output is not a terminal
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 4 and lines[0].startswith("epoch 1/4  train_loss=") and "val_rmse=" in lines[0]


# -- the trainer settings mean what they mean in PyTorch -------------------------------------
def test_each_epoch_trains_on_the_batches_of_the_shared_batch_order():
    X = np.arange(11, dtype=np.float32)[:, None]
    s = settings(seed=3, batch_size=4, max_epochs=5)  # 4 + 4 + 3 rows per epoch
    dataset, steps = loop.train_batches(X, np.arange(11), s, first_epoch=4)  # a run resumed after epoch 3
    got = [yb.numpy().tolist() for _, yb in dataset]
    want = [b.tolist() for epoch in (4, 5) for b in batch_order(11, 4, 3, epoch)]
    assert steps == 3 and got == want
    lone = settings(batch_size=5)  # 5 + 5 + 1: the lone row joins the batch before (batch norm)
    dataset, steps = loop.train_batches(X, np.arange(11), lone, first_epoch=1)
    assert steps == 2 and [len(yb) for _, yb in dataset] == [5, 6, 5, 6]


def test_optimizers_take_pytorchs_steps():
    """L2 weight decay for adam and sgd, decoupled for adamw; sgd's momentum buffer under a
    learning rate that changes (a schedule); gradient clipping by the global norm."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, grads = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 3, 4)).astype(np.float32)
    lrs = [0.1, 0.05, 0.02]
    cases = {
        "adam": (dict(optimizer="adam", lr=0.1, weight_decay=0.1),
                 lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.1)),
        "adamw": (dict(optimizer="adamw", lr=0.1, weight_decay=0.1),
                  lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1)),
        "sgd": (dict(optimizer="sgd", lr=0.1, weight_decay=0.1, momentum=0.9, grad_clip=1.0),
                lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.1, momentum=0.9)),
    }
    for name, (trainer, make_torch) in cases.items():
        s = TrainerSettings.from_config(trainer)
        optimizer = loop.make_optimizer(s)
        v = keras.Variable(w0.copy())
        p = torch.nn.Parameter(torch.tensor(w0.copy()))
        reference = make_torch([p])
        for lr, g in zip(lrs, grads):
            optimizer.learning_rate.assign(lr)
            optimizer.apply([tf.constant(g)], [v])
            for group in reference.param_groups:
                group["lr"] = lr
            p.grad = torch.tensor(g)
            if s.grad_clip:
                torch.nn.utils.clip_grad_norm_([p], s.grad_clip)
            reference.step()
        np.testing.assert_allclose(v.numpy(), p.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


SPEC = {"type": "mlp", "hidden_sizes": [16], "dropout": 0.2, "norm": "batch"}
TRAINER = {"optimizer": "adamw", "weight_decay": 0.01}


def test_resume_two_then_four_epochs_matches_a_straight_four_epoch_run(adapter, image_splits, tmp_path):
    straight, h_straight = fit(adapter, image_splits, SPEC, tmp_path / "a", max_epochs=4, **TRAINER)
    _, h_two = fit(adapter, image_splits, SPEC, tmp_path / "b", max_epochs=2, **TRAINER)
    resumed, h_resumed = fit(adapter, image_splits, SPEC, tmp_path / "c", max_epochs=4,
                             resume_from=str(tmp_path / "b"), **TRAINER)
    assert [e["epoch"] for e in h_resumed.epochs] == [1, 2, 3, 4]  # history continues across the resume
    assert [e["val_loss"] for e in h_resumed.epochs] == [e["val_loss"] for e in h_straight.epochs]
    assert h_resumed.best_epoch == h_straight.best_epoch
    np.testing.assert_array_equal(adapter.predict(straight, image_splits.X_test),
                                  adapter.predict(resumed, image_splits.X_test))
    assert h_resumed.extra["resumed_from"].endswith("b/checkpoints/last.npz")
    # the same seed gave the same first two epochs; the checkpoints are NumPy archives, no pickle
    assert [e["val_loss"] for e in h_two.epochs] == [e["val_loss"] for e in h_straight.epochs[:2]]
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == ["best.npz", "checksums.json",
                                                                              "last.npz"]
    assert h_straight.extra["checkpoints"]["last"] == str(tmp_path / "a" / "checkpoints" / "last.npz")
    doc, net, optimizer = checkpoints.read(tmp_path / "a" / "checkpoints" / "last.npz")
    assert doc["recorder"]["epochs"][-1]["epoch"] == 4 and doc["launcher"]["spec"]["api"] == "sequential"
    assert len(net) == len(straight.net.variables) and optimizer
    best, _, _ = checkpoints.read(tmp_path / "a" / "checkpoints" / "best.npz")
    assert best["epoch"] == h_straight.best_epoch
    # another seed, another run
    _, h_other = fit(adapter, image_splits, SPEC, seed=1, max_epochs=1, **TRAINER)
    assert h_other.epochs[0]["val_loss"] != h_straight.epochs[0]["val_loss"]


def test_an_interrupted_run_resumes_to_the_same_result(adapter, image_splits, tmp_path):
    # sgd's momentum buffers, a schedule and early stopping's count all continue across the resume
    trainer = {"max_epochs": 4, "scheduler": "cosine", "optimizer": "sgd", "grad_clip": 1.0, "weight_decay": 1e-3,
               "early_stopping": {"enabled": True, "patience": 3}}
    straight, h_straight = fit(adapter, image_splits, SPEC, tmp_path / "a", **trainer)
    seen = []

    def ctrl_c_after_two(epoch, metrics):
        seen.append((epoch, sorted(metrics)))
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as stop:  # the latest epoch is saved, and named
        fit(adapter, image_splits, SPEC, tmp_path / "b", report=ctrl_c_after_two, **trainer)
    assert stop.value.epoch == 2 and stop.value.path == tmp_path / "b" / "checkpoints" / "last.npz"
    assert seen[-1] == (2, ["epoch", "lr", "seconds", "train_loss", "val_accuracy", "val_loss"])
    resumed, h_resumed = fit(adapter, image_splits, SPEC, tmp_path / "c",
                             resume_from=str(tmp_path / "b" / "checkpoints" / "last.npz"), **trainer)
    assert [(e["val_loss"], e["lr"]) for e in h_resumed.epochs] == [(e["val_loss"], e["lr"]) for e in h_straight.epochs]
    np.testing.assert_array_equal(adapter.predict(straight, image_splits.X_test),
                                  adapter.predict(resumed, image_splits.X_test))
    assert [e["lr"] for e in h_straight.epochs] == [0.01 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]


def test_resume_refuses_a_checkpoint_of_another_model_or_other_settings(adapter, image_splits, tmp_path):
    fit(adapter, image_splits, {"type": "mlp", "hidden_sizes": [8]}, tmp_path / "a", max_epochs=1)
    resume = settings(resume_from=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="different model"):  # refused by check, before training
        adapter.check({"type": "mlp", "hidden_sizes": [16]}, image_splits.schema, resume)
    with pytest.raises(ConfigError, match="different model"):  # the Keras API is part of the model
        adapter.check({"type": "mlp", "hidden_sizes": [8], "api": "functional"}, image_splits.schema, resume)
    with pytest.raises(ConfigError, match=r"other settings \(trainer.lr: 0.01 -> 0.5\)"):
        adapter.check({"type": "mlp", "hidden_sizes": [8]}, image_splits.schema,
                      settings(lr=0.5, resume_from=str(tmp_path / "a")))
    with pytest.raises(ConfigError, match="different model"):  # and by fit, for a caller that skips check
        fit(adapter, image_splits, {"type": "mlp", "hidden_sizes": [16]}, tmp_path / "b",
            resume_from=str(tmp_path / "a"))
    assert not (tmp_path / "b").exists()  # nothing written for a refused resume
    with pytest.raises(ConfigError, match="no checkpoints/last.npz"):
        adapter.check({"type": "mlp"}, image_splits.schema, settings(resume_from=str(tmp_path)))
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="has no checksum record"):
        fit(adapter, image_splits, {"type": "mlp"}, resume_from=str(tmp_path / "junk.npz"))
    last = tmp_path / "a" / "checkpoints" / "last.npz"
    last.write_bytes(last.read_bytes()[:-10])  # truncated
    with pytest.raises(ConfigError, match="does not match its checksum"):
        fit(adapter, image_splits, {"type": "mlp", "hidden_sizes": [8]}, resume_from=str(tmp_path / "a"))


def test_early_stopping_on_the_validation_metric(image_splits):
    auto = KerasAdapter(device={"name": "auto", "accelerator": "auto", "devices": "auto", "strategy": "auto"})
    # a learning rate too small to change the accuracy: no improvement after epoch 1
    _, history = fit(auto, image_splits, {"type": "mlp", "dropout": 0.0}, max_epochs=10, lr=1e-12,
                     early_stopping={"enabled": True, "patience": 2, "monitor": "val_accuracy"})
    assert len(history.epochs) == 3 and history.best_epoch == 1 and history.extra["stopped_early"]
    if not tf.config.list_physical_devices("GPU"):
        assert history.device == "cpu"  # device=auto without a GPU


def test_bf16_mixed_precision_trains_on_cpu_and_predicts_in_float32(adapter, image_splits):
    model, history = fit(adapter, image_splits, {"type": "mlp", "hidden_sizes": [16]}, max_epochs=1,
                         precision="bf16-mixed")
    assert history.extra["precision"] == "bf16-mixed" and np.isfinite(history.epochs[0]["train_loss"])
    assert {layer.dtype_policy.name for layer in model.net.layers} == {"float32"}
    assert np.isfinite(adapter.predict(model, image_splits.X_test)).all()


def test_thread_count_fixed_at_start_is_a_clear_error_not_ignored(adapter, image_splits):
    now = tf.config.threading.get_intra_op_parallelism_threads()
    other = 1 if now != 1 else 2
    with pytest.raises(ConfigError, match=f"trainer.num_threads={other} cannot be applied: TensorFlow already runs"):
        adapter.check({"type": "mlp"}, image_splits.schema, settings(num_threads=other))


@pytest.mark.parametrize("spec,schema_shape,trainer,message", [
    ({"type": "cnn"}, None, {}, "model=cnn needs an image shape"),
    ({"type": "cnn", "channels": [4, 4, 4], "kernel_sizes": [3, 3, 3]}, (1, 4, 4), {}, "below 1x1"),
    ({"type": "rnn"}, None, {}, "model.encoding=features"),
    ({"type": "transformer", "d_model": 16, "heads": 3}, (4, 4), {}, "a divisor of d_model"),
    ({"type": "mlp"}, None, {"precision": "16-mixed"}, "16-mixed needs a GPU"),
    ({"type": "mlp"}, None, {"optimizer": "lbfgs"}, "expected one of: adam, adamw, sgd"),
    ({"type": "mlp"}, None, {"early_stopping": {"enabled": True, "monitor": "val_r2"}},
     "does not apply to classification"),
])
def test_check_refuses_bad_input_before_training(adapter, spec, schema_shape, trainer, message):
    schema = DataSchema("classification", 16, [], [0, 1], schema_shape)
    with pytest.raises(ConfigError, match=message):
        adapter.check(spec, schema, settings(**trainer))


@pytest.mark.parametrize("device,framework,message", [
    ({"name": "gpu", "accelerator": "gpu", "devices": 1, "strategy": "auto"}, {}, "asks for a GPU, but TensorFlow"),
    ({"name": "gpu", "accelerator": "gpu", "devices": 1, "strategy": "auto"}, {"gpu_support": False},
     "framework.gpu_support=false hides them"),
    ({"name": "gpu", "accelerator": "gpu", "devices": 4, "strategy": "ddp"}, {}, "trains on one device"),
    ({"name": "mps", "accelerator": "mps", "devices": 1, "strategy": "auto"}, {}, "expected one of: auto, cpu, gpu"),
])
def test_devices_it_cannot_use_are_refused_before_training(image_splits, device, framework, message):
    if device["accelerator"] == "gpu" and not framework and tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match=message):
        KerasAdapter(device=device, **framework).check({"type": "mlp"}, image_splits.schema, settings())


def test_framework_settings_are_validated():
    with pytest.raises(ConfigError, match="framework.memory_limit_mb=-5 is invalid"):
        KerasAdapter(device=CPU, memory_limit_mb=-5)
    with pytest.raises(ConfigError, match="framework.gpu_support='yes' is invalid"):
        KerasAdapter(device=CPU, gpu_support="yes")


# -- saved models ----------------------------------------------------------------------------
def test_save_and_load_in_safe_mode_and_refuse_tampered_files(adapter, image_splits, tmp_path):
    spec = {"type": "transformer", "d_model": 8, "heads": 2, "layers": 1, "ff_size": 8, "pooling": "cls"}
    model = adapter.build(spec, image_splits.schema)  # initial weights: saving does not need a fit
    adapter.save(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "network.json"]
    info = json.loads((tmp_path / "network.json").read_text())
    assert info["spec"]["type"] == "transformer" and info["api"] == "functional"
    assert info["schema"]["input_shape"] == [1, 4, 4]
    loaded = adapter.load(tmp_path)  # learned positions and the [CLS] token: registered layers
    np.testing.assert_array_equal(adapter.predict(model, image_splits.X_test),
                                  adapter.predict(loaded, image_splits.X_test))
    good = (tmp_path / "model.keras").read_bytes()

    # a Lambda layer carries Python code: Keras' safe mode refuses it
    lam = keras.Sequential([keras.Input((16,)), keras.layers.Lambda(lambda x: x * 2)])
    lam.save(tmp_path / "lambda.keras")
    (tmp_path / "model.keras").write_bytes((tmp_path / "lambda.keras").read_bytes())
    with pytest.raises(ArtifactError, match="could not be loaded safely"):
        adapter.load(tmp_path)
    # a class from another package: refused before Keras reads the file
    with zipfile.ZipFile(tmp_path / "lambda.keras") as z:
        members = {name: z.read(name) for name in z.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][-1].update(module="os", class_name="system")
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(ArtifactError, match="names os.system, which is neither Keras' nor launcher's"):
        adapter.load(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="not a Keras model file"):
        adapter.load(tmp_path)
    # a valid file of another network than network.json describes
    (tmp_path / "model.keras").write_bytes(good)
    info["spec"]["ff_size"] = 16
    (tmp_path / "network.json").write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match="does not hold the transformer that network.json describes"):
        adapter.load(tmp_path)


def test_the_python_api_trains_evaluates_saves_and_loads(tmp_path):
    import launcher

    tensorflow = launcher.TensorFlowFramework({"device": "cpu", "gpu_support": True})
    status = tensorflow.initialize()
    assert status.installed and status.version == tf.__version__ and status.devices[-1] == "cpu"
    model = tensorflow.create_model({"type": "mlp", "parameters": {
        "layer_sizes": [20, 32, 4], "activation": "relu", "dropout": 0.1}})
    X, y, X_test, y_test = held_out_classes(features=20, classes=4, informative=8)
    history = tensorflow.train_model(model, X, y, max_epochs=3, lr=0.01)
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert tensorflow.predict(model, X_test).shape == (300, 4)
    # held-out rows: 0.96 measured; the majority class is 0.26 of them
    assert tensorflow.evaluate_model(model, X_test, y_test)["accuracy"] > 0.8
    tensorflow.save_model(model, tmp_path / "net")
    again = tensorflow.load_model(tmp_path / "net")
    np.testing.assert_allclose(tensorflow.predict(again, X_test), tensorflow.predict(model, X_test), rtol=1e-6)
    assert launcher.MLFrameworkManager().get_framework_status("tensorflow").installed
