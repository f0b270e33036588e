"""One Atari gradient step (batch 32, 4x84x84 uint8 frames, 6 actions) per implementation, timed
alone: bench_peers.py runs each in its own pinned subprocess. Replays hold random frames (the
arithmetic does not depend on pixel values)."""
from __future__ import annotations

import time

import numpy as np

SHAPE, ACTIONS, BATCH, FILL = (4, 84, 84), 6, 32, 2_000


def _timed(step, seconds: float, per_call: int = 1) -> float:
    step()  # warm-up: allocation, oneDNN primitive creation, JIT compilation
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        calls += 1
    return calls * per_call / (time.perf_counter() - start)


def _frames(rng, n):
    return rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8)


def ours(preset: str, seconds: float) -> float:
    import gymnasium as gym
    import torch

    from agents.dqn import PRESETS, DQNConfig, make
    from dqn_bench.protocol import Transitions

    torch.set_num_threads(1)
    cfg = DQNConfig(**{**PRESETS.get(preset, {}), "batch_size": BATCH, "buffer_size": 10_000,
                       "learning_starts": 10**9})
    agent = make(gym.spaces.Box(0, 255, SHAPE, np.uint8), gym.spaces.Discrete(ACTIONS), cfg, (0,))
    rng = np.random.default_rng(0)
    obs = _frames(rng, 1)
    for i in range(FILL):  # a stream of frames, as the frame replay stores them
        nxt = np.concatenate([obs[:, 1:], _frames(rng, 1)[:, :1]], axis=1)
        agent.observe(Transitions(obs, np.array([i % ACTIONS]), np.ones(1, np.float32), nxt,
                                  np.array([i % 400 == 399]), np.array([False])))
        obs = nxt
    return _timed(lambda: agent._train_round(1), seconds)


def sb3_family(jax_version: bool, seconds: float) -> float:
    import gymnasium as gym

    if jax_version:
        from sbx import DQN
    else:
        import torch
        from stable_baselines3 import DQN
        torch.set_num_threads(1)
    from stable_baselines3.common.logger import configure

    class Frames(gym.Env):
        observation_space = gym.spaces.Box(0, 255, SHAPE, np.uint8)
        action_space = gym.spaces.Discrete(ACTIONS)

    model = DQN("CnnPolicy", Frames(), buffer_size=10_000, batch_size=BATCH, seed=0, verbose=0,
                **({} if jax_version else {"device": "cpu"}))
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    for i in range(FILL):
        model.replay_buffer.add(_frames(rng, 1), _frames(rng, 1), np.array([[i % ACTIONS]]), np.ones(1),
                                np.array([i % 400 == 399]), [{}])
    steps = 8  # SBX jits a loop of gradient steps per call; SB3 loops in Python
    return _timed(lambda: model.train(gradient_steps=steps, batch_size=BATCH), seconds, per_call=steps)


def floor(seconds: float) -> float:
    """The convolutions and GEMMs of one drq_eps step, nothing else, at its shapes and layouts:
    conv and linear forwards on the state and the next state, then the backward's weight
    gradients (every layer) and input gradients (all but the first conv)."""
    import torch
    import torch.nn.functional as F

    from agents.networks import same_padding

    torch.set_num_threads(1)
    convs, size = [], 84
    for c_in, c_out, k, s in ((4, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)):
        pad = same_padding(size, k, s)
        x = torch.rand(BATCH, c_in, size + sum(pad), size + sum(pad)).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c_out, c_in, k, k)
        size = (size + sum(pad) - k) // s + 1
        g = torch.randn(BATCH, c_out, size, size).contiguous(memory_format=torch.channels_last)
        convs.append((x, w, s, g))
    linears = [(torch.randn(BATCH, i), torch.randn(o, i), torch.randn(BATCH, o)) for i, o in ((7744, 512), (512, 1 + ACTIONS))]

    def step():
        for _ in range(2):  # state (with grad) and next state (no grad): same arithmetic
            for x, w, s, _ in convs:
                F.conv2d(x, w, stride=s)
            for x, w, _ in linears:
                F.linear(x, w)
        for i, (x, w, s, g) in enumerate(convs):
            torch.ops.aten.convolution_backward(g, x, w, [w.shape[0]], [s, s], [0, 0], [1, 1], False, [0, 0], 1,
                                                [i > 0, True, True])
        for x, w, g in linears:
            g.T @ x  # weight gradient
            g @ w  # input gradient
    return _timed(step, seconds)


IMPLEMENTATIONS = {
    "drq_eps": ("ours, drq_eps", "Dopamine SAME, dueling, 7744 flatten, double, augment", lambda s: ours("drq_eps", s)),
    "dqn": ("ours, dqn", "Nature CNN, 3136 flatten", lambda s: ours("dqn", s)),
    "sb3": ("Stable-Baselines3 DQN", "Nature CNN, 3136 flatten", lambda s: sb3_family(False, s)),
    "sbx": ("SBX DQN", "Nature CNN, 3136 flatten", lambda s: sb3_family(True, s)),
    "floor": ("bare convolutions and GEMMs of the drq_eps step (torch, oneDNN/MKL)", "as drq_eps", floor),
}


def measure(name: str, seconds: float) -> dict:
    label, network, fn = IMPLEMENTATIONS[name]
    return {"label": label, "network": network, "updates_per_s": fn(seconds)}
