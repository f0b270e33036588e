"""run_batch(specs): train the seeds of one configuration together, with periodic evaluation on
separate seeded envs -> one RunRecord (a dict) per seed."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import envs
from dqn_bench import checkpoints, registry, stop
from dqn_bench.config import RunSpec
from dqn_bench.files import WriteFailed
from dqn_bench.protocol import Transitions, compute_device, on_device
from dqn_bench.train_log import Ticker, TrainLog

SCHEMA = 1
TIMING_KEYS = ("wall_time_s", "cpu_time_s", "steps_per_s", "eval_cpu_s")


def _loaded_code() -> str:
    """The commit of the code this process imported, "+dirty" when tracked files outside results/
    differed from it. Read once at import: a record written hours later by a long run must name the
    code that trained it, not whatever the checkout holds by then."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout
    try:
        sha = git("rev-parse", "--short", "HEAD").strip()
        changed = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
                   if not line[3:].startswith("results/")]
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("+dirty" if changed else "")) if sha else "unknown"


_LOADED_CODE = _loaded_code()


def versions(device: str | None = None) -> dict[str, str]:
    """Package versions, the code's commit and the machine (with the GPU a run trained on)."""
    return _versions(device or compute_device())


@cache
def _versions(device: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("dqn_bench", "torch", "gymnasium", "numpy", "ale-py"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    out["git_sha"] = _LOADED_CODE
    # the vector ISA torch's kernels dispatch on: one CPU model name covers AVX2 and AVX-512 parts
    # whose GEMMs differ 2-3x, so timings are only comparable within one ISA
    out["machine"] = (f"{_cpu_model()}, {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}, "
                      f"{platform.system()} {platform.machine()}")
    if device != "cpu":  # a GPU's run: its own cost group in reports
        out["machine"] += f", {torch.cuda.get_device_name(torch.device(device))}"
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def evaluate(agent, eval_envs: list[list], make_env: Callable[[int], object], episodes: int,
             eval_seeds: list[int], alive: np.ndarray) -> list[list[float]]:
    """Full-episode returns of the evaluation policy for each seed of a batch (empty for seeds
    not alive); seed k's episode i always starts from reset(seed=eval_seeds[k] + i).

    An agent with `act_episodes` plays all of a seed's episodes at once, one env per episode
    (eval_envs[k] grows to `episodes` envs with make_env(k)) and one forward pass per step for
    all of them; others play them one after another on eval_envs[k][0]. A deterministic policy
    gives the same returns either way (tests/test_evaluation.py).
    """
    if hasattr(agent, "act_episodes"):
        return _evaluate_parallel(agent, eval_envs, make_env, episodes, eval_seeds, alive)
    return _evaluate_sequential(agent, [pool[0] for pool in eval_envs], episodes, eval_seeds, alive)


def _evaluate_parallel(agent, pools: list[list], make_env, episodes: int, eval_seeds: list[int],
                       alive: np.ndarray) -> list[list[float]]:
    for k in np.flatnonzero(alive):
        pools[k] += [make_env(int(k)) for _ in range(episodes - len(pools[k]))]
    space = pools[0][0].observation_space
    obs = np.zeros((len(pools), episodes, *space.shape), space.dtype)
    playing = np.repeat(np.asarray(alive, bool)[:, None], episodes, axis=1)
    for k, i in zip(*np.nonzero(playing)):
        obs[k, i] = pools[k][i].reset(seed=int(eval_seeds[k] + i))[0]
    total = np.zeros(playing.shape)
    while playing.any():
        actions = agent.act_episodes(obs, playing)
        for k, i in zip(*np.nonzero(playing)):
            obs[k, i], reward, terminated, truncated, _ = pools[k][i].step(int(actions[k, i]))
            total[k, i] += float(reward)
            playing[k, i] = not (terminated or truncated)
    return [[float(r) for r in total[k]] if alive[k] else [] for k in range(len(pools))]


def _evaluate_sequential(agent, eval_envs: list, episodes: int, eval_seeds: list[int],
                         alive: np.ndarray) -> list[list[float]]:
    """The K envs play side by side with one act call per step; a seed that has finished its
    episodes is inactive and draws no randomness, so its results never depend on its batch mates."""
    k_all = len(eval_envs)
    returns: list[list[float]] = [[] for _ in range(k_all)]
    playing = np.array(alive, dtype=bool)
    obs = np.zeros((k_all, *eval_envs[0].observation_space.shape), eval_envs[0].observation_space.dtype)
    for k in np.flatnonzero(playing):
        obs[k] = eval_envs[k].reset(seed=eval_seeds[k])[0]
    total = np.zeros(k_all)
    while playing.any():
        actions = _act(agent, obs, False, playing)
        for k in np.flatnonzero(playing):
            o, reward, terminated, truncated, _ = eval_envs[k].step(actions[k])
            total[k] += float(reward)
            if terminated or truncated:
                returns[k].append(float(total[k]))
                total[k] = 0.0
                if len(returns[k]) == episodes:
                    playing[k] = False
                    continue
                o = eval_envs[k].reset(seed=eval_seeds[k] + len(returns[k]))[0]
            obs[k] = o
    return returns


def _act(agent, obs: np.ndarray, explore: bool, active: np.ndarray) -> np.ndarray:
    # `active` exists only for seed-batched agents; a batch of one is always all active
    if active.all():
        return agent.act(obs, explore=explore)
    return agent.act(obs, explore=explore, active=active)


def episode_seed(seed: int, episode: int) -> int:
    """Training episode k resets with its own seed, so the env state at every episode start is a
    function of (seed, k): a checkpoint needs no env state, only the actions of the open episode."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


def _timed(f, *args):
    """f(*args) and the CPU seconds it took."""
    cpu = time.process_time()
    out = f(*args)
    return out, time.process_time() - cpu


def _new_progress() -> dict:
    return {"episodes": 0, "eval_steps": [], "eval_returns": [], "eval_cpu_s": [], "episode_returns": [],
            "episode_ends": [], "ep_return": 0.0, "actions": [], "error": None}


def _replay_open_episode(env, seed: int, p: dict) -> np.ndarray:
    """Rebuild a training env's state at a checkpoint: reset the open episode and replay its actions."""
    obs, _ = env.reset(seed=episode_seed(seed, p["episodes"]))
    for a in p["actions"]:
        obs, *_ = env.step(a)
    return np.asarray(obs)


def train(specs: list[RunSpec], checkpoint: Path | None = None, checkpoint_every: int = 0,
          tensorboard: Path | None = None, progress: Callable[..., None] | None = None,
          hook: Callable[[int, object], None] | None = None) -> tuple[list[dict], object]:
    """Train the seeds of one configuration together (a seed batch; one spec = a batch of one)
    -> (one result per spec, the trained agent). A seed whose loss turns non-finite fails alone:
    its result says why, its slot keeps stepping (every op is per seed, nothing crosses seeds)
    and the others go on. Any other exception fails the whole batch and propagates.

    With `checkpoint`, the agent and every seed's progress are saved there (atomically) every
    `checkpoint_every` steps, and an existing checkpoint is resumed (an unreadable one is moved
    aside and the batch starts over); a stop asked by a signal (dqn_bench.stop) saves it at the end
    of the current step and raises Stopped. With `tensorboard`, each seed
    logs scalars to its own folder there. `progress(n)` hears of every n env steps done (all
    seeds; a resumed checkpoint's steps as `progress(n, resumed=True)`).
    `hook(step, agent)` runs after every env step's observe (diagnostics).
    """
    stop.check()  # asked while an earlier batch of this process finished: start nothing new
    s0, k_all = specs[0], len(specs)
    seeds = [s.seed for s in specs]
    train_envs = [envs.make(s.env_id, s.seed, **s.env_kwargs) for s in specs]
    make_eval = lambda k: envs.make(specs[k].env_id, specs[k].eval_seed, evaluation=True, **specs[k].env_kwargs)  # noqa: E731
    eval_envs = [[make_eval(k)] for k in range(k_all)]  # per seed; parallel evaluation adds more
    eval_seeds = [s.eval_seed for s in specs]
    space = train_envs[0].observation_space
    agent = registry.make_agent(s0.agent_spec, space, train_envs[0].action_space, s0.config, seeds, s0.budget)
    obs = np.zeros((k_all, *space.shape), space.dtype)
    clock, spent = (time.perf_counter(), time.process_time()), (0.0, 0.0)
    state = checkpoints.load(checkpoint, agent) if checkpoint is not None and checkpoint.exists() else None
    if state is not None:
        step0, prog = state["step"], state["seeds"]
        spent = tuple(state.get("spent", spent))  # wall and CPU seconds before the interruption
        for k, (env, p) in enumerate(zip(train_envs, prog)):
            obs[k] = _replay_open_episode(env, seeds[k], p)
            if not np.array_equal(obs[k], p["obs"]):
                raise RuntimeError(f"checkpoint {checkpoint} does not replay to its saved state (seed {seeds[k]})")
    else:
        step0, prog = 0, [_new_progress() for _ in specs]
        for k, env in enumerate(train_envs):
            obs[k] = env.reset(seed=episode_seed(seeds[k], 0))[0]
        played, cpu = _timed(evaluate, agent, eval_envs, make_eval, s0.eval_episodes, eval_seeds, np.ones(k_all, bool))
        for p, returns in zip(prog, played):
            p["eval_steps"].append(0)
            p["eval_returns"].append(returns)
            p["eval_cpu_s"].append(cpu)
    alive = np.array([p["error"] is None for p in prog])
    next_checkpoint = step0 + checkpoint_every
    log = TrainLog(specs, tensorboard, step0) if tensorboard else None
    if log and step0 == 0:
        log.evaluation(0, prog, alive)
    ticker = Ticker(progress, k_all, step0)
    for step in range(step0 + 1, s0.budget + 1):
        action = agent.act(obs, explore=True)
        next_obs = np.empty_like(obs)
        reward = np.zeros(k_all, np.float32)
        terminated, truncated, life_lost = np.zeros(k_all, bool), np.zeros(k_all, bool), np.zeros(k_all, bool)
        for k, env in enumerate(train_envs):
            next_obs[k], reward[k], terminated[k], truncated[k], info = env.step(action[k])
            life_lost[k] = info.get("life_lost", False)
        # next_obs holds the real final observations: envs are reset only below. A lost life is a
        # terminal for learning only (envs.LifeLoss); the game, its episode and its score go on.
        metrics = agent.observe(Transitions(obs, action, reward, next_obs, terminated | life_lost, truncated))
        loss = metrics.get("loss")
        if loss is not None:
            loss = np.broadcast_to(np.asarray(loss, dtype=np.float64), (k_all,))
            for k in np.flatnonzero(alive & ~np.isfinite(loss)):
                prog[k]["error"] = f"FloatingPointError: non-finite loss {loss[k]} at step {step}"
                alive[k] = False
            if not alive.any():
                break
        obs = next_obs
        for k, p in enumerate(prog):
            p["ep_return"] += float(reward[k])
            p["actions"].append(int(action[k]))
            if terminated[k] or truncated[k]:
                p["episode_returns"].append(p["ep_return"])
                p["episode_ends"].append(step)
                p["episodes"] += 1
                p["ep_return"], p["actions"] = 0.0, []
                obs[k] = train_envs[k].reset(seed=episode_seed(seeds[k], p["episodes"]))[0]
        if log:
            log.step(step, metrics, prog, terminated | truncated)
        if hook:
            hook(step, agent)
        if step % s0.eval_every == 0 or step == s0.budget:
            episodes = (s0.final_eval_episodes or s0.eval_episodes) if step == s0.budget else s0.eval_episodes
            played, cpu = _timed(evaluate, agent, eval_envs, make_eval, episodes, eval_seeds, alive)
            for k, returns in enumerate(played):
                if alive[k]:
                    prog[k]["eval_steps"].append(step)
                    prog[k]["eval_returns"].append(returns)
                    prog[k].setdefault("eval_cpu_s", []).append(cpu)
            if log:
                log.evaluation(step, prog, alive)
        ticker.tick(step)
        if checkpoint is not None and checkpoint_every and (step >= next_checkpoint or stop.asked()) and step < s0.budget:
            for k, p in enumerate(prog):
                p["obs"] = obs[k].copy()
            now = (spent[0] + time.perf_counter() - clock[0], spent[1] + time.process_time() - clock[1])
            checkpoints.save(checkpoint, agent, {"step": step, "seeds": prog, "spent": now})
            next_checkpoint = step + checkpoint_every
            if stop.asked():
                print(f"{s0.agent} on {s0.env_id}, seed(s) {', '.join(map(str, seeds))}: stopped at step {step:,} "
                      f"of {s0.budget:,}, checkpoint saved; rerun the same command to resume", file=sys.stderr, flush=True)
                stop.check()
    ticker.tick(s0.budget, force=True)
    if log:
        log.close()
    for env in train_envs + [env for pool in eval_envs for env in pool]:
        env.close()
    results = []
    for p in prog:
        if p["error"] is not None:
            results.append(_failed(p["error"]) | {"spent_before_s": spent})
            continue
        results.append({
            "status": "ok", "error": None,
            "eval": {"steps": p["eval_steps"], "returns": p["eval_returns"]},
            # each evaluation's CPU seconds, the whole batch's (its seeds play together); left out
            # for a run resumed from a checkpoint that predates them
            **({"eval_cpu_s": [round(t, 3) for t in p["eval_cpu_s"]]}
               if len(p.get("eval_cpu_s", ())) == len(p["eval_steps"]) else {}),
            "train": {"episode_returns": p["episode_returns"], "episode_end_steps": p["episode_ends"]},
            "final_score": float(np.mean(p["eval_returns"][-1])),
            # an agent wrapping another library names its version (e.g. sb3_dqn: stable-baselines3);
            # the GPU only for an agent that trained on it (agents without a network ignore --device)
            "versions": {**versions(str(getattr(agent, "device", "cpu"))), **getattr(agent, "versions", {})},
            "spent_before_s": spent,  # a resumed run's cost includes its time before the checkpoint
        })
    return results, agent


@contextmanager
def cpu_settings(threads: int = 1):
    """How a batch trains: `threads` torch threads (default one: parallelism comes from batches
    side by side) and denormals flushed (tiny Adam moments turn denormal and slow CPU math ~2x);
    process-wide, so restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(before)


def run_batch(specs: list[RunSpec], checkpoint: Path | None = None, checkpoint_every: int = 0,
              tensorboard: Path | None = None, policies: bool = False,
              progress: Callable[..., None] | None = None, threads: int = 1, device: str = "cpu") -> list[dict]:
    """One record per spec; never raises for a failure inside the runs: it comes back as status
    'failed'. A failed write (files.WriteFailed: a full disk) is no failure of the runs: it
    propagates, and the last checkpoint stays for the rerun. The checkpoint is the caller's to
    remove once the records are stored (executors do). With `policies`, each ok record carries its seed's final greedy policy under "policy" (the
    store saves it beside the record) when the agent exports one."""
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        with cpu_settings(threads), on_device(device), stop.busy(), stop.saving(checkpoint is not None and checkpoint_every > 0):
            results, agent = train(specs, checkpoint, checkpoint_every, tensorboard, progress)
        if policies and hasattr(agent, "policy_state"):
            for k, result in enumerate(results):
                if result["status"] == "ok":
                    result["policy"] = agent.policy_state(k)
    except WriteFailed:
        raise
    except Exception as e:  # noqa: BLE001 - any failure is data, the suite goes on
        tb = traceback.extract_tb(e.__traceback__)[-1]
        error = f"{type(e).__name__}: {e} ({Path(tb.filename).name}:{tb.lineno})"
        results = [_failed(error)] * len(specs)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    before = results[0].get("spent_before_s", (0.0, 0.0))  # the same for every seed of the batch
    for result in results:
        result.pop("spent_before_s", None)
    return _records(specs, results, wall + before[0], cpu + before[1], threads, device)


def _records(specs: list[RunSpec], results: list[dict], wall: float, cpu: float, threads: int = 1,
             device: str = "cpu") -> list[dict]:
    # the batch's process time: K records of one batch share it (reports divide by seed_batch).
    # cpu_time_s is what the batch cost in core-seconds (all its threads) whatever else shared the
    # machine; threads: more than one sums in another order, so the same run rounds differently.
    return [{"schema": SCHEMA, "key": spec.key, "spec": spec.to_json(), "versions": versions(device), **result,
             "wall_time_s": round(wall, 3), "cpu_time_s": round(cpu, 3),
             "steps_per_s": round(spec.budget / max(wall, 1e-9), 1), "seed_batch": len(specs),
             "threads": threads}
            for spec, result in zip(specs, results)]


def failed_records(specs: list[RunSpec], error: str) -> list[dict]:
    """Records for a batch that died outside run_batch (e.g. its worker process, for good)."""
    return _records(specs, [_failed(error)] * len(specs), 0.0, 0.0)


def _failed(error: str) -> dict:
    return {"status": "failed", "error": error, "eval": None, "train": None, "final_score": None}


def run_one(spec: RunSpec, checkpoint: Path | None = None, checkpoint_every: int = 0) -> dict:
    """A batch of one, its checkpoint removed once its record is back."""
    record = run_batch([spec], checkpoint, checkpoint_every)[0]
    if checkpoint is not None:
        checkpoints.remove(checkpoint)
    return record
