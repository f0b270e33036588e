"""`play`: a stored run's final greedy network, back in its env, for a few episodes (and videos)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import envs
from dqn_bench import checkpoints, registry
from dqn_bench.config import RunSpec
from dqn_bench.protocol import ConfigError

VIDEO_INSTALL = "pip install -e .[video] -c constraints.txt"


def require_video() -> None:
    try:
        import moviepy  # noqa: F401  (gymnasium's RecordVideo writes MP4s through it)
    except ImportError:
        raise ConfigError(f"--video needs moviepy, an optional extra: {VIDEO_INSTALL}") from None


def play(spec: RunSpec, model: Path, episodes: int, video: Path | None = None) -> list[float]:
    """Returns of `episodes` episodes of the run's evaluation policy; episode i starts from
    reset(seed=eval_seed + i), as the run's own evaluations did, so a deterministic policy repeats
    its final evaluation's first returns. With eval_epsilon > 0 the random actions are fresh draws
    (the final evaluation drew them for all its episodes at once), so returns can differ."""
    saved = checkpoints.read(model)
    if video:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame draws offscreen; no display needed
    env = envs.make(spec.env_id, spec.eval_seed, evaluation=True, render_mode="rgb_array" if video else None,
                    **spec.env_kwargs)
    if video:
        from gymnasium.wrappers import RecordVideo

        env = RecordVideo(env, str(video), episode_trigger=lambda i: True, name_prefix=spec.name, disable_logger=True)
    agent = registry.make_agent(spec.agent_spec, env.observation_space, env.action_space, spec.config, [spec.seed],
                                spec.budget)
    agent.load_policy_state(saved["policy"])
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=spec.eval_seed + i)
        total, over = 0.0, False
        while not over:
            action = agent.act(np.asarray(obs)[None], explore=False)
            obs, reward, terminated, truncated, _ = env.step(int(action[0]))
            total += float(reward)
            over = terminated or truncated
        returns.append(total)
    env.close()
    return returns
