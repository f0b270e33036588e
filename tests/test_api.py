"""The notebook API: frames from the committed records, and run/report doing what the CLI does."""
import json
from pathlib import Path

import pandas as pd
import pytest

import dqn_bench
from dqn_bench import ConfigError

RESULTS = Path(__file__).resolve().parents[1] / "results"
TINY = dict(budget=300, eval_every=150, eval_episodes=2, final_eval_episodes=2)


def test_load_runs_of_the_committed_classic_suite_agrees_with_its_report():
    runs = dqn_bench.load_runs("classic", out=RESULTS)
    records = list((RESULTS / "classic" / "runs").glob("*.json"))
    assert len(runs) == len(records) and set(runs["status"]) == {"ok"}
    assert {"suite", "agent", "env", "seed", "key", "final_score", "normalized", "solved", "core_s", "machine",
            "git_sha", "learning_rate", "dueling"} <= set(runs.columns)
    per_env = pd.read_csv(RESULTS / "classic" / "per_env.csv").set_index(["env", "agent"])
    by_cell = runs.groupby(["env", "agent"]).agg(mean=("final_score", "mean"), solved=("solved", "sum"),
                                                 normalized=("normalized", "mean"))
    for (env, agent), row in by_cell.iterrows():
        assert row["mean"] == pytest.approx(per_env.loc[(env, agent), "mean"], rel=1e-5)
        assert row["normalized"] == pytest.approx(per_env.loc[(env, agent), "normalized"], rel=1e-5)
        assert row["solved"] == per_env.loc[(env, agent), "solved"]
    one = json.loads(records[0].read_text())
    (row,) = runs[runs["key"] == one["key"]].to_dict("records")
    assert row["final_score"] == one["final_score"] and row["git_sha"] == one["versions"]["git_sha"]
    assert row["core_s"] == pytest.approx(one["cpu_time_s"] / one["seed_batch"])


def test_load_curves_has_one_row_per_evaluation_point():
    curves = dqn_bench.load_curves(RESULTS / "classic")  # a folder works as well as a suite name
    points = sum(len(json.loads(p.read_text())["eval"]["steps"]) for p in (RESULTS / "classic" / "runs").glob("*.json"))
    assert len(curves) == points
    assert curves["fraction"].between(0, 1).all() and (curves.groupby("key")["step"].min() == 0).all()
    assert set(curves["episodes"]) == {10, 100}  # 10 per evaluation, 100 at the end


def test_run_and_report_do_what_the_cli_does(tmp_path):
    runs = dqn_bench.run("smoke", agents=["random", "dqn"], envs=["CartPole-v1"], seeds=2, out=tmp_path,
                         workers=1, hidden=(32, 32), **TINY)
    assert len(runs) == 4 and set(runs["status"]) == {"ok"}
    assert runs.loc[runs["agent"] == "dqn", "hidden"].tolist() == [[32, 32]] * 2  # the override reached the config
    assert len(list((tmp_path / "smoke" / "runs").glob("*.json"))) == 4
    again = dqn_bench.run("smoke", agents=["random", "dqn"], envs=["CartPole-v1"], seeds=2, out=tmp_path,
                          workers=1, hidden=(32, 32), **TINY)  # stored: nothing runs again
    pd.testing.assert_frame_equal(again, runs)
    readme = dqn_bench.report("smoke", out=tmp_path, reps=200)
    assert readme == tmp_path / "smoke" / "README.md" and "### CartPole-v1" in readme.read_text()


@pytest.mark.parametrize("call, message", [
    (lambda out: dqn_bench.run("smoke", agents=["dqnn"], out=out), "unknown agent 'dqnn'"),
    (lambda out: dqn_bench.run("smoke", out=out, learning_rate=-1), "learning_rate must be > 0"),
    (lambda out: dqn_bench.run("nope", out=out), "unknown suite 'nope'"),
    (lambda out: dqn_bench.report("smoke", out=out), "no records in"),
    (lambda out: dqn_bench.load_runs("smoke", out=out), "no records at 'smoke'"),
])
def test_bad_input_raises_config_error_and_writes_nothing(tmp_path, call, message):
    with pytest.raises(ConfigError, match=message):
        call(tmp_path / "out")
    assert not (tmp_path / "out").exists()
