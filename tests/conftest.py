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
