"""The study's sampler from hydra.sweeper.sampler: a typed preset, any `_target_` class, or a
`_partial_: true` config as hydra-optuna-sweeper's docs show; a grid sampler gets the search
space's grid, and a resumed study a seed that does not replay its first run (resume.py).
"""
from __future__ import annotations

import functools
import logging
import math
from typing import Any

from launcher.core.errors import ConfigError
from launcher.sweeper import resume
from launcher.sweeper.config import MOTPE_REMOVED, MOTPE_TARGET
from launcher.sweeper.search_space import SearchSpace, grid_of

log = logging.getLogger(__name__)


def check_sampler(spec: Any) -> None:
    """Refuse, before the sweep starts, a sampler config that cannot work."""
    if isinstance(spec, dict):
        target = str(spec.get("_target_", ""))
        # the motpe preset (hydra-optuna-sweeper's HEAD target) and 1.2.0's explicit class
        if target == MOTPE_TARGET or target.endswith("MOTPESampler"):
            raise ConfigError(f"hydra.sweeper.sampler: {MOTPE_REMOVED}")
        if not target:
            raise ConfigError("hydra.sweeper.sampler needs a _target_, e.g. "
                              "optuna.samplers.TPESampler (or hydra/sweeper/sampler=tpe)")


def is_grid(spec: Any) -> bool:
    if isinstance(spec, dict):
        return str(spec.get("_target_", "")).endswith("GridSampler")
    func = getattr(spec, "func", None)
    return getattr(func, "__name__", "") == "GridSampler"


def make_sampler(given: Any, space: SearchSpace, study_size: int,
                 n_trials: int) -> tuple[Any, tuple | None, int]:
    """(the sampler, (seed given, seed used) when a resumed study reseeds it, n_trials: the
    grid's size when a grid is smaller than n_trials)."""
    from hydra.utils import instantiate

    def grid() -> dict[str, list[Any]]:
        nonlocal n_trials
        values = grid_of(space.distributions)
        size = math.prod(len(v) for v in values.values())
        if size < n_trials:
            log.info("GridSampler: n_trials %d -> %d (the grid's size)", n_trials, size)
            n_trials = size
        return values

    reseeded = None
    if isinstance(given, dict):
        spec = dict(given)
        seed = resume_seed = spec.get("seed")
        if study_size:
            resume_seed = resume.resume_seed(seed, study_size)
        if resume_seed != seed:
            spec["seed"], reseeded = resume_seed, (seed, resume_seed)
        if is_grid(spec):
            spec.pop("_partial_", None)
            spec["search_space"] = grid()
        made = instantiate(_accepted(spec), _convert_="all")
    else:
        made = given
    if isinstance(made, functools.partial):  # _partial_: true, as hydra-optuna-sweeper's docs show
        made = made(grid()) if is_grid(made) else made()
    return made, reseeded, n_trials


def _accepted(spec: dict[str, Any]) -> dict[str, Any]:
    """The sampler spec without the keys its class does not take that a preset left there
    (``_target_: optuna.samplers.RandomSampler`` over the tpe preset); a key the user set for
    a class that does not take it is a ConfigError."""
    import inspect

    from hydra.utils import get_class

    from launcher.sweeper.config import is_preset_default

    try:
        accepted = inspect.signature(get_class(spec["_target_"])).parameters
    except Exception:
        return spec  # instantiate reports a target it cannot find
    if any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        return spec
    out = {}
    for key, value in spec.items():
        if key.startswith("_") or key in accepted:
            out[key] = value
        elif not is_preset_default(key, value):
            raise ConfigError(f"hydra.sweeper.sampler: {spec['_target_']} takes no argument "
                              f"{key} (given {value!r}); its arguments: {', '.join(accepted)}")
    return out
