"""Replay for stacked frames that stores each frame once (Atari: 84x84 uint8 per transition),
for K seeds as one array [K, capacity, 84, 84] with per-seed cursors.

Row r holds the newest frame of obs_t plus (a_t, r_t, terminated, episode end) and t's step index
within its episode. obs_t is rebuilt from rows r-3 .. r, repeating the episode's first frame
where the episode is younger than the stack (FrameStackObservation's "reset" padding), so frames
never mix across episodes. next_obs_t is the stack at row r+1: the next transition's row or, when
the episode ended (terminated or truncated), one extra row holding the real final frame. That
row costs one frame per episode and is never sampled as a transition; it is also why cursors
differ between seeds (their episodes end at different steps).
"""
from __future__ import annotations

import numpy as np

from agents.replay import Batch, n_step_returns


class FrameReplay:
    ARRAYS = ("frame", "action", "reward", "terminated", "episode_end", "final", "t")

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, seeds: list):
        k = self.k = len(seeds)
        self.capacity = capacity
        self.stack = obs_shape[0]
        self.frame = np.zeros((k, capacity, *obs_shape[1:]), dtype=obs_dtype)
        self.action = np.zeros((k, capacity), dtype=np.int64)
        self.reward = np.zeros((k, capacity), dtype=np.float32)
        self.terminated = np.zeros((k, capacity), dtype=bool)
        self.episode_end = np.zeros((k, capacity), dtype=bool)
        self.final = np.zeros((k, capacity), dtype=bool)  # extra row: an episode's last frame only
        self.t = np.zeros((k, capacity), dtype=np.int32)  # step index within the episode
        self.cursor = np.zeros(k, dtype=np.int64)
        self.size = np.zeros(k, dtype=np.int64)
        self.next_t = np.zeros(k, dtype=np.int32)  # step index of the next transition (0 = new episode)
        self.rngs = [np.random.default_rng(s) for s in seeds]

    @staticmethod
    def bytes_per_row(obs_shape: tuple[int, ...], obs_dtype) -> int:
        return int(np.prod(obs_shape[1:])) * np.dtype(obs_dtype).itemsize + 8 + 4 + 1 + 1 + 1 + 4

    def __len__(self) -> int:
        return int(self.size.min())

    def _write(self, seeds, frame, action, reward, terminated, end, final, t) -> np.ndarray:
        r = self.cursor[seeds]
        self.frame[seeds, r] = frame
        self.action[seeds, r], self.reward[seeds, r] = action, reward
        self.terminated[seeds, r], self.episode_end[seeds, r] = terminated, end
        self.final[seeds, r], self.t[seeds, r] = final, t
        self.cursor[seeds] = (r + 1) % self.capacity
        self.size[seeds] = np.minimum(self.size[seeds] + 1, self.capacity)
        return r

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> tuple[np.ndarray, np.ndarray]:
        """Append one transition per seed; returns the (seed, row) pairs that just became sampleable."""
        every = np.arange(self.k)
        end = np.logical_or(terminated, truncated)
        row = self._write(every, obs[:, -1], action, reward, terminated, end, False, self.next_t)
        cont = self.next_t > 0  # the previous row's successor now exists
        seeds, rows = [every[cont]], [(row[cont] - 1) % self.capacity]
        if end.any():
            ended = every[end]
            self._write(ended, next_obs[ended, -1], 0, 0.0, False, False, True, self.next_t[ended] + 1)
            seeds.append(ended)
            rows.append(row[ended])
        self.next_t = np.where(end, 0, self.next_t + 1).astype(np.int32)
        return np.concatenate(seeds), np.concatenate(rows)

    def _age(self, rows: np.ndarray) -> np.ndarray:
        return (self.cursor[:, None] - 1 - rows) % self.capacity  # rows written after each row

    def valid(self, rows: np.ndarray) -> np.ndarray:
        """rows[K, B]: a transition whose whole stack is still stored and whose successor exists."""
        seed = np.arange(self.k)[:, None]
        age = self._age(rows)
        oldest_needed = age + np.minimum(self.t[seed, rows], self.stack - 1)
        size = self.size[:, None]
        return ~self.final[seed, rows] & (age >= 1) & (oldest_needed <= size - 1) & (rows < size)

    def can_sample(self) -> bool:
        return bool((self.size >= 2).all())  # the newest row waits for its successor

    def sample_rows(self, batch_size: int) -> np.ndarray:
        """rows[K, batch_size]; seed k redraws its own invalid rows from its own generator."""
        rows = np.stack([rng.integers(n, size=batch_size) for rng, n in zip(self.rngs, self.size)])
        self.redraw_invalid(rows, lambda k, n: self.rngs[k].integers(self.size[k], size=n))
        return rows

    def redraw_invalid(self, rows: np.ndarray, draw) -> None:
        """Replace invalid rows in place with draw(seed, count) until all are valid (rare: final
        rows, the newest row, stacks cut by the ring)."""
        bad = ~self.valid(rows)
        while bad.any():
            for k in np.flatnonzero(bad.any(axis=1)):
                rows[k, bad[k]] = draw(k, int(bad[k].sum()))
            bad = ~self.valid(rows)

    def stacks(self, rows: np.ndarray) -> np.ndarray:
        seed = np.arange(self.k)[:, None, None]
        back = np.arange(self.stack - 1, -1, -1)  # 3, 2, 1, 0 for the oldest .. newest frame
        offsets = np.minimum(back, self.t[seed[..., 0], rows][..., None])
        return self.frame[seed, (rows[..., None] - offsets) % self.capacity]

    def gather(self, rows: np.ndarray, gamma: float, n_step: int = 1) -> Batch:
        seed = np.arange(self.k)[:, None]
        k = np.arange(n_step)
        idx = (rows[..., None] + k) % self.capacity
        # step k is usable if its successor row exists and it is not an episode's final frame
        usable = (k < self._age(rows)[..., None]) & ~self.final[seed[..., None], idx]
        last, returns, discount = n_step_returns(self.reward, self.episode_end, self.terminated,
                                                 idx, usable, gamma, n_step)
        return Batch(self.stacks(rows), self.action[seed, rows], returns,
                     self.stacks((last + 1) % self.capacity), discount)

    def state_dict(self) -> dict:
        # rows beyond a seed's size are zeros; keeping [:max size] keeps one array per field
        n = int(self.size.max())
        return {**{a: getattr(self, a)[:, :n].copy() for a in self.ARRAYS}, "cursor": self.cursor.copy(),
                "size": self.size.copy(), "next_t": self.next_t.copy(),
                "rngs": [r.bit_generator.state for r in self.rngs]}

    def load_state_dict(self, state) -> None:
        n = state["frame"].shape[1]
        for a in self.ARRAYS:
            getattr(self, a)[:, :n] = state[a]
        self.cursor[:], self.size[:], self.next_t[:] = state["cursor"], state["size"], state["next_t"]
        for rng, s in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = s
