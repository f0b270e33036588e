"""--executor ray on a local Ray instance: the local executor's records, retries, failures for good."""
import json
import os
import textwrap
from pathlib import Path

import pytest

from dqn_bench.runner import TIMING_KEYS

pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e .[ray])")

TINY = ["--suite", "smoke", "--seeds", "2", "--set", "budget=400", "--set", "eval_every=200",
        "--set", "eval_episodes=2", "--set", "final_eval_episodes=2", "--set", "learning_starts=100"]


@pytest.fixture
def normal_priority(monkeypatch):
    """Ray starts its workers at niceness 15: beside the other test files' training processes, a
    crashing task's four worker starts took minutes (390 s against 50 s at niceness 0). Priority
    is not what these tests test. (The Ctrl-C test keeps Ray's default: niceness 15 is what lets
    the raylet shut down promptly beside the workers it stops.)"""
    monkeypatch.setenv("RAY_worker_niceness", "0")


def records(root):
    return {p.name: json.loads(p.read_text()) for p in sorted(Path(root).glob("*/runs/*.json"))}


def comparable(rec):
    return {k: v for k, v in rec.items() if k not in TIMING_KEYS}


def test_ray_records_equal_the_local_executors(run_cli, tmp_path, normal_priority):
    local = run_cli("run", *TINY, "--out", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    ray = run_cli("run", *TINY, "--executor", "ray", "--workers", "2", "--out", tmp_path / "ray")
    assert ray.returncode == 0, ray.stderr
    a, b = records(tmp_path / "local"), records(tmp_path / "ray")
    assert len(a) == 8 and a.keys() == b.keys()  # same keys, same file names
    assert {n: comparable(r) for n, r in a.items()} == {n: comparable(r) for n, r in b.items()}
    again = run_cli("run", *TINY, "--executor", "ray", "--out", tmp_path / "ray")
    assert again.returncode == 0 and "8 already stored, 0 to run" in again.stderr


def crashing_agent(tmp_path, attempts_to_crash):
    """A plugin agent whose worker process dies (os._exit) on its first `attempts_to_crash` tries."""
    pkg = tmp_path / "site"
    (pkg / "crashy").mkdir(parents=True)
    marker = tmp_path / "attempts"
    (pkg / "crashy" / "__init__.py").write_text(textwrap.dedent(f"""
        import os
        from dataclasses import dataclass
        from pathlib import Path
        import numpy as np
        from dqn_bench.protocol import AgentSpec

        @dataclass(frozen=True)
        class Config:
            pass

        class Crashy:
            def __init__(self, seed):
                self.rng, self.started = np.random.default_rng(seed), False
            def act(self, obs, *, explore):
                if not self.started:  # a task's first step (the driver only builds agents)
                    self.started = True
                    marker = Path({str(marker)!r})
                    tries = int(marker.read_text()) if marker.exists() else 0
                    marker.write_text(str(tries + 1))
                    if tries < {attempts_to_crash}:
                        os._exit(1)  # the worker process dies, as on a lost node or the OOM killer
                return self.rng.integers(2, size=len(obs))
            def observe(self, batch): return {{}}
            def state_dict(self): return {{}}
            def load_state_dict(self, state): pass

        SPEC = AgentSpec("crashy", lambda o, a, cfg, seed: Crashy(seed), Config)
    """))
    dist = pkg / "crashy-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crashy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dqn_bench.agents]\ncrashy = crashy:SPEC\n")
    return {"PYTHONPATH": f"{pkg}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}, marker


def test_a_worker_killed_mid_run_is_retried_nothing_lost_no_duplicate(run_cli, tmp_path, normal_priority):
    env, marker = crashing_agent(tmp_path, attempts_to_crash=1)
    r = run_cli("run", "--suite", "smoke", "--agents", "crashy", "--envs", "CartPole-v1", "--seeds", "1",
                "--executor", "ray", "--workers", "1", "--out", tmp_path / "out",
                "--set", "budget=100", "--set", "eval_every=100", "--set", "eval_episodes=1", "--set", "final_eval_episodes=1", env=env)
    assert r.returncode == 0, r.stderr
    (rec,) = records(tmp_path / "out").values()
    assert rec["status"] == "ok"
    assert marker.read_text() == "2"  # the first attempt died, the retry ran


def test_a_task_that_dies_for_good_is_recorded_failed_with_the_reason(run_cli, tmp_path, normal_priority):
    env, _ = crashing_agent(tmp_path, attempts_to_crash=100)
    r = run_cli("run", "--suite", "smoke", "--agents", "crashy", "--envs", "CartPole-v1", "--seeds", "1",
                "--executor", "ray", "--workers", "1", "--out", tmp_path / "out",
                "--set", "budget=100", "--set", "eval_every=100", "--set", "eval_episodes=1", "--set", "final_eval_episodes=1", env=env)
    assert r.returncode == 1  # some run failed; the suite finished
    (rec,) = records(tmp_path / "out").values()
    assert rec["status"] == "failed" and "after 3 retries" in rec["error"]


def test_ctrl_c_cancels_the_tasks_and_stops_the_local_instance(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "dqn_bench", "run", "--suite", "smoke", "--agents", "dqn",
                             "--seeds", "2", "--executor", "ray", "--workers", "2", "--out", str(tmp_path),
                             "--set", "budget=200000"], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # wait until the batches are planned, then give Ray time to start them
        if "to run" in line:
            break
    time.sleep(8)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)  # Ray shuts its workers down slowly on a loaded machine
    assert proc.returncode == 130 and "interrupted" in err, err
    assert not list(tmp_path.glob("*/runs/*.json"))  # nothing finished, nothing half-written
    time.sleep(2)
    leftover = subprocess.run(["pgrep", "-f", "raylet"], capture_output=True, text=True).stdout.split()
    assert not leftover, "the Ray instance this command started is still running"
