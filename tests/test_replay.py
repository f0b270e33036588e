"""Ring buffer and n-step returns against hand-computed values, for a batch of seeds.

Seed k's stream is seed 0's with observations and rewards shifted by 100 * k, so every check on
seed 1 also shows that no row of another seed leaks in.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.replay import ReplayBuffer

K = 2
SHIFT = 100 * np.arange(K)


def make(capacity):
    return ReplayBuffer(capacity, (1,), np.float32, seeds=list(range(K)))


def fill(buf, rewards, terminated=None, truncated=None):
    """Transition t of seed k: obs t + 100k, action t % 2, reward rewards[t] + 100k, next_obs t + 1 + 100k."""
    n = len(rewards)
    terminated = terminated or [False] * n
    truncated = truncated or [False] * n
    for t in range(n):
        buf.add((t + SHIFT)[:, None].astype(np.float32), np.full(K, t % 2), (rewards[t] + SHIFT).astype(np.float32),
                (t + 1 + SHIFT)[:, None].astype(np.float32), np.full(K, terminated[t]), np.full(K, truncated[t]))


def per_seed(rows):
    return np.tile(np.asarray(rows), (K, 1))


def test_add_and_wraparound_overwrites_oldest():
    buf = make(4)
    fill(buf, [10, 11, 12, 13, 14, 15])  # 6 transitions into 4 rows
    assert len(buf) == 4 and buf.cursor == 2
    # rows 0, 1 hold transitions 4, 5; rows 2, 3 still hold 2, 3
    for k in range(K):
        assert (buf.obs[k, :, 0] - 100 * k).tolist() == [4, 5, 2, 3]
        assert (buf.next_obs[k, :, 0] - 100 * k).tolist() == [5, 6, 3, 4]
        assert (buf.reward[k] - 100 * k).tolist() == [14, 15, 12, 13]
        assert buf.action[k].tolist() == [0, 1, 0, 1]


def test_one_step_batch_terminated_vs_truncated():
    buf = make(8)
    fill(buf, [1, 2, 3], terminated=[False, True, False], truncated=[False, False, True])
    b = buf.gather(per_seed([0, 1, 2]), gamma=0.9)
    np.testing.assert_array_equal(b.returns, [[1, 2, 3], [101, 102, 103]])
    # terminated stops bootstrapping; truncated keeps it (and keeps the real next_obs)
    np.testing.assert_allclose(b.discount, per_seed([0.9, 0.0, 0.9]))
    np.testing.assert_array_equal(b.next_obs[..., 0], [[1, 2, 3], [101, 102, 103]])


def test_n_step_returns_by_hand():
    g = 0.5
    buf = make(16)
    # episode A: t0..t2 ends terminated at t2; episode B: t3..t5 truncated at t5; t6, t7 open
    fill(buf, [1, 2, 4, 8, 16, 32, 64, 128],
         terminated=[False, False, True, False, False, False, False, False],
         truncated=[False, False, False, False, False, True, False, False])
    b = buf.gather(per_seed(np.arange(8)), gamma=g, n_step=3)
    expected_returns = [
        1 + g * 2 + g**2 * 4,  # t0: 3 steps, ends on the terminal t2
        2 + g * 4,  # t1: stops at t2 (terminated)
        4,  # t2: terminal itself
        8 + g * 16 + g**2 * 32,  # t3: 3 steps to the truncation
        16 + g * 32,  # t4: stops at the truncation t5
        32,  # t5
        64 + g * 128,  # t6: only t7 written after it
        128,  # t7: newest row
    ]
    np.testing.assert_allclose(b.returns[0], expected_returns)
    steps = np.array([3, 2, 1, 3, 2, 1, 2, 1])  # each return sums steps rewards of +100 for seed 1
    np.testing.assert_allclose(b.returns[1], np.array(expected_returns) + 100 * (1 - g**steps) / (1 - g), rtol=1e-6)
    np.testing.assert_allclose(b.discount, per_seed([0, 0, 0, g**3, g**2, g, g**2, g]))  # truncation bootstraps
    np.testing.assert_array_equal(b.next_obs[..., 0], [[3, 3, 3, 6, 6, 6, 8, 8], [103, 103, 103, 106, 106, 106, 108, 108]])


def test_n_step_across_ring_wraparound():
    g = 0.9
    buf = make(4)
    fill(buf, [1, 2, 3, 4, 5, 6])  # rows: [t4, t5, t2, t3], cursor 2
    b = buf.gather(per_seed([2, 3]), gamma=g, n_step=3)  # t2 -> t3, t4 (wraps to row 0, 1)
    np.testing.assert_allclose(b.returns[0], [3 + g * 4 + g**2 * 5, 4 + g * 5 + g**2 * 6])
    np.testing.assert_array_equal(b.next_obs[..., 0], [[5, 6], [105, 106]])


def test_each_seed_samples_from_its_own_generator():
    buf, alone = make(50), ReplayBuffer(50, (1,), np.float32, seeds=[1])
    fill(buf, list(range(30)))
    for t in range(30):
        alone.add(np.array([[t]], np.float32), np.array([0]), np.array([0.0], np.float32),
                  np.array([[t]], np.float32), np.array([False]), np.array([False]))
    np.testing.assert_array_equal(buf.sample_rows(64)[1], alone.sample_rows(64)[0])


@settings(max_examples=50, deadline=None)
@given(capacity=st.integers(1, 20), n=st.integers(0, 60))
def test_ring_buffer_holds_the_latest_capacity_transitions(capacity, n):
    buf = make(capacity)
    fill(buf, list(range(n)))
    assert len(buf) == min(n, capacity)
    assert buf.cursor == n % capacity
    for k in range(K):
        held = sorted((buf.obs[k, : len(buf), 0] - 100 * k).astype(int).tolist())
        assert held == list(range(max(0, n - capacity), n))
    if len(buf):
        rows = buf.sample_rows(100)
        assert rows.shape == (K, 100) and rows.min() >= 0 and rows.max() < len(buf)
