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
    def __init__(self, n_actions: int, seed: int):
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, *, explore: bool) -> np.ndarray:
        return self.rng.integers(self.n_actions, size=len(obs))

    def observe(self, batch: Transitions) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state) -> None:
        self.rng.bit_generator.state = state["rng"]


def make(observation_space, action_space, config: RandomConfig, seed: int) -> RandomAgent:
    if not isinstance(action_space, spaces.Discrete):
        raise ConfigError(f"random agent needs a Discrete action space, got {action_space}")
    return RandomAgent(int(action_space.n), seed)


SPEC = AgentSpec("random", make, RandomConfig, description="uniform random actions")
