"""Tabular Q-learning over integer states; discretized_q reuses it with a binning encoder."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from gymnasium import spaces

from agents.schedules import Schedule, check_exploration, epsilon_schedule
from dqn_bench.protocol import AgentSpec, ConfigError, Transitions, check

MAX_TABLE = 50_000_000  # entries; beyond this a dense table is the wrong tool


@dataclass(frozen=True)
class TabularQConfig:
    gamma: float = 0.99
    learning_rate: float = 0.1
    learning_rate_end: float = 0.1
    """learning rate decays linearly to this over learning_rate_duration steps"""
    learning_rate_duration: int = 100_000
    initial_q: float = 0.0
    epsilon_schedule: str = "linear"
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_duration: int = 10_000
    epsilon_unit: str = "step"
    eval_epsilon: float = 0.0

    def __post_init__(self):
        check(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        for name in ("learning_rate", "learning_rate_end"):
            check(0.0 < getattr(self, name) <= 1.0, f"{name} must be in (0, 1], got {getattr(self, name)}")
        check_exploration(self)
        check(self.learning_rate_duration >= 0, "learning_rate_duration must be >= 0")


class TabularQ:
    """K seeds of tabular Q-learning as one table [K, states, actions]; row k is seed k."""

    def __init__(self, n_states: int, n_actions: int, config: TabularQConfig, seeds: tuple[int, ...],
                 encode: Callable[[np.ndarray], np.ndarray] = lambda obs: np.asarray(obs, np.int64)):
        k = self.k = len(seeds)
        if k * n_states * n_actions > MAX_TABLE:
            raise ConfigError(f"Q-table of {k} x {n_states} states x {n_actions} actions is too large "
                              f"(max {MAX_TABLE} entries); use fewer bins or a smaller --seed-batch")
        c = self.cfg = config
        self.q = np.full((k, n_states, n_actions), c.initial_q, dtype=np.float64)
        self.encode = encode
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.epsilon = epsilon_schedule(c)
        self.alpha = Schedule("linear", c.learning_rate, c.learning_rate_end, c.learning_rate_duration)
        self.steps = 0
        self.episodes = np.zeros(k, dtype=np.int64)

    def current_epsilon(self) -> np.ndarray:
        if self.cfg.epsilon_unit == "step":
            return np.full(self.k, self.epsilon(self.steps))
        return np.array([self.epsilon(int(e)) for e in self.episodes])

    def q_values(self, obs: np.ndarray, seed_index: int = 0) -> np.ndarray:
        return self.q[seed_index, self.encode(obs)]

    def act(self, obs: np.ndarray, *, explore: bool, active: np.ndarray | None = None) -> np.ndarray:
        q = self.q[np.arange(self.k), self.encode(obs)]  # [K, A]
        eps = self.current_epsilon() if explore else np.full(self.k, self.cfg.eval_epsilon)
        actions = np.zeros(self.k, dtype=np.int64)
        for k in range(self.k) if active is None else np.flatnonzero(active):
            rng = self.rngs[k]
            # break ties at random: an all-zero fresh row must not always pick action 0
            actions[k] = np.argmax(np.where(q[k] == q[k].max(), rng.random(q.shape[1]), -1.0))
            if rng.random() < eps[k]:
                actions[k] = rng.integers(q.shape[1])
        return actions

    def observe(self, batch: Transitions) -> dict[str, np.ndarray]:
        seed = np.arange(self.k)
        s, s2 = self.encode(batch.obs), self.encode(batch.next_obs)
        alpha = self.alpha(self.steps)
        # bootstrap unless terminated: a time-limit truncation is not a true end
        target = batch.reward + self.cfg.gamma * ~batch.terminated * self.q[seed, s2].max(axis=1)
        td = target - self.q[seed, s, batch.action]
        self.q[seed, s, batch.action] += alpha * td
        self.steps += 1
        self.episodes += np.logical_or(batch.terminated, batch.truncated)
        return {"epsilon": self.current_epsilon(), "td_abs": np.abs(td)}

    def policy_state(self, k: int) -> dict:
        return {"q": self.q[k].copy()}  # seed k's table: its greedy policy

    def load_policy_state(self, state) -> None:
        self.q[0] = state["q"]

    def state_dict(self) -> dict:
        return {"q": self.q.copy(), "rngs": [r.bit_generator.state for r in self.rngs],
                "counters": (self.steps, self.episodes.copy())}

    def load_state_dict(self, state) -> None:
        self.q[:] = state["q"]
        for rng, s in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = s
        self.steps, episodes = state["counters"]
        self.episodes[:] = episodes


def make(observation_space, action_space, config: TabularQConfig, seeds: tuple[int, ...]) -> TabularQ:
    if not isinstance(observation_space, spaces.Discrete) or not isinstance(action_space, spaces.Discrete):
        raise ConfigError(
            f"tabular_q needs Discrete observation and action spaces, got {observation_space}; "
            "for Box observations use discretized_q or dqn"
        )
    return TabularQ(int(observation_space.n), int(action_space.n), config, tuple(seeds),
                    encode=lambda obs: np.asarray(obs, np.int64) - observation_space.start)


SPEC = AgentSpec("tabular_q", make, TabularQConfig, description="tabular Q-learning (Discrete observations)",
                 seed_batched=True)
