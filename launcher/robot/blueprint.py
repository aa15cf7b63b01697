"""The blueprint: what a planner proposes, as data a person can read and the project can check.

A planner (the offline heuristic one, or an LLM through its SDK's structured output) fills this
schema and nothing else: registry keys (a framework, a model option, the keys of
launcher.robot.space) and bounded numbers. It never writes override strings, `_target_`s or
paths; the project renders the Hydra files itself (launcher.robot.emit) after checking every
value against the registry (launcher.robot.validate). Extra fields are refused.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

Value = Union[bool, int, float, str, None, list[int]]


class ParamRange(BaseModel):
    """The range searched for one key: low/high (with log) for numbers, or choices."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=60)
    low: Optional[float] = None
    high: Optional[float] = None
    log: Optional[bool] = None
    choices: Optional[list[Value]] = Field(default=None, max_length=20)


class StartValue(BaseModel):
    """One key's value in a candidate's first trial."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=60)
    value: Value


class StartPoint(BaseModel):
    """Another point to try first (beside `start`)."""

    model_config = ConfigDict(extra="forbid")

    values: list[StartValue] = Field(max_length=12)


class Candidate(BaseModel):
    """One model family to search: a model option, the keys to tune, a starting point.
    (Lists of keyed items rather than maps: LLM structured output takes no free-form maps.)"""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=40)
    params: list[ParamRange] = Field(default_factory=list, max_length=12)
    start: list[StartValue] = Field(default_factory=list, max_length=12)
    alternatives: list[StartPoint] = Field(default_factory=list, max_length=4)
    why: str = Field(default="", max_length=400)

    @property
    def ranges(self) -> dict[str, ParamRange]:
        return {p.key: p for p in self.params}

    @property
    def start_values(self) -> dict[str, Any]:
        return {s.key: s.value for s in self.start}

    @property
    def start_points(self) -> list[dict[str, Any]]:
        """The points tried first: `start`, then the alternatives."""
        return [self.start_values] + [{v.key: v.value for v in p.values} for p in self.alternatives]


class Blueprint(BaseModel):
    """A plan for one task: a framework, the model families to try in one search (each trial
    draws a family, then that family's keys), the search budget, how to select."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["classification", "regression", "clustering"]
    metric: str = Field(max_length=30)
    framework: str = Field(max_length=20)
    candidates: list[Candidate] = Field(min_length=1, max_length=6)
    n_trials: int = Field(ge=1, le=500)
    cv_folds: Optional[int] = Field(default=None, ge=2, le=10)
    rationale: str = Field(default="", max_length=2000)

    def models(self) -> list[str]:
        return [c.model for c in self.candidates]


# The names its first users know.
MLModelBlueprint = Blueprint


def schema_for_prompt() -> dict[str, Any]:
    """The JSON schema an LLM planner is asked to fill."""
    return Blueprint.model_json_schema()
