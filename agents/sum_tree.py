"""Sum tree for proportional prioritized replay, vectorized over whole batches.

Leaves live at tree[size : 2 * size] (size a power of two), node i holds tree[2i] + tree[2i+1],
the total is tree[1]. Updates and searches walk all indices one level at a time, so a batch
costs O(log capacity) numpy calls instead of a Python loop per sample.
"""
from __future__ import annotations

import numpy as np


class SumTree:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self.size = 1 << max(0, (capacity - 1).bit_length())
        self.depth = self.size.bit_length() - 1
        self.tree = np.zeros(2 * self.size, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def get(self, idx: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(idx) + self.size]

    def update(self, idx: np.ndarray, priorities: np.ndarray) -> None:
        """Set leaves; with repeated indices the last value wins (numpy assignment order)."""
        nodes = np.asarray(idx, dtype=np.int64) + self.size
        if nodes.size == 0:
            return
        self.tree[nodes] = priorities
        nodes = np.unique(nodes >> 1)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes >> 1)

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf index i per value with prefix(i) <= mass < prefix(i) + p_i (prefix over leaves)."""
        mass = np.array(mass, dtype=np.float64)
        nodes = np.ones(len(mass), dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self.tree[left]
            go_right = mass >= left_sum
            mass = np.where(go_right, mass - left_sum, mass)
            nodes = left + go_right
        # Float round-off can land on a zero-priority leaf past the data; step back onto mass.
        leaves = nodes - self.size
        bad = self.tree[nodes] <= 0
        if bad.any():
            leaves[bad] = self._last_positive(leaves[bad])
        return leaves

    def _last_positive(self, leaves: np.ndarray) -> np.ndarray:
        positive = np.flatnonzero(self.tree[self.size : self.size + self.capacity] > 0)
        pos = np.searchsorted(positive, leaves, side="right") - 1
        return positive[np.clip(pos, 0, len(positive) - 1)]

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Stratified proportional sampling: one uniform draw in each of batch_size equal slices."""
        bounds = self.total * (np.arange(batch_size) + rng.random(batch_size)) / batch_size
        return self.find(bounds)
