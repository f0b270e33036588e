"""dqn_bench `dqn` vs Stable-Baselines3 DQN on CartPole-v1 with the Zoo hyperparameters.

Both train for the same steps, one torch thread each, one after the other in fresh subprocesses
of this same run (so machine noise hits both alike), then evaluate 10 greedy episodes.
Prints both wall times, the ratio ours / SB3 (target <= 0.5) and both final scores.

    pip install -e .[bench] -c constraints.txt
    python benchmarks/bench_vs_sb3.py [--steps 50000] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


# RL Zoo hyperparams/dqn.yml, CartPole-v1, in SB3's (and SBX's) keywords
ZOO = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
           target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
           exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))


def greedy_cartpole(predict, episodes: int = 10) -> float:
    """Mean return of `episodes` greedy CartPole-v1 episodes from seeded resets."""
    import gymnasium as gym

    env, total = gym.make("CartPole-v1"), 0.0
    for i in range(episodes):
        obs, _ = env.reset(seed=1_000_000 + i)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(int(predict(obs)))
            total += r
            done = term or trunc
    return total / episodes


def ours(steps: int, seed: int) -> dict:
    from dqn_bench import config as cfg
    from dqn_bench.runner import run_one

    spec = cfg.plan(cfg.load_suite("classic"), ["dqn"], ["CartPole-v1"], 1,
                    {"budget": str(steps), "eval_every": str(steps), "final_eval_episodes": "10"})[0]
    spec = type(spec)(**{**spec.__dict__, "seed": seed})
    record = run_one(spec)  # sets one thread itself; timed inside, imports excluded
    if record["status"] != "ok":
        raise RuntimeError(record["error"])
    return {"wall_s": record["wall_time_s"], "cpu_s": record["cpu_time_s"], "score": record["final_score"]}


def sb3(steps: int, seed: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    start, cpu_start = time.perf_counter(), time.process_time()
    env = gym.make("CartPole-v1")
    model = DQN("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **ZOO)
    model.learn(total_timesteps=steps)
    return {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu_start,
            "score": greedy_cartpole(lambda obs: model.predict(obs, deterministic=True)[0])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--which", choices=["ours", "sb3"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.which:  # child process
        print(json.dumps({"ours": ours, "sb3": sb3}[args.which](args.steps, args.seed)))
        return
    results = {}
    for which in ("ours", "sb3"):
        out = subprocess.run([sys.executable, __file__, "--which", which, "--steps", str(args.steps),
                              "--seed", str(args.seed)], capture_output=True, text=True, check=True)
        results[which] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[which]
        print(f"{which:>5}: {r['wall_s']:7.1f} s wall, {r['cpu_s']:7.1f} s CPU   final score {r['score']:.1f}")
    ratio = results["ours"]["wall_s"] / results["sb3"]["wall_s"]
    cpu_ratio = results["ours"]["cpu_s"] / results["sb3"]["cpu_s"]
    print(f"ratio ours/sb3 = {ratio:.2f} wall, {cpu_ratio:.2f} CPU (target <= 0.5) on CartPole-v1, {args.steps} steps, "
          "1 thread each")


if __name__ == "__main__":
    main()
