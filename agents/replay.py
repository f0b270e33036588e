"""K preallocated ring replay buffers as one array [K, capacity, ...], n-step returns at sample time.

The K seeds step in lockstep, one transition each per env step, so they share one cursor and size;
each seed samples with its own generator. Rows are written in stream order, so the n transitions
after row i are rows i+1 .. i+n-1 (mod capacity) until an episode ends or the newest row.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """target = returns + discount * Q(next_obs); discount is 0 after a termination. Arrays [K, B, ...]."""

    obs: np.ndarray
    action: np.ndarray
    returns: np.ndarray
    next_obs: np.ndarray
    discount: np.ndarray


def n_step_returns(reward, episode_end, terminated, idx, usable, gamma: float, n: int):
    """Discounted sums over the usable prefix of idx[K, B, n] -> (last row, returns, discount).

    `usable` marks steps that exist (written, not past the newest row); a step after an episode
    end is never used, so returns never cross episodes, and only a termination zeroes the discount.
    """
    k = np.arange(n)
    seed = np.arange(len(idx))[:, None, None]
    ends = episode_end[seed, idx]
    used = (np.cumsum(ends, axis=2) - ends == 0) & usable  # stop after an episode end
    steps = used.sum(axis=2)  # >= 1: step 0 is always usable
    last = np.take_along_axis(idx, (steps - 1)[..., None], axis=2)[..., 0]
    returns = (reward[seed, idx] * (gamma**k) * used).sum(axis=2, dtype=np.float64).astype(np.float32)
    discount = (gamma**steps * ~terminated[seed[..., 0], last]).astype(np.float32)
    return last, returns, discount


class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, seeds: list):
        k = self.k = len(seeds)
        self.capacity = capacity
        self.obs = np.zeros((k, capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((k, capacity, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros((k, capacity), dtype=np.int64)
        self.reward = np.zeros((k, capacity), dtype=np.float32)
        self.terminated = np.zeros((k, capacity), dtype=bool)
        self.episode_end = np.zeros((k, capacity), dtype=bool)  # terminated or truncated
        self.cursor = 0  # next row to write (the same for every seed)
        self.size = 0
        self.rngs = [np.random.default_rng(s) for s in seeds]

    @staticmethod
    def bytes_per_row(obs_shape: tuple[int, ...], obs_dtype) -> int:
        """Per seed and stored transition."""
        return 2 * int(np.prod(obs_shape)) * np.dtype(obs_dtype).itemsize + 8 + 4 + 1 + 1

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> tuple[np.ndarray, np.ndarray]:
        """Append one transition per seed (arrays [K, ...]); returns the (seed, row) pairs written."""
        r = self.cursor
        self.obs[:, r] = obs
        self.next_obs[:, r] = next_obs
        self.action[:, r] = action
        self.reward[:, r] = reward
        self.terminated[:, r] = terminated
        self.episode_end[:, r] = np.logical_or(terminated, truncated)
        self.cursor = (r + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return np.arange(self.k), np.full(self.k, r)

    def can_sample(self) -> bool:
        return self.size >= 1

    def valid(self, rows: np.ndarray) -> np.ndarray:
        """Every stored row is a complete transition (unlike FrameReplay's)."""
        return np.ones(rows.shape, dtype=bool)

    def redraw_invalid(self, rows: np.ndarray, draw) -> None:
        """Nothing to redraw: see valid()."""

    def sample_rows(self, batch_size: int) -> np.ndarray:
        """rows[K, batch_size], seed k's drawn by its own generator only."""
        return np.stack([rng.integers(self.size, size=batch_size) for rng in self.rngs])

    def gather(self, rows: np.ndarray, gamma: float, n_step: int = 1) -> Batch:
        seed = np.arange(self.k)[:, None]
        if n_step == 1:
            last = rows
            returns = self.reward[seed, rows]
            discount = np.float32(gamma) * ~self.terminated[seed, rows]
        else:
            idx = (rows[..., None] + np.arange(n_step)) % self.capacity  # [K, B, n]
            newer = (self.cursor - 1 - rows) % self.capacity  # rows written after each sampled row
            usable = np.arange(n_step) <= newer[..., None]
            last, returns, discount = n_step_returns(self.reward, self.episode_end, self.terminated,
                                                     idx, usable, gamma, n_step)
        return Batch(self.obs[seed, rows], self.action[seed, rows], returns, self.next_obs[seed, last], discount)

    ARRAYS = ("obs", "next_obs", "action", "reward", "terminated", "episode_end")

    def state_dict(self) -> dict:
        return {**{a: getattr(self, a)[:, : self.size].copy() for a in self.ARRAYS},
                "cursor": self.cursor, "size": self.size, "rngs": [r.bit_generator.state for r in self.rngs]}

    def load_state_dict(self, state) -> None:
        for a in self.ARRAYS:
            getattr(self, a)[:, : state["size"]] = state[a]
        self.cursor, self.size = int(state["cursor"]), int(state["size"])
        for rng, s in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = s
