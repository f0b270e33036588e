"""This project against the fastest CPU peers, in one run, one pinned core and one thread each.

classic: CartPole-v1, the RL Zoo's DQN hyperparameters, 50k steps, 10 greedy evaluation episodes
at the end. Rows: ours with 10 seeds in one process and with one seed (the CLI, whole command),
Stable-Baselines3 DQN (one seed), SBX DQN (Stable-Baselines Jax, one seed), and a jitted JAX DQN
vmapped over 10 seeds (jax_seed_vmap_dqn.py, PureJaxRL's style). Each row is a fresh subprocess
timed whole (imports, compilation, evaluation included) and prints its greedy return, so a fast
but broken implementation shows.

atari: updates/s of one gradient step at batch 32 on 4x84x84 frames: ours as drq_eps (Dopamine's
SAME-padded net, dueling, double, augmentation) and as Nature DQN, SB3's and SBX's DQN train step
(Nature CNN), and the floor: the convolutions and GEMMs of the drq_eps step run bare.

    pip install -e .[bench,peers] -c constraints.txt
    python benchmarks/bench_peers.py [--part classic|atari|all] [--steps 50000] [--seeds 10]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
              "JAX_PLATFORMS": "cpu", "PYTHONHASHSEED": "0"}

def pinned(cmd: list[str], cwd: Path | None = None) -> tuple[float, str]:
    """Run cmd on core 0 with one thread everywhere -> (wall seconds, stdout)."""
    start = time.perf_counter()
    out = subprocess.run(["taskset", "-c", "0", *cmd], capture_output=True, text=True, cwd=cwd,
                         env={**os.environ, **ONE_THREAD})
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return wall, out.stdout


def child_sb3(steps: int, jax_version: bool) -> None:
    """One SB3 or SBX DQN run with the Zoo hyperparameters, then 10 greedy episodes."""
    import gymnasium as gym

    from bench_vs_sb3 import ZOO, greedy_cartpole

    if jax_version:
        from sbx import DQN  # no gradient clipping in SBX's DQN (max_grad_norm is commented out there)
    else:
        import torch
        from stable_baselines3 import DQN
        torch.set_num_threads(1)
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), seed=0, verbose=0, **ZOO)
    model.learn(total_timesteps=steps)
    print(json.dumps({"scores": [greedy_cartpole(lambda o: model.predict(o, deterministic=True)[0])]}))


def classic(steps: int, seeds: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for k in (seeds, 1):
            cmd = [sys.executable, "-m", "dqn_bench", "run", "--suite", "classic", "--agents", "dqn", "--envs",
                   "CartPole-v1", "--seeds", str(k), "--seed-batch", str(k), "--workers", "1", "--out", f"{out}/{k}",
                   "--set", f"budget={steps}", "--set", f"eval_every={steps}", "--set", "final_eval_episodes=10"]
            wall, _ = pinned(cmd)
            records = [json.loads(p.read_text()) for p in Path(f"{out}/{k}/classic/runs").glob("*.json")]
            rows.append((f"ours, {k} seed{'s' * (k > 1)} in one process", k, wall, [r["final_score"] for r in records]))
    for name, jax_version in (("Stable-Baselines3 DQN", False), ("SBX DQN", True)):
        wall, stdout = pinned([sys.executable, __file__, "--child", "sbx" if jax_version else "sb3", "--steps", str(steps)])
        rows.append((name, 1, wall, json.loads(stdout.splitlines()[-1])["scores"]))
    _, stdout = pinned([sys.executable, "-c", "import jax_seed_vmap_dqn as j; print(j.check_env())"], cwd=HERE)
    print(f"JAX CartPole against gymnasium's over 2,000 steps: largest state difference {float(stdout.split()[-1]):.1e}")
    wall, stdout = pinned([sys.executable, str(HERE / "jax_seed_vmap_dqn.py"), "--seeds", str(seeds), "--steps", str(steps)])
    jax_out = json.loads(stdout.splitlines()[-1])
    rows.append((f"JAX seed-vmap DQN, {seeds} seeds (compile {jax_out['compile_s']:.1f} s)", seeds, wall,
                 jax_out["scores"]))
    from cartpole_floor import FLOORS, GRADIENT_STEPS, STEP_FLOPS

    floors = {}
    for name in FLOORS:
        _, stdout = pinned([sys.executable, __file__, "--child", f"floor:{name}", "--seeds", str(seeds)])
        floors[name] = json.loads(stdout.splitlines()[-1])["gflops"]
    sb3 = next(r[2] for r in rows if r[0].startswith("Stable"))
    print(f"\nCartPole-v1, Zoo DQN, {steps} steps, one pinned core and thread each, whole command timed")
    print("| implementation | seeds | wall per seed (s) | vs SB3 | greedy return (mean over seeds) |")
    print("|---|---|---|---|---|")
    for name, k, wall, scores in rows:
        print(f"| {name} | {k} | {wall / k:.1f} | {wall / k / sb3:.2f} | {sum(scores) / len(scores):.1f} |")
    best = max(floors.values())
    print(f"\nGEMM floor at the gradient step's shapes, {seeds} seeds (GFLOP/s; oneDNN's weights packed ahead): "
          + ", ".join(f"{name} {gflops:.1f}" for name, gflops in floors.items()))
    for name, k, wall, _ in rows:
        if k == seeds and steps == 50_000:  # the floor's step count is the Zoo config's at 50k steps
            gflops = k * GRADIENT_STEPS * STEP_FLOPS / wall / 1e9
            print(f"{name}: {gflops:.1f} GFLOP/s over the whole command = {gflops / best:.2f} of the fastest floor")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["classic", "atari", "all"], default="all")
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--seconds", type=float, default=20.0, help="atari: seconds per timed implementation")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child in ("sb3", "sbx"):
        return child_sb3(args.steps, args.child == "sbx")
    if args.child and args.child.startswith("floor:"):
        from cartpole_floor import FLOORS
        return print(json.dumps({"gflops": FLOORS[args.child.split(":", 1)[1]](args.seeds)}))
    if args.child:  # atari:NAME
        from atari_update import measure
        return print(json.dumps(measure(args.child.split(":", 1)[1], args.seconds)))
    from importlib.util import find_spec

    missing = [m for m in ("jax", "optax", "sbx", "stable_baselines3") if find_spec(m) is None]
    if missing:
        print(f"bench_peers needs {', '.join(missing)}: pip install -e .[bench,peers] -c constraints.txt", file=sys.stderr)
        sys.exit(2)
    from dqn_bench.runner import versions

    print(f"machine: {versions()['machine']}")
    if args.part in ("classic", "all"):
        classic(args.steps, args.seeds)
    if args.part in ("atari", "all"):
        atari(args.seconds)


def atari(seconds: float) -> None:
    from atari_update import IMPLEMENTATIONS

    results = {}
    for name in IMPLEMENTATIONS:
        _, stdout = pinned([sys.executable, __file__, "--child", f"atari:{name}", "--seconds", str(seconds)])
        results[name] = json.loads(stdout.splitlines()[-1])
    floor = results["floor"]["updates_per_s"]
    print(f"\nAtari gradient step, batch 32, 4x84x84 uint8 frames, one pinned core and thread each")
    print("| implementation | network | updates/s | vs floor |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {r['label']} | {r['network']} | {r['updates_per_s']:.2f} | {r['updates_per_s'] / floor:.2f} |")


if __name__ == "__main__":
    main()
