"""Replay for stacked frames that stores each frame once (Atari: 84x84 uint8 per transition).

Row r holds the newest frame of obs_t plus (a_t, r_t, terminated, episode end) and t's step index
within its episode. obs_t is rebuilt from rows r-3 .. r, repeating the episode's first frame
where the episode is younger than the stack (FrameStackObservation's "reset" padding), so frames
never mix across episodes. next_obs_t is the stack at row r+1: the next transition's row or, when
the episode ended (terminated or truncated), one extra row holding the real final frame. That
row costs one frame per episode and is never sampled as a transition.
"""
from __future__ import annotations

import numpy as np

from agents.replay import Batch


class FrameReplay:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, seed: int):
        self.capacity = capacity
        self.stack = obs_shape[0]
        self.frame = np.zeros((capacity, *obs_shape[1:]), dtype=obs_dtype)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.episode_end = np.zeros(capacity, dtype=bool)
        self.final = np.zeros(capacity, dtype=bool)  # extra row: an episode's last frame only
        self.t = np.zeros(capacity, dtype=np.int32)  # step index within the episode
        self.cursor = 0
        self.size = 0
        self.next_t = 0  # step index of the next transition (0 = a new episode starts)
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def bytes_per_row(obs_shape: tuple[int, ...], obs_dtype) -> int:
        return int(np.prod(obs_shape[1:])) * np.dtype(obs_dtype).itemsize + 8 + 4 + 1 + 1 + 1 + 4

    def __len__(self) -> int:
        return self.size

    def _write(self, frame, action, reward, terminated, end, final, t) -> int:
        r = self.cursor
        self.frame[r] = frame
        self.action[r], self.reward[r] = action, reward
        self.terminated[r], self.episode_end[r], self.final[r], self.t[r] = terminated, end, final, t
        self.cursor = (r + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return r

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> np.ndarray:
        """Append transitions of one env stream; returns rows that just became sampleable."""
        ready = []
        for i in range(len(action)):
            end = bool(terminated[i] or truncated[i])
            row = self._write(obs[i][-1], action[i], reward[i], terminated[i], end, False, self.next_t)
            if self.next_t > 0:
                ready.append((row - 1) % self.capacity)  # its successor row now exists
            if end:
                self._write(next_obs[i][-1], 0, 0.0, False, False, True, self.next_t + 1)
                ready.append(row)
                self.next_t = 0
            else:
                self.next_t += 1
        return np.array(ready, dtype=np.int64)

    def _age(self, rows: np.ndarray) -> np.ndarray:
        return (self.cursor - 1 - rows) % self.capacity  # rows written after each row

    def valid(self, rows: np.ndarray, n_step: int = 1) -> np.ndarray:
        """A transition whose whole stack is still stored and whose successor row exists."""
        age = self._age(rows)
        oldest_needed = age + np.minimum(self.t[rows], self.stack - 1)
        successor_ok = age >= 1
        return ~self.final[rows] & successor_ok & (oldest_needed <= self.size - 1) & (rows < self.size)

    def can_sample(self) -> bool:
        return self.size >= 2  # the newest row waits for its successor; the one before it is valid

    def sample_rows(self, batch_size: int) -> np.ndarray:
        rows = self.rng.integers(self.size, size=batch_size)
        bad = ~self.valid(rows)
        while bad.any():  # rare: final rows, the newest row, stacks cut by the ring
            rows[bad] = self.rng.integers(self.size, size=int(bad.sum()))
            bad = ~self.valid(rows)
        return rows

    def stacks(self, rows: np.ndarray) -> np.ndarray:
        back = np.arange(self.stack - 1, -1, -1)  # 3, 2, 1, 0 for the oldest .. newest frame
        offsets = np.minimum(back[None, :], self.t[rows][:, None])
        return self.frame[(rows[:, None] - offsets) % self.capacity]

    def gather(self, rows: np.ndarray, gamma: float, n_step: int = 1) -> Batch:
        rows = np.asarray(rows)
        k = np.arange(n_step)
        idx = (rows[:, None] + k) % self.capacity
        age = self._age(rows)
        ended_before = np.cumsum(self.episode_end[idx], axis=1) - self.episode_end[idx]
        # step k is usable if no episode ended before it and its successor row exists
        used = (ended_before == 0) & (k[None, :] < age[:, None]) & ~self.final[idx]
        steps = used.sum(axis=1)
        last = idx[np.arange(len(rows)), steps - 1]
        returns = (self.reward[idx] * (gamma**k) * used).sum(axis=1, dtype=np.float64).astype(np.float32)
        discount = (gamma**steps * ~self.terminated[last]).astype(np.float32)
        return Batch(self.stacks(rows), self.action[rows], returns, self.stacks((last + 1) % self.capacity), discount)

    def state_dict(self) -> dict:
        arrays = ("frame", "action", "reward", "terminated", "episode_end", "final", "t")
        return {**{a: getattr(self, a)[: self.size].copy() for a in arrays}, "cursor": self.cursor,
                "size": self.size, "next_t": self.next_t, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state) -> None:
        for a in ("frame", "action", "reward", "terminated", "episode_end", "final", "t"):
            getattr(self, a)[: state["size"]] = state[a]
        self.cursor, self.size, self.next_t = int(state["cursor"]), int(state["size"]), int(state["next_t"])
        self.rng.bit_generator.state = state["rng"]
