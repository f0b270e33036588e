"""Normalization by hand, our aggregates == rliable on the same arrays, ragged grids, --check."""
import io
import re

import numpy as np
import pandas as pd
import pytest
from rliable import library, metrics

import baselines
from dqn_bench import cli, stats
from dqn_bench import reporting
from dqn_bench.protocol import ConfigError
from dqn_bench.store import Store


def fake_record(agent, env, seed, final, curve=(0.0, 1.0)):
    """A record as the runner writes it, with made-up scores (for report tests only)."""
    from dqn_bench.config import RunSpec

    spec = RunSpec(agent=agent, agent_spec=agent, config={}, env=env, env_id=env, env_kwargs={}, seed=seed,
                   budget=100, eval_every=100, eval_episodes=2, eval_seed=0)
    returns = [[c, c] for c in curve[:-1]] + [[final - 1, final + 1]]
    return {"schema": 1, "key": spec.key, "spec": spec.to_json(), "status": "ok", "error": None,
            "versions": {"torch": "x", "machine": "test"}, "wall_time_s": 1.0, "steps_per_s": 100.0,
            "eval": {"steps": [0, 100], "returns": returns}, "train": {"episode_returns": [], "episode_end_steps": []},
            "final_score": float(final)}


def test_normalization_by_hand():
    cp = baselines.reference("CartPole-v1")  # random 22.646, threshold 475
    assert cp.normalize(475.0) == pytest.approx(1.0)
    assert cp.normalize(248.823) == pytest.approx((248.823 - 22.646) / (475 - 22.646))
    fl = baselines.reference("FrozenLake-v1")  # exact random 0.01394, optimum 0.74419
    assert fl.normalize(0.74419) == pytest.approx(1.0)
    assert fl.normalize(0.01394) == pytest.approx(0.0)
    capped = baselines.reference("CliffWalking-v1", {"max_episode_steps": 1000})  # its own exact random
    assert (capped.random, capped.reference) == (pytest.approx(-9512.058955), -13.0)
    assert baselines.reference("CliffWalking-v1").random == pytest.approx(-65375.130399)
    pong = baselines.reference("ALE/Pong-v5")  # random -20.7, human 14.6
    assert pong.normalize(14.6) == pytest.approx(1.0) and pong.normalize(-20.7) == pytest.approx(0.0)
    with pytest.raises(baselines.NoReference, match="no reference scores for env 'Nope-v0'"):
        baselines.reference("Nope-v0")


def test_aggregates_equal_rliable_called_directly():
    rng = np.random.default_rng(0)
    scores = {"a": rng.random((5, 4)), "b": rng.random((5, 4)) + 0.2}
    points, cis = stats.aggregate_intervals(scores, reps=500, seed=3)
    fn = lambda x: np.array([metrics.aggregate_median(x), metrics.aggregate_iqm(x),  # noqa: E731
                             metrics.aggregate_mean(x), metrics.aggregate_optimality_gap(x)])
    np.random.seed(3)  # rliable's StratifiedBootstrap draws from the global RNG
    ref_points, ref_cis = library.get_interval_estimates(scores, fn, reps=500, random_state=np.random.RandomState(3))
    for k in scores:
        np.testing.assert_array_equal(points[k], ref_points[k])
        np.testing.assert_array_equal(cis[k], ref_cis[k])
    p, _ = stats.improvement_over(scores, "a", reps=100)
    assert p["b,a"] == pytest.approx(metrics.probability_of_improvement(scores["b"], scores["a"]))


def test_fast_metrics_equal_rliable():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 4, (5, 3)).astype(float), rng.integers(0, 4, (6, 3)).astype(float)  # with ties
    assert stats.probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))
    curves = rng.normal(size=(5, 4, 7))
    np.testing.assert_allclose(stats.iqm_per_eval(curves),
                               [metrics.aggregate_iqm(curves[..., e]) for e in range(7)])


def test_ragged_grid_is_refused_with_what_is_missing(tmp_path):
    store = Store(tmp_path / "s")
    for agent in ("dqn", "random"):
        for seed in (0, 1, 2):
            store.write(fake_record(agent, "CartPole-v1", seed, 100.0 + seed))
            if (agent, seed) != ("random", 1):
                store.write(fake_record(agent, "Acrobot-v1", seed, -400.0 + seed))
    store.write(fake_record("dqn", "CartPole-v1", 3, 90.0))  # dqn's 4th seed lacks Acrobot
    df = stats.tidy(store.records())
    with pytest.raises(ConfigError, match="missing runs dqn/Acrobot-v1/seed 3, random/Acrobot-v1/seed 1;"):
        stats.check_grid(df)
    kept, missing = stats.check_grid(df, allow_ragged=True)
    assert kept.groupby("agent")["seed"].apply(lambda s: sorted(set(s))).to_dict() == {"dqn": [0, 1, 2], "random": [0, 2]}
    assert missing == ["dqn/Acrobot-v1/seed 3", "random/Acrobot-v1/seed 1"]


def test_a_grid_still_landing_shows_every_run_per_env_and_complete_seeds_in_the_aggregates(tmp_path):
    """The first record of a new agent (one env, one seed) is reported per env before the agent
    has a seed on every env; the aggregates and the header say what waits."""
    store = Store(tmp_path / "s")
    for seed in (0, 1, 2):
        store.write(fake_record("random", "CartPole-v1", seed, 20.0 + seed))
        store.write(fake_record("random", "Acrobot-v1", seed, -500.0))
    store.write(fake_record("dqn", "CartPole-v1", 0, 450.0))
    with pytest.raises(ConfigError, match="missing runs dqn/Acrobot-v1/seed 0; run them, or pass --allow-ragged"):
        reporting.build(tmp_path / "s", reps=100)
    files = reporting.build(tmp_path / "s", reps=100, allow_ragged=True)
    readme = files["README.md"].decode()
    assert "`python -m dqn_bench report --allow-ragged`" in readme
    assert ("- in progress: 1 run missing from the grid (dqn/Acrobot-v1/seed 0). The per-env tables show every run; "
            "the aggregates, plots and P(improvement) only the seeds their agent has on every env (none yet of dqn).") in readme
    assert "| dqn | 1 | 450.00 (1 seed: no CI) |" in readme  # CartPole's table has the run, no [x, x] interval
    assert pd.read_csv(io.BytesIO(files["aggregate.csv"]))["agent"].tolist() == ["random"]
    store.write(fake_record("dqn", "Acrobot-v1", 0, -100.0))  # the grid is whole again: no flag, no note
    readme = reporting.build(tmp_path / "s", reps=100)["README.md"].decode()
    assert "in progress" not in readme and "`python -m dqn_bench report`" in readme
    # one seed of dqn in the aggregates: its point estimates without intervals, random's with them
    aggregate = readme.split("## Aggregate")[1].split("\n## ")[0].splitlines()
    rows = {line.split(" | ")[0]: line for line in aggregate if line.startswith(("| dqn |", "| random |"))}
    assert rows["| dqn"].count("(1 seed: no CI)") == 4 and "[" not in rows["| dqn"]
    assert rows["| random"].count("[") == 4 and "no CI" not in rows["| random"]
    assert re.search(r"^\| random,dqn \| [\d.]+ \(1 seed: no CI\) \|$", readme, re.M)


def test_the_published_comparison_of_a_grid_still_landing(tmp_path):
    """Per game every drq_eps run beside the published runs; the aggregates over the games only
    from the seeds finished on every game, and none before there is one."""
    store = Store(tmp_path / "s")
    store.write(fake_record("drq_eps", "ALE/Assault-v5", 0, 600.0))
    store.write(fake_record("drq_eps", "ALE/Seaquest-v5", 1, 400.0))
    files = reporting.build(tmp_path / "s", reps=100, allow_ragged=True)
    assert "The aggregates over the games wait for a seed of ours finished on every game." in files["README.md"].decode()
    store.write(fake_record("drq_eps", "ALE/Seaquest-v5", 0, 300.0))
    files = reporting.build(tmp_path / "s", reps=100, allow_ragged=True)
    readme = files["README.md"].decode()
    assert pd.read_csv(io.BytesIO(files["published.csv"]))[["env", "runs"]].values.tolist() == [
        ["ALE/Assault-v5", 1], ["ALE/Seaquest-v5", 2]]
    assert "Over these 2 games, human-normalized (95% stratified-bootstrap CIs; ours: the 1 seed(s) finished" in readme


def test_agents_may_differ_in_their_number_of_seeds(tmp_path):
    store = Store(tmp_path / "s")
    for agent, seeds in (("dqn", 5), ("sb3_dqn", 10)):
        for seed in range(seeds):
            for env in ("CartPole-v1", "Acrobot-v1"):
                store.write(fake_record(agent, env, seed, 300.0 + seed if env == "CartPole-v1" else -100.0 - seed))
    df, _ = stats.check_grid(stats.tidy(store.records()))
    assert df.groupby("agent")["seed"].nunique().to_dict() == {"dqn": 5, "sb3_dqn": 10}
    readme = reporting.build(tmp_path / "s", reps=100)["README.md"].decode()
    assert "| dqn | 5 |" in readme and "| sb3_dqn | 10 |" in readme


def test_a_suite_note_is_printed_beside_its_number(tmp_path):
    store = Store(tmp_path / "s")
    for agent, base in (("dqn", 300.0), ("random", 22.0)):
        for seed in range(3):
            store.write(fake_record(agent, "CartPole-v1", seed, base + seed))
    notes = {"random": {"CartPole-v1": "it never learns, by design.", "Acrobot-v1": "not in this grid"}}
    readme = reporting.build(tmp_path / "s", reps=100, notes=notes)["README.md"].decode()
    assert "| random | 3 | 23.00 [22.00, 24.00] | 0.00 (note 1) |" in readme
    assert "\n1. `random`: it never learns, by design.\n" in readme and "not in this grid" not in readme
    assert "(note" not in reporting.build(tmp_path / "s", reps=100)["README.md"].decode()


def test_a_suite_chooses_which_agents_p_improvement_is_reported_over(tmp_path):
    store = Store(tmp_path / "s")
    for agent, base in (("dqn", 300.0), ("random", 22.0), ("drq_eps", 400.0)):
        for seed in range(3):
            store.write(fake_record(agent, "CartPole-v1", seed, base + seed))
    default = reporting.build(tmp_path / "s", reps=100)
    assert "| drq_eps,dqn | 1.00 [1.00, 1.00] |\n| random,dqn | 0.00 [0.00, 0.00] |" in default["README.md"].decode()
    files = reporting.build(tmp_path / "s", reps=100, improvement_over=("dqn", "random"))
    readme = files["README.md"].decode()
    # over dqn every agent but the later base, whose own table holds that pair the other way round
    assert "over `dqn`:\n\n| X, Y | P(X > Y) |\n|---|---|\n| drq_eps,dqn | 1.00 [1.00, 1.00] |\n\n" in readme
    assert ("over `random`, the uniform-random policy:\n\n| X, Y | P(X > Y) |\n|---|---|\n"
            "| dqn,random | 1.00 [1.00, 1.00] |\n| drq_eps,random | 1.00 [1.00, 1.00] |\n") in readme
    poi = pd.read_csv(io.BytesIO(files["improvement.csv"]))
    assert sorted(poi["pair"]) == ["dqn,random", "drq_eps,dqn", "drq_eps,random"]


def test_report_is_reproducible_and_check_catches_stale(tmp_path):
    store = Store(tmp_path / "s")
    for agent, base in (("dqn", 300.0), ("random", 22.0)):
        for seed in range(3):
            for env in ("CartPole-v1", "Acrobot-v1"):
                store.write(fake_record(agent, env, seed, base + 10 * seed if env == "CartPole-v1" else -400.0 + seed))
    files = reporting.build(tmp_path / "s", reps=200)
    assert files == reporting.build(tmp_path / "s", reps=200)  # byte-identical
    reporting.write(tmp_path / "s", files)
    sdir = tmp_path / "s"
    assert reporting.stale(sdir, reporting.build(sdir, reps=200)) == []
    store.write(fake_record("dqn", "CartPole-v1", 0, 499.0))  # same run key, new score
    assert "README.md" in reporting.stale(sdir, reporting.build(sdir, reps=200))
    readme = (sdir / "README.md").read_text()
    assert "| dqn | 3 |" in readme and "threshold 475" in readme


def test_report_cli_check_exit_codes(tmp_path):
    assert cli.main(["report", "--suite", "smoke", "--out", str(tmp_path)]) == 2  # no records yet
    store = Store(tmp_path / "smoke")
    for agent in ("dqn", "random"):
        for seed in range(2):
            store.write(fake_record(agent, "CartPole-v1", seed, 50.0 + seed))
    assert cli.main(["report", "--suite", "smoke", "--out", str(tmp_path), "--reps", "100", "--check"]) == 1
    assert cli.main(["report", "--suite", "smoke", "--out", str(tmp_path), "--reps", "100"]) == 0
    assert cli.main(["report", "--suite", "smoke", "--out", str(tmp_path), "--reps", "100", "--check"]) == 0
    store.write(fake_record("dqn", "CartPole-v1", 0, 480.0))
    assert cli.main(["report", "--suite", "smoke", "--out", str(tmp_path), "--reps", "100", "--check"]) == 1


def test_two_records_for_one_cell_are_refused(tmp_path):
    store = Store(tmp_path / "s")
    store.write(fake_record("dqn", "CartPole-v1", 0, 100.0))
    other = fake_record("dqn", "CartPole-v1", 0, 120.0)
    other["spec"]["budget"] = 200  # same agent/env/seed, another config: another key and file
    from dqn_bench.config import RunSpec

    other["key"] = RunSpec.from_json(other["spec"]).key
    store.write(other)
    with pytest.raises(ConfigError, match="several records for dqn/CartPole-v1/seed 0"):
        stats.check_grid(stats.tidy(store.records()))


def test_atari5_prediction_by_hand_with_its_interval():
    import pandas as pd

    weights, norms = baselines.atari5_weights(), baselines.atari5_normalization()
    rows = []
    for seed in range(3):
        for game, (rand, human) in norms.items():
            rows.append({"agent": "at_human", "env_id": game, "seed": seed, "final_score": human})
            rows.append({"agent": "at_random", "env_id": game, "seed": seed, "final_score": rand - 5.0})  # clipped at 0
            one = human if game == "ALE/BattleZone-v5" else rand
            rows.append({"agent": "battlezone_only", "env_id": game, "seed": seed, "final_score": one})
    rows.append({"agent": "four_games", "env_id": "ALE/Qbert-v5", "seed": 0, "final_score": 1.0})
    got = reporting.atari5_prediction(pd.DataFrame(rows), reps=50)
    assert set(got) == {"at_human", "at_random", "battlezone_only"}  # an agent needs all five games
    # 10^(sum_g w_g log10(1 + 100)) - 1 when every game is at human (HNS 100%)
    assert got["at_human"] == pytest.approx((101 ** sum(weights.values()) - 1,) * 3)
    assert got["at_random"] == pytest.approx((0.0, 0.0, 0.0))
    assert got["battlezone_only"][0] == pytest.approx(101 ** weights["ALE/BattleZone-v5"] - 1)  # ~4.8%
    spread = [{**r, "final_score": r["final_score"] + 1000 * r["seed"]} for r in rows if r["agent"] == "at_human"]
    point, low, high = reporting.atari5_prediction(pd.DataFrame(spread), reps=200)["at_human"]
    assert low < point < high  # seeds that differ give a real interval


def test_atari_100k_budget_shows_the_published_100k_numbers_and_their_protocol():
    bz = baselines.reference("ALE/BattleZone-v5")
    at_100k = reporting._published(bz, 400_000)
    assert at_100k["DER (van Hasselt et al. 2019) (100k steps)"] == 10124.6
    assert any(k.startswith("DQN (Nature") for k in at_100k)
    assert not any(k.startswith("Dopamine") for k in at_100k)  # 10M+ frames: not beside a 400k-frame run
    at_10m = reporting._published(bz, 40_000_000)
    assert not any(k.endswith("(100k steps)") for k in at_10m) and any(k.startswith("Dopamine") for k in at_10m)
    assert "no sticky actions" in baselines.ATARI_100K_PROTOCOL


@pytest.mark.parametrize("env_kwargs, says", [
    ({"frame_skip": 4, "repeat_action_probability": 0.25}, "not ours."),
    ({"frame_skip": 4, "repeat_action_probability": 0.0, "terminal_on_life_loss": True}, "as this suite's runs do."),
])
def test_an_atari_100k_report_prints_the_published_numbers_with_their_protocol(tmp_path, env_kwargs, says):
    from dqn_bench.config import RunSpec

    store = Store(tmp_path / "s")
    for seed in range(3):
        rec = fake_record("dqn", "ALE/BattleZone-v5", seed, 3000.0 + seed)
        spec = RunSpec(**{**rec["spec"], "budget": 100_000, "eval_every": 100_000, "env_kwargs": env_kwargs})
        store.write({**rec, "spec": spec.to_json(), "key": spec.key})
    readme = reporting.build(tmp_path / "s", reps=100)["README.md"].decode()
    assert "DER (van Hasselt et al. 2019) (100k steps): 10124.6" in readme
    assert f"Published numbers marked (100k steps) follow the Atari-100k protocol, {says}" in readme
    assert ("Machado" in readme) == (says == "not ours.")


@pytest.mark.parametrize("n_agents", [2, 3, 8])
def test_the_aggregate_plot_keeps_its_x_label_clear_of_the_tick_labels(n_agents):
    import matplotlib.pyplot as plt
    agents = [f"agent_{i}" for i in range(n_agents)]
    points = {a: np.array([0.1 * i, 0.2, 0.3, 0.9]) for i, a in enumerate(agents)}
    cis = {a: np.stack([points[a] - 0.05, points[a] + 0.05]) for a in agents}
    fig = reporting.aggregate_figure(points, cis, agents)
    renderer = fig.canvas.get_renderer()
    label = next(t for t in fig.texts if t.get_text() == "Normalized score").get_window_extent(renderer)
    ticks = [t.get_window_extent(renderer) for ax in fig.axes for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and label.y1 < min(t.y0 for t in ticks)  # display coordinates: y grows upward
    plt.close(fig)
