"""Atari on this CPU: env frames/s, Nature-CNN gradient updates/s, bytes per stored transition.

    python benchmarks/bench_atari.py [--game ALE/Pong-v5] [--seconds 10]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import envs
from agents.dqn import DQNConfig, make
from agents.frame_replay import FrameReplay
from dqn_bench.protocol import Transitions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--game", default="ALE/Pong-v5")
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)

    env = envs.make(args.game, 0)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    steps, episodes, start = 0, 0, time.perf_counter()
    stream = []
    while time.perf_counter() - start < args.seconds:
        a = int(rng.integers(env.action_space.n))
        nxt, r, term, trunc, _ = env.step(a)
        stream.append((obs, a, r, nxt, term, trunc))
        steps += 1
        if term or trunc:
            episodes += 1
            obs, _ = env.reset()
        else:
            obs = nxt
    elapsed = time.perf_counter() - start
    print(f"env: {steps / elapsed:,.0f} agent steps/s = {4 * steps / elapsed:,.0f} frames/s "
          f"({args.game}, random policy, frame skip 4, 84x84 grayscale, stack 4)")

    for k in (1, 3):  # a seed batch of 3 runs one grouped convolution per layer for all three
        agent = make(env.observation_space, env.action_space,
                     DQNConfig(buffer_size=len(stream), learning_starts=10**9), tuple(range(k)))
        for o, a, r, n, te, tr in stream:
            agent.observe(Transitions(np.stack([o] * k), np.full(k, a), np.full(k, r, np.float32), np.stack([n] * k),
                                      np.full(k, te), np.full(k, tr)))
        updates, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            agent._train_round(8)
            updates += 8
        elapsed = time.perf_counter() - start
        print(f"learner, seed batch of {k}: {k * updates / elapsed:,.1f} gradient updates/s summed over seeds "
              "(Nature CNN, batch 32, 1 thread)")

    per_row = FrameReplay.bytes_per_row((4, 84, 84), np.uint8)
    rows = len(stream) + episodes  # one extra row (the final frame) per episode
    frame = 84 * 84
    print(f"replay: {per_row} bytes per row = {per_row / frame:.4f} x one 84x84 frame; with this stream's "
          f"{episodes} episode ends: {per_row * rows / len(stream) / frame:.4f} x per transition (target <= 1.05)")


if __name__ == "__main__":
    main()
