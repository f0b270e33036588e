"""Preallocated ring replay buffer with n-step returns computed at sample time.

Rows are written in stream order (one environment), so the n transitions after row i are rows
i+1 .. i+n-1 (mod capacity) until an episode ends or the newest row is reached.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """target = returns + discount * Q(next_obs); discount is 0 after a termination."""

    obs: np.ndarray
    action: np.ndarray
    returns: np.ndarray
    next_obs: np.ndarray
    discount: np.ndarray


class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, seed: int):
        self.capacity = capacity
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.episode_end = np.zeros(capacity, dtype=bool)  # terminated or truncated
        self.cursor = 0  # next row to write
        self.size = 0
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def bytes_per_row(obs_shape: tuple[int, ...], obs_dtype) -> int:
        return 2 * int(np.prod(obs_shape)) * np.dtype(obs_dtype).itemsize + 8 + 4 + 1 + 1

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> np.ndarray:
        """Append a batch of rows (leading axis); returns the rows written."""
        n = len(action)
        rows = (self.cursor + np.arange(n)) % self.capacity
        self.obs[rows] = obs
        self.next_obs[rows] = next_obs
        self.action[rows] = action
        self.reward[rows] = reward
        self.terminated[rows] = terminated
        self.episode_end[rows] = np.logical_or(terminated, truncated)
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        return rows

    def can_sample(self) -> bool:
        return self.size >= 1

    def valid(self, rows: np.ndarray) -> np.ndarray:
        """Every stored row is a complete transition (unlike FrameReplay's)."""
        return np.ones(len(rows), dtype=bool)

    def sample_rows(self, batch_size: int) -> np.ndarray:
        return self.rng.integers(self.size, size=batch_size)

    def gather(self, rows: np.ndarray, gamma: float, n_step: int = 1) -> Batch:
        rows = np.asarray(rows)
        if n_step == 1:
            last = rows
            returns = self.reward[rows]
            discount = np.float32(gamma) * ~self.terminated[rows]
        else:
            last, returns, discount = self._n_step(rows, gamma, n_step)
        return Batch(self.obs[rows], self.action[rows], returns, self.next_obs[last], discount)

    def _n_step(self, rows: np.ndarray, gamma: float, n: int):
        k = np.arange(n)
        idx = (rows[:, None] + k) % self.capacity  # [B, n]
        newer = (self.cursor - 1 - rows) % self.capacity  # rows written after each sampled row
        ended_before = np.cumsum(self.episode_end[idx], axis=1) - self.episode_end[idx]
        used = (ended_before == 0) & (k <= newer[:, None])  # stop after an episode end / at cursor
        steps = used.sum(axis=1)  # >= 1: k = 0 is always used
        last = idx[np.arange(len(rows)), steps - 1]
        returns = (self.reward[idx] * (gamma**k) * used).sum(axis=1, dtype=np.float64)
        discount = gamma**steps * ~self.terminated[last]
        return last, returns.astype(np.float32), discount.astype(np.float32)

    def state_dict(self) -> dict:
        arrays = ("obs", "next_obs", "action", "reward", "terminated", "episode_end")
        return {
            **{a: getattr(self, a)[: self.size].copy() for a in arrays},
            "cursor": self.cursor,
            "size": self.size,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state) -> None:
        for a in ("obs", "next_obs", "action", "reward", "terminated", "episode_end"):
            getattr(self, a)[: state["size"]] = state[a]
        self.cursor, self.size = int(state["cursor"]), int(state["size"])
        self.rng.bit_generator.state = state["rng"]
