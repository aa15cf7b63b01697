"""A checked blueprint as two Hydra config files a person reads, commits and re-runs:

    conf/experiment/robot/<slug>.yaml       the data, the task, the framework, the first model,
                                            and every setting a trial runs with: the splits,
                                            cross-validation, threads, no model per trial
                                            (LHT-style, @package _global_)
    conf/hparams_search/robot/<slug>.yaml   the Optuna search: one trial draws a model family,
                                            then that family's keys (robot_search, drawn by
                                            launcher.robot.space.suggest), starting points
                                            queued first, a seeded sampler, a trial count

in the conf/ of the project directory (on Hydra's search path when a command runs from there).
Each file starts with a comment saying which task produced it, when, by which planner, and the
command that runs it. What belongs to one invocation only (the deadline, the sweep directory,
how many trials run at once) is never written here: it is on the command line the robot prints
(launcher.robot.commands). An existing file is never replaced silently: the same task gets a new
slug, or `overwrite=true` replaces it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from launcher.io import write_text
from launcher.metrics import DIRECTION
from launcher.robot.blueprint import Blueprint, Candidate
from launcher.robot.space import SEARCH_KEY, Bound, grammar, render, tunable
from launcher.robot.task import MLTask

SEARCH_FUNCTION = "launcher.robot.space.suggest"


# One thread per trial: the robot runs one trial per core side by side (the command line's
# hydra.launcher.n_jobs); on the 2-core machine this project measures on, that beats one trial
# on both cores, and an OpenMP estimator given 2 threads under a passive wait policy ran 6-8x
# slower (benchmarks/robot_threads.py).
THREADS_PER_TRIAL = 1


@dataclass
class Emitted:
    slug: str
    experiment: Path
    search: Path

    @property
    def command(self) -> str:
        """The search as the files alone define it (the robot's own invocation adds only a
        deadline, a sweep directory and parallel trials: launcher.robot.commands)."""
        return f"python -m launcher -m experiment=robot/{self.slug} hparams_search=robot/{self.slug}"


def slugify(text: str, most: int = 40) -> str:
    """Lower-case words joined by `_`, cut at a word boundary within `most` characters."""
    slug = ""
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        longer = f"{slug}_{word}" if slug else word
        if len(longer) > most:
            if not slug:  # one very long word: cut it
                slug = word[:most]
            break
        slug = longer
    return slug or "task"


def free_slug(conf: Path, base: str, overwrite: bool) -> str:
    """`base`, or base_2, base_3 ... : the first whose files do not exist yet (overwrite: base)."""
    if overwrite:
        return base
    n, slug = 1, base
    while (conf / "experiment" / "robot" / f"{slug}.yaml").exists() or \
            (conf / "hparams_search" / "robot" / f"{slug}.yaml").exists():
        n += 1
        slug = f"{base}_{n}"
    return slug


def candidate_overrides(c: Candidate) -> list[str]:
    """The overrides of a candidate's starting point: its model option and start values."""
    return [f"model={c.model}", *(f"{k}={render(v)}" for k, v in c.start_values.items())]


def search_lines(framework: str, c: Candidate) -> dict[str, str]:
    """The candidate's searched keys in the sweeper's grammar (bounded by the registry)."""
    keys = tunable(framework, c.model)
    out = {}
    for key, rng in c.ranges.items():
        bound: Bound = keys[key]
        out[key] = grammar(bound, rng.low, rng.high, rng.log, rng.choices)
    return out


def header(task: MLTask, planner: str, slug: str, what: str) -> str:
    # The description is the user's text in a comment: one line, no control characters
    # (clean_description), so it cannot end the comment and start YAML.
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    description = task.description.replace("\n", " ")
    if len(description) > 100:
        description = description[:97] + "..."
    return "\n".join([
        "# @package _global_",
        f"# {what}, written by launcher's robot on {when}",
        f"# for the task: {description!r}",
        f"# planner: {planner}",
        "# Run it from the directory that holds this conf/ folder:",
        f"#   python -m launcher -m experiment=robot/{slug} hparams_search=robot/{slug}",
        "# (the robot ran it with a deadline, a sweep directory and parallel trials added on its",
        "# command line; its report.md has that exact command). Review it and commit it with your",
        "# code: it names only the launcher's own options.",
    ]) + "\n"


def experiment_yaml(bp: Blueprint, task: MLTask, planner: str, slug: str, data: dict[str, Any]) -> str:
    from omegaconf import OmegaConf

    first = bp.candidates[0]
    body: dict[str, Any] = {
        "defaults": [{"override /framework": bp.framework}, {"override /model": first.model},
                     {"override /data": data["option"]}, {"override /task": bp.task}],
    }
    # Every row takes part in selection: cross-validation over all of them, or a validation
    # split when the plan has no folds; the robot keeps no test split (its estimate of the final
    # model's score is corrected for selection instead: report.md).
    body["data"] = {**(data.get("values") or {}), "test_size": 0, "val_size": 0 if bp.cv_folds else 0.2}
    body["task"] = {"metric": bp.metric}
    body["trainer"] = {"cv_folds": bp.cv_folds, "num_threads": THREADS_PER_TRIAL}
    if bp.framework == "sklearn":
        body["framework"] = {"n_jobs": THREADS_PER_TRIAL}
    # Trials are compared, not kept: the final model is fitted once, on every row, afterwards.
    body["save_model"] = False
    body["plots"] = False
    text = OmegaConf.to_yaml(OmegaConf.create(body), sort_keys=False)
    return header(task, planner, slug, "An experiment") + text


def search_yaml(bp: Blueprint, task: MLTask, planner: str, slug: str, seed: int, baseline: str | None = None) -> str:
    from omegaconf import OmegaConf

    from launcher.sweeper.search_space import encode_choice, parse_search_space

    families = {c.model: search_lines(bp.framework, c) for c in bp.candidates}
    enqueue = []
    # Starting points, one family after another: each family gets its first trial before any
    # family gets its second, so the sampler sees every family before it chooses. The
    # `baseline` family's first point is not queued: the robot's baseline run is that trial.
    rounds = max(len(c.start_points) for c in bp.candidates)
    for i in range(rounds):
        for c in bp.candidates:
            if i >= len(c.start_points) or (i == 0 and c.model == baseline):
                continue
            space = parse_search_space(families[c.model], [])
            point: dict[str, Any] = {"model": c.model}
            for key, value in c.start_points[i].items():
                dist = space.distributions.get(key)
                point[key] = encode_choice(value) if dist is not None and hasattr(dist, "choices") else value
            enqueue.append(point)
    sweeper: dict[str, Any] = {
        "direction": DIRECTION[bp.metric],
        "n_trials": bp.n_trials,
        "study_name": f"robot_{slug}",
        "max_failure_rate": 0.5,
        # TPE samples at random until it has seen the starting points and one random trial per
        # family more; then it models the space.
        "sampler": {"seed": seed, "multivariate": True, "group": True,
                    "n_startup_trials": len(enqueue) + len(bp.candidates)},
        "custom_search_space": SEARCH_FUNCTION,
        "enqueue_trials": enqueue,
    }
    body = {
        "defaults": [{"override /hydra/sweeper": "optuna"}, {"override /hydra/sweeper/sampler": "tpe"}],
        "hydra": {"sweeper": sweeper},
        SEARCH_KEY: families,
    }
    text = OmegaConf.to_yaml(OmegaConf.create(body), sort_keys=False)
    note = ("# robot_search: each trial draws one model option, then that option's keys, in the\n"
            "# sweeper's grammar (custom_search_space: launcher.robot.space.suggest).\n")
    if baseline:
        note += (f"# {baseline}'s starting point is not queued here: the robot ran it as its baseline\n"
                 "# (the first command in its report.md).\n")
    return header(task, planner, slug, "An Optuna search") + note + text


def emit(bp: Blueprint, task: MLTask, planner: str, conf: Path, *, seed: int = 0, overwrite: bool = False,
         suffix: str = "", baseline: str | None = None) -> Emitted:
    from launcher.core.errors import ConfigError

    slug = free_slug(conf, slugify(task.description) + suffix, overwrite)
    experiment = conf / "experiment" / "robot" / f"{slug}.yaml"
    search = conf / "hparams_search" / "robot" / f"{slug}.yaml"
    data = task.dataset.section()
    try:
        write_text(experiment, experiment_yaml(bp, task, planner, slug, data))
        try:
            write_text(search, search_yaml(bp, task, planner, slug, seed, baseline))
        except OSError:
            experiment.unlink(missing_ok=True)  # both files or neither
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the robot's configs into {conf} ({exc.strerror or exc}); run from a "
                          "project directory you can write to, or give one: project_dir=<dir>") from None
    return Emitted(slug, experiment, search)
