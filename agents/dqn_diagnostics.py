"""What a DQN's learning looks like from inside, per seed: the quantities that tell a bug from a
hard problem (Q scale, TD errors, gradient norms, action gaps, dead units, the dueling streams,
priorities and importance weights).

`probe` reads a uniform sample of each seed's replay with its own generator and computes
gradients with autograd.grad, so it changes nothing the agent will do next: a probed run trains
exactly as an unprobed one.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from agents.dqn import importance_weights, td_target


def probe(agent, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Scalars per seed ([K] arrays) on n replay transitions of each seed."""
    c, q_net = agent.cfg, agent.q
    rows = rng.integers(agent.replay.size, size=(agent.k, n))
    agent.replay.redraw_invalid(rows, lambda k, m: rng.integers(agent.replay.size, size=m))
    obs, action, returns, next_obs, discount = map(torch.as_tensor, agent.replay.gather(rows, c.gamma, c.n_step))
    target = td_target(q_net, agent.q_target, next_obs, returns, discount, c.double)
    q_all = q_net(obs)  # [K, n, A]
    q = q_all.gather(2, action[..., None]).squeeze(2)
    per_sample = F.smooth_l1_loss(q, target, reduction="none") if c.loss == "huber" else F.mse_loss(q, target, reduction="none")
    grads = torch.autograd.grad(per_sample.mean(dim=1).sum(), agent.params)
    grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads]), dim=0)
    with torch.no_grad():
        top2 = q_all.topk(2, dim=-1).values if q_all.shape[-1] > 1 else torch.cat([q_all, q_all], -1)
        greedy = q_all.argmax(-1).numpy()
        hidden: list[torch.Tensor] = []
        trunk = q_net.features(obs, hidden)  # once, for the dead units and the dueling streams
        counts = np.stack([np.bincount(g, minlength=agent.n_actions) for g in greedy])
        out = {
            "epsilon": agent.current_epsilon(),
            "q_mean": q_all.mean(dim=(1, 2)).numpy(),
            "q_abs_max": q_all.abs().amax(dim=(1, 2)).numpy(),
            "target_mean": target.mean(1).numpy(),
            "td_abs": (target - q).abs().mean(1).numpy(),
            "grad_norm": grad_norm.numpy(),
            "clipped": (grad_norm > c.max_grad_norm).numpy().astype(float) if c.max_grad_norm else np.zeros(agent.k),
            "action_gap": (top2[..., 0] - top2[..., 1]).mean(1).numpy(),
            "top_action_share": counts.max(1) / n,  # 1.0: one action is greedy in every state
            "dead_units": _dead_units(hidden, agent.k),
        }
        if q_net.dueling:
            value, adv = q_net.streams(trunk)
            out["value_mean"] = value.mean(dim=(1, 2)).numpy()
            out["adv_spread"] = (adv.amax(-1) - adv.amin(-1)).mean(1).numpy()
        if agent.tree is not None:
            size = np.broadcast_to(np.asarray(agent.replay.size), (agent.k,))
            priorities = agent.tree.tree[:, agent.tree.size: agent.tree.size + agent.replay.size]
            sampled = agent.tree.find(agent.tree.total[:, None] * rng.random((agent.k, c.batch_size)))
            weights = importance_weights(agent.tree.get(sampled) / agent.tree.total[:, None], size[:, None], agent.beta())
            out |= {
                "beta": np.full(agent.k, agent.beta()),
                "priority_max_over_mean": priorities.max(1) / priorities.mean(1),
                "is_weight_mean": weights.mean(1),
                "is_weight_min": weights.min(1),
            }
    return out


def _dead_units(hidden: list[torch.Tensor], k: int) -> np.ndarray:
    """Share of torso ReLU units (post-ReLU activations [K, n, width]) that are zero on every
    probed state, per seed."""
    if not hidden:
        return np.zeros(k)
    dead = torch.cat([(a <= 0).all(dim=1) for a in hidden], dim=1)  # [K, units]
    return dead.float().mean(1).numpy()
