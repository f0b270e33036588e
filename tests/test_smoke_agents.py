"""Every agent x classic env builds and runs a short training + evaluation through the harness."""
import pytest

from dqn_bench import config as cfg
from dqn_bench.runner import run_one

CLASSIC = cfg.load_suite("classic")
TINY = {"budget": "300", "eval_every": "300", "eval_episodes": "1", "final_eval_episodes": "1", "learning_starts": "64",
        "batch_size": "32", "train_freq": "16", "gradient_steps": "2", "max_episode_steps": None}


@pytest.mark.parametrize("env", CLASSIC["envs"])
@pytest.mark.parametrize("agent", CLASSIC["agents"])
def test_agent_env_smoke(agent, env):
    sets = {k: v for k, v in TINY.items() if v is not None}
    if agent in ("random", "discretized_q"):
        sets = {k: sets[k] for k in ("budget", "eval_every", "eval_episodes", "final_eval_episodes")}
    (spec,) = cfg.plan(CLASSIC, [agent], [env], 1, sets)
    rec = run_one(spec)
    assert rec["status"] == "ok", rec["error"]
    assert rec["eval"]["steps"] == [0, 300]
    assert rec["train"]["episode_returns"] or rec["eval"]["returns"]


@pytest.mark.parametrize("env", ["FrozenLake-v1", "Taxi-v4", "CliffWalking-v1"])
def test_tabular_smoke(env):
    (spec,) = cfg.plan(cfg.load_suite("tabular"), ["tabular_q"], [env], 1,
                       {"budget": "300", "eval_every": "300", "eval_episodes": "1", "final_eval_episodes": "1"})
    rec = run_one(spec)
    assert rec["status"] == "ok", rec["error"]
