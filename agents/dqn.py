"""DQN with its variants as flags: double, dueling, prioritized replay, n-step returns.

One class reads top to bottom: act (epsilon-greedy), observe (store, update the target, train on
schedule), _train_round (sample, target, loss, step). Presets at the bottom name combinations.
It trains K seeds of one configuration at once (a seed batch): every tensor and array carries a
leading seed axis, so each step is one batched op for all K, not K small ones.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from agents.adam import Adam
from agents.frame_replay import FrameReplay
from agents.augment import Augment
from agents.networks import CONV_PADDINGS, DUELING_HEADS, INITS, seed_stack
from agents.replay import ReplayBuffer
from agents.schedules import check_exploration, epsilon_schedule
from agents.sum_tree import SumTree
from dqn_bench.protocol import AgentSpec, ConfigError, Transitions, available_memory, check, compute_device, new_field


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
    dueling_head: str = new_field("streams")
    """dueling layout: "streams" (Wang et al. 2016) or "linear" (Dopamine); see agents/networks.py"""
    prioritized: bool = False
    per_alpha: float = 0.6
    per_beta0: float = 0.4
    per_beta_steps: int = 100_000
    """env steps over which beta anneals linearly from per_beta0 to 1"""
    per_eps: float = 1e-6
    n_step: int = 1
    epsilon_warmup: int = new_field(0)
    """env steps at epsilon_start before the schedule starts (Dopamine's warmup_steps)"""
    augment: bool = new_field(False)
    """image observations: random shifts (replicate-pad 4, crop) and intensity noise when training
    (agents/augment.py); never when acting"""
    conv_padding: str = new_field("valid")
    """conv torso: "valid" (Nature) or "same" (Dopamine)"""
    init: str = new_field("torch")
    """"torch" (layer defaults) or "xavier" (Dopamine)"""

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
        for name, valid in (("dueling_head", DUELING_HEADS), ("conv_padding", CONV_PADDINGS), ("init", INITS)):
            check(getattr(self, name) in valid, f"{name} must be one of {', '.join(valid)}; got '{getattr(self, name)}'")
        check(0.0 <= self.per_alpha <= 1.0, f"per_alpha must be in [0, 1], got {self.per_alpha}")
        check(0.0 <= self.per_beta0 <= 1.0, f"per_beta0 must be in [0, 1], got {self.per_beta0}")
        check(self.per_eps > 0, "per_eps must be > 0")
        check(self.n_step >= 1, f"n_step must be >= 1, got {self.n_step}")


class DQN:
    """K seeds of one configuration (K = len(seeds); K = 1 is a batch of one).

    Row k of act/observe is seed k's own environment. Per seed: weights, target weights, Adam
    moments (elementwise, so a stacked tensor is K independent optimizers), replay rows and
    generator, sum tree, max priority, episode count and exploration generator. Shared: the step
    counter and training schedule, since the K environments step in lockstep.
    """

    def __init__(self, obs_space: spaces.Box, n_actions: int, config: DQNConfig, seeds: tuple[int, ...]):
        self.cfg = c = config
        self.k = len(seeds)
        self.n_actions = n_actions
        self.device = torch.device(compute_device())  # weights are drawn on the CPU, so every device starts alike
        self.q = seed_stack(obs_space.shape, n_actions, tuple(int(h) for h in c.hidden), c.dueling, list(seeds),
                            dueling_head=c.dueling_head, conv_padding=c.conv_padding, init=c.init).to(self.device)
        # A hard copy before every single gradient step makes the target the online net itself
        # (DrQ(eps): target_update_period 1): one network, one forward pass on the next state.
        self.target_is_online = c.tau == 1.0 and c.target_update_interval == 1 and c.train_freq == 1 \
            and c.gradient_steps in (1, -1)
        self.q_target = self.q if self.target_is_online else copy.deepcopy(self.q).requires_grad_(False)
        self.params = list(self.q.parameters())
        self.greedy = self.q.numpy_greedy() if self.device.type == "cpu" else None  # numpy views of the live weights (MLP)
        self.optimizer = Adam(self.params, lr=c.learning_rate, eps=c.adam_eps)  # torch's fused Adam kernel
        self._synced = True  # the target equals the online net (a hard copy can be skipped)
        # a seed's streams are its own: exploration, replay sampling, evaluation, augmentation
        streams = [np.random.SeedSequence(s).spawn(4) for s in seeds]
        self.rngs = [np.random.default_rng(s[0]) for s in streams]  # exploration
        self.eval_rngs = [np.random.default_rng(s[2]) for s in streams]  # evaluation (act_episodes)
        if c.augment and len(obs_space.shape) != 3:
            raise ConfigError(f"augment needs image observations (stacked frames), got shape {obs_space.shape}")
        self.augment = Augment([np.random.default_rng(s[3]) for s in streams]) if c.augment else None
        # stacked frames: store each frame once and rebuild stacks at sample time
        replay_cls = FrameReplay if len(obs_space.shape) == 3 else ReplayBuffer
        self.memory_bytes = self.k * c.buffer_size * replay_cls.bytes_per_row(obs_space.shape, obs_space.dtype)
        available = available_memory()
        if available and self.memory_bytes > available:
            raise ConfigError(f"replay of {self.k} x {c.buffer_size} transitions needs {self.memory_bytes / 2**30:.1f} GiB, "
                              f"{available / 2**30:.1f} GiB available; lower buffer_size or --seed-batch")
        self.replay = replay_cls(c.buffer_size, obs_space.shape, obs_space.dtype, [s[1] for s in streams])
        self.tree = SumTree(c.buffer_size, self.k) if c.prioritized else None
        self.max_priority = np.ones(self.k)  # running max per seed, so adding a row is O(log N)
        self.epsilon = epsilon_schedule(c)
        self.steps = 0  # env steps of each seed (lockstep)
        self.episodes = np.zeros(self.k, dtype=np.int64)
        self.since_train = 0

    # -- acting ---------------------------------------------------------------------------
    def current_epsilon(self) -> np.ndarray:
        if self.cfg.epsilon_unit == "step":
            return np.full(self.k, self.epsilon(self.steps))
        return np.array([self.epsilon(int(e)) for e in self.episodes])

    def q_values(self, obs: np.ndarray, seed_index: int = 0) -> np.ndarray:
        """Q[n, A] of one seed's network for n observations."""
        x = torch.as_tensor(obs, device=self.device)[None].expand(self.k, *obs.shape)
        with torch.no_grad():
            return self.q(x)[seed_index].cpu().numpy()

    def act(self, obs: np.ndarray, *, explore: bool, active: np.ndarray | None = None) -> np.ndarray:
        """obs[K, ...] -> actions[K]. Rows where `active` is False draw no randomness (their
        action is meaningless), so a seed's stream never depends on its batch mates."""
        eps = self.current_epsilon() if explore else np.full(self.k, self.cfg.eval_epsilon)
        actions = np.zeros(self.k, dtype=np.int64)
        random = np.zeros(self.k, dtype=bool)
        for k in range(self.k) if active is None else np.flatnonzero(active):
            if self.rngs[k].random() < eps[k]:
                random[k] = True
                actions[k] = self.rngs[k].integers(self.n_actions)
        if not random.all():  # skip the forward pass when every row explores
            if self.greedy is not None:
                greedy = self.greedy(obs)
            else:
                with torch.no_grad():
                    greedy = self.q(torch.as_tensor(obs, device=self.device)[:, None]).argmax(dim=-1)[:, 0].cpu().numpy()
            actions = np.where(random, actions, greedy)
        return actions

    def act_episodes(self, obs: np.ndarray, active: np.ndarray) -> np.ndarray:
        """The evaluation policy for E episodes of each seed at once: obs[K, E, ...] and
        active[K, E] -> actions[K, E], one forward pass for every greedy row. Random draws come
        from each seed's evaluation stream and only for active rows, so evaluating changes nothing
        of a seed's training and never depends on its batch mates."""
        eps = self.cfg.eval_epsilon
        actions = np.zeros(active.shape, np.int64)
        greedy = active.copy()
        if eps > 0:
            for k in range(self.k):
                rows = np.flatnonzero(active[k])
                pick = rows[self.eval_rngs[k].random(len(rows)) < eps]
                actions[k, pick] = self.eval_rngs[k].integers(self.n_actions, size=len(pick))
                greedy[k, pick] = False
        rows = [np.flatnonzero(g) for g in greedy]
        width = max(map(len, rows))
        if width:  # each seed's greedy rows, padded to one width: [K, width, ...] in one forward pass
            index = np.stack([np.pad(r, (0, width - len(r))) for r in rows])
            x = torch.as_tensor(obs[np.arange(self.k)[:, None], index], device=self.device)
            with torch.no_grad():
                best = self.q(x).argmax(dim=-1).cpu().numpy()
            for k, r in enumerate(rows):
                actions[k, r] = best[k, : len(r)]
        return actions

    # -- learning -------------------------------------------------------------------------
    def observe(self, batch: Transitions) -> dict[str, np.ndarray]:
        """One env step of every seed; metrics are per seed ([K] arrays)."""
        c = self.cfg
        reward = batch.reward
        if c.reward_clip:
            reward = np.clip(reward, -c.reward_clip, c.reward_clip)
        seeds, rows = self.replay.add(batch.obs, batch.action, reward, batch.next_obs, batch.terminated, batch.truncated)
        if self.tree is not None:  # new rows get the max priority so each is seen at least once
            self.tree.update(seeds, rows, self.max_priority[seeds])
        before = self.steps
        self.steps += 1
        self.since_train += 1
        self.episodes += np.logical_or(batch.terminated, batch.truncated)
        # counted in env steps like SB3/the Zoo, so Zoo hyperparameters mean the same here
        if self.steps // c.target_update_interval > before // c.target_update_interval:
            self._update_target()
        metrics = {"epsilon": self.current_epsilon()}
        if self.steps >= c.learning_starts and self.since_train >= c.train_freq and self.replay.can_sample():
            steps = self.since_train if c.gradient_steps == -1 else c.gradient_steps
            self.since_train = 0
            metrics["loss"] = self._train_round(steps)
        return metrics

    def _update_target(self) -> None:
        if self.target_is_online:
            return
        target, online = list(self.q_target.parameters()), list(self.q.parameters())
        with torch.no_grad():
            if self.cfg.tau == 1.0:
                if self._synced:  # no gradient step since the last copy: it would copy the same values
                    return
                torch._foreach_copy_(target, online)
                self._synced = True
            else:
                torch._foreach_lerp_(target, online, self.cfg.tau)

    def beta(self) -> float:
        c = self.cfg
        return min(1.0, c.per_beta0 + (1.0 - c.per_beta0) * self.steps / max(1, c.per_beta_steps))

    def _train_round(self, gradient_steps: int) -> np.ndarray:
        """gradient_steps steps of all K seeds at once -> mean loss per seed [K]."""
        c = self.cfg
        if self.tree is None:
            # Uniform: the data do not change within a round, so gather every batch in one call
            rows = self.replay.sample_rows(gradient_steps * c.batch_size)
            obs, action, returns, next_obs, discount = self._batch(rows)
            # split into the steps' batches once: per-step slicing is a CartPole step's dispatch cost
            batches = zip(*(t.split(c.batch_size, dim=1) for t in (obs, action[..., None], returns, next_obs, discount)))
            losses = torch.empty(gradient_steps, self.k, device=self.device)
            for g, (obs_b, index, returns_b, next_b, discount_b) in enumerate(batches):
                target = td_target(self.q, self.q_target, next_b, returns_b, discount_b, c.double)
                losses[g], _ = self._gradient_step(obs_b, index, target, weights=None)
            return losses.mean(0).cpu().numpy()
        losses = torch.empty(gradient_steps, self.k, device=self.device)
        every = np.repeat(np.arange(self.k), c.batch_size)
        size = np.broadcast_to(np.asarray(self.replay.size), (self.k,))[:, None]
        for g in range(gradient_steps):  # prioritized: priorities change after every step
            rows = self.tree.sample(c.batch_size, self.replay.rngs)
            # frame replay: a row not ready yet is redrawn, proportionally, from its own seed
            self.replay.redraw_invalid(rows, lambda k, n: self.tree.sample_one(k, n, self.replay.rngs[k]))
            weights = importance_weights(self.tree.get(rows) / self.tree.total[:, None], size, self.beta())
            obs, action, returns, next_obs, discount = self._batch(rows)
            target = td_target(self.q, self.q_target, next_obs, returns, discount, c.double)
            losses[g], td = self._gradient_step(obs, action[..., None], target,
                                                weights=torch.as_tensor(weights, device=self.device))
            priorities = (np.abs(td) + c.per_eps) ** c.per_alpha
            self.tree.update(every, rows.ravel(), priorities.ravel())
            self.max_priority = np.maximum(self.max_priority, priorities.max(axis=1))
        return losses.mean(0).cpu().numpy()

    def _batch(self, rows: np.ndarray) -> list[torch.Tensor]:
        """The replay's transitions at rows[K, B] as tensors; with `augment`, the state and the
        next state are augmented independently (the next state the same for every path through it)."""
        obs, action, returns, next_obs, discount = (torch.as_tensor(a, device=self.device) for a in
                                                    self.replay.gather(rows, self.cfg.gamma, self.cfg.n_step))
        if self.augment is not None:
            obs, next_obs = self.augment(obs), self.augment(next_obs)
        return [obs, action, returns, next_obs, discount]

    def _gradient_step(self, obs, index, target, weights):
        """One Adam step of every seed; each seed's loss is its own, so each gets its own gradient.
        index: the actions taken, [K, B, 1].

        No autograd graph for the linear layers: the loss's derivative and SeedStackQ.mlp_backward
        run the kernels autograd would (bit-identical gradients) without its per-node bookkeeping,
        which costs ~8% of a CartPole step of 10 seeds. A conv torso backpropagates through autograd.
        """
        self._synced = False
        self.optimizer.zero_grad()
        x = self.q.trunk_input(obs)  # records a graph only through a conv torso
        with torch.no_grad():
            trace = self.q.mlp(x)
            q = trace["q"].gather(2, index).squeeze(2)  # [K, B]
            loss, grad = td_loss(q, target, weights, self.cfg.loss)
            grad_q = torch.zeros_like(trace["q"]).scatter_add_(2, index, grad[..., None])  # gather's backward
            grad_x, grads = self.q.mlp_backward(trace, grad_q, input_grad=x.requires_grad)
            for p, g in zip(self.q.linear_params, grads):
                p.grad = g
        if grad_x is not None:
            x.backward(grad_x)
        if self.cfg.max_grad_norm > 0:
            clip_grad_norm(self.params, self.cfg.max_grad_norm)
        self.optimizer.step()
        td = (target - q).cpu().numpy() if weights is not None else None
        return loss, td

    # -- checkpointing --------------------------------------------------------------------
    def policy_state(self, k: int) -> dict:
        """Seed k's greedy policy: its online network (what `play` loads into a batch of one)."""
        return {name: p[k].detach().cpu().numpy().copy() for name, p in self.q.named_parameters()}

    def load_policy_state(self, state) -> None:
        with torch.no_grad():  # in place: the numpy greedy views stay live
            for name, p in self.q.named_parameters():
                p[0].copy_(_in_layout(torch.as_tensor(np.asarray(state[name])), p[0]))

    def state_dict(self) -> dict:
        return {
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "replay": self.replay.state_dict(),
            "tree": None if self.tree is None else self.tree.tree.copy(),
            "rngs": [r.bit_generator.state for r in self.rngs],
            "eval_rngs": [r.bit_generator.state for r in self.eval_rngs],
            "augment_rngs": [r.bit_generator.state for r in self.augment.rngs] if self.augment else [],
            "counters": (self.steps, self.episodes.copy(), self.since_train, self.max_priority.copy()),
        }

    def load_state_dict(self, state) -> None:
        names = [name for name, _ in self.q.named_parameters()]
        for net in ("q", "q_target"):
            state[net] = {**state[net], **{n: _in_layout(state[net][n], p) for n, p in zip(names, self.params)}}
        for i, p in enumerate(self.params):  # Adam's moments are laid out as their parameter
            moments = state["optimizer"]["state"].get(i, {})
            for m in ("exp_avg", "exp_avg_sq"):
                if m in moments:
                    moments[m] = _in_layout(moments[m], p)
        self.q.load_state_dict(state["q"])  # in place: the numpy greedy views stay live
        self.q_target.load_state_dict(state["q_target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._synced = False  # unknown: copy at the next target update
        self.replay.load_state_dict(state["replay"])
        if self.tree is not None:
            self.tree.tree[:] = state["tree"]
        for rngs, name in ((self.rngs, "rngs"), (self.eval_rngs, "eval_rngs"),
                           (self.augment.rngs if self.augment else [], "augment_rngs")):
            for rng, s in zip(rngs, state.get(name, [])):  # older checkpoints lack the newer streams
                rng.bit_generator.state = s
        self.steps, episodes, self.since_train, max_priority = state["counters"]
        self.episodes[:], self.max_priority[:] = episodes, max_priority


def _in_layout(saved: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A weight (or its Adam moment) saved before layers with out < in were stored [.., out, in]
    (agents.networks.in_out) comes back in today's layout, so older checkpoints and policies load."""
    if saved.shape != like.shape and saved.shape == like.transpose(-1, -2).shape:
        return saved.transpose(-1, -2).contiguous()
    return saved


def td_target(q, q_target, next_obs, returns, discount, double: bool) -> torch.Tensor:
    """returns + discount * Q_target(s', a*): a* = argmax Q_target (DQN) or argmax Q (double).
    Any leading axes ([K, B] for seed batches); actions on the last. When the target is the online
    net itself (DQN.target_is_online), double's choice is the max: one forward pass."""
    with torch.no_grad():
        next_q = q_target(next_obs)
        if double and q_target is not q:  # online net picks, target net evaluates (van Hasselt et al. 2016)
            best = q(next_obs).argmax(dim=-1, keepdim=True)
            value = next_q.gather(-1, best).squeeze(-1)
        else:
            value = next_q.amax(dim=-1)
        return returns + discount * value


# the loss kernels F.smooth_l1_loss and F.mse_loss run, called as resolved overloads: their Python
# wrappers and torch.ops' overload lookup cost ~40 us a step, a tenth of a one-seed CartPole step's
# non-GEMM work
_SMOOTH_L1, _SMOOTH_L1_BACKWARD = torch.ops.aten.smooth_l1_loss.default, torch.ops.aten.smooth_l1_loss_backward.default
_MSE, _MSE_BACKWARD = torch.ops.aten.mse_loss.default, torch.ops.aten.mse_loss_backward.default
_NO_REDUCTION = 0  # at::Reduction::None


def td_loss(q, target, weights, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-seed loss mean_b(w_b * loss(q_b, target_b)) [K] and its gradient with respect to q
    [K, B], computed with the ops autograd runs for it (so bit-identical to loss.sum().backward()).
    Huber is smooth L1 with beta 1; weights (prioritized replay) may be None."""
    scale = torch.full_like(q, 1 / q.shape[1])  # the mean's backward, ones / B: the same bits (every B < 20,000 checked)
    if weights is not None:
        scale = scale * weights
    if kind == "huber":
        per_sample = _SMOOTH_L1(q, target, _NO_REDUCTION, 1.0)
        grad = _SMOOTH_L1_BACKWARD(scale, q, target, _NO_REDUCTION, 1.0)
    else:
        per_sample = _MSE(q, target, _NO_REDUCTION)
        grad = _MSE_BACKWARD(scale, q, target, _NO_REDUCTION)
    return (per_sample if weights is None else weights * per_sample).mean(dim=1), grad


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> None:
    """Scale each seed's gradients (leading axis) to an L2 norm <= max_norm over all its
    parameters: torch's clip_grad_norm_ per seed, skipping the rescale when all are in bounds."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])
    norm = torch.linalg.vector_norm(norms, dim=0)  # [K]
    if bool((norm > max_norm).any()):
        scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))


def importance_weights(probs: np.ndarray, size, beta: float) -> np.ndarray:
    """(N * P(i))^-beta, normalized by each seed's max so weights only scale updates down
    (Schaul et al.). probs[..., B], size broadcastable to it."""
    w = (size * probs) ** (-beta)
    return (w / w.max(axis=-1, keepdims=True)).astype(np.float32)


def gradient_updates(cfg: DQNConfig, budget: int) -> int:
    """Gradient steps one seed makes in `budget` env steps, as `DQN.observe` schedules them: the
    first round at step max(learning_starts, train_freq), then one every train_freq steps (exact
    from learning_starts >= 2 on; below that an image replay waits for its second frame)."""
    first = max(cfg.learning_starts, cfg.train_freq)
    if budget < first:
        return 0
    rounds = (budget - first) // cfg.train_freq + 1
    if cfg.gradient_steps == -1:  # a round takes as many steps as env steps since the last one
        return first + (rounds - 1) * cfg.train_freq
    return rounds * cfg.gradient_steps


def make(observation_space, action_space, config: DQNConfig, seeds: tuple[int, ...]) -> DQN:
    if not isinstance(action_space, spaces.Discrete):
        raise ConfigError(f"dqn needs a Discrete action space, got {action_space}")
    if not isinstance(observation_space, spaces.Box):
        raise ConfigError(
            f"dqn needs a Box observation space, got {observation_space}; "
            "for Discrete observations use tabular_q"
        )
    return DQN(observation_space, int(action_space.n), config, tuple(seeds))


PRESETS = {
    "dqn": {},
    "double_dqn": {"double": True},
    "dueling_dqn": {"dueling": True},
    "per_dqn": {"prioritized": True},
    "combined_dqn": {"double": True, "dueling": True, "prioritized": True, "n_step": 3},
    # The published 10M-step Atari configuration: RL Zoo hyperparams/dqn.yml `atari` (see
    # baselines/SOURCES.md); run it with the atari5-10m suite, which holds the 10M-step budget.
    # DrQ(eps) as google/dopamine labs/atari_100k/configs/DrQ_eps.gin sets it (JaxFullRainbowAgent:
    # dueling, double, no noisy nets, not distributional; Atari100kRainbowAgent: augmentation;
    # FullRainbowNetwork: SAME convs, linear dueling heads, Glorot init). Run it with the
    # atari100k suite, whose file lists every knob's source and the differences kept.
    "drq_eps": {"double": True, "dueling": True, "dueling_head": "linear", "conv_padding": "same", "init": "xavier",
                "augment": True, "n_step": 10, "gamma": 0.99, "batch_size": 32, "buffer_size": 100_000,
                "learning_starts": 1_600, "train_freq": 1, "gradient_steps": 1, "target_update_interval": 1, "tau": 1.0,
                "epsilon_schedule": "linear", "epsilon_unit": "step", "epsilon_start": 1.0, "epsilon_end": 0.01,
                "epsilon_warmup": 1_600, "epsilon_duration": 5_000, "eval_epsilon": 0.001, "learning_rate": 1e-4,
                "adam_eps": 1.5e-4, "loss": "huber", "max_grad_norm": 0.0, "reward_clip": 1.0, "prioritized": False},
    "dqn_zoo_atari": {"buffer_size": 100_000, "batch_size": 32, "learning_rate": 1e-4, "learning_starts": 100_000,
                      "target_update_interval": 1_000, "train_freq": 4, "gradient_steps": 1,
                      "epsilon_duration": 1_000_000, "epsilon_end": 0.01, "reward_clip": 1.0, "gamma": 0.99},
}

SPEC = AgentSpec("dqn", make, DQNConfig, PRESETS, "DQN; variants are flags, presets name combinations",
                 seed_batched=True, updates=gradient_updates)
