"""A checked blueprint as two Hydra config files a person reads, commits and re-runs:

    conf/experiment/robot/<slug>.yaml       the data, the task, the framework, the first model,
                                            the trainer settings (LHT-style, @package _global_)
    conf/hparams_search/robot/<slug>.yaml   the Optuna search: one trial draws a model family,
                                            then that family's keys (robot_search, drawn by
                                            launcher.robot.space.suggest), starting points
                                            queued first, the budget as the sweep's timeout

in the conf/ of the directory the command runs from (on Hydra's search path there). Each file
starts with a comment saying which task produced it, when, by which planner, and the command
that runs it. An existing file is never replaced silently: the same task gets a new slug, or
`overwrite=true` replaces it.
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


@dataclass
class Emitted:
    slug: str
    experiment: Path
    search: Path

    @property
    def command(self) -> str:
        return f"python -m launcher -m +experiment=robot/{self.slug} hparams_search=robot/{self.slug}"


def slugify(text: str, most: int = 40) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = "_".join(words)[:most].strip("_")
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
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    description = task.description.replace("\n", " ")
    if len(description) > 100:
        description = description[:97] + "..."
    return "\n".join([
        "# @package _global_",
        f"# {what}, written by launcher's robot on {when}",
        f"# for the task: {description!r}",
        f"# planner: {planner}",
        "# Run it:",
        f"#   python -m launcher -m +experiment=robot/{slug} hparams_search=robot/{slug}",
        "# Review it and commit it with your code: it names only the launcher's own options.",
    ]) + "\n"


def experiment_yaml(bp: Blueprint, task: MLTask, planner: str, slug: str, data: dict[str, Any]) -> str:
    from omegaconf import OmegaConf

    first = bp.candidates[0]
    body: dict[str, Any] = {
        "defaults": [{"override /framework": bp.framework}, {"override /model": first.model},
                     {"override /data": data["option"]}, {"override /task": bp.task}],
    }
    if data.get("values"):
        body["data"] = data["values"]
    body["task"] = {"metric": bp.metric}
    trainer: dict[str, Any] = {}
    if bp.cv_folds:
        trainer["cv_folds"] = bp.cv_folds
    if trainer:
        body["trainer"] = trainer
    text = OmegaConf.to_yaml(OmegaConf.create(body), sort_keys=False)
    return header(task, planner, slug, "An experiment") + text


def search_yaml(bp: Blueprint, task: MLTask, planner: str, slug: str, timeout: float | None, seed: int) -> str:
    from omegaconf import OmegaConf

    from launcher.sweeper.search_space import encode_choice, parse_search_space

    families = {c.model: search_lines(bp.framework, c) for c in bp.candidates}
    enqueue = []
    # Starting points, one family after another: each family gets its first trial before any
    # family gets its second, so the sampler sees every family before it chooses.
    rounds = max(len(c.start_points) for c in bp.candidates)
    for i in range(rounds):
        for c in bp.candidates:
            if i >= len(c.start_points):
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
    if timeout:
        sweeper["timeout"] = round(float(timeout), 1)
    body = {
        "defaults": [{"override /hydra/sweeper": "optuna"}, {"override /hydra/sweeper/sampler": "tpe"}],
        "hydra": {"sweeper": sweeper},
        SEARCH_KEY: families,
    }
    text = OmegaConf.to_yaml(OmegaConf.create(body), sort_keys=False)
    note = ("# robot_search: each trial draws one model option, then that option's keys, in the\n"
            "# sweeper's grammar (custom_search_space: launcher.robot.space.suggest).\n")
    return header(task, planner, slug, "An Optuna search") + note + text


def emit(bp: Blueprint, task: MLTask, planner: str, conf: Path, data: dict[str, Any], *, timeout: float | None,
         seed: int = 0, overwrite: bool = False, suffix: str = "") -> Emitted:
    slug = free_slug(conf, slugify(task.description) + suffix, overwrite)
    experiment = conf / "experiment" / "robot" / f"{slug}.yaml"
    search = conf / "hparams_search" / "robot" / f"{slug}.yaml"
    write_text(experiment, experiment_yaml(bp, task, planner, slug, data))
    write_text(search, search_yaml(bp, task, planner, slug, timeout, seed))
    return Emitted(slug, experiment, search)
