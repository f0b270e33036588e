"""Ring buffer and n-step returns against hand-computed values."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.replay import ReplayBuffer


def fill(buf, rewards, terminated=None, truncated=None):
    """Transition t: obs t, action t % 2, reward rewards[t], next_obs t + 1."""
    n = len(rewards)
    terminated = terminated or [False] * n
    truncated = truncated or [False] * n
    for t in range(n):
        buf.add(np.array([[t]], np.float32), np.array([t % 2]), np.array([rewards[t]], np.float32),
                np.array([[t + 1]], np.float32), np.array([terminated[t]]), np.array([truncated[t]]))


def test_add_and_wraparound_overwrites_oldest():
    buf = ReplayBuffer(4, (1,), np.float32, seed=0)
    fill(buf, [10, 11, 12, 13, 14, 15])  # 6 transitions into 4 rows
    assert len(buf) == 4 and buf.cursor == 2
    # rows 0, 1 hold transitions 4, 5; rows 2, 3 still hold 2, 3
    assert buf.obs[:, 0].tolist() == [4, 5, 2, 3]
    assert buf.next_obs[:, 0].tolist() == [5, 6, 3, 4]
    assert buf.reward.tolist() == [14, 15, 12, 13]
    assert buf.action.tolist() == [0, 1, 0, 1]


def test_one_step_batch_terminated_vs_truncated():
    buf = ReplayBuffer(8, (1,), np.float32, seed=0)
    fill(buf, [1, 2, 3], terminated=[False, True, False], truncated=[False, False, True])
    b = buf.gather(np.array([0, 1, 2]), gamma=0.9)
    assert b.returns.tolist() == [1, 2, 3]
    # terminated stops bootstrapping; truncated keeps it (and keeps the real next_obs)
    np.testing.assert_allclose(b.discount, [0.9, 0.0, 0.9])
    assert b.next_obs[:, 0].tolist() == [1, 2, 3]


def test_n_step_returns_by_hand():
    g = 0.5
    buf = ReplayBuffer(16, (1,), np.float32, seed=0)
    # episode A: t0..t2 ends terminated at t2; episode B: t3..t5 truncated at t5; t6, t7 open
    fill(buf, [1, 2, 4, 8, 16, 32, 64, 128],
         terminated=[False, False, True, False, False, False, False, False],
         truncated=[False, False, False, False, False, True, False, False])
    b = buf.gather(np.arange(8), gamma=g, n_step=3)
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
    np.testing.assert_allclose(b.returns, expected_returns)
    np.testing.assert_allclose(b.discount, [0, 0, 0, g**3, g**2, g, g**2, g])  # truncation bootstraps
    assert b.next_obs[:, 0].tolist() == [3, 3, 3, 6, 6, 6, 8, 8]


def test_n_step_across_ring_wraparound():
    g = 0.9
    buf = ReplayBuffer(4, (1,), np.float32, seed=0)
    fill(buf, [1, 2, 3, 4, 5, 6])  # rows: [t4, t5, t2, t3], cursor 2
    b = buf.gather(np.array([2, 3]), gamma=g, n_step=3)  # t2 -> t3, t4 (wraps to row 0, 1)
    np.testing.assert_allclose(b.returns, [3 + g * 4 + g**2 * 5, 4 + g * 5 + g**2 * 6])
    assert b.next_obs[:, 0].tolist() == [5, 6]


@settings(max_examples=50, deadline=None)
@given(capacity=st.integers(1, 20), n=st.integers(0, 60))
def test_ring_buffer_holds_the_latest_capacity_transitions(capacity, n):
    buf = ReplayBuffer(capacity, (1,), np.float32, seed=0)
    fill(buf, list(range(n)))
    assert len(buf) == min(n, capacity)
    assert buf.cursor == n % capacity
    held = sorted(buf.obs[: len(buf), 0].astype(int).tolist())
    assert held == list(range(max(0, n - capacity), n))
    if len(buf):
        rows = buf.sample_rows(100)
        assert rows.min() >= 0 and rows.max() < len(buf)
