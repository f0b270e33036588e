"""Atari: Machado-protocol env, every DQN preset on the Nature CNN, the atari-smoke suite end to end."""
import numpy as np
import pytest
import torch

import envs
from agents.networks import NatureCNN
from dqn_bench import config as cfg
from dqn_bench.protocol import ConfigError
from dqn_bench.runner import run_batch


def test_machado_protocol_defaults_and_knobs():
    (spec,) = cfg.plan(cfg.load_suite("atari-smoke"), ["random"], None, 1)
    kw = spec.env_kwargs  # every knob is explicit in the run spec, hence in the record
    assert kw["repeat_action_probability"] == 0.25 and kw["terminal_on_life_loss"] is False
    assert kw["noop_max"] == 0 and kw["max_num_frames_per_episode"] == 108_000 and kw["frame_stack"] == 4
    env = envs.make("ALE/Pong-v5", 0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    full = envs.make("ALE/Pong-v5", 0, full_action_space=True, noop_max=30)
    assert full.action_space.n == 18
    with pytest.raises(ConfigError, match="unknown Atari option"):
        envs.resolve_kwargs("ALE/Pong-v5", {"sticky": 0.1})


def test_nature_cnn_shapes_and_dueling_identity():
    x = torch.randint(0, 255, (2, 4, 84, 84), dtype=torch.uint8)
    assert NatureCNN(4, 6, dueling=False)(x).shape == (2, 6)
    net = NatureCNN(4, 6, dueling=True)
    feats = net.conv(x.float() / 255)
    v, a = net.head.value(feats), net.head.advantage(feats)
    torch.testing.assert_close(net(x), v + a - a.mean(1, keepdim=True))


@pytest.mark.parametrize("agent,seeds", [("dqn", 2), ("double_dqn", 1), ("dueling_dqn", 1), ("per_dqn", 1),
                                         ("combined_dqn", 2)])
def test_every_preset_runs_on_atari_as_a_seed_batch(agent, seeds):
    """Seed batches of two: grouped convolutions, frame replays whose cursors drift apart."""
    specs = cfg.plan(cfg.load_suite("atari-smoke"), [agent], None, seeds,
                     {"budget": "300", "eval_every": "300", "eval_episodes": "1", "final_eval_episodes": "1", "learning_starts": "100",
                      "buffer_size": "1000", "train_freq": "8"})
    for rec in run_batch(specs):
        assert rec["status"] == "ok", rec["error"]
        assert rec["seed_batch"] == seeds
        assert rec["eval"]["returns"][-1][0] <= -15  # an untrained Pong agent loses (full game score)


def test_atari_smoke_suite_end_to_end_with_human_normalized_report(run_cli, tmp_path):
    r = run_cli("run", "--suite", "atari-smoke", "--out", tmp_path, "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "replay memory: up to" in r.stderr
    r = run_cli("report", "--suite", "atari-smoke", "--out", tmp_path, "--reps", "200")
    assert r.returncode == 0, r.stderr
    readme = (tmp_path / "atari-smoke" / "README.md").read_text()
    assert "random -20.7, human 14.6" in readme and "DQN (Nature 2015) (200M frames): 18.9" in readme
    r = run_cli("play", "--suite", "atari-smoke", "--agent", "dqn", "--env", "ALE/Pong-v5", "--seed", "0",
                "--out", tmp_path, "--episodes", "1")  # the saved Nature CNN, back in the Machado env
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split("return ")[1].split()[0]) <= -15  # untrained: loses the full game


def test_replay_that_cannot_fit_fails_early(run_cli, tmp_path):
    r = run_cli("run", "--suite", "atari-smoke", "--agents", "dqn", "--set", "buffer_size=100000000",
                "--out", tmp_path)
    assert r.returncode == 2 and "lower buffer_size" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "atari-smoke").exists()
