"""DQN targets (plain, double), dueling aggregation and PER weights against hand computation."""
import numpy as np
import torch
from gymnasium import spaces

from agents.dqn import DQNConfig, importance_weights, make, td_target
from agents.networks import DuelingHead
from dqn_bench.protocol import Transitions


class Fixed(torch.nn.Module):
    """A 'network' returning fixed Q-values per row, to compute targets by hand."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.tensor(values, dtype=torch.float32)

    def forward(self, x):
        return self.values


def test_target_terminated_vs_truncated_by_hand():
    q_target = Fixed([[1.0, 3.0], [2.0, 5.0], [4.0, 0.0]])
    returns = torch.tensor([1.0, 1.0, 1.0])
    # row 0 ongoing, row 1 terminated (discount 0), row 2 truncated (still bootstraps)
    discount = torch.tensor([0.9, 0.0, 0.9])
    target = td_target(None, q_target, None, returns, discount, double=False)
    np.testing.assert_allclose(target, [1 + 0.9 * 3, 1.0, 1 + 0.9 * 4])


def test_double_target_uses_online_argmax_and_target_value():
    online = Fixed([[9.0, 0.0], [0.0, 9.0]])  # picks action 0, then 1
    q_target = Fixed([[1.0, 3.0], [2.0, 5.0]])
    target = td_target(online, q_target, None, torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0]), double=True)
    np.testing.assert_allclose(target, [1.0, 5.0])  # plain DQN would give max: [3, 5]


def test_agent_target_for_truncated_transition_bootstraps_from_real_next_obs():
    space = spaces.Box(-1, 1, (1,), np.float32)
    agent = make(space, spaces.Discrete(2), DQNConfig(buffer_size=8, batch_size=2, learning_starts=100, gamma=0.5), 0)
    for term, trunc in ((True, False), (False, True)):
        agent.observe(Transitions(np.zeros((1, 1), np.float32), np.array([0]), np.array([1.0], np.float32),
                                  np.full((1, 1), 0.7, np.float32), np.array([term]), np.array([trunc])))
    b = agent.replay.gather(np.array([0, 1]), agent.cfg.gamma)
    with torch.no_grad():
        v = agent.q_target(torch.tensor([[0.7]])).max().item()
    t = td_target(agent.q, agent.q_target, torch.as_tensor(b.next_obs), torch.as_tensor(b.returns),
                  torch.as_tensor(b.discount), False)
    np.testing.assert_allclose(t, [1.0, 1.0 + 0.5 * v], rtol=1e-6)


def test_dueling_aggregation_identity():
    torch.manual_seed(0)
    head = DuelingHead(5, 3, 8)
    x = torch.randn(4, 5)
    q = head(x)
    v, a = head.value(x), head.advantage(x)
    torch.testing.assert_close(q, v + a - a.mean(1, keepdim=True))
    torch.testing.assert_close(q.mean(1, keepdim=True), v)  # mean over actions recovers V


def test_importance_weights_by_hand():
    probs = np.array([0.5, 0.25, 0.25])
    w = importance_weights(probs, size=4, beta=1.0)
    # (4 * p)^-1 = [0.5, 1, 1], divided by the max 1
    np.testing.assert_allclose(w, [0.5, 1.0, 1.0])
    w = importance_weights(probs, size=4, beta=0.5)
    np.testing.assert_allclose(w, np.sqrt([0.5, 1.0, 1.0]))


def test_polyak_update_by_hand():
    space = spaces.Box(-1, 1, (2,), np.float32)
    agent = make(space, spaces.Discrete(2), DQNConfig(tau=0.25, target_update_interval=1, learning_starts=10**6), 0)
    with torch.no_grad():
        for p in agent.q.parameters():
            p.fill_(1.0)
        for p in agent.q_target.parameters():
            p.fill_(0.0)
    agent.observe(Transitions(np.zeros((1, 2), np.float32), np.array([0]), np.zeros(1, np.float32),
                              np.zeros((1, 2), np.float32), np.array([False]), np.array([False])))
    for p in agent.q_target.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.25))


def test_numpy_greedy_matches_torch_argmax():
    from agents.networks import mlp, numpy_greedy

    torch.manual_seed(0)
    obs = np.random.default_rng(0).normal(size=(256, 6)).astype(np.float32)
    for dueling in (False, True):
        net = mlp(6, 4, (32, 32), dueling)
        with torch.no_grad():
            want = net(torch.as_tensor(obs)).argmax(1).numpy()
        np.testing.assert_array_equal(numpy_greedy(net)(obs), want)
