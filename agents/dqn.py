"""DQN with its variants as flags: double, dueling, prioritized replay, n-step returns.

One class reads top to bottom: act (epsilon-greedy), observe (store, update the target, train on
schedule), _train_round (sample, target, loss, step). Presets at the bottom name combinations.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from agents.frame_replay import FrameReplay
from agents.networks import numpy_greedy, q_network
from agents.replay import ReplayBuffer
from agents.schedules import check_exploration, epsilon_schedule
from agents.sum_tree import SumTree
from dqn_bench.protocol import AgentSpec, ConfigError, Transitions, available_memory, check


@dataclass(frozen=True)
class DQNConfig:
    learning_rate: float = 1e-4
    gamma: float = 0.99
    buffer_size: int = 100_000
    batch_size: int = 32
    learning_starts: int = 1_000
    """env steps before the first gradient step"""
    train_freq: int = 4
    """env steps between training rounds"""
    gradient_steps: int = 1
    """gradient steps per round; -1 = as many as env steps in the round"""
    target_update_interval: int = 1_000
    """env steps between target updates"""
    tau: float = 1.0
    """1.0 = hard copy; < 1 = Polyak averaging at each target update"""
    loss: str = "huber"
    max_grad_norm: float = 10.0
    """0 disables clipping"""
    adam_eps: float = 1e-8
    hidden: tuple = (256, 256)
    epsilon_schedule: str = "linear"
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_duration: int = 10_000
    epsilon_unit: str = "step"
    eval_epsilon: float = 0.0
    reward_clip: float = 0.0
    """clip rewards to [-c, c] inside learning only; 0 = off"""
    double: bool = False
    dueling: bool = False
    prioritized: bool = False
    per_alpha: float = 0.6
    per_beta0: float = 0.4
    per_beta_steps: int = 100_000
    """env steps over which beta anneals linearly from per_beta0 to 1"""
    per_eps: float = 1e-6
    n_step: int = 1

    def __post_init__(self):
        check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        check(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        check(self.buffer_size >= 1, f"buffer_size must be >= 1, got {self.buffer_size}")
        check(
            1 <= self.batch_size <= self.buffer_size,
            f"batch_size must be in [1, buffer_size={self.buffer_size}], got {self.batch_size}",
        )
        check(self.learning_starts >= 0, f"learning_starts must be >= 0, got {self.learning_starts}")
        check(self.train_freq >= 1, f"train_freq must be >= 1, got {self.train_freq}")
        check(
            self.gradient_steps == -1 or self.gradient_steps >= 1,
            f"gradient_steps must be >= 1 or -1, got {self.gradient_steps}",
        )
        check(self.target_update_interval >= 1, "target_update_interval must be >= 1")
        check(0.0 < self.tau <= 1.0, f"tau must be in (0, 1], got {self.tau}")
        check(self.loss in ("huber", "mse"), f"loss must be one of huber, mse; got '{self.loss}'")
        check(self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        check(
            len(self.hidden) >= 1 and all(int(h) >= 1 for h in self.hidden),
            f"hidden must be positive layer widths, got {self.hidden}",
        )
        check_exploration(self)
        check(self.reward_clip >= 0, "reward_clip must be >= 0")
        check(0.0 <= self.per_alpha <= 1.0, f"per_alpha must be in [0, 1], got {self.per_alpha}")
        check(0.0 <= self.per_beta0 <= 1.0, f"per_beta0 must be in [0, 1], got {self.per_beta0}")
        check(self.per_eps > 0, "per_eps must be > 0")
        check(self.n_step >= 1, f"n_step must be >= 1, got {self.n_step}")


class DQN:
    def __init__(self, obs_space: spaces.Box, n_actions: int, config: DQNConfig, seed: int):
        self.cfg = c = config
        self.n_actions = n_actions
        with torch.random.fork_rng(devices=[]):  # weights from the run's seed, not global state
            torch.manual_seed(seed)
            self.q = q_network(obs_space.shape, n_actions, tuple(int(h) for h in c.hidden), c.dueling)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.params = list(self.q.parameters())
        self.greedy = numpy_greedy(self.q)  # refreshed whenever the weights change
        # fused: one kernel for all parameters instead of ~6 ops per tensor per step on CPU
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=c.learning_rate, eps=c.adam_eps, fused=True)
        seeds = np.random.SeedSequence(seed).spawn(2)
        self.rng = np.random.default_rng(seeds[0])  # exploration
        # stacked frames: store each frame once and rebuild stacks at sample time
        replay_cls = FrameReplay if len(obs_space.shape) == 3 else ReplayBuffer
        self.memory_bytes = c.buffer_size * replay_cls.bytes_per_row(obs_space.shape, obs_space.dtype)
        available = available_memory()
        if available and self.memory_bytes > available:
            raise ConfigError(f"replay of {c.buffer_size} transitions needs {self.memory_bytes / 2**30:.1f} GiB, "
                              f"{available / 2**30:.1f} GiB available; lower buffer_size")
        self.replay = replay_cls(c.buffer_size, obs_space.shape, obs_space.dtype, seeds[1])
        self.tree = SumTree(c.buffer_size) if c.prioritized else None
        self.max_priority = 1.0  # running max, so adding a row is O(log N), not a scan
        self.epsilon = epsilon_schedule(c)
        self.steps = 0
        self.episodes = 0
        self.since_train = 0

    # -- acting ---------------------------------------------------------------------------
    def current_epsilon(self) -> float:
        return self.epsilon(self.steps if self.cfg.epsilon_unit == "step" else self.episodes)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.q(torch.as_tensor(obs)).numpy()

    def act(self, obs: np.ndarray, *, explore: bool) -> np.ndarray:
        eps = self.current_epsilon() if explore else self.cfg.eval_epsilon
        n = len(obs)
        random = self.rng.random(n) < eps
        actions = self.rng.integers(self.n_actions, size=n)
        if not random.all():  # skip the forward pass when every row explores
            if self.greedy is not None:
                greedy = self.greedy(obs)
            else:
                with torch.no_grad():
                    greedy = self.q(torch.as_tensor(obs)).argmax(dim=1).numpy()
            actions = np.where(random, actions, greedy)
        return actions

    # -- learning -------------------------------------------------------------------------
    def observe(self, batch: Transitions) -> dict[str, float]:
        c = self.cfg
        reward = batch.reward
        if c.reward_clip:
            reward = np.clip(reward, -c.reward_clip, c.reward_clip)
        rows = self.replay.add(batch.obs, batch.action, reward, batch.next_obs, batch.terminated, batch.truncated)
        if self.tree is not None:  # new rows get the max priority so each is seen at least once
            self.tree.update(rows, np.full(len(rows), self.max_priority))
        n = len(batch.action)
        before = self.steps
        self.steps += n
        self.since_train += n
        self.episodes += int(np.sum(batch.terminated | batch.truncated))
        # counted in env steps like SB3/the Zoo, so Zoo hyperparameters mean the same here
        if self.steps // c.target_update_interval > before // c.target_update_interval:
            self._update_target()
        metrics = {"epsilon": self.current_epsilon()}
        if self.steps >= c.learning_starts and self.since_train >= c.train_freq and self.replay.can_sample():
            steps = self.since_train if c.gradient_steps == -1 else c.gradient_steps
            self.since_train = 0
            metrics["loss"] = self._train_round(steps)
            self.greedy = numpy_greedy(self.q)
        return metrics

    def _update_target(self) -> None:
        with torch.no_grad():
            if self.cfg.tau == 1.0:
                self.q_target.load_state_dict(self.q.state_dict())
            else:
                torch._foreach_lerp_(list(self.q_target.parameters()), list(self.q.parameters()), self.cfg.tau)

    def beta(self) -> float:
        c = self.cfg
        return min(1.0, c.per_beta0 + (1.0 - c.per_beta0) * self.steps / max(1, c.per_beta_steps))

    def _train_round(self, gradient_steps: int) -> float:
        c = self.cfg
        if self.tree is None:
            # Uniform: neither the data nor the target net change within a round (target updates
            # happen between env steps), so gather every batch, and without `double` compute every
            # target, in one call: one big matmul instead of one per gradient step.
            rows = self.replay.sample_rows(gradient_steps * c.batch_size)
            obs, action, returns, next_obs, discount = map(torch.as_tensor, self.replay.gather(rows, c.gamma, c.n_step))
            target = None if c.double else td_target(self.q, self.q_target, next_obs, returns, discount, False)
            losses = torch.empty(gradient_steps)
            for g in range(gradient_steps):
                b = slice(g * c.batch_size, (g + 1) * c.batch_size)
                t = target[b] if target is not None else td_target(self.q, self.q_target, next_obs[b], returns[b], discount[b], True)
                losses[g], _ = self._gradient_step(obs[b], action[b], t, weights=None)
            return float(losses.mean())
        total = 0.0
        for _ in range(gradient_steps):  # prioritized: priorities change after every step
            rows = self.tree.sample(c.batch_size, self.replay.rng)
            while not (ok := self.replay.valid(rows)).all():  # frame replay: skip rows not ready yet
                rows[~ok] = self.tree.sample(int((~ok).sum()), self.replay.rng)
            weights = importance_weights(self.tree.get(rows) / self.tree.total, len(self.replay), self.beta())
            obs, action, returns, next_obs, discount = map(torch.as_tensor, self.replay.gather(rows, c.gamma, c.n_step))
            target = td_target(self.q, self.q_target, next_obs, returns, discount, c.double)
            loss, td = self._gradient_step(obs, action, target, weights=torch.as_tensor(weights))
            priorities = (np.abs(td) + c.per_eps) ** c.per_alpha
            self.tree.update(rows, priorities)
            self.max_priority = max(self.max_priority, float(priorities.max()))
            total += float(loss)
        return total / gradient_steps

    def _gradient_step(self, obs, action, target, weights):
        q = self.q(obs).gather(1, action[:, None]).squeeze(1)
        if self.cfg.loss == "huber":
            per_sample = F.smooth_l1_loss(q, target, reduction="none")
        else:
            per_sample = F.mse_loss(q, target, reduction="none")
        loss = per_sample.mean() if weights is None else (weights * per_sample).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.max_grad_norm > 0:
            clip_grad_norm(self.params, self.cfg.max_grad_norm)
        self.optimizer.step()
        td = (target - q).detach().numpy() if weights is not None else None
        return loss.detach(), td

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "replay": self.replay.state_dict(),
            "tree": None if self.tree is None else self.tree.tree.copy(),
            "rng": self.rng.bit_generator.state,
            "counters": (self.steps, self.episodes, self.since_train, self.max_priority),
        }

    def load_state_dict(self, state) -> None:
        self.q.load_state_dict(state["q"])
        self.greedy = numpy_greedy(self.q)
        self.q_target.load_state_dict(state["q_target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.replay.load_state_dict(state["replay"])
        if self.tree is not None:
            self.tree.tree[:] = state["tree"]
        self.rng.bit_generator.state = state["rng"]
        self.steps, self.episodes, self.since_train, self.max_priority = state["counters"]


def td_target(q, q_target, next_obs, returns, discount, double: bool) -> torch.Tensor:
    """returns + discount * Q_target(s', a*): a* = argmax Q_target (DQN) or argmax Q (double)."""
    with torch.no_grad():
        next_q = q_target(next_obs)
        if double:  # online net picks, target net evaluates (van Hasselt et al. 2016)
            best = q(next_obs).argmax(dim=1, keepdim=True)
            value = next_q.gather(1, best).squeeze(1)
        else:
            value = next_q.max(dim=1).values
        return returns + discount * value


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> None:
    """Scale gradients to a global L2 norm <= max_norm; same result as torch's clip_grad_norm_
    but skips the rescale when already within bounds (a third of a CPU gradient step)."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
    if norm > max_norm:
        torch._foreach_mul_(grads, max_norm / (norm + 1e-6))


def importance_weights(probs: np.ndarray, size: int, beta: float) -> np.ndarray:
    """(N * P(i))^-beta, normalized by the max so weights only scale updates down (Schaul et al.)."""
    w = (size * probs) ** (-beta)
    return (w / w.max()).astype(np.float32)


def make(observation_space, action_space, config: DQNConfig, seed: int) -> DQN:
    if not isinstance(action_space, spaces.Discrete):
        raise ConfigError(f"dqn needs a Discrete action space, got {action_space}")
    if not isinstance(observation_space, spaces.Box):
        raise ConfigError(
            f"dqn needs a Box observation space, got {observation_space}; "
            "for Discrete observations use tabular_q"
        )
    return DQN(observation_space, int(action_space.n), config, seed)


PRESETS = {
    "dqn": {},
    "double_dqn": {"double": True},
    "dueling_dqn": {"dueling": True},
    "per_dqn": {"prioritized": True},
    "combined_dqn": {"double": True, "dueling": True, "prioritized": True, "n_step": 3},
    # The published 10M-step Atari configuration: RL Zoo hyperparams/dqn.yml `atari` (see
    # baselines/SOURCES.md); run it with the atari5-10m suite, which holds the 10M-step budget.
    "dqn_zoo_atari": {"buffer_size": 100_000, "batch_size": 32, "learning_rate": 1e-4, "learning_starts": 100_000,
                      "target_update_interval": 1_000, "train_freq": 4, "gradient_steps": 1,
                      "epsilon_duration": 1_000_000, "epsilon_end": 0.01, "reward_clip": 1.0, "gamma": 0.99},
}

SPEC = AgentSpec("dqn", make, DQNConfig, PRESETS, "DQN; variants are flags, presets name combinations")
