"""Does torch.compile pay for a CartPole gradient step? (The speed issue's first lever.)

One process, one thread, the Zoo DQN config's step for K seeds (batch 64, 4-256-256-2, Huber,
gradient norms clipped at 10, Adam), timed three ways in alternation:
- ours: `DQN._train_round` as training runs it (replay sampling included);
- the same step written as one function (forwards, target, loss, autograd backward, clipping,
  Adam) on ours' own weights and layouts, eager;
- that function compiled by inductor (C++ codegen for the elementwise work, MKL/oneDNN for the
  GEMMs); its compile time is printed, since a run pays it.
Ours beats the compiled whole step when the printed ratio is below 1. Without a C++ compiler
torch.compile cannot run: the script says so in one line.

    python benchmarks/compile_lever.py [--seeds 10]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agents.dqn import DQNConfig, make  # noqa: E402
from bench_vs_sb3 import ZOO  # noqa: E402
from cartpole_floor import best_seconds  # noqa: E402
from agents.networks import in_out  # noqa: E402
from dqn_bench.protocol import Transitions  # noqa: E402

BATCH, STEPS, LR = ZOO["batch_size"], ZOO["gradient_steps"], ZOO["learning_rate"]
HIDDEN = tuple(ZOO["policy_kwargs"]["net_arch"])
MAX_NORM = 10.0  # SB3's default, as the classic suite's dqn


def agent_with_replay(k: int):
    cfg = DQNConfig(learning_rate=LR, batch_size=BATCH, learning_starts=10**9, hidden=HIDDEN, max_grad_norm=MAX_NORM)
    agent = make(gym.spaces.Box(-5, 5, (4,), np.float32), gym.spaces.Discrete(2), cfg, tuple(range(k)))
    rng = np.random.default_rng(0)
    for _ in range(2_000):
        obs = rng.standard_normal((k, 4)).astype(np.float32)
        agent.observe(Transitions(obs, rng.integers(0, 2, k), np.ones(k, np.float32), obs + 0.1,
                                  rng.random(k) < 0.05, np.zeros(k, bool)))
    return agent


def whole_step(agent):
    """The gradient step as one function of a sampled batch, on the agent's weights."""
    params = [p.detach().requires_grad_() for p in agent.q.linear_params]
    target_params = [p.detach() for p in agent.q_target.linear_params]
    moments = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    count = torch.zeros(())

    def q_values(ps, x):
        for i in range(0, len(ps), 2):
            x = torch.baddbmm(ps[i + 1], x, in_out(ps[i], ps[i + 1].shape[-1]))
            x = x.relu() if i < len(ps) - 2 else x
        return x

    def step(obs, action, returns, next_obs, discount):
        with torch.no_grad():
            target = returns + discount * q_values(target_params, next_obs).max(-1).values
        q = q_values(params, obs).gather(2, action[..., None]).squeeze(2)
        loss = torch.nn.functional.smooth_l1_loss(q, target, reduction="none").mean(1)
        grads = torch.autograd.grad(loss.sum(), params)
        norm = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads]).norm(dim=0)
        scale = (MAX_NORM / (norm + 1e-6)).clamp(max=1.0)
        with torch.no_grad():
            count.add_(1)
            for p, g, m, v in zip(params, grads, *moments):
                g = g * scale.view(-1, *[1] * (g.dim() - 1))
                m.lerp_(g, 0.1)
                v.mul_(0.999).addcmul_(g, g, value=0.001)
                p.sub_(LR / (1 - 0.9 ** count) * m / ((v / (1 - 0.999 ** count)).sqrt() + 1e-8))
        return loss

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    torch.set_num_threads(1)
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
        get_cpp_compiler()
    except Exception as error:  # noqa: BLE001 - whatever inductor finds missing, one line says it
        print(f"torch.compile cannot run here ({str(error).splitlines()[0]}): nothing to measure")
        return
    agent = agent_with_replay(args.seeds)
    batch = [t[:, :BATCH] for t in agent._batch(agent.replay.sample_rows(BATCH))]
    step = whole_step(agent)
    start = time.perf_counter()
    compiled = torch.compile(step)
    compiled(*batch)
    compile_s = time.perf_counter() - start
    eager_step = lambda: step(*batch)  # noqa: E731
    compiled_step = lambda: compiled(*batch)  # noqa: E731
    ours = lambda: agent._train_round(STEPS)  # noqa: E731
    times = {"ours": best_seconds(ours, reps=2) / STEPS, "eager": best_seconds(eager_step, reps=50),
             "compiled": best_seconds(compiled_step, reps=50)}
    print(f"CartPole Zoo DQN gradient step, {args.seeds} seed{'s' * (args.seeds > 1)}, one thread (best of 5)")
    print(f"ours (DQN._train_round, sampling included): {times['ours'] * 1e3:.2f} ms")
    print(f"the same step as one function, eager:        {times['eager'] * 1e3:.2f} ms")
    print(f"that function under torch.compile:           {times['compiled'] * 1e3:.2f} ms"
          f" (compile {compile_s:.1f} s = {compile_s / times['compiled']:,.0f} compiled steps)")
    print(f"ours / compiled: {times['ours'] / times['compiled']:.2f}")


if __name__ == "__main__":
    main()
