"""The GEMM floor of a CartPole Zoo DQN run: the matrix products of one gradient step of K seeds
(online and target forwards, weight and input gradients) timed bare, by torch's bmm (MKL), by
oneDNN's matmul and by XLA (one jitted program of the same dots), so a run's throughput is stated
against the fastest."""
from __future__ import annotations

import time

from bench_vs_sb3 import ZOO

BATCH, SIZES = ZOO["batch_size"], (4, *ZOO["policy_kwargs"]["net_arch"], 2)  # CartPole: 4 inputs, 2 actions
LAYERS = list(zip(SIZES[:-1], SIZES[1:]))
# (rows, inner, cols) of every product in one seed's step
SHAPES = ([(BATCH, i, o) for i, o in LAYERS] * 2  # online forward, target forward
          + [(i, BATCH, o) for i, o in LAYERS]  # weight gradients
          + [(BATCH, o, i) for i, o in LAYERS[1:]])  # input gradients (none into the observation)
STEP_FLOPS = sum(2 * m * k * n for m, k, n in SHAPES)
# gradient steps of the Zoo config in 50k steps: a round every train_freq env steps past learning_starts
GRADIENT_STEPS = ZOO["gradient_steps"] * sum(1 for t in range(ZOO["train_freq"], 50_001, ZOO["train_freq"])
                                             if t > ZOO["learning_starts"])


def best_seconds(step, trials: int = 5, reps: int = 200) -> float:
    """The fastest of `trials` timings of `reps` calls, per call (after one warm-up call)."""
    step()
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            step()
        times.append((time.perf_counter() - start) / reps)
    return min(times)


def torch_floor(k: int) -> float:
    """GFLOP/s of the step's products as torch.bmm over K seeds."""
    import torch

    torch.set_num_threads(1)
    pairs = [(torch.randn(k, m, n_in), torch.randn(k, n_in, n)) for m, n_in, n in SHAPES]
    return k * STEP_FLOPS / best_seconds(lambda: [torch.bmm(a, b) for a, b in pairs]) / 1e9


def onednn_floor(k: int) -> float:
    """GFLOP/s of the same products by oneDNN's fp32 matmul (torch's mkldnn linear), one call per
    seed, every right-hand matrix packed ahead into oneDNN's layout: the most this path can give,
    since the gradients' right-hand sides change every step. 0 where torch has no oneDNN."""
    import torch

    torch.set_num_threads(1)
    if not torch.backends.mkldnn.is_available():
        return 0.0
    linear, pack = torch.ops.mkldnn._linear_pointwise, torch.ops.mkldnn._reorder_linear_weight
    calls = [(torch.randn(m, n_in), pack(torch.randn(n, n_in), m)) for m, n_in, n in SHAPES for _ in range(k)]
    return k * STEP_FLOPS / best_seconds(lambda: [linear(a, b, None, "none", [], "") for a, b in calls]) / 1e9


def xla_floor(k: int) -> float:
    """GFLOP/s of the same products as one jitted XLA program (batched dots over K seeds)."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.PRNGKey(0), 2 * len(SHAPES))
    pairs = [(jax.random.normal(keys[2 * i], (k, m, n_in)), jax.random.normal(keys[2 * i + 1], (k, n_in, n)))
             for i, (m, n_in, n) in enumerate(SHAPES)]
    dots = jax.jit(lambda pairs: [a @ b for a, b in pairs])
    return k * STEP_FLOPS / best_seconds(lambda: jax.block_until_ready(dots(pairs))) / 1e9


# name -> floor, in the order bench_peers prints them
FLOORS = {"torch bmm": torch_floor, "oneDNN": onednn_floor, "XLA": xla_floor}
