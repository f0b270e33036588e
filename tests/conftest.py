import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env=None, cwd=None):
    """Run `python -m dqn_bench ...` as a user would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "dqn_bench", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd or ROOT, timeout=900)


@pytest.fixture
def run_cli():
    return cli


# A short classic-suite DQN run (seconds): for tests that train, stop and resume real runs.
SETS = {"budget": "1500", "eval_every": "500", "eval_episodes": "2", "final_eval_episodes": "2", "learning_starts": "300",
        "train_freq": "16", "gradient_steps": "4", "buffer_size": "2000", "batch_size": "32"}


def plan(agent="dqn", seeds=3, sets=SETS, env="CartPole-v1"):
    from dqn_bench import config as cfg
    return cfg.plan(cfg.load_suite("classic"), [agent], [env], seeds, sets)


def strip(record):
    """A record without what differs between identical runs (timings, the batch it trained in)."""
    from dqn_bench.runner import TIMING_KEYS
    return {k: v for k, v in record.items() if k not in TIMING_KEYS + ("seed_batch",)}
