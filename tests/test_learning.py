"""Agents learn, on real envs with the suites' own hyperparameters and budgets.

All runs go through the harness at once (two workers, seed batches as `run` forms them) in one
module fixture; each test then reads its records. The thresholds are well below what the runs reach, far above random.
"""
import numpy as np
import pytest

from dqn_bench import config as cfg
from dqn_bench.executors import run_local

PRESETS = ["double_dqn", "dueling_dqn", "per_dqn", "combined_dqn"]


def plan():
    classic, tabular = cfg.load_suite("classic"), cfg.load_suite("tabular")
    specs = cfg.plan(classic, ["dqn"], ["CartPole-v1"], 3)
    specs += cfg.plan(classic, PRESETS, ["CartPole-v1"], 2)
    specs += cfg.plan(classic, ["discretized_q"], ["CartPole-v1", "MountainCar-v0"], 1)
    specs += cfg.plan(tabular, ["tabular_q"], ["FrozenLake-v1", "FrozenLake-v1-nonslippery",
                                               "FrozenLake8x8-v1-nonslippery"], 1)
    return specs


@pytest.fixture(scope="module")
def runs():
    specs = plan()
    out = {}
    batches = cfg.seed_batches(sorted(specs, key=lambda s: -s.budget), workers=2)  # as `run` groups them
    assert max(map(len, batches)) == 3  # dqn's three CartPole seeds learn together
    for rec in run_local(batches, workers=2):
        assert rec["status"] == "ok", rec["error"]
        s = rec["spec"]
        out[(s["agent"], s["env"], s["seed"])] = rec
    return out


def best_eval(rec):
    return max(np.mean(r) for r in rec["eval"]["returns"])


@pytest.mark.slow
def test_dqn_solves_cartpole_on_two_of_three_seeds(runs):
    best = [best_eval(runs[("dqn", "CartPole-v1", seed)]) for seed in range(3)]
    assert sum(b >= 475 for b in best) >= 2, best


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_learns_cartpole(runs, preset):
    # The better of two seeds: a seed's run follows its CPU's float rounding (MKL's kernels differ
    # per CPU), and 2 of the 50 committed classic CartPole runs of dqn and these presets stay below
    # 300 (dueling_dqn seed 0 reached 279.3 on an Intel Xeon, 500 on AMD EPYCs); a broken preset
    # fails on both seeds.
    best = [best_eval(runs[(preset, "CartPole-v1", seed)]) for seed in (0, 1)]
    assert max(best) >= 300, best  # random: 22.6


@pytest.mark.slow
def test_discretized_q_learns_well_above_random(runs):
    assert best_eval(runs[("discretized_q", "CartPole-v1", 0)]) >= 100  # random: 22.6
    assert best_eval(runs[("discretized_q", "MountainCar-v0", 0)]) >= -180  # random: -200


@pytest.mark.slow
def test_tabular_q_optimal_on_deterministic_frozenlake(runs):
    for env in ("FrozenLake-v1-nonslippery", "FrozenLake8x8-v1-nonslippery"):
        assert np.mean(runs[("tabular_q", env, 0)]["eval"]["returns"][-1]) == 1.0


@pytest.mark.slow
def test_tabular_q_near_optimum_on_slippery_frozenlake(runs):
    final = runs[("tabular_q", "FrozenLake-v1", 0)]["final_score"]  # 1000 evaluation episodes
    assert final >= 0.744 * 0.95, final  # exact optimum 0.744 (baselines/tabular.csv)
