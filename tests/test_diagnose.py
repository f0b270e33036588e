"""`diagnose`: probing changes nothing the agent does, and the probes measure what they claim."""
import csv

import numpy as np
import pytest
import torch

from dqn_bench import config as cfg
from dqn_bench import runner

SETS = {"budget": "1200", "eval_every": "600", "eval_episodes": "2", "final_eval_episodes": "3",
        "learning_starts": "200", "train_freq": "8", "gradient_steps": "2"}


def specs(agent, seeds=2):
    return cfg.plan(cfg.load_suite("classic"), [agent], ["CartPole-v1"], seeds, SETS, first_seed=100)


def test_a_probed_run_trains_exactly_as_an_unprobed_one_and_reports_every_stream():
    from dqn_bench import diagnose

    torch.set_num_threads(1)
    batch = specs("combined_dqn")  # dueling streams and priorities
    rows, results = diagnose.diagnose(batch, every=300)
    plain = runner.run_batch(batch)
    for probed, record in zip(results, plain):
        assert probed["eval"] == record["eval"] and probed["train"] == record["train"]
    assert sorted({r["step"] for r in rows}) == [300, 600, 900, 1200]  # from learning_starts on
    assert [r["seed"] for r in rows[:2]] == [100, 101]
    for r in rows:
        assert {"value_mean", "adv_spread", "beta", "is_weight_min"} <= set(r)
        assert 0 < r["is_weight_min"] <= r["is_weight_mean"] <= 1
        assert 1 / 2 <= r["top_action_share"] <= 1 and 0 <= r["dead_units"] <= 1
        # dueling: Q averaged over actions is V, so the means agree
        assert r["q_mean"] == pytest.approx(r["value_mean"], abs=1e-4)


def test_probes_by_hand_on_a_known_network():
    """A net whose Q is fixed by hand: Q scale, action gap, greedy share and TD error are known."""
    from agents.dqn_diagnostics import probe

    torch.set_num_threads(1)
    (spec,) = specs("dqn", seeds=1)
    from dqn_bench import registry
    import envs

    env = envs.make(spec.env_id, 0)
    agent = registry.make_agent("dqn", env.observation_space, env.action_space, spec.config, [0], spec.budget)
    obs = np.ones((1, 4), np.float32)
    for i in range(10):  # terminated transitions with reward 1: the target is exactly 1
        agent.replay.add(obs, np.array([i % 2]), np.ones(1, np.float32), obs, np.ones(1, bool), np.zeros(1, bool))
    with torch.no_grad():  # Q(s) = [3, 5] in every state: zero the weights, set the last bias
        for p in agent.q.parameters():
            p.zero_()
        agent.q.heads[0][-1][0, 0] = torch.tensor([3.0, 5.0])
    out = probe(agent, 64, np.random.default_rng(0))
    assert out["q_mean"][0] == pytest.approx(4.0) and out["q_abs_max"][0] == pytest.approx(5.0)
    assert out["action_gap"][0] == pytest.approx(2.0) and out["top_action_share"][0] == 1.0
    assert out["target_mean"][0] == pytest.approx(1.0)
    assert 2.0 <= out["td_abs"][0] <= 4.0  # |1 - 3| or |1 - 5| by the sampled action
    assert out["dead_units"][0] == 1.0  # zero weights: every ReLU is off


def test_cli_writes_csv_and_summary_and_rejects_agents_without_probes(run_cli, tmp_path):
    args = [f"--set={k}={v}" for k, v in SETS.items()]
    r = run_cli("diagnose", "--agent", "dueling_dqn", "--env", "CartPole-v1", "--seeds", "2", "--every", "600",
                "--out", tmp_path, *args)
    assert r.returncode == 0, r.stderr
    stem = tmp_path / ("CartPole-v1__dueling_dqn__" + "__".join(f"{k}={v}" for k, v in SETS.items()) + "__s100-101")
    table = list(csv.DictReader(open(stem.with_suffix(".csv"))))  # the overrides name the files
    assert len(table) == 4 and "adv_spread" in table[0]
    summary = stem.with_suffix(".md").read_text()
    assert "| 600 |" in summary and "Final evaluation (3 episodes): s100:" in summary
    r = run_cli("diagnose", "--agent", "random", "--env", "CartPole-v1", "--out", tmp_path / "x", "--set=budget=100")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "has no diagnostics probe" in r.stderr, r.stderr
    assert not (tmp_path / "x").exists()
