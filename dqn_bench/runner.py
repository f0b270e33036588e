"""run_one(spec): train with periodic evaluation on a separate seeded env -> RunRecord (a dict)."""
from __future__ import annotations

import math
import os
import platform
import subprocess
import time
import traceback
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

import envs
from dqn_bench import checkpoints, registry
from dqn_bench.config import RunSpec
from dqn_bench.protocol import Transitions

SCHEMA = 1
TIMING_KEYS = ("wall_time_s", "steps_per_s")


@cache
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("dqn_bench", "torch", "gymnasium", "numpy", "ale-py"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    out["git_sha"] = sha or "unknown"
    out["machine"] = f"{_cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def evaluate(agent, env, episodes: int, seed: int) -> list[float]:
    """Full-episode returns of the evaluation policy; episode i always starts from seed + i."""
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            action = agent.act(np.asarray(obs)[None], explore=False)[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def episode_seed(seed: int, episode: int) -> int:
    """Training episode k resets with its own seed, so the env state at every episode boundary is a
    function of (seed, k): a checkpoint taken there needs no env state to resume exactly."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


def train(spec: RunSpec, checkpoint: Path | None = None, checkpoint_every: int = 0) -> tuple[dict, object]:
    """The training loop proper -> (result, trained agent); raises on any failure.

    With `checkpoint`, the agent and the loop's progress are saved there (atomically) at the first
    episode end after every `checkpoint_every` steps, and an existing checkpoint is resumed.
    """
    env = envs.make(spec.env_id, spec.seed, **spec.env_kwargs)
    eval_env = envs.make(spec.env_id, spec.eval_seed, evaluation=True, **spec.env_kwargs)
    agent = registry.make_agent(spec.agent_spec, env.observation_space, env.action_space, spec.config, spec.seed)
    progress = {"step": 0, "episodes": 0, "eval_steps": [], "eval_returns": [],
                "episode_returns": [], "episode_ends": []}
    if checkpoint is not None and checkpoint.exists():
        progress = checkpoints.load(checkpoint, agent)
    else:
        progress["eval_steps"].append(0)
        progress["eval_returns"].append(evaluate(agent, eval_env, spec.eval_episodes, spec.eval_seed))
    p = progress
    next_checkpoint = p["step"] + checkpoint_every
    obs, _ = env.reset(seed=episode_seed(spec.seed, p["episodes"]))
    ep_return = 0.0
    for step in range(p["step"] + 1, spec.budget + 1):
        obs_n = np.asarray(obs)[None]  # batch axis of 1 (Discrete observations are ints)
        action = agent.act(obs_n, explore=True)
        next_obs, reward, terminated, truncated, _ = env.step(action[0])
        # next_obs is the real final observation here: the env is reset only below
        metrics = agent.observe(
            Transitions(obs_n, action, np.array([reward], np.float32), np.asarray(next_obs)[None],
                        np.array([terminated]), np.array([truncated]))
        )
        loss = metrics.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss} at step {step}")
        ep_return += float(reward)
        if step % spec.eval_every == 0 or step == spec.budget:
            p["eval_steps"].append(step)
            p["eval_returns"].append(evaluate(agent, eval_env, spec.eval_episodes, spec.eval_seed))
        if terminated or truncated:
            p["episode_returns"].append(ep_return)
            p["episode_ends"].append(step)
            p["episodes"] += 1
            ep_return = 0.0
            obs, _ = env.reset(seed=episode_seed(spec.seed, p["episodes"]))
            if checkpoint is not None and checkpoint_every and step >= next_checkpoint and step < spec.budget:
                p["step"] = step
                checkpoints.save(checkpoint, agent, p)
                next_checkpoint = step + checkpoint_every
        else:
            obs = next_obs
    env.close()
    eval_env.close()
    result = {
        "eval": {"steps": p["eval_steps"], "returns": p["eval_returns"]},
        "train": {"episode_returns": p["episode_returns"], "episode_end_steps": p["episode_ends"]},
        "final_score": float(np.mean(p["eval_returns"][-1])),
    }
    return result, agent


def run_one(spec: RunSpec, checkpoint: Path | None = None, checkpoint_every: int = 0) -> dict:
    """Never raises for a failure inside the run: it comes back as status 'failed'.
    The checkpoint, if any, is removed once the run is over (the record replaces it)."""
    torch.set_num_threads(1)  # one core per run; parallelism comes from running runs side by side
    torch.set_flush_denormal(True)  # tiny Adam moments turn denormal and slow CPU math ~2x
    start = time.perf_counter()
    record = {"schema": SCHEMA, "key": spec.key, "spec": spec.to_json(), "versions": versions()}
    try:
        result, _ = train(spec, checkpoint, checkpoint_every)
        record |= {"status": "ok", "error": None, **result}
    except Exception as e:  # noqa: BLE001 - any failure is data, the suite goes on
        tb = traceback.extract_tb(e.__traceback__)[-1]
        record |= {
            "status": "failed",
            "error": f"{type(e).__name__}: {e} ({Path(tb.filename).name}:{tb.lineno})",
            "eval": None, "train": None, "final_score": None,
        }
    finally:
        torch.set_flush_denormal(False)  # process-wide state: leave it as it was found
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    wall = time.perf_counter() - start
    record |= {"wall_time_s": round(wall, 3), "steps_per_s": round(spec.budget / wall, 1)}
    return record
