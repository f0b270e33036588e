"""K sum trees for proportional prioritized replay as one array [K, 2 * size], vectorized over
seeds and whole batches.

Seed k's leaves live at tree[k, size : 2 * size] (size a power of two), node i holds
tree[k, 2i] + tree[k, 2i+1], the total is tree[k, 1]. Updates and searches walk all indices of
all seeds one level at a time, so a batch costs O(log capacity) numpy calls, not a loop per sample.
"""
from __future__ import annotations

import numpy as np


class SumTree:
    def __init__(self, capacity: int, k: int = 1):
        self.capacity = capacity
        self.k = k
        self.size = 1 << max(0, (capacity - 1).bit_length())
        self.depth = self.size.bit_length() - 1
        self.tree = np.zeros((k, 2 * self.size), dtype=np.float64)

    @property
    def total(self) -> np.ndarray:
        """[K] total priority per seed."""
        return self.tree[:, 1]

    def get(self, rows: np.ndarray) -> np.ndarray:
        """rows[K, B] -> priorities[K, B]."""
        return self.tree[np.arange(self.k)[:, None], np.asarray(rows) + self.size]

    def update(self, seeds: np.ndarray, leaves: np.ndarray, priorities: np.ndarray) -> None:
        """Set leaves of (seed, leaf) pairs; with repeated pairs the last value wins (numpy
        assignment order)."""
        width = 2 * self.size
        flat = self.tree.reshape(-1)  # a view: node i of seed k is flat[k * width + i]
        nodes = np.asarray(seeds, dtype=np.int64) * width + np.asarray(leaves, dtype=np.int64) + self.size
        if nodes.size == 0:
            return
        flat[nodes] = priorities
        for _ in range(self.depth):
            i = nodes % width  # node index within its seed's tree
            nodes = np.unique(nodes - i + i // 2)  # parents
            left = nodes + nodes % width  # = seed base + 2 * index
            flat[nodes] = flat[left] + flat[left + 1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """mass[K, B] -> leaf[K, B] with prefix(leaf) <= mass < prefix(leaf) + p_leaf, per seed."""
        return self._find(np.arange(self.k)[:, None], np.array(mass, dtype=np.float64))

    def _find(self, seed: np.ndarray, mass: np.ndarray) -> np.ndarray:
        nodes = np.ones(mass.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self.tree[seed, left]
            go_right = mass >= left_sum
            mass = np.where(go_right, mass - left_sum, mass)
            nodes = left + go_right
        # Float round-off can land on a zero-priority leaf past the data; step back onto mass.
        leaves = nodes - self.size
        bad = self.tree[seed, nodes] <= 0
        if bad.any():
            for k in np.unique(np.broadcast_to(seed, bad.shape)[bad]):
                hit = bad & (seed == k)
                leaves[hit] = self._last_positive(k, leaves[hit])
        return leaves

    def _last_positive(self, k: int, leaves: np.ndarray) -> np.ndarray:
        positive = np.flatnonzero(self.tree[k, self.size : self.size + self.capacity] > 0)
        pos = np.searchsorted(positive, leaves, side="right") - 1
        return positive[np.clip(pos, 0, len(positive) - 1)]

    def sample(self, batch_size: int, rngs: list[np.random.Generator]) -> np.ndarray:
        """Stratified proportional sampling: one uniform draw in each of batch_size equal slices
        of seed k's total, drawn by seed k's own generator -> leaves[K, batch_size]."""
        u = np.stack([rng.random(batch_size) for rng in rngs])
        return self.find(self.total[:, None] * (np.arange(batch_size) + u) / batch_size)

    def sample_one(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """n proportional draws from seed k's tree alone (to redraw rows a replay rejects)."""
        return self._find(np.full(n, k), self.tree[k, 1] * rng.random(n))
