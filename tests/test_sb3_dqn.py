"""sb3_dqn is Stable-Baselines3's DQN, with the suite's values, driven by the harness."""
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from dqn_bench import config as cfg
from dqn_bench import registry
from dqn_bench.protocol import ConfigError, Transitions

pytest.importorskip("stable_baselines3")
from stable_baselines3 import DQN  # noqa: E402
from stable_baselines3.common.logger import Logger  # noqa: E402

from agents.sb3_dqn import SB3DQNConfig, sb3_arguments  # noqa: E402

CLASSIC = cfg.load_suite("classic")
torch.set_num_threads(1)  # as the harness runs it; tiny nets are slower multi-threaded


def build(env_label: str):
    (spec,) = cfg.plan(CLASSIC, ["sb3_dqn"], [env_label], 1)
    env = gym.make(spec.env_id)
    return spec, registry.make_agent(spec.agent_spec, env.observation_space, env.action_space, spec.config, [0],
                                     spec.budget).model


@pytest.mark.parametrize("env_label", CLASSIC["envs"])
def test_built_model_has_the_suites_values(env_label):
    """Checked against the suite file's own `dqn` table, not against our mapping function."""
    spec, m = build(env_label)
    table = {**CLASSIC["hyperparams"]["dqn"]["default"], **CLASSIC["hyperparams"]["dqn"][env_label]}
    assert m.learning_rate == table["learning_rate"]
    assert m.policy.optimizer.param_groups[0]["lr"] == table["learning_rate"]
    assert (m.buffer_size, m.batch_size, m.learning_starts, m.gamma) == (
        table["buffer_size"], table["batch_size"], table["learning_starts"], table["gamma"])
    assert m.replay_buffer.buffer_size == table["buffer_size"]
    assert (m.train_freq.frequency, m.train_freq.unit.value) == (table["train_freq"], "step")
    assert m.gradient_steps == table["gradient_steps"]
    assert m.target_update_interval == table["target_update_interval"]
    assert m.exploration_fraction * spec.budget == pytest.approx(table["epsilon_duration"])
    assert (m.exploration_initial_eps, m.exploration_final_eps) == (table["epsilon_start"], table["epsilon_end"])
    # unset keys take SB3's own defaults, which the suite's header says they are
    assert (m.tau, m.max_grad_norm, m.n_steps) == (1.0, 10.0, 1)
    assert m.policy.optimizer.defaults["eps"] == 1e-8
    widths = [layer.out_features for layer in m.q_net.q_net if isinstance(layer, torch.nn.Linear)]
    assert widths == [*table["hidden"], m.action_space.n]
    assert widths == [*m.q_net_target.net_arch, m.action_space.n]


@pytest.mark.parametrize("sets", [
    dict(learning_starts=100, train_freq=16, gradient_steps=8, target_update_interval=10),  # CartPole-like
    dict(learning_starts=0, train_freq=4, gradient_steps=-1, target_update_interval=250, n_step=3, tau=0.5),
])
def test_the_harness_loop_trains_exactly_as_sb3_learn(sets):
    """Same seed and episode seeds: our act/observe loop ends with SB3's learn()'s weights, bit for bit."""
    config = SB3DQNConfig(learning_rate=1e-3, batch_size=32, buffer_size=5_000, epsilon_duration=400,
                          hidden=(32, 32), **sets)
    budget = 800  # a multiple of train_freq: learn() finishes its last rollout past the budget

    env = gym.make("CartPole-v1")
    spec = registry.specs()["sb3_dqn"]
    agent = spec.factory(env.observation_space, env.action_space, config, 3, budget=budget)
    obs, _ = env.reset(seed=10)
    episodes = 0
    for _ in range(budget):
        action = agent.act(obs[None], explore=True)
        next_obs, reward, terminated, truncated, _ = env.step(int(action[0]))
        agent.observe(Transitions(obs[None], action, np.array([reward], np.float32), next_obs[None],
                                  np.array([terminated]), np.array([truncated])))
        obs = next_obs
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset(seed=10 + episodes)

    class EpisodeSeeds(gym.Wrapper):  # SB3 resets its own env; give it the same episode seeds
        episodes = 0

        def reset(self, *, seed=None, options=None):
            self.episodes += 1
            return self.env.reset(seed=10 + self.episodes - 1)

    reference = DQN("MlpPolicy", EpisodeSeeds(gym.make("CartPole-v1")), seed=3, device="cpu",
                    **sb3_arguments(config, budget))
    reference.set_logger(Logger(folder=None, output_formats=[]))  # no log folder in /tmp
    reference.learn(budget)
    assert agent.model._n_updates == reference._n_updates > 0
    for ours, theirs in zip(agent.model.policy.state_dict().values(), reference.policy.state_dict().values()):
        assert torch.equal(ours, theirs)


def test_keys_sb3_does_not_have_are_config_errors(run_cli, tmp_path):
    r = run_cli("run", "--suite", "classic", "--agents", "sb3_dqn", "--envs", "CartPole-v1", "--set", "dueling=true",
                "--out", tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown --set key(s) dueling" in r.stderr, r.stderr
    suite = {**CLASSIC, "hyperparams": {"dqn": {"default": {"prioritized": True}}}}
    with pytest.raises(ConfigError, match="unknown config key.*prioritized.*sb3_dqn"):
        cfg.plan(suite, ["sb3_dqn"], ["CartPole-v1"], 1)
    assert not (tmp_path / "classic").exists()


def test_missing_extra_is_one_line_with_the_install_command(run_cli, tmp_path):
    fake = tmp_path / "nosb3" / "stable_baselines3"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named stable_baselines3')\n")
    env = {"PYTHONPATH": f"{tmp_path / 'nosb3'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = run_cli("run", "--suite", "classic", "--agents", "sb3_dqn", "--envs", "CartPole-v1", "--out", tmp_path / "out",
                env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "pip install -e .[sb3]" in r.stderr
    assert not (tmp_path / "out").exists()
    r = run_cli("list", env=env)  # the other agents are unaffected
    assert r.returncode == 0 and "sb3_dqn" in r.stdout
