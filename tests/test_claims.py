"""Commands sharing one results folder train each seed batch once: a batch is claimed (an OS lock
beside its checkpoint) just before it starts; a dead owner's claim is taken over."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dqn_bench import checkpoints
from dqn_bench import config as cfg
from dqn_bench.claims import BUSY, CLAIMED, FINISHED, Claims

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "dqn_bench", "run", "--suite", "smoke", "--seeds", "3", "--seed-batch", "1",
       "--workers", "1", "--set", "budget=2000", "--set", "eval_every=1000", "--set", "eval_episodes=2"]


def batches():
    specs = cfg.plan(cfg.load_suite("smoke"), ["dqn"], ["CartPole-v1"], 2, {"budget": "100"})
    return [[s] for s in specs]


def hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding a batch's claim, as another command would."""
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'{\"host\": \"h\", \"pid\": 7, \"since\": \"then\"}'); "
            "print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_owner_keeps_its_batch_and_a_dead_ones_is_taken_over(tmp_path):
    said = []
    claims = Claims(tmp_path, finished=lambda spec: False, say=said.append)
    first, second = batches()
    owner = hold_lock(tmp_path / f"{checkpoints.batch_name([first[0].key])}.claim")
    try:
        assert claims.take(first) == BUSY
        assert said == ["skipping dqn on CartPole-v1, seed 0: in flight elsewhere (host h, pid 7, since then)"]
        assert claims.take(second) == CLAIMED
    finally:
        owner.kill()
        owner.wait()
    assert claims.take(first) == CLAIMED  # the kernel dropped the dead owner's lock
    owner = json.loads((tmp_path / f"{checkpoints.batch_name([first[0].key])}.claim").read_text())
    assert owner["pid"] == os.getpid()
    claims.stored(first[0].key)  # its record is stored: the claim goes
    assert not (tmp_path / f"{checkpoints.batch_name([first[0].key])}.claim").exists()
    claims.release()
    assert list(tmp_path.iterdir()) == []


def test_a_batch_stored_meanwhile_is_skipped_and_a_busy_one_is_looked_at_again_at_the_end(tmp_path):
    said, left = [], []
    first, second = batches()
    claims = Claims(tmp_path, finished=lambda spec: spec.seed == 1, say=said.append)
    owner = hold_lock(tmp_path / f"{checkpoints.batch_name([first[0].key])}.claim")
    handed = []
    for batch in claims.claimed([first, second], left=left.append):
        handed.append(batch)
    owner.kill()
    owner.wait()
    assert handed == [] and left == [second, first]  # stored elsewhere; busy on both looks
    assert said[1] == "skipping dqn on CartPole-v1, seed 1: finished elsewhere"
    assert len(said) == 2  # the second look at a busy batch says nothing more
    assert claims.take(first) == CLAIMED and claims.take(second) == FINISHED


def records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "smoke" / "runs").glob("*.json"))]


def test_two_concurrent_commands_on_one_folder_train_every_run_once(tmp_path):
    procs = [subprocess.Popen([*RUN, "--out", str(tmp_path)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    done = [int(e.split("done: ")[1].split(" ok")[0]) for e in errs]
    assert sum(done) == 12 and min(done) > 0, errs  # 2 agents x 2 envs x 3 seeds, each trained once
    assert any("in flight elsewhere" in e for e in errs), errs
    recs = records(tmp_path)
    assert len(recs) == 12 and all(r["status"] == "ok" for r in recs)
    assert not list((tmp_path / "smoke" / "checkpoints").glob("*.claim"))


def test_a_killed_commands_batches_are_finished_by_the_next(tmp_path):
    proc = subprocess.Popen([*RUN, "--checkpoint-every", "500", "--out", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = tmp_path / "smoke" / "checkpoints"
    deadline = time.time() + 300
    while not list(ckpt.glob("*.pt")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(ckpt.glob("*.claim")) and list(ckpt.glob("*.pt"))  # it died holding a claim
    again = subprocess.run([*RUN, "--checkpoint-every", "500", "--out", str(tmp_path)], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "in flight elsewhere" not in again.stderr  # a dead owner holds nothing
    recs = records(tmp_path)
    assert len(recs) == 12 and all(r["status"] == "ok" for r in recs)
    assert not list(ckpt.glob("*.claim")) and not list(ckpt.glob("*.pt"))


def test_one_worker_pulls_each_batch_only_when_it_starts_it():
    """Pulling a batch claims it: one worker must not hold the next batch while it trains this one,
    or a second command on the folder skips that batch and idles."""
    from dqn_bench.executors import run_local

    pulled = []

    def pull():
        for batch in batches():
            pulled.append(batch[0].seed)
            yield batch

    records = run_local(pull(), workers=1)
    first = next(records)
    assert first["spec"]["seed"] == 0 and pulled == [0]
    assert [r["spec"]["seed"] for r in records] == [1] and pulled == [0, 1]
