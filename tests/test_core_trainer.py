"""The framework-free training core: settings validation, schedules, batch order, the epoch
record, checkpoint timing. Every neural adapter relies on these meaning one thing."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from launcher.core.errors import ConfigError
from launcher.core.trainer import (CheckpointPolicy, EpochDisplay, EpochRecorder, LRSchedule, TrainerSettings,
                                   batch_order, epoch_line)

DEFAULT = {"max_epochs": 20, "batch_size": 64, "optimizer": "adam", "lr": 0.001,
           "early_stopping": {"enabled": True, "patience": 5, "monitor": "val_loss"}}


def test_the_shipped_trainer_config_is_valid_as_it_is():
    from omegaconf import OmegaConf

    from launcher.core.paths import CONFIG_DIR

    config = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "trainer" / "default.yaml"))
    s = TrainerSettings.from_config(config, seed=42)
    assert (s.max_epochs, s.batch_size, s.optimizer, s.precision, s.seed) == (20, 64, "adam", "32", 42)
    assert s.early_stopping and s.patience == 5 and s.monitor == "val_loss" and s.mode == "min"


@pytest.mark.parametrize("override,message", [
    ({"max_epochs": "abc"}, "trainer.max_epochs='abc' is invalid; expected a positive integer"),
    ({"max_epochs": 0}, "trainer.max_epochs=0 is invalid"),
    ({"max_epochs": True}, "trainer.max_epochs=True is invalid"),
    ({"batch_size": 2.5}, "trainer.batch_size=2.5 is invalid"),
    ({"lr": -0.1}, "trainer.lr=-0.1 is invalid; expected a positive number"),
    ({"lr": "fast"}, "trainer.lr='fast' is invalid"),
    ({"optimizer": "lbfgs"}, "trainer.optimizer='lbfgs' is unknown; expected one of: adam, adamw, sgd"),
    ({"scheduler": "onecycle"}, "expected one of: none, cosine, step, plateau"),
    ({"precision": "64"}, "expected one of: 32, bf16-mixed, 16-mixed"),
    ({"grad_clip": 0}, "trainer.grad_clip=0 is invalid"),
    ({"momentum": 1.5}, "trainer.momentum=1.5 is invalid"),
    ({"weight_decay": -1}, "trainer.weight_decay=-1.0 is invalid"),
    ({"warmup_epochs": 20}, "leaves no epoch after the warm-up"),
    ({"cv_folds": 1}, "trainer.cv_folds=1 is invalid; expected an integer >= 2"),
    ({"early_stopping": {"enabled": "yes"}}, "trainer.early_stopping.enabled='yes' is invalid; expected true or false"),
    ({"early_stopping": {"monitor": "val_f1"}}, "expected one of: val_loss, val_accuracy, val_r2, val_rmse"),
    ({"early_stopping": {"patince": 3}}, "trainer.early_stopping.patince is not a setting"),
    ({"epochs": 3}, "trainer.epochs is not a trainer setting; expected one of:"),
])
def test_bad_settings_are_refused_with_the_key_and_what_would_be_right(override, message):
    with pytest.raises(ConfigError) as err:
        TrainerSettings.from_config({**DEFAULT, **override}, seed=0)
    assert message in str(err.value)


def test_a_bad_seed_is_refused():
    with pytest.raises(ConfigError, match="seed='x' is invalid"):
        TrainerSettings.from_config(DEFAULT, seed="x")


def test_the_monitor_must_exist_for_the_task():
    s = TrainerSettings.from_config({**DEFAULT, "early_stopping": {"monitor": "val_r2"}}, 0)
    s.check_task("regression")
    with pytest.raises(ConfigError, match="val_r2 does not apply to classification"):
        s.check_task("classification")


def lrs(**kw):
    s = TrainerSettings(**{"max_epochs": 6, "lr": 1.0, **kw})
    schedule = LRSchedule(s)
    return [schedule.lr(e) for e in range(1, s.max_epochs + 1)]


def test_learning_rate_schedules():
    assert lrs() == [1.0] * 6
    cosine = lrs(scheduler="cosine")
    assert cosine[0] == 1.0 and all(a > b for a, b in zip(cosine, cosine[1:])) and cosine[-1] > 0
    assert cosine[3] == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 6)))
    assert lrs(scheduler="step") == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    warm = lrs(scheduler="cosine", warmup_epochs=2)
    assert warm[:3] == pytest.approx([1 / 3, 2 / 3, 1.0]) and warm[3] < 1.0


def test_plateau_halves_after_two_epochs_without_a_lower_loss_and_resumes_its_state():
    schedule = LRSchedule(TrainerSettings(scheduler="plateau", lr=1.0))
    seen = []
    for loss in (1.0, 0.9, 0.95, 0.96, 0.97, 0.5):
        seen.append(schedule.lr(len(seen) + 1))
        schedule.observe(loss)
    assert seen == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    again = LRSchedule(TrainerSettings(scheduler="plateau", lr=1.0))
    again.load_state_dict(schedule.state_dict())
    assert again.lr(7) == schedule.lr(7) and again.bad_epochs == schedule.bad_epochs


def test_batch_order_is_a_function_of_seed_and_epoch():
    a = batch_order(10, 4, seed=1, epoch=3)
    assert [len(b) for b in a] == [4, 4, 2]
    assert sorted(np.concatenate(a).tolist()) == list(range(10))
    assert all((x == y).all() for x, y in zip(a, batch_order(10, 4, seed=1, epoch=3)))
    assert not (np.concatenate(a) == np.concatenate(batch_order(10, 4, seed=1, epoch=4))).all()
    assert not (np.concatenate(a) == np.concatenate(batch_order(10, 4, seed=2, epoch=3))).all()
    assert [len(b) for b in batch_order(9, 4, 0, 1)] == [4, 5]  # a lone last row joins the batch before
    assert [len(b) for b in batch_order(10, 4, 0, 1, last="drop")] == [4, 4]  # fixed shapes
    assert np.concatenate(batch_order(5, 2, 0, 1, shuffle=False)).tolist() == [0, 1, 2, 3, 4]


def test_the_recorder_tracks_the_best_epoch_stops_on_patience_and_reports():
    s = TrainerSettings(max_epochs=10, patience=2, monitor="val_accuracy")
    reports, recorded = [], []
    recorder = EpochRecorder(s, report=lambda epoch, row: reports.append(epoch))
    stops = []
    for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.65], start=1):
        stops.append(recorder.end_epoch({"epoch": epoch, "val_accuracy": acc},
                                        lambda improved, final: recorded.append((improved, final))))
    assert stops == [False, False, False, True]
    assert recorded == [(True, False), (True, False), (False, False), (False, True)]
    assert recorder.best_epoch == 2 and recorder.best_score == 0.7 and recorder.stopped_early
    assert reports == [1, 2, 3, 4]
    again = EpochRecorder(s)
    again.load_state_dict(recorder.state_dict())
    assert (again.next_epoch, again.best_epoch, again.wait) == (5, 2, 2)


def test_the_checkpoint_is_written_before_a_report_can_stop_the_run():
    order = []

    def report(epoch, row):
        order.append("report")
        raise RuntimeError("pruned")

    recorder = EpochRecorder(TrainerSettings(), report=report)
    with pytest.raises(RuntimeError):
        recorder.end_epoch({"epoch": 1, "val_loss": 1.0}, lambda improved, final: order.append("checkpoint"))
    assert order == ["checkpoint", "report"]


def test_checkpoint_policy_keeps_writes_within_their_budget():
    policy = CheckpointPolicy(budget=0.05)
    assert policy.due(0.015, final=False)  # the first epoch is always written
    policy.wrote(0.002)
    due = []
    for _ in range(6):
        due.append(policy.due(0.015, final=False))
        if due[-1]:
            policy.wrote(0.002)
    assert due == [False, False, True, False, False, True]  # 0.002 s is 5% of 0.04 s of training
    assert policy.due(0.015, final=True)  # the last epoch is always written
    slow = CheckpointPolicy(budget=0.05)
    slow.due(2.0, False)
    slow.wrote(0.002)
    assert slow.due(2.0, False)  # long epochs: every epoch


def test_epoch_lines_are_one_based_and_go_to_the_log(caplog):
    assert epoch_line({"epoch": 3, "train_loss": 0.5, "val_loss": float("nan"), "seconds": 0.25}, 20) == \
        "epoch 3/20  train_loss=0.5000  (0.25s)"
    with caplog.at_level(logging.INFO, logger="launcher"), EpochDisplay(20, "test", bar=False) as display:
        display.epoch({"epoch": 1, "val_loss": 0.25})
    assert [r.getMessage() for r in caplog.records] == ["epoch 1/20  val_loss=0.2500  (0.00s)"]
