"""Seed-batched DQN against its arithmetic floor and against Stable-Baselines3, in one run.

1. CartPole-v1, the Zoo config, 50k steps: K seeds (default 10) trained together in one process on
   one thread, against one SB3 DQN run with the same hyperparameters (fresh subprocess, same
   benchmark run), both evaluating 10 episodes at the end only: per-seed wall time ratio ours / SB3
   (target <= 0.3); and one seed alone (--seed-batch 1), for the speedup of batching itself.
2. For each classic config: the GEMM FLOPs of every gradient step (online forward and backward,
   target forward, double's extra forward) over the wall time of the whole training loop (env
   steps, replay, acting and evaluation included), against bare bmm on exactly those shapes timed
   in the same process (target >= 50%).
3. The projected wall time of the classic suite (its 5 DQN presets x 4 envs x 10 seeds, plus the
   cheap random and discretized_q) on 2 cores from those figures: each DQN cell's measured
   seconds per gradient step times its full-budget gradient steps, presets scaled by their cost
   relative to dqn on Acrobot-v1 (evaluation beyond the segment's excluded).

    pip install -e .[bench] -c constraints.txt
    python benchmarks/bench_seed_batch.py [--seeds 10] [--segment 5000] [--skip-sb3]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time

import torch

CLASSIC = ["CartPole-v1", "MountainCar-v0", "Acrobot-v1", "LunarLander-v3"]
PRESETS = ["dqn", "double_dqn", "dueling_dqn", "per_dqn", "combined_dqn"]


def gemm_shapes(agent, batch: int) -> list[tuple[int, int, int]]:
    """(rows, in, out) of every linear layer one seed's network applies to a batch."""
    q = agent.q
    params = list(q.torso) + [p for head in q.heads for p in head]
    return [(batch, w[0].numel() // b.shape[-1], b.shape[-1]) for w, b in zip(params[::2], params[1::2])]


def step_flops(agent, k: int, batch: int) -> float:
    """GEMM FLOPs of one gradient step of k seeds: forward, backward (weight and input grads, no
    input grad for the first layer), target forward, and the online forward of double's argmax."""
    shapes = gemm_shapes(agent, batch)
    one = sum(2 * r * i * o for r, i, o in shapes)
    backward = 2 * one - 2 * shapes[0][0] * shapes[0][1] * shapes[0][2]
    return k * (one + backward + one * (2 if agent.cfg.double else 1))


def bare_gemm_seconds(agent, k: int, batch: int, reps: int = 50, trials: int = 5) -> float:
    """Seconds for the bmm calls of one gradient step, nothing else, at the same shapes and in the
    network's own weight layouts (the faster one per layer, see agents.networks.in_out): the best
    of `trials` timings of `reps` steps, since a floor is the fastest those GEMMs can go."""
    from agents.networks import in_out

    calls = []
    for n, (r, i, o) in enumerate(gemm_shapes(agent, batch)):
        x, g = torch.randn(k, r, i), torch.randn(k, r, o)
        stored = torch.randn(k, o, i) if o < i else torch.randn(k, i, o)
        w = in_out(stored, o)  # [k, in, out], a view
        calls.append((x, w))  # online forward
        # weight gradient, produced in the stored layout
        calls.append((g.transpose(1, 2), x) if o < i else (x.transpose(1, 2), g))
        if n:
            calls.append((g, w.transpose(1, 2)))  # input gradient
        calls += [(x, w)] * (2 if agent.cfg.double else 1)  # target (and double's online) forward
    for a, b in calls:
        torch.bmm(a, b)
    best = math.inf
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            for a, b in calls:
                torch.bmm(a, b)
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def measure(agent_name: str, env: str, seeds: int, steps: int | None, eval_every: int | None = None) -> dict:
    """Train one seed batch through the harness's own loop; count its gradient steps and time
    its evaluations."""
    from agents import dqn as dqn_module
    from dqn_bench import config as cfg
    from dqn_bench import runner
    from dqn_bench.runner import train

    sets = {"eval_episodes": "10", "final_eval_episodes": "10"}  # as SB3's side evaluates
    if steps:
        sets |= {"budget": str(steps), "eval_every": str(steps)}
    if eval_every:
        sets |= {"eval_every": str(eval_every)}
    evaluating = {"s": 0.0}
    real_evaluate = runner.evaluate

    def timed_evaluate(*args):
        start = time.perf_counter()
        out = real_evaluate(*args)
        evaluating["s"] += time.perf_counter() - start
        return out

    runner.evaluate = timed_evaluate
    specs = cfg.plan(cfg.load_suite("classic"), [agent_name], [env], seeds, sets)
    counted = {"n": 0}
    real = dqn_module.DQN._gradient_step

    def counting(self, *args, **kwargs):
        counted["n"] += 1
        return real(self, *args, **kwargs)

    dqn_module.DQN._gradient_step = counting
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    start, cpu_start = time.perf_counter(), time.process_time()
    results, agent = train(specs)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    dqn_module.DQN._gradient_step = real
    batch = specs[0].config["batch_size"]
    flops = counted["n"] * step_flops(agent, seeds, batch)
    floor = counted["n"] * bare_gemm_seconds(agent, seeds, batch)
    full = cfg.plan(cfg.load_suite("classic"), [agent_name], [env], 1)[0]
    train_s = wall - evaluating["s"]
    return {"agent": agent_name, "env": env, "seeds": seeds, "budget": specs[0].budget, "wall_s": wall, "cpu_s": cpu,
            "eval_s": evaluating["s"], "train_gflops": flops / train_s / 1e9, "train_of_floor": floor / train_s,
            "gradient_steps": counted["n"], "full_gradient_steps": full_gradient_steps(full),
            "tflop": flops / 1e12, "gflops": flops / wall / 1e9, "floor_gflops": flops / floor / 1e9,
            "of_floor": floor / wall, "scores": [r["final_score"] for r in results]}


def full_gradient_steps(spec) -> int:
    """Gradient steps of a full-budget run, replaying DQN.observe's schedule."""
    c, steps, since, total = spec.config, 0, 0, 0
    for steps in range(1, spec.budget + 1):
        since += 1
        if steps >= c["learning_starts"] and since >= c["train_freq"]:
            total += since if c["gradient_steps"] == -1 else c["gradient_steps"]
            since = 0
    return total


def child(which: str, args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--which", which, *sys.argv[1:]], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10, help="seed batch size K")
    p.add_argument("--segment", type=int, default=5000, help="env steps measured per non-CartPole config")
    p.add_argument("--skip-sb3", action="store_true")
    p.add_argument("--which", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.which:  # child process: one measurement, fresh interpreter
        if args.which == "sb3":
            from bench_vs_sb3 import sb3  # this folder: the same SB3 run as the K = 1 benchmark

            print(json.dumps(sb3(50_000, 0)))
        else:
            agent, env, steps, eval_every, k = args.which.split(":")
            print(json.dumps(measure(agent, env, int(k), int(steps) or None, int(eval_every) or None)))
        return

    from dqn_bench.runner import versions

    k = args.seeds
    print(f"machine: {versions()['machine']}; torch {torch.__version__}, 1 thread per process")
    # like SB3's run below: train 50k steps, evaluate 10 episodes at the end (and at step 0)
    cart = child(f"dqn:CartPole-v1:0:50000:{k}", args)
    lone = child("dqn:CartPole-v1:0:50000:1", args)
    per_seed = cart["wall_s"] / k
    print("\n1. CartPole-v1, Zoo config, 50k steps, final evaluation only, one thread per process")
    print(f"   dqn_bench, {k} seeds in one process: {cart['wall_s']:.1f} s = {per_seed:.1f} s per seed "
          f"(final scores {', '.join(f'{s:.0f}' for s in cart['scores'])})")
    print(f"   dqn_bench, 1 seed (--seed-batch 1): {lone['wall_s']:.1f} s; seed batching speedup "
          f"{lone['wall_s'] / per_seed:.1f}x per seed")
    if not args.skip_sb3:
        peer = child("sb3", args)
        print(f"   SB3 DQN, same hyperparameters, 1 seed: {peer['wall_s']:.1f} s (final score {peer['score']:.0f})")
        print(f"   per-seed ratio ours / SB3 = {per_seed / peer['wall_s']:.2f} (target <= 0.3); "
              f"1 seed alone: {lone['wall_s'] / peer['wall_s']:.2f}")
        # CPU time: what each process itself used, so another load on the machine moves it less
        print(f"   same in CPU seconds: {cart['cpu_s'] / k:.1f} s per seed vs SB3 {peer['cpu_s']:.1f} s, ratio "
              f"{cart['cpu_s'] / k / peer['cpu_s']:.2f}; 1 seed alone {lone['cpu_s'] / peer['cpu_s']:.2f}")

    rows = [cart] + [child(f"dqn:{env}:{args.segment}:0:{k}", args) for env in CLASSIC[1:]]
    print(f"\n2. GEMM FLOPs of the gradient steps over wall time vs bare bmm at the same shapes "
          f"(K = {k}, one process, one thread); 'training' excludes the evaluation episodes")
    print("| config | env steps | gradient steps | TFLOP | bare bmm GFLOP/s | whole run GFLOP/s | of floor "
          "| training GFLOP/s | of floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| dqn {r['env']} | {r['budget']} | {r['gradient_steps']} | {r['tflop']:.2f} | {r['floor_gflops']:.1f} "
              f"| {r['gflops']:.1f} | {r['of_floor']:.0%} | {r['train_gflops']:.1f} | {r['train_of_floor']:.0%} |")

    base = child(f"dqn:Acrobot-v1:{args.segment // 2}:0:{k}", args)
    factor = {"dqn": 1.0}
    for agent in PRESETS[1:]:
        r = child(f"{agent}:Acrobot-v1:{args.segment // 2}:0:{k}", args)
        factor[agent] = (r["wall_s"] / r["gradient_steps"]) / (base["wall_s"] / base["gradient_steps"])
    seconds = 0.0
    for r in rows:
        per_step = r["wall_s"] / r["gradient_steps"]  # one seed batch of K
        seconds += sum(factor.values()) * per_step * r["full_gradient_steps"] * math.ceil(10 / k)
    print("\n3. preset cost per gradient step relative to dqn (Acrobot-v1): "
          + ", ".join(f"{a} {f:.2f}" for a, f in factor.items()))
    print(f"   projected classic suite (5 DQN presets x 4 envs x 10 seeds, batches of {k}) on 2 cores: "
          f"{seconds / 2 / 3600:.2f} h (random and discretized_q add minutes; evaluation beyond the measured "
          "segments excluded)")


if __name__ == "__main__":
    main()
