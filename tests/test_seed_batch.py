"""Seed batches: grouping, a seed's independence from its batch mates, faults, resume, records."""
import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from agents import dqn as dqn_module
from dqn_bench import checkpoints, cli
from dqn_bench import config as cfg
from dqn_bench.runner import run_batch, run_one, train
from conftest import SETS, plan, strip

CLASSIC = cfg.load_suite("classic")


# -- grouping ---------------------------------------------------------------------------------
def sizes(batches):
    return [len(b) for b in batches]


def test_default_split_keeps_every_worker_busy_with_the_fewest_batches():
    ten = plan(seeds=10)
    assert sizes(cfg.seed_batches(ten, workers=2)) == [5, 5]
    assert sizes(cfg.seed_batches(ten, workers=4)) == [2, 3, 3, 2]  # balanced, at most 3
    many = cfg.plan(CLASSIC, ["dqn", "double_dqn"], CLASSIC["envs"], 10, SETS)  # 8 cells >= 2 workers
    assert sizes(cfg.seed_batches(many, workers=2)) == [10] * 8
    for batch in cfg.seed_batches(many, workers=2):
        assert len({s.cell for s in batch}) == 1 and sorted(s.seed for s in batch) == list(range(10))


def test_seed_batch_option_and_one_seed_per_process():
    ten = plan(seeds=10)
    assert sizes(cfg.seed_batches(ten, workers=2, seed_batch=4)) == [4, 4, 2]
    assert sizes(cfg.seed_batches(ten, workers=2, seed_batch=1)) == [1] * 10
    assert sizes(cfg.seed_batches(ten, workers=2, batched=lambda s: False)) == [1] * 10
    assert sizes(cfg.seed_batches(ten, workers=1, max_batch=lambda s: 3)) == [2, 3, 3, 2]


def test_batches_run_seed_major_so_a_partial_grid_has_whole_seeds_early():
    grid = cfg.plan(CLASSIC, ["dqn"], ["CartPole-v1", "Acrobot-v1"], 4, SETS)  # plan order: env-major
    order = lambda batches: [(b[0].env, [s.seed for s in b]) for b in batches]  # noqa: E731
    assert order(cfg.seed_batches(grid, workers=1, batched=lambda s: False)) == [
        ("CartPole-v1", [0]), ("Acrobot-v1", [0]), ("CartPole-v1", [1]), ("Acrobot-v1", [1]),
        ("CartPole-v1", [2]), ("Acrobot-v1", [2]), ("CartPole-v1", [3]), ("Acrobot-v1", [3])]
    assert order(cfg.seed_batches(grid, workers=1, seed_batch=3)) == [
        ("CartPole-v1", [0, 1, 2]), ("Acrobot-v1", [0, 1, 2]), ("CartPole-v1", [3]), ("Acrobot-v1", [3])]
    pending = [[grid[7].key]]  # a checkpointed batch still comes first
    assert order(cfg.seed_batches(grid, workers=1, batched=lambda s: False, pending=pending))[:3] == [
        ("Acrobot-v1", [3]), ("CartPole-v1", [0]), ("Acrobot-v1", [0])]
    # cells that finished different seeds: the lowest missing seed first, wherever its cell is
    rest = [s for s in grid if (s.env, s.seed) not in {("CartPole-v1", 0), ("CartPole-v1", 1)}]
    assert order(cfg.seed_batches(rest, workers=1, batched=lambda s: False)) == [
        ("Acrobot-v1", [0]), ("Acrobot-v1", [1]), ("CartPole-v1", [2]), ("Acrobot-v1", [2]),
        ("CartPole-v1", [3]), ("Acrobot-v1", [3])]


def test_resumed_cell_batches_only_the_missing_seeds_and_checkpointed_batches_reform():
    ten = plan(seeds=10)
    todo = [s for s in ten if s.seed not in (0, 3, 7)]
    batches = cfg.seed_batches(todo, workers=1)
    assert [[s.seed for s in b] for b in batches] == [[1, 2, 4, 5, 6, 8, 9]]
    pending = [[ten[9].key, ten[2].key]]  # a checkpointed batch comes back exactly, whatever K says
    batches = cfg.seed_batches(todo, workers=1, seed_batch=5, pending=pending)
    assert [[s.seed for s in b] for b in batches] == [[9, 2], [1, 4, 5, 6, 8]]


def test_key_does_not_depend_on_the_batch():
    tiny = {"budget": "50", "eval_every": "50", "eval_episodes": "1", "final_eval_episodes": "1"}
    (alone,) = plan(seeds=1, sets=tiny)
    batched = run_batch(plan(seeds=2, sets=tiny))
    assert batched[0]["key"] == alone.key and batched[0]["seed_batch"] == 2
    # and keys are those of the records the scalar engine wrote (results/classic, 2026-11): a key
    # does not depend on the engine, and a newer optional field (final_eval_episodes) left unset keeps it
    scalar_engine = ["d470ddc3bee6d7fd", "5486270f042ed111", "b1f9a7eebcb965bf", "eb3a0dcd223bd888", "78b86193542b2eae"]
    before = {**CLASSIC, "defaults": {k: v for k, v in CLASSIC["defaults"].items() if k != "final_eval_episodes"}}
    assert [s.key for s in cfg.plan(before, ["dqn"], ["CartPole-v1"], 5)] == scalar_engine
    assert not set(scalar_engine) & {s.key for s in cfg.plan(CLASSIC, ["dqn"], ["CartPole-v1"], 5)}


# -- independence -------------------------------------------------------------------------------
@pytest.mark.parametrize("agent", ["dqn", "combined_dqn", "discretized_q", "random"])
def test_a_seed_is_the_same_alone_and_in_a_batch_until_learning_starts(agent):
    """Initial weights, step-0 evaluation and every transition before learning starts."""
    sets = {**SETS, "budget": "299", "eval_every": "299", "learning_starts": "300"}
    if agent in ("discretized_q", "random"):  # no learning_starts: they learn from step 1; compare all
        sets = {k: sets[k] for k in ("budget", "eval_every", "eval_episodes", "final_eval_episodes")}
    specs = plan(agent, 3, sets)
    (alone,), agent_alone = train([specs[1]])
    batch, agent_batch = train([specs[2], specs[1], specs[0]])  # seed 1 in the middle
    assert strip(batch[1]) == strip(alone)
    if hasattr(agent_alone, "q") and hasattr(agent_alone.q, "parameters"):
        for a, b in zip(agent_alone.q.parameters(), agent_batch.q.parameters()):
            assert torch.equal(a[0], b[1])  # initial weights: no gradient step has happened
        np.testing.assert_array_equal(agent_alone.replay.obs[0], agent_batch.replay.obs[1])
        np.testing.assert_array_equal(agent_alone.replay.action[0], agent_batch.replay.action[1])


def test_rerunning_the_same_batch_is_bit_identical():
    specs = plan("combined_dqn", 2)
    a, b = run_batch(specs), run_batch(specs)
    assert [strip(r) for r in a] == [strip(r) for r in b]
    assert all(r["status"] == "ok" for r in a) and a[0]["train"] != a[1]["train"]


# -- faults -------------------------------------------------------------------------------------
def test_a_diverged_seed_fails_alone_and_its_batch_mates_are_untouched(monkeypatch):
    specs = plan("dqn", 3)
    clean = run_batch(specs)
    real = dqn_module.DQN._train_round

    def poison_seed_1(self, steps):
        with torch.no_grad():
            for p in self.q.parameters():
                p[1] = float("nan")
        return real(self, steps)

    monkeypatch.setattr(dqn_module.DQN, "_train_round", poison_seed_1)
    poisoned = run_batch(specs)
    assert poisoned[1]["status"] == "failed" and "non-finite loss" in poisoned[1]["error"]
    assert poisoned[1]["final_score"] is None
    assert strip(poisoned[0]) == strip(clean[0]) and strip(poisoned[2]) == strip(clean[2])


@pytest.mark.parametrize("agent", ["dqn", "combined_dqn"])
def test_killed_batch_resumes_every_seed_exactly(agent, tmp_path, monkeypatch):
    specs = plan(agent, 2)
    uninterrupted = run_batch(specs)
    path = checkpoints.path_for(tmp_path, [s.key for s in specs])
    real_save, saves = checkpoints.save, []

    def save_then_die(*args):
        real_save(*args)
        saves.append(args[2]["step"])
        if len(saves) == 2:
            raise KeyboardInterrupt  # the process dies right after its second checkpoint

    monkeypatch.setattr(checkpoints, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_batch(specs, path, checkpoint_every=333)  # 333: checkpoints land mid-episode
    assert saves == [333, 666] and path.exists()
    assert checkpoints.pending(tmp_path) == [[s.key for s in specs]]
    monkeypatch.setattr(checkpoints, "save", real_save)
    resumed = run_batch(specs, path, checkpoint_every=333)
    assert [strip(r) for r in resumed] == [strip(r) for r in uninterrupted]
    assert path.exists()  # until the records are stored: the executors remove it then


def test_kill_9_mid_batch_then_rerun_continues_every_seed_exactly(tmp_path):
    args = ["run", "--suite", "classic", "--agents", "dqn", "--envs", "CartPole-v1", "--seeds", "2",
            "--workers", "1", "--checkpoint-every", "400"] + [f"--set={k}={v}" for k, v in SETS.items()]
    args[args.index("--set=budget=1500")] = "--set=budget=3000"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    whole = subprocess.run([sys.executable, "-m", "dqn_bench", *args, "--out", str(tmp_path / "a")],
                           capture_output=True, text=True, env=env, timeout=600)
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen([sys.executable, "-m", "dqn_bench", *args, "--out", str(tmp_path / "b")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    ckpt = tmp_path / "b" / "classic" / "checkpoints"
    deadline = time.time() + 300
    while not list(ckpt.glob("*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9, whatever it was doing
    proc.wait()
    assert list(ckpt.glob("*.pt")), "no checkpoint was written before the kill"
    again = subprocess.run([sys.executable, "-m", "dqn_bench", *args, "--out", str(tmp_path / "b")],
                           capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert not list(ckpt.glob("*.pt")), "the stored records replace the checkpoint"

    def recs(root):
        return sorted((strip(json.loads(p.read_text())) for p in root.glob("classic/runs/*.json")),
                      key=lambda r: r["spec"]["seed"])

    a, b = recs(tmp_path / "a"), recs(tmp_path / "b")
    assert len(a) == len(b) == 2 and all(r["status"] == "ok" for r in a + b)
    assert [r["eval"] for r in a] == [r["eval"] for r in b]
    assert [r["train"] for r in a] == [r["train"] for r in b]


def test_replay_memory_lowers_the_batch_with_a_message(monkeypatch, capsys):
    ten = plan(seeds=10)
    monkeypatch.setattr(cli, "available_memory", lambda: 10 * 2**30)
    memory = {("dqn", "CartPole-v1"): 2**30}  # 1 GiB per seed: 2 workers fit 5 seeds each
    batches = cli.plan_batches(ten, 2, None, memory, checkpoint_dir=Path("/nonexistent"))
    assert sizes(batches) == [5, 5]
    memory = {("dqn", "CartPole-v1"): 2 * 2**30}  # 2 GiB per seed: 2 each
    batches = cli.plan_batches(ten, 2, None, memory, checkpoint_dir=Path("/nonexistent"))
    assert sizes(batches) == [2] * 5
    assert "seed batches lowered from 5 to 2 seeds" in capsys.readouterr().err


def test_report_counts_a_batch_once_in_wall_time(tmp_path):
    from dqn_bench import reporting
    from dqn_bench.store import Store

    store = Store(tmp_path / "classic")
    for agent in ("random", "dqn"):
        records = run_batch(plan(agent, 2, {"budget": "60", "eval_every": "60", "eval_episodes": "1", "final_eval_episodes": "1"}))
        assert all(r["seed_batch"] == 2 for r in records)
        for r in records:
            store.write(r | {"wall_time_s": 3600.0, "cpu_time_s": 1800.0})  # each batch: one hour, half on CPU
    readme = reporting.build(store.root, reps=10)["README.md"].decode()
    assert "total training wall time: 2.00 h" in readme  # two batches, not four runs
    assert re.search(r"^\| dqn \|.*\| 900 \|$", readme, re.M)  # cost: CPU time shared by the batch's 2 seeds
    store.write(records[0] | {"wall_time_s": 3600.0, "cpu_time_s": 1800.0, "threads": 2})  # spans 2 cores
    readme = reporting.build(store.root, reps=10)["README.md"].decode()
    assert "total training wall time: 2.00 h of process run time (1 run on more than one thread)" in readme


def test_run_one_is_a_batch_of_one():
    (spec,) = plan("dqn", 1, {"budget": "50", "eval_every": "50", "eval_episodes": "1", "final_eval_episodes": "1"})
    rec = run_one(spec)
    assert rec["status"] == "ok" and rec["seed_batch"] == 1
