import math

import pytest

from agents.schedules import Schedule


def test_constant():
    assert Schedule("constant", 0.3, 0.0, 100)(12345) == 0.3


def test_linear_by_hand():
    s = Schedule("linear", 1.0, 0.1, 100)
    assert s(0) == 1.0
    assert s(50) == pytest.approx(0.55)
    assert s(100) == pytest.approx(0.1)
    assert s(10_000) == pytest.approx(0.1)


def test_exponential_by_hand():
    s = Schedule("exponential", 1.0, 0.0, 100)
    assert s(0) == 1.0
    assert s(50) == pytest.approx(0.1)  # 0.01 ** 0.5
    assert s(100) == pytest.approx(0.01)
    assert s(200) == pytest.approx(1e-4)
    assert Schedule("exponential", 0.5, 0.1, 10)(5) == pytest.approx(0.1 + 0.4 * math.sqrt(0.01))


def test_per_episode_unit_in_agent():
    import numpy as np
    from gymnasium import spaces

    from agents.dqn import DQNConfig, make
    from dqn_bench.protocol import Transitions

    cfg = DQNConfig(epsilon_unit="episode", epsilon_duration=4, epsilon_start=1.0, epsilon_end=0.0,
                    learning_starts=10**6)
    agent = make(spaces.Box(-1, 1, (1,), np.float32), spaces.Discrete(2), cfg, (0, 1))
    z = np.zeros((2, 1), np.float32)
    # 5 steps: seed 0 ends 2 episodes, seed 1 ends 3; each seed's epsilon follows its own count
    for done in ((False, True), (False, False), (True, True), (False, False), (True, True)):
        agent.observe(Transitions(z, np.array([0, 0]), np.zeros(2, np.float32), z, np.array(done), np.array([False, False])))
    np.testing.assert_allclose(agent.current_epsilon(), [0.5, 0.25])
