"""Agent discovery through the entry-point group `dqn_bench.agents` (built-ins included)."""
from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping, Sequence

from dqn_bench.protocol import AgentSpec, ConfigError

GROUP = "dqn_bench.agents"
PROBES = "dqn_bench.probes"  # spec name -> probe(agent, n, rng) for `diagnose`: they import the agent, never back


@functools.cache
def specs() -> dict[str, AgentSpec]:
    """Spec name -> AgentSpec for every installed entry point."""
    found: dict[str, AgentSpec] = {}
    for ep in entry_points(group=GROUP):
        spec = ep.load()
        if not isinstance(spec, AgentSpec):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a dqn_bench AgentSpec")
        found[spec.name] = spec
    return found


def agent_names() -> dict[str, tuple[str, Mapping[str, Any]]]:
    """User-facing agent name -> (spec name, preset overrides)."""
    names: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for spec in specs().values():
        names[spec.name] = (spec.name, spec.presets.get(spec.name, {}))
        for preset, overrides in spec.presets.items():
            names[preset] = (spec.name, overrides)
    return names


def resolve(agent: str) -> tuple[AgentSpec, Mapping[str, Any]]:
    names = agent_names()
    if agent not in names:
        raise ConfigError(f"unknown agent '{agent}'; valid: {', '.join(sorted(names))}")
    spec_name, preset = names[agent]
    return specs()[spec_name], preset


def make_agent(spec_name: str, observation_space, action_space, config: Mapping[str, Any], seeds: Sequence[int],
               budget: int):
    """One agent for the given seeds: a seed batch if the spec supports it, else exactly one seed."""
    spec = specs()[spec_name]
    extra = {"budget": budget} if spec.takes_budget else {}
    if spec.seed_batched:
        return spec.factory(observation_space, action_space, spec.make_config(config), tuple(seeds), **extra)
    if len(seeds) != 1:
        raise ValueError(f"agent '{spec_name}' is not seed-batched; it runs one seed at a time")
    return spec.factory(observation_space, action_space, spec.make_config(config), seeds[0], **extra)


@functools.cache
def probe(spec_name: str) -> Callable[..., dict] | None:
    """The diagnostics probe registered for an agent spec (entry-point group `dqn_bench.probes`), or None."""
    found = [ep for ep in entry_points(group=PROBES) if ep.name == spec_name]
    return found[0].load() if found else None


def seed_batched(spec_name: str) -> bool:
    return specs()[spec_name].seed_batched


def gradient_updates(spec_name: str, config: Mapping[str, Any], budget: int) -> int | None:
    """A stored run's gradient steps (its spec's `updates`), or None: no count, agent not installed,
    or a config this version of the agent no longer reads."""
    spec = specs().get(spec_name)
    if spec is None or spec.updates is None:
        return None
    try:
        return spec.updates(spec.make_config(config), budget)
    except ConfigError:
        return None
