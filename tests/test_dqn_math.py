"""DQN targets (plain, double), dueling aggregation and PER weights against hand computation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces

from agents.dqn import PRESETS, DQNConfig, gradient_updates, importance_weights, make, td_target
from agents.networks import DuelingHead
from dqn_bench.protocol import Transitions


LAYOUTS = [(False, "streams"), (True, "streams"), (True, "linear")]  # (dueling, dueling_head)


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


def one_step(obs, action, reward, next_obs, terminated, truncated):
    """A Transitions batch of one seed."""
    return Transitions(np.array([obs], np.float32), np.array([action]), np.array([reward], np.float32),
                       np.array([next_obs], np.float32), np.array([terminated]), np.array([truncated]))


def test_agent_target_for_truncated_transition_bootstraps_from_real_next_obs():
    space = spaces.Box(-1, 1, (1,), np.float32)
    agent = make(space, spaces.Discrete(2), DQNConfig(buffer_size=8, batch_size=2, learning_starts=100, gamma=0.5), (0,))
    for term, trunc in ((True, False), (False, True)):
        agent.observe(one_step([0.0], 0, 1.0, [0.7], term, trunc))
    b = agent.replay.gather(np.array([[0, 1]]), agent.cfg.gamma)
    with torch.no_grad():
        v = agent.q_target(torch.tensor([[[0.7]]])).max().item()
    t = td_target(agent.q, agent.q_target, torch.as_tensor(b.next_obs), torch.as_tensor(b.returns),
                  torch.as_tensor(b.discount), False)
    np.testing.assert_allclose(t, [[1.0, 1.0 + 0.5 * v]], rtol=1e-6)


def test_dueling_aggregation_identity():
    torch.manual_seed(0)
    head = DuelingHead(5, 3, 8)
    x = torch.randn(4, 5)
    q = head(x)
    v, a = head.value(x), head.advantage(x)
    torch.testing.assert_close(q, v + a - a.mean(1, keepdim=True))
    torch.testing.assert_close(q.mean(1, keepdim=True), v)  # mean over actions recovers V


def test_dueling_trunk_gradient_is_rescaled_by_inverse_sqrt2():
    """Wang et al. 2016: the streams' gradient entering the shared trunk is scaled by 1/sqrt(2);
    the streams' own gradients and the forward pass are untouched."""
    from agents.networks import in_out, seed_stack

    net = seed_stack((3,), 2, (4, 5), True, [0])
    x = torch.randn(1, 6, 3)
    net(x).sum().backward()
    got = [p.grad.clone() for p in net.parameters()]
    # by hand: the same net with the rescale undone through hooks equals sqrt(2) x the trunk grads
    net.zero_grad()
    def linear(x, w, b):
        return torch.baddbmm(b, x, in_out(w, b.shape[-1]))

    h = F.relu(linear(x, net.torso[0], net.torso[1]))
    h.retain_grad()
    value = linear(F.relu(linear(h, net.heads[0][0], net.heads[0][1])), net.heads[0][2], net.heads[0][3])
    adv = linear(F.relu(linear(h, net.heads[1][0], net.heads[1][1])), net.heads[1][2], net.heads[1][3])
    q = value + adv - adv.mean(-1, keepdim=True)
    torch.testing.assert_close(q, net(x))
    q.sum().backward()
    plain = [p.grad for p in net.parameters()]
    torso = {id(p) for p in net.torso}
    for p, g, want in zip(net.parameters(), got, plain):
        scale = 2 ** -0.5 if id(p) in torso else 1.0
        torch.testing.assert_close(g, want * scale)


def test_linear_dueling_head_by_hand():
    """dueling_head="linear" (Dopamine's layout): the whole torso, then V and A each one linear
    layer on its last hidden layer; no trunk gradient rescale. Shapes and Q by hand."""
    from agents.networks import in_out, seed_stack

    net = seed_stack((3,), 2, (4, 5), True, [0], dueling_head="linear")
    assert [tuple(p.shape) for p in net.torso] == [(1, 3, 4), (1, 1, 4), (1, 4, 5), (1, 1, 5)]
    assert [tuple(p.shape) for p in net.heads[0]] == [(1, 1, 5), (1, 1, 1)]  # V: 5 -> 1 (stored out, in)
    assert [tuple(p.shape) for p in net.heads[1]] == [(1, 2, 5), (1, 1, 2)]  # A: 5 -> 2
    x = torch.randn(1, 6, 3)
    h = x
    for w, b in zip(net.torso[::2], net.torso[1::2]):
        h = F.relu(torch.baddbmm(b, h, in_out(w, b.shape[-1])))
    value = torch.baddbmm(net.heads[0][1], h, in_out(net.heads[0][0], 1))
    adv = torch.baddbmm(net.heads[1][1], h, in_out(net.heads[1][0], 2))
    torch.testing.assert_close(net(x), value + adv - adv.mean(-1, keepdim=True))
    assert net.trunk_grad_scale == 1.0
    # Dopamine's Atari layout: conv features -> 512 -> linear V and A
    cnn = seed_stack((4, 84, 84), 6, (), True, [0], dueling_head="linear")
    assert tuple(cnn.torso[0].shape) == (1, 512, 3136)  # 3136 -> 512, stored [K, out, in]
    assert [tuple(p.shape) for p in cnn.heads[1]] == [(1, 6, 512), (1, 1, 6)]


def test_importance_weights_by_hand():
    probs = np.array([0.5, 0.25, 0.25])
    w = importance_weights(probs, size=4, beta=1.0)
    # (4 * p)^-1 = [0.5, 1, 1], divided by the max 1
    np.testing.assert_allclose(w, [0.5, 1.0, 1.0])
    w = importance_weights(probs, size=4, beta=0.5)
    np.testing.assert_allclose(w, np.sqrt([0.5, 1.0, 1.0]))


def test_polyak_update_by_hand():
    space = spaces.Box(-1, 1, (2,), np.float32)
    agent = make(space, spaces.Discrete(2), DQNConfig(tau=0.25, target_update_interval=1, learning_starts=10**6), (0, 1))
    with torch.no_grad():
        for p in agent.q.parameters():
            p.fill_(1.0)
        for p in agent.q_target.parameters():
            p.fill_(0.0)
    agent.observe(Transitions(np.zeros((2, 2), np.float32), np.array([0, 1]), np.zeros(2, np.float32),
                              np.zeros((2, 2), np.float32), np.array([False, False]), np.array([False, False])))
    for p in agent.q_target.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.25))


def test_numpy_greedy_matches_torch_argmax():
    from agents.networks import seed_stack

    obs = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)  # one observation per seed
    for dueling, head in LAYOUTS:
        net = seed_stack((6,), 4, (32, 32), dueling, [0, 1, 2], dueling_head=head)
        for _ in range(20):  # many random weights: the argmax must agree every time
            with torch.no_grad():
                for p in net.parameters():
                    p.normal_()
                want = net(torch.as_tensor(obs)[:, None]).argmax(-1)[:, 0].numpy()
            np.testing.assert_array_equal(net.numpy_greedy()(obs), want)


def test_seed_stack_is_k_independent_networks_initialized_by_their_own_seed():
    from agents.networks import q_network, seed_stack

    for shape in ((5,), (4, 84, 84)):
        for dueling, head in LAYOUTS:
            net = seed_stack(shape, 3, (16, 16), dueling, [7, 0, 7], dueling_head=head)
            x = torch.rand(3, 2, *shape)
            if len(shape) == 3:
                x = (x * 255).to(torch.uint8)
            out = net(x)
            for k, seed in enumerate([7, 0, 7]):
                torch.manual_seed(seed)
                torch.testing.assert_close(out[k], q_network(shape, 3, (16, 16), dueling, head)(x[k]), rtol=1e-5, atol=1e-5)


def test_seed_stack_gradients_equal_each_seeds_own_network_in_either_weight_layout():
    """Backward through the stacked layers (weights [K, in, out], or [K, out, in] when out < in)
    gives every seed exactly the gradients nn.Linear gives its own network."""
    from agents.networks import _linears, in_out, q_network, seed_stack

    for shape, hidden in (((5,), (16, 16)), ((20,), (16, 8))):  # wide, square and narrow layers
        for dueling, head in LAYOUTS:
            net = seed_stack(shape, 3, hidden, dueling, [7, 0], dueling_head=head)
            x = torch.randn(2, 6, *shape)
            net(x).square().sum().backward()
            params = list(net.torso) + [p for head in net.heads for p in head]
            for k, seed in enumerate([7, 0]):
                torch.manual_seed(seed)
                ref = q_network(shape, 3, hidden, dueling, head)
                ref(x[k]).square().sum().backward()
                for lin, w, b in zip(_linears(ref), params[::2], params[1::2], strict=True):
                    assert w.shape[1:] == (lin.weight.T.shape if lin.out_features >= lin.in_features else lin.weight.shape)
                    torch.testing.assert_close(in_out(w.grad, lin.out_features)[k], lin.weight.grad.T, rtol=1e-5, atol=1e-5)
                    torch.testing.assert_close(b.grad[k, 0], lin.bias.grad, rtol=1e-5, atol=1e-5)


def test_per_seed_grad_clipping_by_hand():
    from agents.dqn import clip_grad_norm

    a = torch.zeros(2, 2, requires_grad=True)
    b = torch.zeros(2, 1, requires_grad=True)
    a.grad = torch.tensor([[3.0, 0.0], [0.3, 0.0]])
    b.grad = torch.tensor([[4.0], [0.4]])
    clip_grad_norm([a, b], 1.0)  # seed 0 has norm 5 -> scaled to 1; seed 1 has 0.5 -> untouched
    torch.testing.assert_close(a.grad, torch.tensor([[0.6, 0.0], [0.3, 0.0]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(b.grad, torch.tensor([[0.8], [0.4]]), atol=1e-6, rtol=0)


def test_importance_weights_normalized_per_seed():
    probs = np.array([[0.5, 0.25], [0.1, 0.4]])
    w = importance_weights(probs, np.array([[4], [10]]), beta=1.0)
    np.testing.assert_allclose(w, [[0.5, 1.0], [1.0, 0.25]])  # (N p)^-1 over each seed's max


@pytest.mark.parametrize("preset", ["dqn", "combined_dqn"])
def test_a_gradient_step_in_a_batch_equals_the_same_step_alone(preset):
    """Nothing crosses seeds: seed 1's weights after training rounds inside a batch of 3 match a
    lone seed-1 agent fed the same transitions, up to batched-GEMM rounding."""
    from agents.dqn import PRESETS

    space = spaces.Box(-2, 2, (4,), np.float32)
    cfg = DQNConfig(**{**PRESETS[preset], "learning_starts": 40, "train_freq": 10, "gradient_steps": 3,
                       "batch_size": 8, "learning_rate": 1e-2, "hidden": (32, 32)})
    batch, alone = make(space, spaces.Discrete(2), cfg, (5, 1, 9)), make(space, spaces.Discrete(2), cfg, (1,))
    rng = np.random.default_rng(0)
    for t in range(80):
        obs, nxt = rng.normal(size=(2, 3, 4)).astype(np.float32)
        act, rew, end = rng.integers(2, size=3), rng.normal(size=3).astype(np.float32), rng.random(3) < 0.1
        batch.observe(Transitions(obs, act, rew, nxt, end, np.zeros(3, bool)))
        alone.observe(Transitions(obs[1:2], act[1:2], rew[1:2], nxt[1:2], end[1:2], np.zeros(1, bool)))
    for p_batch, p_alone in zip(batch.q.parameters(), alone.q.parameters()):
        torch.testing.assert_close(p_batch[1:2], p_alone, rtol=1e-4, atol=1e-5)


def test_adam_is_exactly_torch_adam_across_a_checkpoint_reload():
    """agents.adam.Adam runs torch's fused kernel without torch.optim: weights and moments must not
    move by one bit against torch.optim.Adam(fused=True), and each loads the other's state."""
    space = spaces.Box(-2, 2, (4,), np.float32)
    cfg = DQNConfig(learning_starts=20, train_freq=5, gradient_steps=2, batch_size=8, hidden=(16, 16), adam_eps=1e-3)
    ours, ref = make(space, spaces.Discrete(2), cfg, (3, 4)), make(space, spaces.Discrete(2), cfg, (3, 4))
    ref.optimizer = torch.optim.Adam(ref.params, lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True)
    rng = np.random.default_rng(0)
    for t in range(60):
        obs, nxt = rng.normal(size=(2, 2, 4)).astype(np.float32)
        batch = Transitions(obs, rng.integers(2, size=2), rng.normal(size=2).astype(np.float32), nxt,
                            rng.random(2) < 0.1, np.zeros(2, bool))
        ours.observe(batch)
        ref.observe(batch)
        if t == 30:
            ours.load_state_dict(ours.state_dict())
    assert ref.optimizer.state[ref.params[0]]["step"] == 18  # 9 rounds (steps 20, 25, .., 60) x 2
    fresh = make(space, spaces.Discrete(2), cfg, (3, 4))
    fresh.optimizer.load_state_dict(ref.optimizer.state_dict())  # torch's format into ours
    back = torch.optim.Adam(ref.params, lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True)
    back.load_state_dict(ours.optimizer.state_dict())  # and ours into torch's
    for i, (a, b) in enumerate(zip(ours.params, ref.params)):
        assert torch.equal(a, b)
        for adam in (ours.optimizer, fresh.optimizer):
            assert torch.equal(adam.exp_avg[i], ref.optimizer.state[b]["exp_avg"])
            assert torch.equal(adam.exp_avg_sq[i], ref.optimizer.state[b]["exp_avg_sq"])
            assert torch.equal(adam.steps[i], ref.optimizer.state[b]["step"])
        assert torch.equal(back.state[b]["exp_avg_sq"], ref.optimizer.state[b]["exp_avg_sq"])
    for p in ref.params:  # ours keeps one count for all; torch's, loaded from it, counts each on its own
        p.grad = torch.zeros_like(p)
    back.step()
    assert [back.state[p]["step"].item() for p in ref.params] == [19.0] * len(ref.params)


def test_hard_target_updates_skipped_only_when_nothing_changed(monkeypatch):
    """A hard copy with no gradient step since the last one is skipped; the target must still
    equal the online net after every update, including right after a checkpoint reload."""
    space = spaces.Box(-2, 2, (4,), np.float32)
    cfg = DQNConfig(learning_starts=10, train_freq=7, gradient_steps=1, batch_size=4, hidden=(8,),
                    target_update_interval=3)
    agent = make(space, spaces.Discrete(2), cfg, (0,))
    rng = np.random.default_rng(1)
    copies, real_copy = [], torch._foreach_copy_
    monkeypatch.setattr(torch, "_foreach_copy_", lambda *a: (copies.append(agent.steps), real_copy(*a)))
    for t in range(1, 90):
        obs, nxt = rng.normal(size=(2, 1, 4)).astype(np.float32)
        trained = "loss" in agent.observe(Transitions(obs, rng.integers(2, size=1), np.ones(1, np.float32), nxt,
                                                      np.zeros(1, bool), np.zeros(1, bool)))
        if t == 40:
            agent.load_state_dict(agent.state_dict())
        if t % 3 == 0 and not trained:  # just updated, and no step after it
            for p, q in zip(agent.q_target.parameters(), agent.q.parameters()):
                assert torch.equal(p, q)
    # rounds (after the update of their own step) at 10, 17, .., 87; the first update after each
    # round copies, every other update is skipped; after the reload at 40 the next update copies
    assert copies == [12, 18, 27, 33, 39, 42, 48, 54, 60, 69, 75, 81]


@pytest.mark.parametrize("starts, freq, steps", [(10, 7, 1), (5, 3, 2), (0, 4, 1), (9, 4, -1), (3, 1, 1), (60, 1, 1)])
def test_gradient_updates_counts_the_steps_observe_takes(starts, freq, steps, monkeypatch):
    """The count reports divide a run's time by is what the agent does."""
    space = spaces.Box(-2, 2, (4,), np.float32)
    cfg = DQNConfig(learning_starts=starts, train_freq=freq, gradient_steps=steps, batch_size=4, hidden=(8,))
    agent = make(space, spaces.Discrete(2), cfg, (0,))
    taken, real = [], agent._train_round
    monkeypatch.setattr(agent, "_train_round", lambda n: (taken.append(n), real(n))[1])
    rng = np.random.default_rng(0)
    for _ in range(50):
        obs, nxt = rng.normal(size=(2, 1, 4)).astype(np.float32)
        agent.observe(Transitions(obs, rng.integers(2, size=1), np.ones(1, np.float32), nxt, np.zeros(1, bool),
                                  np.zeros(1, bool)))
    assert sum(taken) == gradient_updates(cfg, 50)
    # by hand: rounds at 10, 17, .., 45 -> 6; at 9, 13, .., 49 taking 9 then 4 steps each -> 9 + 10 * 4
    assert gradient_updates(DQNConfig(learning_starts=10, train_freq=7), 50) == 6
    assert gradient_updates(DQNConfig(learning_starts=9, train_freq=4, gradient_steps=-1), 50) == 49
    assert gradient_updates(DQNConfig(**PRESETS["drq_eps"]), 100_000) == 98_401  # steps 1,600..100,000


def test_a_retained_graph_runs_backward_twice():
    from agents.networks import seed_stack

    net = seed_stack((5,), 3, (16, 16), True, [0, 1])
    loss = net(torch.randn(2, 4, 5)).square().sum()
    loss.backward(retain_graph=True)
    once = [p.grad.clone() for p in net.parameters()]
    loss.backward()  # accumulates the same gradients again
    for p, g in zip(net.parameters(), once):
        torch.testing.assert_close(p.grad, 2 * g)


@pytest.mark.parametrize("flags", [{}, {"loss": "mse"}, {"prioritized": True}, {"dueling": True, "loss": "mse"},
                                   {"dueling": True, "prioritized": True}, {"image": True},
                                   {"dueling": True, "dueling_head": "linear"},
                                   {"dueling": True, "dueling_head": "linear", "image": True}])
def test_the_written_out_gradient_step_is_autograds_bit_for_bit(flags):
    """DQN._gradient_step skips autograd for the linear layers (td_loss, SeedStackQ.mlp_backward):
    weights after three steps must equal, bit for bit, those of the same steps taken through
    autograd (loss.sum().backward() through the network's autograd node), clipping included."""
    from agents.dqn import clip_grad_norm

    flags = dict(flags)
    shape = (4, 84, 84) if flags.pop("image", False) else (6,)
    space = spaces.Box(0, 255, shape, np.uint8) if len(shape) == 3 else spaces.Box(-2, 2, shape, np.float32)
    cfg = DQNConfig(**flags, hidden=(32, 16), learning_rate=1e-2, max_grad_norm=0.5, batch_size=5)
    ours, ref = (make(space, spaces.Discrete(3), cfg, (3, 8)) for _ in range(2))
    rng = np.random.default_rng(1)
    for _ in range(3):
        obs = torch.as_tensor(rng.integers(0, 255, (2, 5, *shape)).astype(space.dtype))
        action = torch.as_tensor(rng.integers(3, size=(2, 5)))
        target = torch.as_tensor(rng.normal(size=(2, 5)).astype(np.float32))
        weights = torch.as_tensor(rng.random((2, 5)).astype(np.float32)) if cfg.prioritized else None
        loss, td = ours._gradient_step(obs, action[..., None], target, weights)

        q = ref.q(obs).gather(2, action[..., None]).squeeze(2)
        per_sample = (F.smooth_l1_loss if cfg.loss == "huber" else F.mse_loss)(q, target, reduction="none")
        ref_loss = (per_sample if weights is None else weights * per_sample).mean(dim=1)
        ref.optimizer.zero_grad()
        ref_loss.sum().backward()
        clip_grad_norm(ref.params, cfg.max_grad_norm)
        ref.optimizer.step()
        assert torch.equal(loss, ref_loss.detach())
        if weights is not None:
            np.testing.assert_array_equal(td, (target - q).detach().numpy())
    for a, b in zip(ours.q.parameters(), ref.q.parameters(), strict=True):
        assert torch.equal(a, b)
