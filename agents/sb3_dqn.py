"""Stable-Baselines3's DQN behind the project's protocol: the peer, run by our own harness.

SB3 learns with its own policy, replay buffer, exploration schedule, target update and train
step; the harness only drives its env loop. `act` is SB3's `_sample_action` (random while
num_timesteps < learning_starts, then SB3's epsilon-greedy `predict`), `observe` replays what
SB3's `collect_rollouts` + `learn` do after each `env.step`: count the step, store the transition
(with `TimeLimit.truncated` so a time limit bootstraps), update progress, `_on_step` (target
update and epsilon), and after every `train_freq` steps past `learning_starts`, `train`.
The one deviation: SB3 steps its own VecEnv, which is built here around a stub that is never
stepped; episode bookkeeping (Monitor, logging) is therefore the harness's, not SB3's.

Keys are the project's DQN keys (the suite's `dqn` table applies), mapped to SB3's arguments:
epsilon_duration -> exploration_fraction * budget, hidden -> net_arch, epsilon_start/_end ->
exploration_initial/final_eps, adam_eps -> optimizer eps, max_grad_norm 0 (off) -> inf, n_step
-> n_steps. Variant flags SB3's DQN does not have (double, dueling, prioritized, ...) are not
keys of this agent, so setting one is a ConfigError.
"""
from __future__ import annotations

import random
import dataclasses

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from agents.dqn import DQNConfig
from dqn_bench.protocol import AgentSpec, ConfigError, Transitions

INSTALL = "pip install -e .[sb3] -c constraints.txt"


# The project's DQN keys that SB3's DQN has: same names, defaults and checks as DQNConfig's.
SB3_KEYS = ("learning_rate", "gamma", "buffer_size", "batch_size", "learning_starts", "train_freq", "gradient_steps",
            "target_update_interval", "tau", "max_grad_norm", "adam_eps", "hidden", "epsilon_start", "epsilon_end",
            "epsilon_duration", "n_step")


def _check(self) -> None:
    DQNConfig(**dataclasses.asdict(self))  # DQNConfig's own validation of the shared keys


SB3DQNConfig = dataclasses.make_dataclass(
    "SB3DQNConfig", [(f.name, f.type, dataclasses.field(default=f.default))
                     for f in dataclasses.fields(DQNConfig) if f.name in SB3_KEYS],
    namespace={"__post_init__": _check, "__module__": __name__}, frozen=True)


def sb3_arguments(config: SB3DQNConfig, budget: int) -> dict:
    """SB3 DQN's constructor arguments for a run of `budget` env steps."""
    c = config
    return {
        "learning_rate": c.learning_rate, "buffer_size": c.buffer_size, "learning_starts": c.learning_starts,
        "batch_size": c.batch_size, "tau": c.tau, "gamma": c.gamma, "train_freq": c.train_freq,
        "gradient_steps": c.gradient_steps, "n_steps": c.n_step, "target_update_interval": c.target_update_interval,
        # SB3's epsilon is linear in progress = num_timesteps / total_timesteps
        "exploration_fraction": c.epsilon_duration / budget, "exploration_initial_eps": c.epsilon_start,
        "exploration_final_eps": c.epsilon_end, "max_grad_norm": c.max_grad_norm or float("inf"),
        "policy_kwargs": {"net_arch": [int(h) for h in c.hidden], "optimizer_kwargs": {"eps": c.adam_eps}},
    }


class _SpacesOnly(gym.Env):
    """What SB3's constructor needs from an env: its spaces. The harness steps the real envs."""

    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        raise RuntimeError("sb3_dqn's env loop is the harness's; this env is never reset")

    def step(self, action):
        raise RuntimeError("sb3_dqn's env loop is the harness's; this env is never stepped")


class SB3DQN:
    """One seed. SB3 draws from the process-global numpy/torch/random generators, so those are
    seeded at construction and saved with every checkpoint."""

    def __init__(self, observation_space, action_space, config: SB3DQNConfig, seed: int, budget: int):
        import stable_baselines3
        from stable_baselines3 import DQN
        from stable_baselines3.common.logger import Logger

        self.cfg = config
        self.versions = {"stable-baselines3": stable_baselines3.__version__}  # goes into each record
        self.model = m = DQN("MlpPolicy", _SpacesOnly(observation_space, action_space), seed=seed, device="cpu",
                             verbose=0, **sb3_arguments(config, budget))
        m.set_logger(Logger(folder=None, output_formats=[]))
        m._total_timesteps = budget  # what learn(total_timesteps=budget) would set
        self.rollout_steps = 0  # steps collected in the current rollout (collect_rollouts' counter)
        buffer = m.replay_buffer
        self.memory_bytes = sum(v.nbytes for v in vars(buffer).values() if isinstance(v, np.ndarray))

    def act(self, obs: np.ndarray, *, explore: bool) -> np.ndarray:
        m = self.model
        if not explore:
            action, _ = m.policy.predict(obs, deterministic=True)
            return np.asarray(action, dtype=np.int64).reshape(len(obs))
        m._last_obs = obs
        action, _ = m._sample_action(m.learning_starts, None, len(obs))
        return np.asarray(action, dtype=np.int64).reshape(len(obs))

    def observe(self, batch: Transitions) -> dict:
        m = self.model
        m.num_timesteps += len(batch.obs)
        self.rollout_steps += 1
        done = batch.terminated | batch.truncated
        infos = [{"TimeLimit.truncated": bool(tr and not te)} for te, tr in zip(batch.terminated, batch.truncated)]
        m.replay_buffer.add(batch.obs, batch.next_obs, batch.action, batch.reward, done, infos)
        m._update_current_progress_remaining(m.num_timesteps, m._total_timesteps)
        m._on_step()
        m._episode_num += int(done.sum())
        metrics = {"epsilon": m.exploration_rate}
        if self.rollout_steps == self.cfg.train_freq:  # collect_rollouts returns, learn trains
            self.rollout_steps = 0
            if m.num_timesteps > m.learning_starts:
                steps = m.gradient_steps if m.gradient_steps >= 0 else self.cfg.train_freq * len(batch.obs)
                if steps > 0:
                    m.train(batch_size=m.batch_size, gradient_steps=steps)
                    metrics["loss"] = m.logger.name_to_value["train/loss"]
        return metrics

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model.q_net(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    def policy_state(self, k: int) -> dict:
        return {name: t.numpy().copy() for name, t in self.model.q_net.state_dict().items()}

    def load_policy_state(self, state) -> None:
        self.model.q_net.load_state_dict({name: torch.from_numpy(np.asarray(a)) for name, a in state.items()})

    def state_dict(self) -> dict:
        m, buffer = self.model, self.model.replay_buffer
        np_state = np.random.get_state()
        return {
            "policy": m.policy.state_dict(), "optimizer": m.policy.optimizer.state_dict(),
            "replay": {k: v for k, v in vars(buffer).items() if isinstance(v, np.ndarray)},
            "replay_pos": int(buffer.pos), "replay_full": bool(buffer.full),
            "counters": {"num_timesteps": m.num_timesteps, "_n_calls": m._n_calls, "_n_updates": m._n_updates,
                         "_episode_num": m._episode_num, "rollout_steps": self.rollout_steps},
            "floats": {"exploration_rate": float(m.exploration_rate),
                       "_current_progress_remaining": float(m._current_progress_remaining)},
            "rng": {"numpy": [np_state[0], np_state[1], int(np_state[2]), int(np_state[3]), float(np_state[4])],
                    "torch": torch.get_rng_state(), "python": random.getstate(),
                    "action_space": m.action_space.np_random.bit_generator.state},
        }

    def load_state_dict(self, state) -> None:
        m, buffer = self.model, self.model.replay_buffer
        m.policy.load_state_dict(state["policy"])
        m.policy.optimizer.load_state_dict(state["optimizer"])
        for k, v in state["replay"].items():
            getattr(buffer, k)[...] = v
        buffer.pos, buffer.full = state["replay_pos"], state["replay_full"]
        counters = dict(state["counters"])
        self.rollout_steps = counters.pop("rollout_steps")
        for k, v in {**counters, **state["floats"]}.items():
            setattr(m, k, v)
        rng = state["rng"]
        np.random.set_state(tuple(rng["numpy"]))
        torch.set_rng_state(rng["torch"])
        py = rng["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        m.action_space.np_random.bit_generator.state = rng["action_space"]


def make(observation_space, action_space, config: SB3DQNConfig, seed: int, budget: int) -> SB3DQN:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        raise ConfigError(f"agent sb3_dqn needs Stable-Baselines3, an optional extra: {INSTALL}") from None
    if not isinstance(action_space, spaces.Discrete):
        raise ConfigError(f"sb3_dqn needs a Discrete action space, got {action_space}")
    if not (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1):
        raise ConfigError(f"sb3_dqn runs SB3's MlpPolicy and needs a flat Box observation space, got {observation_space}")
    return SB3DQN(observation_space, action_space, config, seed, budget)


SPEC = AgentSpec("sb3_dqn", make, SB3DQNConfig, hyperparams="dqn", takes_budget=True,
                 description="Stable-Baselines3's DQN driven by the harness (extra: sb3)")
