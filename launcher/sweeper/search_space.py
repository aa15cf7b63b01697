"""hydra-optuna-sweeper's search-space grammar, mapped onto current Optuna distributions.

    choice(a, b, c)                 categorical (lists and dicts travel as override strings)
    range(start, stop[, step])      stepped int/float; stop included, as hydra-optuna-sweeper
                                    does, except for the grid sampler (stop excluded, as there)
    shuffle(range(...))             categorical over the range's values (stop excluded)
    interval(low, high)             float, uniform
    int(interval(low, high))        int, uniform
    tag(log, interval(low, high))   log scale (int when both bounds are ints)
    ~key, ~key=value                the key is deleted in every trial
    anything else                   a fixed value passed to every trial

and the deprecated ``search_space:`` form, {name: {type: int|float|categorical, low, high,
step, log, choices}}.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from launcher.core.errors import ConfigError
from launcher.sweeper import compat


@dataclass
class SearchSpace:
    distributions: dict[str, Any] = field(default_factory=dict)  # key -> optuna distribution
    fixed: dict[str, str] = field(default_factory=dict)  # key -> override value string
    deletions: list[str] = field(default_factory=list)  # "~key" / "~key=value" overrides, as given

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """Override strings for one trial: the fixed values, then the trial's parameters."""
        values = dict(self.fixed)
        values.update({name: render_value(value) for name, value in params.items()})
        return [*self.deletions, *(f"{name}={value}" for name, value in values.items())]


def render_value(value: Any) -> str:
    """A sampled value as Hydra override text. Strings stay as given: a categorical choice is
    already in override form (a list choice arrives as the string "[64,32]")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return compat.override_text(value)


def encode_choice(value: Any) -> Any:
    """A user-given value (e.g. an enqueued point) in the form the distribution holds."""
    from hydra.core.override_parser.types import Transformer

    if value is None:
        return "null"
    return Transformer.encode(value)


def parse_search_space(
    params: Mapping[str, Any] | None, arguments: Sequence[str], grid: bool = False
) -> SearchSpace:
    """params (hydra.sweeper.params) first, then the command line's overrides, which win.
    ``grid``: ranges exclude their stop, as hydra-optuna-sweeper's grid does."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{key}={_config_value(value)}" for key, value in (params or {}).items()]
    lines.extend(arguments)
    space = SearchSpace()
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        space.distributions.pop(key, None)
        space.fixed.pop(key, None)
        if override.is_delete():
            space.deletions.append(override.input_line)
        elif override.is_sweep_override():
            space.distributions[key] = distribution_from_override(override, include_stop=not grid)
        else:
            space.fixed[key] = override.get_value_element_as_str()
    return space


def _config_value(value: Any) -> str:
    # A search config holds grammar strings ("interval(0.1, 1)") or plain values (lists, numbers).
    if isinstance(value, str):
        return value
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return render_value(value)


def distribution_from_override(override: Any, include_stop: bool = True) -> Any:
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key = override.get_key_element()
    if override.is_choice_sweep() or (override.is_range_sweep() and override.value().shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        return _range(key, override.input_line, override.value(), include_stop)
    if override.is_interval_sweep():
        sweep = override.value()
        log = "log" in sweep.tags
        if sweep.start is None or sweep.end is None or sweep.start > sweep.end:
            raise ConfigError(f"{key}: interval needs low <= high, got {override.input_line!r}")
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return IntDistribution(sweep.start, sweep.end, log=log)
        return FloatDistribution(float(sweep.start), float(sweep.end), log=log)
    raise ConfigError(
        f"{key}: {override.input_line!r} is not supported by the Optuna sweeper; use choice(...), "
        "range(...), interval(...), int(interval(...)), tag(log, interval(...)) or a fixed value"
    )


def _range(key: str, line: str, sweep: Any, include_stop: bool) -> Any:
    """range(start, stop, step) as a stepped distribution from start: stop included when a
    whole number of steps reaches it (Optuna would otherwise shorten the range with a warning)."""
    from optuna.distributions import FloatDistribution, IntDistribution

    start, stop, step = sweep.start, sweep.stop, sweep.step
    if start is None or stop is None or not step or (stop - start) * step <= 0:
        raise ConfigError(f"{key}: {line!r} is an empty range; range(start, stop[, step]) "
                          "needs stop beyond start in the direction of step")
    low, high, step = (start, stop, step) if step > 0 else (stop, start, -step)
    floats = any(isinstance(v, float) for v in (start, stop, step))
    steps = (high - low) / step
    whole = math.floor(steps + 1e-9)
    if not include_stop and abs(steps - round(steps)) < 1e-9:
        whole = round(steps) - 1  # Hydra's own range: stop is not a value
    if floats:
        return FloatDistribution(float(low), float(low + whole * step), step=float(step))
    return IntDistribution(int(low), int(low + whole * step), step=int(step))


def distribution_from_config(name: str, spec: Mapping[str, Any]) -> Any:
    """hydra-optuna-sweeper's deprecated ``search_space`` entry: {type, low, high, step, log,
    choices} -> an Optuna distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    spec = dict(spec)
    kind = getattr(spec.get("type"), "name", spec.get("type"))
    unknown = sorted(set(spec) - {"type", "choices", "low", "high", "log", "step"})
    if unknown or kind not in ("int", "float", "categorical"):
        raise ConfigError(f"hydra.sweeper.search_space.{name}: expected {{type: int|float|"
                          f"categorical, low, high, step, log, choices}}, got {spec}")
    if kind == "categorical":
        if not spec.get("choices"):
            raise ConfigError(f"hydra.sweeper.search_space.{name}: categorical needs choices")
        return CategoricalDistribution(list(spec["choices"]))
    if spec.get("low") is None or spec.get("high") is None:
        raise ConfigError(f"hydra.sweeper.search_space.{name}: {kind} needs low and high")
    log, step = bool(spec.get("log")), spec.get("step")
    if kind == "int":
        if log:
            return IntDistribution(int(spec["low"]), int(spec["high"]), log=True)
        return IntDistribution(int(spec["low"]), int(spec["high"]), step=int(step or 1))
    if log:
        return FloatDistribution(float(spec["low"]), float(spec["high"]), log=True)
    return FloatDistribution(float(spec["low"]), float(spec["high"]),
                             step=float(step) if step is not None else None)


def grid_of(distributions: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The value grid of a discrete search space, for optuna.samplers.GridSampler."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    grid: dict[str, list[Any]] = {}
    for name, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            grid[name] = list(dist.choices)
        elif isinstance(dist, (IntDistribution, FloatDistribution)) and dist.step is not None \
                and not dist.log:
            count = int(round((dist.high - dist.low) / dist.step)) + 1
            grid[name] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise ConfigError(
                f"GridSampler needs a discrete space; {name} is continuous (use choice or range)"
            )
    return grid
