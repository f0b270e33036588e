"""Around the runs: TensorBoard scalars, saved networks and `play`, the env-step progress count."""
import io
import json
import os
import re

import numpy as np
import pytest

from dqn_bench import config as cfg
from dqn_bench.executors import run_local
from dqn_bench.progress import Progress
from dqn_bench.train_log import Ticker

TINY = ["--set", "budget=1200", "--set", "eval_every=600", "--set", "eval_episodes=2", "--set", "final_eval_episodes=4",
        "--set", "learning_starts=200", "--set", "train_freq=8", "--set", "gradient_steps=2"]


def records(root):
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "classic" / "runs").glob("*.json"))}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """dqn (a seed batch of 2) and tabular-style discretized_q, run once through the CLI."""
    from conftest import cli

    root = tmp_path_factory.mktemp("runs")
    r = cli("run", "--suite", "classic", "--agents", "dqn", "discretized_q", "--envs", "CartPole-v1", "--seeds", "2",
            "--workers", "2", "--out", root, "--tensorboard", root / "tb", *TINY)
    assert r.returncode == 0, r.stderr
    return root, r


def test_tensorboard_one_event_folder_per_run_with_the_scalars(stored):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, _ = stored
    recs = records(root)
    assert sorted(p.name for p in (root / "tb").iterdir()) == sorted(recs)  # named like the records
    for name, rec in recs.items():
        acc = EventAccumulator(str(root / "tb" / name))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert {"eval/mean_return", "train/episode_return", "train/epsilon", "perf/steps_per_s"} <= tags
        if rec["spec"]["agent"] == "dqn":
            assert "train/loss" in tags
        evals = acc.Scalars("eval/mean_return")
        assert [e.step for e in evals] == rec["eval"]["steps"]
        assert [e.value for e in evals] == pytest.approx([np.mean(r) for r in rec["eval"]["returns"]])
        episodes = acc.Scalars("train/episode_return")
        assert [e.value for e in episodes] == pytest.approx(rec["train"]["episode_returns"])


def test_missing_tensorboard_extra_is_one_line(run_cli, tmp_path):
    fake = tmp_path / "notb" / "tensorboard"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named tensorboard')\n")
    env = {"PYTHONPATH": f"{tmp_path / 'notb'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = run_cli("run", "--suite", "smoke", "--out", tmp_path / "out", "--tensorboard", tmp_path / "tb", env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "pip install -e .[tensorboard]" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "tb").exists()


def test_play_repeats_the_final_evaluation_of_the_stored_network(stored, run_cli):
    root, _ = stored
    recs = records(root)
    for agent in ("dqn", "discretized_q"):
        sets = TINY if agent == "dqn" else TINY[:8]  # the --set keys that applied to it: budget and eval ones
        r = run_cli("play", "--suite", "classic", "--agent", agent, "--env", "CartPole-v1", "--seed", "1",
                    "--out", root, "--episodes", "3", *sets)
        assert r.returncode == 0, r.stderr
        played = [float(x) for x in re.findall(r"return ([-\d.e+]+)$", r.stdout, re.M)]
        (final,) = [rec["eval"]["returns"][-1] for rec in recs.values()
                    if rec["spec"]["agent"] == agent and rec["spec"]["seed"] == 1]
        if agent == "dqn":  # a deterministic greedy policy on the same episode seeds: the same returns
            assert played == final[:3] and "new draws" not in r.stdout
        else:  # tabular greedy breaks ties at random, so only the play itself is checked
            assert len(played) == 3 and min(played) >= 8


def test_play_of_an_epsilon_greedy_evaluation_policy_says_its_episodes_are_new_draws(run_cli, tmp_path):
    sets = [*TINY, "--set", "eval_epsilon=0.2"]
    r = run_cli("run", "--suite", "classic", "--agents", "dqn", "--envs", "CartPole-v1", "--seeds", "1",
                "--out", tmp_path, *sets)
    assert r.returncode == 0, r.stderr
    r = run_cli("play", "--suite", "classic", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "0",
                "--out", tmp_path, "--episodes", "2", *sets)
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r"return ([-\d.e+]+)$", r.stdout, re.M)) == 2
    assert "acts at random with probability 0.2: these episodes are new draws" in r.stdout


def test_play_writes_videos(stored, run_cli, tmp_path):
    root, _ = stored
    r = run_cli("play", "--suite", "classic", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "0", "--out", root,
                "--episodes", "2", "--video", tmp_path / "vid", *TINY)
    assert r.returncode == 0, r.stderr
    videos = sorted((tmp_path / "vid").glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 1000 for v in videos)
    assert videos[0].name.startswith("CartPole-v1__dqn__s0__")


def test_play_without_a_stored_run_names_the_run_command(stored, run_cli):
    root, _ = stored
    r = run_cli("play", "--suite", "classic", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "7", "--out", root,
                *TINY)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "python -m dqn_bench run --suite classic --agents dqn --envs CartPole-v1 --first-seed 7 --seeds 1" in r.stderr
    r = run_cli("play", "--suite", "classic", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "0", "--out", root,
                "--episodes", "0", *TINY)
    assert r.returncode == 2 and "--episodes must be >= 1" in r.stderr


def test_networks_are_saved_beside_the_records_and_git_ignored(stored):
    root, _ = stored
    models = sorted(p.stem for p in (root / "classic" / "models").glob("*.pt"))
    assert models == sorted(records(root))
    ignore = open(os.path.join(os.path.dirname(__file__), "..", ".gitignore")).read()
    assert "results/*/models/" in ignore


def _progress_specs():
    return cfg.plan(cfg.load_suite("classic"), ["dqn"], ["CartPole-v1"], 3,
                    {"budget": "1500", "eval_every": "1500", "eval_episodes": "1", "final_eval_episodes": "1",
                     "learning_starts": "200", "train_freq": "4", "gradient_steps": "1"})


def test_progress_counts_env_steps_of_seed_batches_while_they_run(monkeypatch):
    # in process, reporting at every 256-step check: whether a run lasts a second is up to the machine
    monkeypatch.setattr(Ticker, "interval", 0.0)
    specs, heard = _progress_specs(), []
    recs = list(run_local([specs[:2], specs[2:]], workers=1, progress=heard.append))
    assert len(recs) == 3 and sum(heard) == 3 * 1500
    # counts arrive during the runs (every 256 steps x seeds), not once per finished batch
    assert heard[:2] == [512, 512] and len(heard) == 2 * (1500 // 256 + 1)


def test_progress_counts_reach_the_parent_from_worker_processes():
    specs, heard = _progress_specs(), []
    recs = list(run_local([specs[:2], specs[2:]], workers=2, progress=heard.append))
    assert len(recs) == 3 and sum(heard) == 3 * 1500


def test_progress_prints_plain_lines_when_not_on_a_terminal():
    clock = iter([0.0, 10.0, 31.0, 40.0, 65.0, 70.0]).__next__
    stream = io.StringIO()
    p = Progress(total_steps=1000, runs=2, stream=stream, every=30.0, clock=clock)
    p.steps(100)  # t=10: no line yet
    p.steps(300)  # t=31: a line
    p.steps(100)  # t=40
    p.run_finished("dqn/CartPole-v1/s0", failed=False)
    p.steps(500)  # t=65: a line
    p.close()  # t=70: the last line
    lines = stream.getvalue().splitlines()
    assert lines[0] == "progress: 400/1,000 env steps (40%), 13 steps/s, ETA 0m46s, 0/2 runs done"
    assert lines[1].startswith("progress: 1,000/1,000 env steps (100%)") and "1/2 runs done" in lines[1]
    assert len(lines) == 3 and "\r" not in stream.getvalue()


def test_steps_a_checkpoint_had_done_count_toward_done_but_not_the_rate():
    """A resumed batch reports its checkpoint's steps at once: the ETA must come from the steps
    this process trains, not from a burst of restored ones."""
    clock = iter([0.0, 0.0, 40.0, 50.0]).__next__
    stream = io.StringIO()
    p = Progress(total_steps=10_000, runs=1, stream=stream, every=30.0, clock=clock)
    p.steps(5_000, resumed=True)  # t=0: restored
    p.steps(400)  # t=40: trained at 10 steps/s
    p.close()  # t=50
    assert stream.getvalue().splitlines()[0] == "progress: 5,400/10,000 env steps (54%), 10 steps/s, ETA 7m40s, 0/1 runs done"


def test_a_resumed_batch_says_so_across_the_worker_queue():
    import queue

    from dqn_bench.executors import _drain, _put

    heard = []
    Ticker(lambda n, resumed=False: heard.append((n, resumed)), seeds=3, step0=500)  # resumes at step 500
    q = queue.Queue()
    _put(q, *heard[0])
    _put(q, 768)
    _drain(q, lambda n, resumed=False: heard.append((n, resumed)))
    assert heard == [(1500, True), (1500, True), (768, False)]


def test_cli_progress_off_a_terminal_ends_with_the_full_count(stored):
    _, r = stored
    assert "progress: 4,800/4,800 env steps (100%)" in r.stderr  # 2 agents x 2 seeds x 1200 steps
