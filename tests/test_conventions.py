"""lightning-hydra-template's conventions: `experiment=<name>` without `+` (an `experiment: null`
default placed after `_self_`, so the experiment's values win), `+experiment=` answered with the
fix in one line, and an optional per-machine `conf/local/default.yaml` kept out of git."""
from __future__ import annotations

import json

from helpers import run_cli


def test_an_experiment_is_chosen_without_plus_and_its_values_win(make_cfg):
    cfg = make_cfg("experiment=digits_cnn")
    assert cfg.framework.name == "pytorch" and cfg.model.name == "cnn" and cfg.data.name == "digits"
    assert cfg.trainer.scheduler == "cosine"  # the experiment's value, over the trainer group's default
    again = make_cfg("experiment=digits_cnn", "trainer.scheduler=step", run="run2")
    assert again.trainer.scheduler == "step"  # the command line still wins


def test_the_old_plus_form_gets_the_fix_in_one_line(tmp_path):
    res = run_cli("+experiment=digits_cnn", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == ("error: experiment is chosen without '+': experiment=digits_cnn "
                                  "(+experiment=digits_cnn is the old form, from when experiment had no default)")


def test_a_local_config_applies_on_this_machine_only(tmp_path):
    (tmp_path / "conf" / "local").mkdir(parents=True)
    (tmp_path / "conf" / "local" / "default.yaml").write_text("# @package _global_\nseed: 7\nsave_model: false\n")
    res = run_cli("hydra.run.dir=run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["seed"] == 7
    assert not (tmp_path / "run" / "model").exists()
    # without the file the shipped defaults hold
    (tmp_path / "conf" / "local" / "default.yaml").unlink()
    res = run_cli("hydra.run.dir=run2", cwd=tmp_path)
    assert res.returncode == 0 and json.loads((tmp_path / "run2" / "metrics.json").read_text())["seed"] == 42
