"""What a run tells the outside while it trains: TensorBoard scalars (`run --tensorboard DIR`)
and env-step progress for the suite-wide bar."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from dqn_bench.protocol import ConfigError

LOG_EVERY = 1000  # env steps between loss / epsilon / steps-per-second points
TENSORBOARD_INSTALL = "pip install -e .[tensorboard] -c constraints.txt"


def require_tensorboard():
    """torch's SummaryWriter, or a one-line ConfigError naming the install command."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(f"--tensorboard needs TensorBoard, an optional extra: {TENSORBOARD_INSTALL}") from None
    return SummaryWriter


class TrainLog:
    """One event folder per run (seed batches: one per seed), named like the run's record.

    Scalars: eval/mean_return at each evaluation, train/episode_return at each episode end,
    train/loss (mean of the window's finite losses), train/epsilon and perf/steps_per_s every
    LOG_EVERY env steps. A resumed run purges what its earlier life logged past the checkpoint.
    """

    def __init__(self, specs: Sequence, root: Path, step0: int):
        writer = require_tensorboard()
        self.writers = [writer(log_dir=str(Path(root) / s.name), purge_step=step0 or None) for s in specs]
        self.losses: list[list[float]] = [[] for _ in specs]
        self.since, self.since_step = time.perf_counter(), step0

    def step(self, step: int, metrics: dict, prog: list[dict], done: np.ndarray) -> None:
        k_all = len(self.writers)
        if metrics.get("loss") is not None:
            for k, loss in enumerate(np.broadcast_to(np.asarray(metrics["loss"], float), (k_all,))):
                if np.isfinite(loss):
                    self.losses[k].append(float(loss))
        for k in np.flatnonzero(done):
            self.writers[k].add_scalar("train/episode_return", prog[k]["episode_returns"][-1], step)
        if step % LOG_EVERY:
            return
        now = time.perf_counter()
        rate = (step - self.since_step) / max(now - self.since, 1e-9)
        self.since, self.since_step = now, step
        epsilon = metrics.get("epsilon")
        for k, w in enumerate(self.writers):
            if self.losses[k]:
                w.add_scalar("train/loss", float(np.mean(self.losses[k])), step)
                self.losses[k] = []
            if epsilon is not None:
                w.add_scalar("train/epsilon", float(np.broadcast_to(np.asarray(epsilon, float), (k_all,))[k]), step)
            w.add_scalar("perf/steps_per_s", rate, step)

    def evaluation(self, step: int, prog: list[dict], alive: np.ndarray) -> None:
        for k in np.flatnonzero(alive):
            self.writers[k].add_scalar("eval/mean_return", float(np.mean(prog[k]["eval_returns"][-1])), step)

    def close(self) -> None:
        for w in self.writers:
            w.close()


class Ticker:
    """Tells `progress(n)` of the env steps done (n = steps x seeds), about once a second; the
    clock is read every 256 steps only, so an unwatched run pays nothing measurable."""

    interval = 1.0  # seconds between reports

    def __init__(self, progress: Callable[..., None] | None, seeds: int, step0: int):
        self.progress, self.seeds, self.reported, self.last = progress, seeds, step0, time.monotonic()
        if progress and step0:
            progress(step0 * seeds, resumed=True)  # a resumed batch starts where its checkpoint was

    def tick(self, step: int, force: bool = False) -> None:
        if self.progress is None or (step % 256 and not force) or step <= self.reported:
            return
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.progress((step - self.reported) * self.seeds)
            self.reported, self.last = step, now
