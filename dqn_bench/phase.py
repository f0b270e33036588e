"""Phase diagram of a trained agent over a 2-D state space: greedy action and V(s) = max_a Q(s, a)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from dqn_bench.config import RunSpec  # noqa: E402
from dqn_bench.protocol import ConfigError  # noqa: E402
from dqn_bench.runner import cpu_settings, train  # noqa: E402


def draw(spec: RunSpec, out: Path, grid: int = 101) -> dict:
    env = envs.make(spec.env_id, 0, **spec.env_kwargs)
    space = env.observation_space
    env.close()
    if len(getattr(space, "shape", ()) or ()) != 1 or space.shape[0] != 2 or not np.all(np.isfinite(space.low)):
        raise ConfigError(f"phase needs a bounded 2-D Box observation space; '{spec.env}' has {space}")
    with cpu_settings():  # trains as a stored run would
        (result,), agent = train([spec])
    if result["status"] != "ok":
        raise ConfigError(f"training {spec.agent} on {spec.env} failed: {result['error']}")
    if not hasattr(agent, "q_values"):
        raise ConfigError(f"agent '{spec.agent}' exposes no q_values(obs); phase needs action values")
    xs, ys = (np.linspace(space.low[i], space.high[i], grid) for i in range(2))
    states = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(space.dtype)
    q = np.asarray(agent.q_values(states), dtype=np.float64).reshape(grid, grid, -1)
    value, action = q.max(axis=2), q.argmax(axis=2)
    names = {"MountainCar-v0": (["push left", "no push", "push right"], "position", "velocity")}
    labels, xlabel, ylabel = names.get(spec.env_id, ([f"action {a}" for a in range(q.shape[2])], "obs[0]", "obs[1]"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    cmap = plt.get_cmap("viridis", q.shape[2])
    im = axes[0].imshow(action, origin="lower", aspect="auto", extent=extent, cmap=cmap, vmin=-0.5, vmax=q.shape[2] - 0.5)
    cbar = fig.colorbar(im, ax=axes[0], ticks=range(q.shape[2]))
    cbar.ax.set_yticklabels(labels)
    axes[0].set_title("greedy action")
    im = axes[1].imshow(value, origin="lower", aspect="auto", extent=extent, cmap="magma")
    fig.colorbar(im, ax=axes[1], label="V(s) = max_a Q(s, a)")
    axes[1].set_title("state value")
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    fig.subplots_adjust(wspace=0.35)
    fig.suptitle(f"{spec.agent} on {spec.env}, seed {spec.seed}, {spec.budget} steps: "
                 f"final evaluation {result['final_score']:.1f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return result
