"""Uniform random policy: the floor every benchmark table needs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from dqn_bench.protocol import AgentSpec, ConfigError, Transitions


@dataclass(frozen=True)
class RandomConfig:
    pass


class RandomAgent:
    """Uniform actions for K seeds, each from its own generator."""

    def __init__(self, n_actions: int, seeds: tuple[int, ...]):
        self.n_actions = n_actions
        self.rngs = [np.random.default_rng(s) for s in seeds]

    def act(self, obs: np.ndarray, *, explore: bool, active: np.ndarray | None = None) -> np.ndarray:
        actions = np.zeros(len(self.rngs), dtype=np.int64)
        for k in range(len(self.rngs)) if active is None else np.flatnonzero(active):
            actions[k] = self.rngs[k].integers(self.n_actions)
        return actions

    def observe(self, batch: Transitions) -> dict[str, float]:
        return {}

    def policy_state(self, k: int) -> dict:
        return {}  # uniform: nothing to keep

    def load_policy_state(self, state) -> None:
        pass

    def state_dict(self) -> dict:
        return {"rngs": [r.bit_generator.state for r in self.rngs]}

    def load_state_dict(self, state) -> None:
        for rng, s in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = s


def make(observation_space, action_space, config: RandomConfig, seeds: tuple[int, ...]) -> RandomAgent:
    if not isinstance(action_space, spaces.Discrete):
        raise ConfigError(f"random agent needs a Discrete action space, got {action_space}")
    return RandomAgent(int(action_space.n), tuple(seeds))


SPEC = AgentSpec("random", make, RandomConfig, description="uniform random actions", seed_batched=True)
