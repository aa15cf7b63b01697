"""A blueprint is checked before anything is written or run.

1. Against the registry: the framework is one this version has and can use here; every model is
   an option of the config tree that this framework builds for the task; every tuned key is one
   of that model's keys in launcher.robot.space, every number within its bounds, every choice
   among its listed values; the starting point lies in the searched range.
2. As Hydra overrides: each rendered override is parsed by Hydra's own parser and refused if it
   adds, deletes or force-adds (`+`, `~`, `++`), touches `hydra.*` or a `_target_`, holds an
   interpolation or resolver (`${...}`) or a path.
3. Composed: the overrides of every candidate's starting point are composed with the config
   tree, as `python -m launcher` would, so an unknown group, option or key fails here.

Any failure raises BlueprintRejected with every reason found; a rejected blueprint never runs.
"""
from __future__ import annotations

import math
import re
from typing import Any

from launcher.core.errors import LauncherError
from launcher.metrics import TASK_METRICS
from launcher.robot.blueprint import Blueprint
from launcher.robot.space import Bound, render, tunable
from launcher.robot.task import MLTask

SAFE_TEXT = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")


class BlueprintRejected(LauncherError):
    """A plan that names something the project does not have, or leaves the bounds."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("the blueprint was rejected: " + "; ".join(reasons))


def check(blueprint: Blueprint, task: MLTask, data_overrides: list[str]) -> Blueprint:
    """The blueprint if it passes every check; BlueprintRejected with the reasons otherwise."""
    reasons = registry_reasons(blueprint, task)
    if not reasons:
        reasons = override_reasons(blueprint)
    if not reasons:
        reasons = compose_reasons(blueprint, task, data_overrides)
    if reasons:
        raise BlueprintRejected(reasons)
    return blueprint


def registry_reasons(bp: Blueprint, task: MLTask) -> list[str]:
    from launcher.core.paths import config_file, config_options
    from launcher.frameworks import registry

    reasons: list[str] = []
    if bp.task != task.task_type:
        reasons.append(f"task {bp.task!r} is not the task's {task.task_type!r}")
    if bp.metric not in TASK_METRICS.get(bp.task, ()):
        reasons.append(f"metric {bp.metric!r} does not apply to {bp.task}")
    if bp.framework not in registry.available():
        reasons.append(f"framework {bp.framework!r} is not one of {registry.available()}")
        return reasons
    adapter_cls = registry.adapter_class(bp.framework)
    models = config_options("model")
    seen = set()
    for c in bp.candidates:
        where = f"candidate {c.model!r}"
        if c.model in seen:
            reasons.append(f"{where} appears twice")
        seen.add(c.model)
        if c.model not in models:
            reasons.append(f"{where}: no model option {c.model!r} (options: {', '.join(models)})")
            continue
        from omegaconf import OmegaConf

        spec = OmegaConf.to_container(OmegaConf.load(config_file("model", c.model)))
        if spec.get("type") not in adapter_cls.model_types:
            reasons.append(f"{where}: framework {bp.framework} cannot build it")
            continue
        if bp.task not in model_tasks(bp.framework, spec):
            reasons.append(f"{where}: it cannot do {bp.task} (it does: {', '.join(model_tasks(bp.framework, spec))})")
            continue
        keys = tunable(bp.framework, c.model)
        if len(c.ranges) != len(c.params) or len(c.start_values) != len(c.start) or any(
                len({v.key for v in p.values}) != len(p.values) for p in c.alternatives):
            reasons.append(f"{where}: a key is listed twice")
        for key, rng in c.ranges.items():
            bound = keys.get(key)
            if bound is None:
                reasons.append(f"{where}: {key!r} is not a key this model may tune (allowed: {', '.join(keys) or 'none'})")
                continue
            reasons += [f"{where}: {key} {r}" for r in _range_reasons(rng, bound)]
        for point in c.start_points:
            for key, value in point.items():
                bound = keys.get(key)
                if bound is None:
                    reasons.append(f"{where}: start value for unknown key {key!r}")
                elif not bound.contains(value):
                    reasons.append(f"{where}: start {key}={value!r} is outside {_describe(bound)}")
                elif key in c.ranges and not _in_range(value, c.ranges[key], bound):
                    reasons.append(f"{where}: start {key}={value!r} is outside the searched range")
    return reasons


def model_tasks(framework: str, spec: dict[str, Any]) -> tuple[str, ...]:
    """The tasks a model config can do in a framework: a scikit-learn estimator's from its
    per-task classes (ridge: regression only); a network does classification and regression."""
    if framework == "sklearn":
        from launcher.frameworks.sklearn import estimator_tasks

        return estimator_tasks(spec)
    return ("classification", "regression")


def _range_reasons(rng: Any, bound: Bound) -> list[str]:
    if bound.kind == "choice":
        if rng.low is not None or rng.high is not None:
            return [f"takes choices, not a low/high range ({_describe(bound)})"]
        bad = [c for c in (rng.choices or []) if not bound.contains(c)]
        return [f"choices {bad!r} are not among {_describe(bound)}"] if bad else []
    if rng.choices is not None:
        bad = [c for c in rng.choices if not bound.contains(c)]
        return [f"choices {bad!r} are outside {_describe(bound)}"] if bad else []
    reasons = []
    for name in ("low", "high"):
        value = getattr(rng, name)
        if value is None:
            continue
        if bound.kind == "int" and math.isfinite(value) and not float(value).is_integer():
            reasons.append(f"{name}={value!r} is not a whole number (the key takes integers)")
        elif not math.isfinite(value) or not bound.contains(int(value) if bound.kind == "int" else value):
            reasons.append(f"{name}={value!r} is outside {_describe(bound)}")
    low = bound.low if rng.low is None else rng.low
    high = bound.high if rng.high is None else rng.high
    if low > high:
        reasons.append(f"low={low} is above high={high}")
    if rng.log and low <= 0:
        reasons.append("a log scale needs low > 0")
    return reasons


def _in_range(value: Any, rng: Any, bound: Bound) -> bool:
    if bound.kind == "choice" or rng.choices is not None:
        choices = rng.choices if rng.choices is not None else list(bound.choices)
        return render(value) in {render(c) for c in choices}
    low = bound.low if rng.low is None else rng.low
    high = bound.high if rng.high is None else rng.high
    return low <= value <= high


def _describe(bound: Bound) -> str:
    if bound.kind == "choice":
        return "the choices " + ", ".join(render(c) for c in bound.choices)
    return f"[{render(bound.low)}, {render(bound.high)}]"


def override_reasons(bp: Blueprint) -> list[str]:
    """Every override the blueprint renders, parsed by Hydra and held to the rules above."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    from launcher.robot.emit import candidate_overrides, search_lines

    reasons = []
    lines = [f"framework={bp.framework}"]
    for c in bp.candidates:
        lines += candidate_overrides(c)
        lines += [f"{k}={v}" for k, v in search_lines(bp.framework, c).items()]
    parser = OverridesParser.create()
    for line in lines:
        try:
            override = parser.parse_overrides([line])[0]
        except Exception as exc:
            reasons.append(f"{line!r} is not a valid override: {str(exc).splitlines()[0]}")
            continue
        key = override.get_key_element()
        if override.type != OverrideType.CHANGE:
            reasons.append(f"{line!r} adds or deletes a key (+, ~, ++): only existing keys may be set")
        if key.startswith("hydra") or "_target_" in key or "${" in line or "/" in key:
            reasons.append(f"{line!r} reaches outside the model and trainer settings")
        value = line.partition("=")[2]
        if "${" in value or "/" in value or "\\" in value:
            reasons.append(f"{line!r} holds an interpolation or a path")
    return reasons


def compose_reasons(bp: Blueprint, task: MLTask, data_overrides: list[str]) -> list[str]:
    """Compose each candidate's starting point with the config tree, as a run would."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from launcher.robot.emit import candidate_overrides

    reasons = []
    base = [f"framework={bp.framework}", f"task={bp.task}", f"task.metric={bp.metric}", *data_overrides]
    saved = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    try:
        for c in bp.candidates:
            GlobalHydra.instance().clear()
            try:
                with initialize_config_module(config_module="launcher.conf", version_base="1.3"):
                    compose("train", overrides=[*base, *candidate_overrides(c)])
            except Exception as exc:
                reasons.append(f"candidate {c.model!r} does not compose: {str(exc).splitlines()[0]}")
    finally:
        GlobalHydra.instance().clear()
        if saved is not None:
            GlobalHydra.instance().initialize(saved)
    return reasons


def safe_text(value: Any) -> bool:
    return isinstance(value, str) and bool(SAFE_TEXT.match(value))
