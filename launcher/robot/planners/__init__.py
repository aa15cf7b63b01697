"""Planners turn a task and its data profile into a Blueprint; `planner=` picks one.

    heuristic   offline rules (the default; no network, no key)
    openai      an OpenAI model, or any OpenAI-compatible server (planner.base_url)
    anthropic   an Anthropic model

Each has `name`, `describe()`, `propose(task, profile, check)` and `refine(task, profile,
blueprint, leaderboard, check)`, returning (blueprint, raw answer). An LLM planner that cannot
give a checked blueprint raises PlannerUnavailable; the robot then says so in one line and plans
with the heuristic planner instead.
"""
from __future__ import annotations

from typing import Any, Mapping

from launcher.core.errors import ConfigError, LauncherError, one_of

PLANNERS = ("heuristic", "openai", "anthropic")


class PlannerUnavailable(LauncherError):
    """The LLM planner could not give a checked blueprint (unreachable, refused, out of schema
    after its retries, or over its call or token cap)."""


def make_planner(cfg: Mapping[str, Any]) -> Any:
    name = str(cfg.get("name", "heuristic"))
    if name == "heuristic":
        from launcher.robot.planners.heuristic import HeuristicPlanner

        return HeuristicPlanner()
    if name in ("openai", "anthropic"):
        from launcher.robot.planners.llm import LLMPlanner

        return LLMPlanner.from_config(cfg)
    raise ConfigError(f"planner={name!r} is unknown; expected one of: {one_of(PLANNERS)}")
