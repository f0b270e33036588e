"""The Python API for notebooks: what the CLI does, as functions, plus the store as pandas frames.

`run` and `report` build the CLI's own arguments and call the CLI's own commands, so they do
exactly what `python -m dqn_bench run/report` does and raise its errors (ConfigError for bad
input) instead of exiting. `load_runs` / `load_curves` read any results folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

import baselines
from dqn_bench import cli
from dqn_bench.config import load_suite
from dqn_bench.protocol import ConfigError
from dqn_bench.reporting import SOLVED_EPISODES
from dqn_bench.store import Store

RUN_COLUMNS = ["suite", "agent", "env", "seed", "key", "status", "error", "final_score", "normalized", "solved",
               "final_episodes", "budget", "eval_every", "eval_episodes", "final_eval_episodes", "env_id",
               "core_s", "wall_time_s", "seed_batch", "machine", "git_sha"]


def _root(source: str | Path, out: str | Path) -> Path:
    """A suite name (-> OUT/<suite>), a suite or sweep folder, or its runs/ folder."""
    path = Path(source)
    if path.name == "runs" and path.is_dir():
        path = path.parent
    if (path / "runs").is_dir():
        return path
    if not path.is_absolute() and len(path.parts) == 1 and (Path(out) / path / "runs").is_dir():
        return Path(out) / path
    raise ConfigError(f"no records at '{source}': give a suite name with records under {out}/ "
                      f"or a folder holding runs/")


def _reference(env_id: str, env_kwargs: dict) -> baselines.Reference | None:
    try:
        return baselines.reference(env_id, env_kwargs)
    except baselines.NoReference:
        return None


def load_runs(source: str | Path = "classic", *, out: str | Path = "results") -> pd.DataFrame:
    """One row per stored run of a suite (e.g. "classic") or folder: suite, agent, env, seed, key,
    status, error, final score, normalized score (NaN without reference scores), solved (a 100-episode
    final evaluation at or above the reward threshold; NA where that does not apply), budget and
    evaluation protocol, core-seconds (a seed batch's CPU time shared by its seeds), machine, git sha,
    then every config field of the run's agent as its own column."""
    root = _root(source, out)
    rows = []
    for r in Store(root).records():
        s = r["spec"]
        ref = _reference(s["env_id"], s["env_kwargs"])
        ok = r["status"] == "ok"
        final_episodes = len(r["eval"]["returns"][-1]) if ok else 0
        score = r["final_score"] if ok else np.nan
        solvable = ok and ref is not None and ref.reference_name == "threshold" and final_episodes >= SOLVED_EPISODES
        rows.append({
            "suite": root.name, "agent": s["agent"], "env": s["env"], "seed": s["seed"], "key": r["key"],
            "status": r["status"], "error": r["error"], "final_score": score,
            "normalized": ref.normalize(score) if ref is not None else np.nan,
            "solved": bool(score >= ref.reference) if solvable else pd.NA,
            "final_episodes": final_episodes, "budget": s["budget"], "eval_every": s["eval_every"],
            "eval_episodes": s["eval_episodes"], "final_eval_episodes": s.get("final_eval_episodes") or s["eval_episodes"],
            "env_id": s["env_id"], "core_s": r.get("cpu_time_s", r["wall_time_s"]) / r.get("seed_batch", 1),
            "wall_time_s": r["wall_time_s"], "seed_batch": r.get("seed_batch", 1),
            "machine": r["versions"].get("machine", "unknown"), "git_sha": r["versions"].get("git_sha", "unknown"),
            **{k: v for k, v in s["config"].items() if k not in RUN_COLUMNS},
        })
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    return df.sort_values(["env", "agent", "seed"], kind="stable").reset_index(drop=True)


def load_curves(source: str | Path = "classic", *, out: str | Path = "results") -> pd.DataFrame:
    """One row per evaluation point of every ok run: suite, agent, env, seed, key, step, fraction
    of the budget, mean return over its episodes, their number, and the mean normalized."""
    root = _root(source, out)
    rows = []
    for r in Store(root).records():
        if r["status"] != "ok":
            continue
        s = r["spec"]
        ref = _reference(s["env_id"], s["env_kwargs"])
        for step, returns in zip(r["eval"]["steps"], r["eval"]["returns"]):
            mean = float(np.mean(returns))
            rows.append({"suite": root.name, "agent": s["agent"], "env": s["env"], "seed": s["seed"], "key": r["key"],
                         "step": step, "fraction": step / s["budget"], "mean_return": mean, "episodes": len(returns),
                         "normalized": ref.normalize(mean) if ref is not None else np.nan})
    columns = ["suite", "agent", "env", "seed", "key", "step", "fraction", "mean_return", "episodes", "normalized"]
    return pd.DataFrame(rows, columns=columns).sort_values(["env", "agent", "seed", "step"], kind="stable") \
        .reset_index(drop=True)


def _set_value(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def run(suite: str, agents: Sequence[str] | None = None, envs: Sequence[str] | None = None,
        seeds: int | None = None, *, first_seed: int = 0, out: str | Path = "results", workers: int | None = None,
        seed_batch: int | None = None, threads: int = 1, device: str = "cpu", checkpoint_every: int | None = None,
        executor: str = "local", ray_address: str | None = None, env_packages: Sequence[str] = (),
        retry_failed: bool = False,
        **overrides: Any) -> pd.DataFrame:
    """`python -m dqn_bench run`: train what the store lacks of the suite's (or the given) agents x
    envs x seeds, with config or budget/eval overrides as keywords (learning_rate=1e-3,
    budget=5000), and return load_runs of exactly those runs. Bad input raises ConfigError before
    anything runs; runs that fail are rows with status 'failed'. Interrupting it (a notebook's
    interrupt is Ctrl-C) lets checkpointing runs save their step first, as the CLI does."""
    argv = ["run", "--suite", str(suite), "--out", str(out), "--first-seed", str(first_seed), "--executor", executor]
    args = cli.build_parser().parse_args(argv)
    args.agents, args.envs, args.seeds = list(agents or []) or None, list(envs or []) or None, seeds
    args.workers, args.seed_batch, args.threads, args.checkpoint_every = workers, seed_batch, threads, checkpoint_every
    args.ray_address, args.env_package, args.retry_failed, args.device = ray_address, list(env_packages), retry_failed, device
    args.set = [f"{k}={_set_value(v)}" for k, v in overrides.items()]
    loaded, specs = cli.planned(args)
    cli.execute(specs, Store(Path(out) / loaded["name"]), loaded, args)
    runs = load_runs(Path(out) / loaded["name"])
    return runs[runs["key"].isin({s.key for s in specs})].reset_index(drop=True)


def report(suite: str, *, out: str | Path = "results", reps: int = 2000, allow_ragged: bool = False) -> Path:
    """`python -m dqn_bench report`: write the suite's tables and plots; returns its README.md."""
    args = cli.build_parser().parse_args(["report", "--suite", str(suite), "--out", str(out), "--reps", str(reps)]
                                         + (["--allow-ragged"] if allow_ragged else []))
    cli.cmd_report(args)
    return Path(out) / load_suite(suite)["name"] / "README.md"
