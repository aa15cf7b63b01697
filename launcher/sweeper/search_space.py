"""hydra-optuna-sweeper's search-space grammar, mapped onto current Optuna distributions.

    choice(a, b, c)                 categorical (lists and dicts travel as override strings)
    range(start, stop[, step])      stepped int/float, stop excluded as everywhere in Hydra
    shuffle(range(...))             categorical over the range's values
    interval(low, high)             float, uniform
    int(interval(low, high))        int, uniform
    tag(log, interval(low, high))   log scale (int when both bounds are ints)
    anything else                   a fixed value passed to every trial
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from launcher.core.errors import ConfigError
from launcher.sweeper import compat


@dataclass
class SearchSpace:
    distributions: dict[str, Any] = field(default_factory=dict)  # key -> optuna distribution
    fixed: dict[str, str] = field(default_factory=dict)  # key -> override value string

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """Override strings for one trial: the fixed values, then the trial's parameters."""
        values = dict(self.fixed)
        values.update({name: render_value(value) for name, value in params.items()})
        return [f"{name}={value}" for name, value in values.items()]


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


def parse_search_space(params: Mapping[str, Any] | None, arguments: Sequence[str]) -> SearchSpace:
    """params (hydra.sweeper.params) first, then the command line's overrides, which win."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{key}={_config_value(value)}" for key, value in (params or {}).items()]
    lines.extend(arguments)
    space = SearchSpace()
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        space.distributions.pop(key, None)
        space.fixed.pop(key, None)
        if override.is_sweep_override():
            space.distributions[key] = distribution_from_override(override)
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


def distribution_from_override(override: Any) -> Any:
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key = override.get_key_element()
    if override.is_choice_sweep() or (override.is_range_sweep() and override.value().shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        sweep = override.value()
        values = list(override.sweep_iterator())
        if not values:
            raise ConfigError(f"{key}: {override.input_line!r} is an empty range")
        low, high, step = min(values), max(values), abs(sweep.step)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values + [step]):
            return IntDistribution(int(low), int(high), step=int(step))
        return FloatDistribution(float(low), float(high), step=float(step))
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


def grid_of(distributions: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The value grid of a discrete search space, for optuna.samplers.GridSampler."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    grid: dict[str, list[Any]] = {}
    for name, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            grid[name] = list(dist.choices)
        elif isinstance(dist, (IntDistribution, FloatDistribution)) and dist.step is not None:
            count = int(round((dist.high - dist.low) / dist.step)) + 1
            grid[name] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise ConfigError(
                f"GridSampler needs a discrete space; {name} is continuous (use choice or range)"
            )
    return grid
