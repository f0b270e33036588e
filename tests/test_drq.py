"""DrQ(eps) on Atari-100k: augmentation by hand, the preset against Dopamine's gin, life-loss
terminals, n-step targets across a life loss, the target-is-online shortcut, and parallel
evaluation against the sequential player."""
import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces

import envs
from agents.augment import PAD, Augment, shift_and_scale
from agents.dqn import PRESETS, DQNConfig, make
from agents.frame_replay import FrameReplay
from agents.networks import same_padding, seed_stack
from dqn_bench import config as cfg
from dqn_bench import runner
from dqn_bench.protocol import ConfigError, Transitions

IMAGE = spaces.Box(0, 255, (4, 84, 84), np.uint8)


def test_shift_and_scale_by_hand():
    x = torch.arange(9, dtype=torch.uint8).reshape(1, 1, 3, 3)  # [[0 1 2] [3 4 5] [6 7 8]]
    same = shift_and_scale(x, torch.tensor([[PAD, PAD]]), torch.tensor([1.0]))
    torch.testing.assert_close(same, x.float())  # offset PAD: the original image
    corner = shift_and_scale(x, torch.tensor([[0, 0]]), torch.tensor([1.0]))
    # offset 0: the view moves PAD pixels up-left; the replicated border fills it
    torch.testing.assert_close(corner, torch.zeros(1, 1, 3, 3))
    down = shift_and_scale(x, torch.tensor([[PAD + 1, PAD - 1]]), torch.tensor([2.0]))
    # one row down, one column left (replicating column 0), times 2
    torch.testing.assert_close(down[0, 0], 2 * torch.tensor([[3.0, 3, 4], [6, 6, 7], [6, 6, 7]]))


def test_one_shift_per_stack_and_intensity_in_range():
    frame = torch.randint(0, 255, (1, 1, 84, 84), dtype=torch.uint8)
    stack = frame.expand(1, 4, 84, 84)[None].repeat(2, 16, 1, 1, 1)  # [K=2, B=16, 4 equal frames]
    out = Augment([np.random.default_rng(0), np.random.default_rng(1)])(stack)
    assert out.shape == (2, 16, 4, 84, 84) and out.dtype == torch.float32
    assert all(torch.equal(out[..., i, :, :], out[..., 0, :, :]) for i in range(4))  # the same for all 4
    shifts, factors = Augment([np.random.default_rng(0)]).draw(0, 10_000)
    assert shifts.min() == 0 and shifts.max() == 2 * PAD - 1  # Dopamine's randint(0, 2 * pad)
    assert factors.min() >= 0.9 and factors.max() <= 1.1 and abs(factors.mean() - 1) < 0.005


def test_augmentation_streams_are_per_seed():
    """Seed 7's augmentations are the same alone and beside seed 3, and differ from seed 3's."""
    cfg7 = DQNConfig(**PRESETS["drq_eps"])
    alone, pair = make(IMAGE, spaces.Discrete(4), cfg7, (7,)), make(IMAGE, spaces.Discrete(4), cfg7, (3, 7))
    x = torch.randint(0, 255, (1, 8, 4, 84, 84), dtype=torch.uint8)
    a = alone.augment(x)
    b = pair.augment(x.expand(2, *x.shape[1:]))
    assert torch.equal(a[0], b[1]) and not torch.equal(b[0], b[1])


def test_drq_eps_preset_is_dopamines_gin():
    c = DQNConfig(**PRESETS["drq_eps"])
    assert (c.double, c.dueling, c.dueling_head, c.n_step, c.gamma) == (True, True, "linear", 10, 0.99)
    assert (c.train_freq, c.gradient_steps, c.learning_starts, c.target_update_interval) == (1, 1, 1600, 1)
    assert (c.learning_rate, c.adam_eps, c.loss, c.max_grad_norm, c.batch_size) == (1e-4, 1.5e-4, "huber", 0.0, 32)
    assert (c.eval_epsilon, c.augment, c.conv_padding, c.init, c.prioritized) == (0.001, True, "same", "xavier", False)
    agent = make(IMAGE, spaces.Discrete(7), c, (0,))
    eps = [agent.epsilon(t) for t in (0, 1600, 4100, 6600, 50_000)]  # 1 until 1,600, then to 0.01 by 6,600
    assert eps == pytest.approx([1.0, 1.0, 0.505, 0.01, 0.01])
    assert agent.target_is_online and agent.q_target is agent.q
    assert tuple(agent.q.torso[0].shape) == (1, 512, 64 * 11 * 11)  # SAME convs: a 7744-wide flatten
    assert [p.shape[1] for p in (agent.q.heads[0][0], agent.q.heads[1][0])] == [1, 7]  # linear V and A heads
    assert all(float(b.detach().abs().max()) == 0 for b in agent.q.conv_b)  # Glorot weights, zero biases


def test_atari5_runs_drq_eps_as_atari100k_does_but_for_the_env_protocol():
    """What atari5 runs for drq_eps is the preset checked on atari100k: same config, same
    100-episode final evaluation; only the env (sticky actions, no life-loss terminals) differs."""
    (short,) = cfg.plan(cfg.load_suite("atari100k"), ["drq_eps"], ["ALE/Qbert-v5"], 1)
    (machado,) = cfg.plan(cfg.load_suite("atari5"), ["drq_eps"], ["ALE/Qbert-v5"], 1)
    assert machado.config == short.config and machado.config["target_update_interval"] == 1
    assert (machado.final_eval_episodes, machado.budget) == (short.final_eval_episodes, short.budget) == (100, 100_000)
    assert machado.env_kwargs["repeat_action_probability"] == 0.25 and short.env_kwargs["repeat_action_probability"] == 0
    (dqn,) = cfg.plan(cfg.load_suite("atari5"), ["dqn"], ["ALE/Qbert-v5"], 1)
    assert dqn.final_eval_episodes is None  # the committed dqn records keep their keys


def test_same_padding_matches_flax():
    assert [same_padding(84, 8, 4), same_padding(21, 4, 2), same_padding(11, 3, 1)] == [(2, 2), (1, 2), (1, 1)]
    net = seed_stack((4, 84, 84), 3, (), False, [0], conv_padding="same")
    x = torch.randint(0, 255, (1, 2, 4, 84, 84), dtype=torch.uint8)
    assert net.trunk_input(x).shape == (1, 2, 7744) and net(x).shape == (1, 2, 3)


def test_augment_needs_images():
    with pytest.raises(ConfigError, match="augment needs image observations"):
        make(spaces.Box(-1, 1, (4,), np.float32), spaces.Discrete(2), DQNConfig(augment=True), (0,))


def test_the_target_is_online_shortcut_is_the_synced_target_bit_for_bit():
    """target_update_interval 1 with one gradient step per env step: the target equals the online
    net at every update, so one forward pass serves both; weights equal a separate synced copy's."""
    c = DQNConfig(hidden=(32, 32), learning_starts=20, train_freq=1, target_update_interval=1, double=True,
                  n_step=3, batch_size=8, learning_rate=1e-2)
    space = spaces.Box(-1, 1, (3,), np.float32)
    fast, ref = make(space, spaces.Discrete(3), c, (0, 1)), make(space, spaces.Discrete(3), c, (0, 1))
    assert fast.target_is_online
    ref.target_is_online, ref.q_target = False, copy.deepcopy(ref.q).requires_grad_(False)
    rng = np.random.default_rng(0)
    for t in range(60):
        batch = Transitions(rng.normal(size=(2, 3)).astype(np.float32), rng.integers(3, size=2),
                            rng.normal(size=2).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32),
                            rng.random(2) < 0.1, np.zeros(2, bool))
        fast.observe(batch)
        ref.observe(batch)
    for a, b in zip(fast.q.parameters(), ref.q.parameters(), strict=True):
        assert torch.equal(a, b)


def test_n_step_returns_stop_at_a_life_loss_and_the_next_life_bootstraps():
    """A lost life is a terminal for learning while the game goes on: the 10-step return from
    before it stops there with no bootstrap; the next life's transitions bootstrap normally."""
    replay = FrameReplay(64, (4, 84, 84), np.uint8, [0])
    frames = [np.full((1, 4, 84, 84), i, np.uint8) for i in range(8)]
    rewards = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    for t in range(7):  # the step from frame 2 to 3 loses a life; the game continues (no reset)
        replay.add(frames[t], np.array([0]), np.array([rewards[t]], np.float32), frames[t + 1],
                   np.array([t == 2]), np.array([False]))
    gamma = 0.5
    # rows: t = 0, 1, 2, then the final frame of the lost life (row 3, never sampled), t = 3, ...
    assert replay.final[0, 3] and not replay.valid(np.array([[3]]))[0, 0]
    batch = replay.gather(np.array([[0, 4]]), gamma, n_step=10)
    assert batch.returns[0, 0] == pytest.approx(1 + 0.5 * 2 + 0.25 * 4)  # stops at the life loss
    assert batch.discount[0, 0] == 0.0  # no bootstrap across it
    # row 4 starts the next life: 8, 16, 32, then the newest row (no successor yet); bootstraps with gamma^3
    assert batch.returns[0, 1] == pytest.approx(8 + 0.5 * 16 + 0.25 * 32)
    assert batch.discount[0, 1] == pytest.approx(gamma ** 3)


def test_a_lost_life_reaches_the_agent_as_terminal_and_the_game_goes_on():
    env = envs.make("ALE/Breakout-v5", 0, **cfg.load_suite("atari100k")["env_kwargs"]["atari"])
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    obs, _ = env.reset(seed=3)
    lives, lost, over = env.unwrapped.ale.lives(), 0, False
    rng = np.random.default_rng(0)
    while not over:
        obs, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        now = env.unwrapped.ale.lives()
        assert info["life_lost"] == (now < lives and not terminated)
        lost += info["life_lost"]
        lives, over = now, terminated or truncated
    assert lost == 4  # five lives: four losses inside one game, the fifth ends it
    ev = envs.make("ALE/Breakout-v5", 0, evaluation=True, **cfg.load_suite("atari100k")["env_kwargs"]["atari"])
    ev.reset(seed=3)
    assert "life_lost" not in ev.step(0)[4]  # evaluation plays whole games, no signal


@pytest.mark.parametrize("env_id, episodes", [("CartPole-v1", 5), ("ALE/Pong-v5", 2)])
def test_parallel_evaluation_equals_the_sequential_player(env_id, episodes):
    """A deterministic policy gives the same per-episode returns played in parallel (one env per
    episode, one forward pass) as one after another, each from its own seeded reset."""
    kwargs = {"max_num_frames_per_episode": 1200} if env_id.startswith("ALE/") else {}  # 300 agent steps
    make_env = lambda k: envs.make(env_id, 100 + k, evaluation=True, **kwargs)  # noqa: E731
    probe = make_env(0)
    agent = make(probe.observation_space, probe.action_space, DQNConfig(hidden=(16, 16), eval_epsilon=0.0), (4, 5))
    seeds, alive = [1000, 2000], np.array([True, True])
    with torch.no_grad():
        sequential = runner._evaluate_sequential(agent, [make_env(0), make_env(1)], episodes, seeds, alive)
        parallel = runner.evaluate(agent, [[make_env(0)], [make_env(1)]], make_env, episodes, seeds, alive)
    assert parallel == sequential and len(parallel[0]) == episodes
    partly = runner.evaluate(agent, [[make_env(0)], [make_env(1)]], make_env, episodes, seeds, np.array([False, True]))
    assert partly == [[], sequential[1]]  # a failed seed plays nothing, the other the same


def test_the_report_puts_drq_eps_runs_beside_the_published_runs(tmp_path):
    """Tiny real runs (the atari100k suite with short games, no update), then the report's
    comparison: per game the Mann-Whitney p and percentiles match a direct computation."""
    import pandas as pd
    from scipy.stats import mannwhitneyu

    import baselines
    import dqn_bench

    suite = (cfg.SUITES_DIR / "atari100k.toml").read_text().replace("max_num_frames_per_episode = 108_000",
                                                                     "max_num_frames_per_episode = 400")
    (tmp_path / "atari100k.toml").write_text(suite)
    runs = dqn_bench.run(str(tmp_path / "atari100k.toml"), agents=["drq_eps"], envs=["ALE/Assault-v5", "ALE/Seaquest-v5"],
                         seeds=2, out=tmp_path / "out", workers=1, budget=50, eval_every=50, eval_episodes=1,
                         final_eval_episodes=2, learning_starts=48)
    assert len(runs) == 4 and set(runs["status"]) == {"ok"}
    readme = dqn_bench.report(str(tmp_path / "atari100k.toml"), out=tmp_path / "out", reps=100).read_text()
    assert "## Beside the published DrQ(eps) runs" in readme and "P(ours > published) = " in readme
    assert "gradient updates per core-second (3 updates;" in readme  # steps 48, 49, 50
    assert "core-minutes per run" in readme and "(4 of the runs time them)" in readme
    table = pd.read_csv(tmp_path / "out" / "atari100k" / "published.csv")
    published = baselines.published_runs("drq_eps")
    for row in table.itertuples():
        mine = runs[runs["env"] == row.env].sort_values("seed")["final_score"].to_numpy()
        pub = np.array(published[row.env])
        assert row.p_ours_lower == pytest.approx(mannwhitneyu(mine, pub, alternative="less").pvalue, rel=1e-5)
        assert row.published_runs == 100 and row.published_mean == pytest.approx(pub.mean(), rel=1e-5)
        assert [float(p) for p in str(row.percentiles).split()] == pytest.approx(
            [round(100 * ((pub < x).mean() + 0.5 * (pub == x).mean())) for x in mine])
    # one machine name in the records: one cost line; a run from another machine gets its own
    assert readme.count("Cost of our runs on ") == 1 and "(4 of 4), median" in readme
    import json
    path = sorted((tmp_path / "out" / "atari100k" / "runs").glob("*drq_eps*.json"))[0]
    record = json.loads(path.read_text())
    record["versions"]["machine"] = "Other CPU, 64 cores, AVX512, Linux x86_64"
    path.write_text(json.dumps(record))
    readme = dqn_bench.report(str(tmp_path / "atari100k.toml"), out=tmp_path / "out", reps=100).read_text()
    assert readme.count("Cost of our runs on ") == 2
    assert "Cost of our runs on Other CPU, 64 cores, AVX512, Linux x86_64 (1 of 4), median" in readme
    assert "(3 of 4), median" in readme and "(3 of the runs time them)" in readme


def test_a_checkpoint_restores_the_augmentation_and_evaluation_streams(tmp_path):
    """Resumed from a checkpoint mid-training, drq_eps trains bit for bit as without the break."""
    from dqn_bench import checkpoints

    c = DQNConfig(**{**PRESETS["drq_eps"], "learning_starts": 8, "batch_size": 4, "buffer_size": 64})
    rng = np.random.default_rng(0)
    steps = [Transitions(*(rng.integers(0, 255, (1, 4, 84, 84), dtype=np.uint8),), rng.integers(4, size=1),
                         rng.normal(size=1).astype(np.float32), rng.integers(0, 255, (1, 4, 84, 84), dtype=np.uint8),
                         rng.random(1) < 0.1, np.zeros(1, bool)) for _ in range(16)]
    whole, resumed = make(IMAGE, spaces.Discrete(4), c, (0,)), make(IMAGE, spaces.Discrete(4), c, (0,))
    for t, batch in enumerate(steps):
        whole.observe(batch)
        if t == 9:
            checkpoints.write(tmp_path / "c.pt", {"agent": whole.state_dict()})
            whole.act_episodes(np.zeros((1, 3, 4, 84, 84), np.uint8), np.ones((1, 3), bool))
    resumed.load_state_dict(checkpoints.read(tmp_path / "c.pt")["agent"])
    resumed.act_episodes(np.zeros((1, 3, 4, 84, 84), np.uint8), np.ones((1, 3), bool))
    for batch in steps[10:]:
        resumed.observe(batch)
    for a, b in zip(whole.q.parameters(), resumed.q.parameters(), strict=True):
        assert torch.equal(a, b)
    assert whole.eval_rngs[0].random() == resumed.eval_rngs[0].random()
    assert whole.augment.rngs[0].random() == resumed.augment.rngs[0].random()
