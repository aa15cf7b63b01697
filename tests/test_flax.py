"""The JAX adapter (Flax NNX and Optax) on tiny data: the same networks as PyTorch, compiled
epochs that never recompile, seeds, resume, save and load, refusals, the Python API.

Compilation dominates the time of these tests, and compiled programs are shared by equal
networks and optimizer settings: most tests train the same MLP (SPEC) with the same optimizer,
and the four architectures are trained once (module fixture). The quality targets on digits and
diabetes are checked by benchmarks/neural_quality.py --frameworks jax (minutes, not seconds).
"""
from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")

import jax  # noqa: E402
from flax import nnx  # noqa: E402

from launcher.core.errors import ArtifactError, ConfigError  # noqa: E402
from launcher.core.specs import parse_spec  # noqa: E402
from launcher.core.types import DataSchema  # noqa: E402
from launcher.data import synthetic_splits  # noqa: E402
from helpers import CPU, fit, held_out_classes, image_splits_3x, settings  # noqa: E402
from launcher.frameworks.flax import FlaxAdapter, loop  # noqa: E402
from launcher.frameworks.flax.networks import abstract_network, build_network, count_parameters  # noqa: E402

SPEC = {"type": "mlp", "hidden_sizes": [16], "dropout": 0.2, "norm": "batch"}
EPOCH_KEYS = {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"}


@pytest.fixture(scope="module")
def adapter():
    return FlaxAdapter(device=CPU)


@pytest.fixture(scope="module")
def image_splits():
    return image_splits_3x()


ARCHITECTURES = {
    "mlp": SPEC,
    "cnn": {"type": "cnn", "channels": [4], "kernel_sizes": [3], "hidden_sizes": [8], "norm": "batch"},
    "rnn": {"type": "rnn", "cell": "gru", "hidden_size": 8, "num_layers": 2, "bidirectional": True, "dropout": 0.1},
    "transformer": {"type": "transformer", "d_model": 8, "heads": 2, "layers": 1, "ff_size": 8, "pooling": "cls",
                    "positional": "sinusoidal"},
}


@pytest.fixture(scope="module")
def trained(adapter, image_splits):
    """Each architecture trained for one epoch: {name: (model, history)}."""
    return {name: fit(adapter, image_splits, spec, max_epochs=1) for name, spec in ARCHITECTURES.items()}


def test_import_is_light_and_jax_starts_with_the_adapters_settings():
    """Importing launcher and the adapter imports no JAX. Then, before JAX starts its backends: no
    GPU pre-allocation unless asked, device=cpu makes the CPU JAX's only platform, and the
    compilation cache directory is JAX's."""
    code = ("import os, sys, launcher, launcher.api, launcher.frameworks.flax as F; "
            "heavy = [m for m in ('jax', 'flax', 'optax', 'jaxlib') if m in sys.modules]; assert not heavy, heavy; "
            "F.FlaxAdapter(device='cpu', compilation_cache='~/jaxcache').devices(); import jax; "
            "print(os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'], jax.config.jax_platforms, "
            "jax.config.jax_compilation_cache_dir.endswith('/jaxcache'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["false", "cpu", "True"]
    code = ("import os; from launcher.frameworks.flax import FlaxAdapter as A; "
            "A(device='auto', preallocate=True).devices(); print(os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["true"]


def test_status_reports_version_and_devices(adapter):
    status = adapter.status()
    assert status.installed and status.version == jax.__version__
    assert status.devices[-1] == "cpu"


@pytest.mark.parametrize("spec", [
    {"type": "mlp"},
    {"type": "mlp", "hidden_sizes": [16, 8], "norm": "batch"},
    {"type": "mlp", "hidden_sizes": [16], "norm": "layer", "activation": "gelu"},
    {"type": "cnn"},
    {"type": "cnn", "channels": [4, 8], "kernel_sizes": [2, 5], "pooling": "none", "norm": "layer",
     "hidden_sizes": []},
    {"type": "rnn"},
    {"type": "rnn", "cell": "gru", "hidden_size": 8, "num_layers": 2, "bidirectional": True, "dropout": 0.1},
    {"type": "transformer"},
    {"type": "transformer", "d_model": 16, "heads": 4, "layers": 1, "ff_size": 16, "pooling": "cls",
     "positional": "sinusoidal", "encoding": "features"},
], ids=lambda s: "-".join(str(v) for v in s.values())[:40])
def test_parameter_counts_agree_with_pytorch(spec):
    pytest.importorskip("torch")
    from launcher.frameworks.torch.networks import build_network as torch_network

    schema = DataSchema("classification", 64, [], list(range(10)), (1, 8, 8))
    parsed = parse_spec(spec)
    torch_count = sum(p.numel() for p in torch_network(parsed, schema).parameters())
    assert count_parameters(abstract_network(parsed, schema)) == torch_count


def test_every_architecture_trains_and_predicts_probabilities(adapter, image_splits, trained):
    for name, (model, history) in trained.items():
        assert [set(e) for e in history.epochs] == [EPOCH_KEYS], name
        assert history.device == "cpu" and history.best_epoch == 1
        assert math.isfinite(history.epochs[0]["train_loss"]), name
        proba = adapter.predict(model, image_splits.X_test)
        assert proba.shape == (len(image_splits.X_test), 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_batch_norm_uses_batch_statistics_in_training_and_running_ones_after(adapter, trained, image_splits):
    model, _ = trained["cnn"]
    mean = model.net.features[0].norm.mean[...]
    assert float(np.abs(mean).sum()) > 0  # the running mean moved away from its initial zeros
    # eval mode: each row's prediction is independent of the rest of the batch
    x = image_splits.X_test[:8]
    np.testing.assert_allclose(adapter.predict(model, x[:1]), adapter.predict(model, x)[:1], rtol=1e-5, atol=1e-6)


def test_padded_rows_take_no_part_in_batch_statistics():
    """A batch padded to the compiled width gives its real rows what the batch alone gives them."""
    schema = DataSchema("classification", 4, [], [0, 1])
    net = build_network(parse_spec({"type": "mlp", "hidden_sizes": [8], "norm": "batch", "dropout": 0.0}), schema,
                        jax.random.key(0))
    graphdef, state = nnx.split(net)
    train = jax.jit(lambda x, mask: nnx.merge(graphdef, state, copy=True)(x, train=True, mask=mask))
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    padded = x.copy()
    padded[5:] = 1e6  # padding rows, masked out
    mask = np.array([1, 1, 1, 1, 1, 0, 0, 0], bool)
    together = np.asarray(train(padded, mask))[:5]
    alone = np.asarray(train(x, np.array([1, 1, 1, 1, 1, 0, 0, 0], bool)))[:5]
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)
    everything = np.asarray(train(x, np.ones(8, bool)))[:5]
    assert not np.allclose(everything, alone, atol=1e-3)  # the mask is what keeps the other rows out


def test_every_training_row_is_in_every_epoch_in_pytorchs_batches():
    from launcher.core.trainer import batch_order

    batches = batch_order(130, 43, seed=3, epoch=2)  # 43, 43, 44: a lone last row joins the batch before
    rows, mask = loop.padded_batches(batches, 44)
    assert rows.shape == mask.shape == (3, 44)
    assert sorted(rows[mask > 0].tolist()) == list(range(130))
    assert [list(r[m > 0]) for r, m in zip(rows, mask)] == [list(b) for b in batches]


def test_regression_learns_and_reports_rmse_in_target_units(adapter):
    splits = replace(synthetic_splits(n=240, features=6, classes=0, seed=1), target_scale=50.0)
    model, history = fit(adapter, splits, {"type": "mlp", "hidden_sizes": [16], "dropout": 0.0}, max_epochs=4,
                         lr=0.02)
    last = history.epochs[-1]
    assert set(last) == {"epoch", "train_loss", "val_loss", "val_r2", "val_rmse", "lr", "seconds"}
    assert last["val_rmse"] == pytest.approx(last["val_loss"] ** 0.5 * 50.0, rel=1e-4)
    assert history.epochs[-1]["val_loss"] < history.epochs[0]["val_loss"]
    out = adapter.predict(model, splits.X_test)
    assert out.shape == (len(splits.X_test),) and np.corrcoef(out, splits.y_test)[0, 1] > 0.5


@pytest.mark.parametrize("name,program", [("mlp", "train_epoch"), ("cnn", "train_step")])
def test_an_epoch_never_recompiles(adapter, image_splits, name, program):
    """Compilations are counted by JAX's own monitoring: after the first epoch, none. An MLP's
    epoch is one program; a CNN's on a CPU one program per batch (the same program each time)."""
    compiles: list[str] = []

    def listener(event, duration, **kwargs):
        if event == loop.COMPILE_EVENT:
            compiles.append(event)

    at_epoch_end = []
    programs = getattr(loop, program)._cache_size()
    spec = {**ARCHITECTURES[name], "hidden_sizes": [6]}  # a network no other test compiles
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        _, history = fit(adapter, image_splits, spec, max_epochs=4, scheduler="cosine",
                         report=lambda epoch, m: at_epoch_end.append(len(compiles)))
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert at_epoch_end[0] >= 1 and at_epoch_end[1:] == [at_epoch_end[0]] * 3  # lr changes, nothing compiles
    assert getattr(loop, program)._cache_size() == programs + 1
    # the run's record counts the compilations of its epochs (the weights' initialisation is before)
    assert 1 <= history.extra["compilations"] <= at_epoch_end[0] and history.extra["compile_seconds"] > 0


def test_same_seed_same_run_and_another_seed_another(adapter, image_splits):
    m1, h1 = fit(adapter, image_splits, SPEC, seed=5)
    m2, h2 = fit(adapter, image_splits, SPEC, seed=5)
    m3, h3 = fit(adapter, image_splits, SPEC, seed=6)
    assert [e["val_loss"] for e in h1.epochs] == [e["val_loss"] for e in h2.epochs]
    np.testing.assert_array_equal(adapter.predict(m1, image_splits.X_test), adapter.predict(m2, image_splits.X_test))
    assert h1.epochs[-1]["val_loss"] != h3.epochs[-1]["val_loss"]


def test_best_and_last_checkpoints_are_written_in_the_run_dir(adapter, image_splits, tmp_path):
    from flax import serialization

    _, history = fit(adapter, image_splits, SPEC, workdir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.msgpack", "checksums.json", "last.msgpack"]
    assert history.extra["checkpoints"]["last"] == str(tmp_path / "checkpoints" / "last.msgpack")
    last = serialization.msgpack_restore((tmp_path / "checkpoints" / "last.msgpack").read_bytes())
    assert last["epoch"] == 2 and json.loads(last["recorder"])["epochs"][-1]["epoch"] == 2
    assert json.loads(last["launcher"])["spec"]["type"] == "mlp"
    assert {"params", "batch_stats", "opt_state", "rng"} <= set(last)
    assert last["opt_state"]["hyperparams/learning_rate"] == pytest.approx(0.01)
    best = serialization.msgpack_restore((tmp_path / "checkpoints" / "best.msgpack").read_bytes())
    assert best["epoch"] == history.best_epoch


def test_resume_two_then_four_epochs_matches_a_straight_four_epoch_run(adapter, image_splits, tmp_path):
    straight, h_straight = fit(adapter, image_splits, SPEC, tmp_path / "a", max_epochs=4)
    fit(adapter, image_splits, SPEC, tmp_path / "b", max_epochs=2)
    resumed, h_resumed = fit(adapter, image_splits, SPEC, tmp_path / "c", max_epochs=4,
                             resume_from=str(tmp_path / "b"))
    assert [e["epoch"] for e in h_resumed.epochs] == [1, 2, 3, 4]  # history continues across the resume
    assert [e["val_loss"] for e in h_resumed.epochs] == [e["val_loss"] for e in h_straight.epochs]
    assert h_resumed.best_epoch == h_straight.best_epoch
    np.testing.assert_array_equal(adapter.predict(straight, image_splits.X_test),
                                  adapter.predict(resumed, image_splits.X_test))
    assert h_resumed.extra["resumed_from"].endswith("b/checkpoints/last.msgpack")


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("scheduler,optimizer", [("cosine", "sgd"), ("plateau", "adamw")])
def test_an_interrupted_run_resumes_to_the_same_result(adapter, image_splits, tmp_path, scheduler, optimizer):
    trainer = {"max_epochs": 4, "scheduler": scheduler, "optimizer": optimizer, "grad_clip": 1.0,
               "weight_decay": 0.01, "warmup_epochs": 1, "early_stopping": {"enabled": True, "patience": 3}}
    straight, h_straight = fit(adapter, image_splits, SPEC, tmp_path / "a", **trainer)

    def crash_after_two(epoch, metrics):
        if epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        fit(adapter, image_splits, SPEC, tmp_path / "b", report=crash_after_two, **trainer)
    ckpt = tmp_path / "b" / "checkpoints" / "last.msgpack"
    resumed, h_resumed = fit(adapter, image_splits, SPEC, tmp_path / "c", resume_from=str(ckpt), **trainer)
    assert [(e["val_loss"], e["lr"]) for e in h_resumed.epochs] == [(e["val_loss"], e["lr"]) for e in h_straight.epochs]
    np.testing.assert_array_equal(adapter.predict(straight, image_splits.X_test),
                                  adapter.predict(resumed, image_splits.X_test))
    lrs = [e["lr"] for e in h_straight.epochs]
    assert lrs[0] == pytest.approx(0.005)  # warm-up: half the rate in the first of one warm-up epoch
    if scheduler == "cosine":
        assert lrs[-1] < lrs[1]


def test_resume_refuses_a_checkpoint_of_another_model_or_other_settings(adapter, image_splits, tmp_path):
    fit(adapter, image_splits, SPEC, tmp_path / "a", max_epochs=1)
    with pytest.raises(ConfigError, match="different model"):
        fit(adapter, image_splits, {**SPEC, "hidden_sizes": [8]}, resume_from=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match=r"other settings \(trainer.lr: 0.01 -> 0.5\)"):
        fit(adapter, image_splits, SPEC, lr=0.5, resume_from=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="no checkpoints/last.msgpack"):
        adapter.check(SPEC, image_splits.schema, settings(resume_from=str(tmp_path)))
    (tmp_path / "a" / "checkpoints" / "last.msgpack").write_bytes(b"\x93not a checkpoint")
    with pytest.raises(ConfigError, match="last.msgpack does not match its checksum"):
        fit(adapter, image_splits, SPEC, resume_from=str(tmp_path / "a"))


def test_a_pruned_trial_reaches_the_caller_as_trial_pruned(adapter, image_splits):
    optuna = pytest.importorskip("optuna")
    seen = []

    def report(epoch, metrics):
        seen.append((epoch, sorted(metrics)))
        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    with pytest.raises(optuna.TrialPruned):
        fit(adapter, image_splits, SPEC, report=report, max_epochs=3)
    assert seen == [(1, sorted(EPOCH_KEYS))]


def test_early_stopping_on_the_validation_metric(adapter, image_splits, trained):
    # a learning rate too small to change the accuracy: no improvement after epoch 1 (a network
    # without batch norm, whose running statistics would move it; compiled already by `trained`)
    _, history = fit(adapter, image_splits, ARCHITECTURES["rnn"], max_epochs=10, lr=1e-12,
                     early_stopping={"enabled": True, "patience": 2, "monitor": "val_accuracy"})
    assert len(history.epochs) == 3 and history.best_epoch == 1 and history.extra["stopped_early"]


def test_bf16_mixed_precision_trains_on_cpu(adapter, image_splits):
    model, history = fit(adapter, image_splits, SPEC, max_epochs=1, precision="bf16-mixed")
    assert history.extra["precision"] == "bf16-mixed"
    assert jax.tree.leaves(model.net)[0].dtype == np.float32  # the weights themselves stay float32
    assert np.isfinite(adapter.predict(model, image_splits.X_test)).all()


@pytest.mark.parametrize("spec,schema_shape,trainer,message", [
    ({"type": "cnn"}, None, {}, "model=cnn needs an image shape"),
    ({"type": "cnn", "channels": [4, 4, 4], "kernel_sizes": [3, 3, 3]}, (1, 4, 4), {}, "below 1x1"),
    ({"type": "rnn"}, None, {}, "model.encoding=features"),
    ({"type": "transformer", "d_model": 16, "heads": 3}, (4, 4), {}, "a divisor of d_model"),
    ({"type": "mlp"}, None, {"precision": "16-mixed"}, "use trainer.precision=bf16-mixed or 32"),
    ({"type": "mlp"}, None, {"optimizer": "lbfgs"}, "expected one of: adam, adamw, sgd"),
    ({"type": "mlp"}, None, {"early_stopping": {"enabled": True, "monitor": "val_r2"}},
     "does not apply to classification"),
])
def test_check_refuses_bad_input_before_training(adapter, spec, schema_shape, trainer, message):
    schema = DataSchema("classification", 16, [], [0, 1], schema_shape)
    with pytest.raises(ConfigError, match=message):
        adapter.check(spec, schema, settings(**trainer))


@pytest.mark.parametrize("device,message", [
    ({"name": "gpu", "accelerator": "gpu", "devices": 4, "strategy": "ddp"}, "framework=jax trains on one device"),
    ({"name": "cpu", "accelerator": "cpu", "devices": 1, "strategy": "ddp"}, "device.strategy=ddp is for"),
    ({"name": "mps", "accelerator": "mps", "devices": 1, "strategy": "auto"}, "expected one of: auto, cpu, gpu"),
])
def test_device_settings_jax_cannot_honour_are_refused(image_splits, device, message):
    with pytest.raises(ConfigError, match=message):
        FlaxAdapter(device=device).check({"type": "mlp"}, image_splits.schema, settings())


def test_save_and_load_without_pickle(adapter, image_splits, trained, tmp_path):
    model, _ = trained["cnn"]  # parameters and batch statistics
    adapter.save(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.msgpack", "network.json"]
    info = json.loads((tmp_path / "network.json").read_text())
    assert info["spec"]["type"] == "cnn" and info["schema"]["input_shape"] == [1, 4, 4]
    loaded = adapter.load(tmp_path)
    np.testing.assert_array_equal(adapter.predict(model, image_splits.X_test),
                                  adapter.predict(loaded, image_splits.X_test))
    original = (tmp_path / "model.msgpack").read_bytes()
    for damaged in (b"not msgpack", original[: len(original) // 2], original.replace(b"kernel", b"kernal", 1)):
        (tmp_path / "model.msgpack").write_bytes(damaged)
        with pytest.raises(ArtifactError, match="model.msgpack"):
            adapter.load(tmp_path)
    (tmp_path / "model.msgpack").write_bytes(original)
    info["spec"]["channels"] = [8]  # the weights of another network
    (tmp_path / "network.json").write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match=r"does not hold the weights of this cnn: .* expected float32\[8\]"):
        adapter.load(tmp_path)
    (tmp_path / "network.json").write_text("{")
    with pytest.raises(ArtifactError, match="network.json is unreadable"):
        adapter.load(tmp_path)


def test_a_plain_line_per_epoch_when_output_is_not_a_terminal(adapter, image_splits, caplog):
    with caplog.at_level(logging.INFO, logger="launcher"):
        fit(adapter, image_splits, SPEC)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  train_loss=") and "val_accuracy=" in lines[0]


def test_the_python_api_trains_evaluates_saves_and_loads(tmp_path):
    import launcher

    jaxfw = launcher.JAXFramework({"device": "cpu"})
    assert jaxfw.initialize().installed and jaxfw.adapter.preallocate is False
    model = jaxfw.create_model({"type": "mlp", "parameters": {"layer_sizes": [16, 16, 3], "dropout": 0.2,
                                                              "norm": "batch"}})
    X, y, X_test, y_test = held_out_classes(features=16, classes=3, informative=8)
    history = jaxfw.train_model(model, X, y, max_epochs=3, lr=0.01, batch_size=32)
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert jaxfw.predict(model, X_test).shape == (300, 3)
    # held-out rows: 0.90 measured; the majority class is 0.36 of them
    assert jaxfw.evaluate_model(model, X_test, y_test)["accuracy"] > 0.8
    jaxfw.save_model(model, tmp_path / "net")
    again = jaxfw.load_model(tmp_path / "net")
    np.testing.assert_allclose(jaxfw.predict(again, X_test), jaxfw.predict(model, X_test), rtol=1e-6)
