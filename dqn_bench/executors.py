"""Run specs in this process or a process pool; records stream back to the caller as they finish."""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterator, Sequence

from dqn_bench.config import RunSpec
from dqn_bench.runner import run_one


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_local(specs: Sequence[RunSpec], workers: int, env_packages: Sequence[str] = (),
              checkpoint_dir: Path | None = None, checkpoint_every: int = 0) -> Iterator[dict]:
    """Yield one record per spec in completion order."""
    def args(spec):
        return spec, (checkpoint_dir / f"{spec.key}.pt" if checkpoint_dir and checkpoint_every else None), checkpoint_every

    if workers <= 1 or len(specs) <= 1:
        for spec in specs:
            yield run_one(*args(spec))
        return
    # spawn: workers start clean (no forked torch thread pools); env packages re-imported there
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(tuple(env_packages),)) as pool:
        futures = [pool.submit(run_one, *args(spec)) for spec in specs]
        for future in as_completed(futures):
            yield future.result()


def _init_worker(env_packages: tuple[str, ...]) -> None:
    import torch

    import envs

    torch.set_num_threads(1)  # one core per run; parallelism comes from running runs side by side
    for pkg in env_packages:
        envs.import_env_package(pkg)
