"""pytest-benchmark: prioritized sampling + priority update on a 1M-capacity sum tree.

    tox -e bench   (or: pytest benchmarks --benchmark-enable --benchmark-only)
"""
import numpy as np
import pytest

from agents.sum_tree import SumTree

CAPACITY = 1_000_000


@pytest.fixture(scope="module")
def tree():
    t = SumTree(CAPACITY)  # one seed
    t.update(np.zeros(CAPACITY, np.int64), np.arange(CAPACITY), np.random.default_rng(0).random(CAPACITY) + 1e-3)
    return t


def test_sample_256_from_1m(benchmark, tree):
    rng = np.random.default_rng(1)
    idx = benchmark(tree.sample, 256, [rng])
    assert idx.shape == (1, 256) and idx.max() < CAPACITY


def test_update_256_priorities_in_1m(benchmark, tree):
    rng = np.random.default_rng(2)
    idx, p = rng.integers(CAPACITY, size=256), rng.random(256)
    benchmark(tree.update, np.zeros(256, np.int64), idx, p)
    np.testing.assert_allclose(tree.get(idx[None])[0], p)
