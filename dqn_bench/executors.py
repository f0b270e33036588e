"""Run seed batches in this process or a process pool; records stream back as batches finish."""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterator, Sequence

from dqn_bench import checkpoints
from dqn_bench.config import RunSpec
from dqn_bench.runner import run_batch


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_local(batches: Sequence[Sequence[RunSpec]], workers: int, env_packages: Sequence[str] = (),
              checkpoint_dir: Path | None = None, checkpoint_every: int = 0) -> Iterator[dict]:
    """Yield one record per run, a batch's records together, in completion order. A bare
    RunSpec in `batches` is a batch of one."""
    batches = [[b] if isinstance(b, RunSpec) else list(b) for b in batches]

    def args(batch):
        path = None
        if checkpoint_dir and checkpoint_every:
            path = checkpoints.path_for(checkpoint_dir, [s.key for s in batch])
        return batch, path, checkpoint_every

    if workers <= 1 or len(batches) <= 1:
        for batch in batches:
            yield from run_batch(*args(batch))
        return
    # spawn: workers start clean (no forked torch thread pools); env packages re-imported there
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(tuple(env_packages),)) as pool:
        futures = [pool.submit(run_batch, *args(batch)) for batch in batches]
        for future in as_completed(futures):
            yield from future.result()


def _init_worker(env_packages: tuple[str, ...]) -> None:
    import torch

    import envs

    torch.set_num_threads(1)  # one core per batch; parallelism comes from running batches side by side
    for pkg in env_packages:
        envs.import_env_package(pkg)
