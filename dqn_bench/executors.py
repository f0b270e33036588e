"""Run seed batches in this process, a process pool or on Ray; records stream back to the caller
(the only writer of the store) as batches finish."""
from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from queue import Empty
from typing import Callable, Iterable, Iterator, Sequence

from dqn_bench import checkpoints, stop
from dqn_bench.config import RunSpec
from dqn_bench.files import WriteFailed
from dqn_bench.protocol import ConfigError
from dqn_bench.runner import failed_records, run_batch


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_local(batches: Iterable[Sequence[RunSpec] | RunSpec], workers: int, env_packages: Sequence[str] = (),
              checkpoint_dir: Path | None = None, checkpoint_every: int = 0, tensorboard: Path | None = None,
              policies: bool = False, progress: Callable[..., None] | None = None,
              threads: int = 1, device: str = "cpu") -> Iterator[dict]:
    """Yield one record per run, a batch's records together, in completion order; a batch's
    checkpoint is removed when the caller asks for the next record, i.e. once it has stored them
    all (a caller that fails to store them leaves it for the rerun). `batches` is pulled lazily,
    one batch as a worker frees up (claims.Claims.claimed claims each as it is pulled). A bare
    RunSpec in `batches` is a batch of one. `progress(n)` hears of env steps as batches train, and
    `progress(n, resumed=True)` of those a resumed batch's checkpoint had done."""
    batches = ([b] if isinstance(b, RunSpec) else list(b) for b in batches)

    def args(batch, report):
        path = _checkpoint(batch, checkpoint_dir, checkpoint_every)
        return (batch, path, checkpoint_every, tensorboard, policies, report, threads, device), path

    # pulling a batch claims it: one worker pulls each as it starts it, more look ahead for a second
    first = [] if workers <= 1 else list(itertools.islice(batches, 2))
    if len(first) <= 1:  # in this process: no worker to spawn
        for batch in itertools.chain(first, batches):
            call, path = args(batch, progress)
            yield from _stored(run_batch(*call), path)
        return
    # spawn: workers start clean (no forked torch thread pools); env packages re-imported there
    ctx = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        queue = stack.enter_context(ctx.Manager()).Queue() if progress else None
        pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                                       initargs=(tuple(env_packages),)))
        report = functools.partial(_put, queue) if queue is not None else None
        batches = itertools.chain(first, batches)
        in_flight: dict = {}  # future -> its batch's checkpoint

        def submit() -> None:
            batch = next(batches, None)
            if batch is not None:
                call, path = args(batch, report)
                in_flight[pool.submit(run_batch, *call)] = path

        try:
            for _ in range(workers):
                submit()
            while in_flight:
                done, _ = wait(set(in_flight), timeout=0.5, return_when=FIRST_COMPLETED)
                _drain(queue, progress)
                for future in done:
                    yield from _stored(future.result(), in_flight.pop(future))
                    submit()
        except BaseException:  # a failed write, Ctrl-C, the caller gone: stop now, not after every batch
            pool.shutdown(wait=False, cancel_futures=True)
            for child in ctx.active_children():  # SIGTERM: each checkpointing batch saves its step first
                child.terminate()
            raise


def _stored(records: list[dict], checkpoint: Path | None) -> Iterator[dict]:
    """Hand out a batch's records, then remove its checkpoint: the caller asks for more only after
    storing them, so a failed store (a full disk) leaves the checkpoint for the rerun."""
    yield from records
    if checkpoint is not None:
        checkpoints.remove(checkpoint)


def _put(queue, n: int, resumed: bool = False) -> None:
    try:
        queue.put((n, resumed))
    except (OSError, EOFError):  # the parent is stopping (its queue's process is gone): the run goes on to its checkpoint
        pass


def _drain(queue, progress) -> None:
    """Hand the workers' step counts to `progress` (in this process: the bar is drawn here)."""
    while queue is not None:
        try:
            n, resumed = queue.get_nowait()
        except Empty:
            return
        if resumed:  # only a resumed batch's first count; plain step counters take just n
            progress(n, resumed=True)
        else:
            progress(n)


def _checkpoint(batch: Sequence[RunSpec], folder: Path | None, every: int) -> Path | None:
    return checkpoints.path_for(folder, [s.key for s in batch]) if folder and every else None


def require_ray():
    """The ray module, or a one-line ConfigError naming the install command."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, an optional extra: {RAY_INSTALL}") from None
    return ray


def _init_worker(env_packages: tuple[str, ...]) -> None:
    import torch

    import envs

    torch.set_num_threads(1)  # one core per batch; parallelism comes from running batches side by side
    # Ctrl-C reaches the parent, which stops its workers with SIGTERM: each saves its checkpoint first
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop.install((signal.SIGTERM,), worker=True)
    for pkg in env_packages:
        envs.import_env_package(pkg)


RAY_INSTALL = "pip install -e .[ray] -c constraints.txt"


def run_ray(batches: Iterable[Sequence[RunSpec]], workers: int, env_packages: Sequence[str] = (),
            checkpoint_dir: Path | None = None, checkpoint_every: int = 0, address: str | None = None,
            max_retries: int = 3, tensorboard: Path | None = None, policies: bool = False,
            progress: Callable[..., None] | None = None, threads: int = 1, device: str = "cpu") -> Iterator[dict]:
    """The same batches as Ray tasks (num_cpus=threads, retried on worker death); records come back to
    this driver, which alone writes the store, so a retried task can never leave two records.
    Every batch is pulled (so claimed) and submitted at once: Ray queues them on the cluster.

    Without `address` a local Ray instance with `workers` CPUs is started and shut down; with one,
    the driver joins that cluster and the cluster's CPUs set the concurrency. A batch whose task dies for good (retries exhausted) comes back as failed
    records naming the reason. Ctrl-C cancels every pending task before the interrupt goes on.
    """
    ray = require_ray()
    from ray.exceptions import RayError

    batches = [list(b) for b in batches]
    owned = not ray.is_initialized()
    if owned:
        try:
            ray.init(address=address, num_cpus=None if address else workers * threads, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise ConfigError(f"cannot reach a Ray cluster at --ray-address {address}: {e}") from None
    task = ray.remote(num_cpus=threads, max_retries=max_retries)(_ray_batch)
    pending = {}
    try:
        from ray.util.queue import Queue

        with stop.deferred():  # a Ctrl-C lets Ray's call return (a wait: at most 0.5 s), then stops at a check()
            queue = Queue() if progress else None  # an actor: workers on any node put step counts in it
            report = functools.partial(_put, queue) if queue is not None else None
            for batch in batches:
                path = _checkpoint(batch, checkpoint_dir, checkpoint_every)
                pending[task.remote(batch, path, checkpoint_every, tuple(env_packages), tensorboard, policies,
                                    report, threads, device)] = batch, path
            while pending:
                stop.check()
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                _drain(queue, progress)
                if not ready:
                    continue
                (ref,) = ready
                batch, path = pending.pop(ref)
                try:
                    records = ray.get(ref)
                except WriteFailed:  # Ray raises the task's own exception type too: a full disk stops the command
                    raise
                except RayError as e:  # the checkpoint, if any, stays: --retry-failed resumes it
                    yield from failed_records(batch, f"{type(e).__name__} after {max_retries} retries: "
                                                     f"{str(e).strip().splitlines()[0][:300]}")
                    continue
                yield from _stored(records, path)
            stop.check()
    finally:  # Ctrl-C, or the caller stopped reading: no task outlives the command
        for ref in pending:
            ray.cancel(ref, force=True)
        if owned:
            ray.shutdown()


def _ray_batch(batch, path, checkpoint_every, env_packages, tensorboard=None, policies=False, progress=None,
               threads=1, device="cpu"):
    _init_worker(env_packages)
    return run_batch(batch, path, checkpoint_every, tensorboard, policies, progress, threads, device)
