"""sweep: a grid of stored, resumable runs, ranked against the suite's default config."""
import csv

import pytest

from dqn_bench import config as cfg
from dqn_bench import sweep

TINY = ["--set", "budget=600", "--set", "eval_every=300", "--set", "eval_episodes=1", "--set", "final_eval_episodes=2",
        "--set", "learning_starts=100", "--set", "train_freq=8", "--set", "gradient_steps=1"]
ARGS = ["sweep", "--suite", "classic", "--agents", "dqn", "--envs", "CartPole-v1", "--seeds", "2",
        "--grid", "buffer_size=500,5000", "--grid", "target_update_interval=10,100", "--workers", "2", "--reps", "100"]


def test_grid_points_share_runs_with_the_default_and_plan_each_run_once():
    suite = cfg.load_suite("classic")
    specs, points = sweep.plan(suite, ["dqn"], ["CartPole-v1", "Acrobot-v1"], 2, {},
                               {"buffer_size": ["100000", "1000"], "gamma": ["0.99"]})
    assert list(points) == ["default", "buffer_size=100000, gamma=0.99", "buffer_size=1000, gamma=0.99"]
    default, same_on_cartpole, other = (set(keys) for _, keys in points.values())
    # CartPole's suite values are buffer 100k, gamma 0.99: that grid point is the default there, not on Acrobot
    assert len(default & same_on_cartpole) == 2 and not default & other
    assert len(specs) == len(default | same_on_cartpole | other) == 10


def test_sweep_runs_stores_resumes_and_ranks(run_cli, tmp_path):
    r = run_cli(*ARGS, "--out", tmp_path, *TINY)
    assert r.returncode == 0, r.stderr
    (root,) = (tmp_path / "sweeps").iterdir()
    assert root.name == "classic__dqn__CartPole-v1__buffer_size-target_update_interval"
    assert len(list((root / "runs").glob("*.json"))) == 10  # 4 points + the default, 2 seeds each
    rows = list(csv.DictReader(open(root / "points.csv")))
    assert len(rows) == 5 and {row["point"] for row in rows} >= {"default", "buffer_size=500, target_update_interval=10"}
    iqm = [float(row["IQM"]) for row in rows]
    assert iqm == sorted(iqm, reverse=True)  # ranked
    assert all(row["P(> default)"] for row in rows if row["point"] != "default")
    readme = (root / "README.md").read_text()
    assert "| dqn | default | 2 |" in readme and "![IQM per value of each grid key](iqm_by_value.png)" in readme
    assert (root / "iqm_by_value.png").read_bytes()[:4] == b"\x89PNG"
    before = (root / "README.md").read_bytes()
    again = run_cli(*ARGS, "--out", tmp_path, *TINY)
    assert again.returncode == 0 and "10 runs, 10 already stored, 0 to run" in again.stderr, again.stderr
    assert (root / "README.md").read_bytes() == before  # same records, same report


@pytest.mark.parametrize("grid,message", [
    (["buffer_size"], "bad --grid 'buffer_size'; expected key=v1,v2"),
    (["buffer_size=1000,"], "bad --grid 'buffer_size=1000,'"),
    (["buffer_size=1000", "buffer_size=2000"], "--grid key 'buffer_size' given twice"),
    (["buffer_size=1000,1000"], "--grid buffer_size repeats a value"),
    (["bufer_size=1000"], "unknown --grid/--set key(s) bufer_size"),
    (["buffer_size=lots"], "bad value 'lots' for 'buffer_size'"),
    (["learning_rate=0.1", "--set", "learning_rate=0.2"], "learning_rate given by both --grid and --set"),
])
def test_bad_grids_are_one_line_errors(run_cli, tmp_path, grid, message):
    flags, it = [], iter(grid)
    for g in it:
        flags += [g, next(it)] if g.startswith("--") else ["--grid", g]
    r = run_cli("sweep", "--suite", "classic", "--agents", "dqn", "--envs", "CartPole-v1", *flags, "--out", tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "sweeps").exists()
