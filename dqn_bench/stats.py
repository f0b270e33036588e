"""Records -> normalized (runs x tasks [x evals]) arrays -> rliable estimates.

Shape suffixes: R runs (seeds), T tasks (envs), E evaluation points.
"""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from rliable import library, metrics
from scipy.stats import trim_mean

import baselines
from dqn_bench import registry
from dqn_bench.protocol import ConfigError

# The aggregate metrics in report order; rliable's own functions, so our numbers are rliable's.
AGGREGATES = {"Median": metrics.aggregate_median, "IQM": metrics.aggregate_iqm,
              "Mean": metrics.aggregate_mean, "Optimality Gap": metrics.aggregate_optimality_gap}
METRICS = tuple(AGGREGATES)

# rliable 1.2 passes a RandomState to arch's bootstrap, which arch now warns about; same numbers.
warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)


def tidy(records: Sequence[Mapping]) -> pd.DataFrame:
    """One row per ok run: agent, env, env_id, env_kwargs, seed, final score and its episodes,
    core-seconds (the whole run, and of its evaluations; NaN where the record has no timing of them),
    wall seconds, gradient updates (NaN where the agent counts none), the machine, eval steps/means."""
    rows = []
    for r in records:
        if r["status"] != "ok":
            continue
        s = r["spec"]
        updates = registry.gradient_updates(s["agent_spec"], s["config"], s["budget"])
        evals = np.asarray(r.get("eval_cpu_s", [np.nan]), float) / r.get("seed_batch", 1)
        rows.append({
            "agent": s["agent"], "env": s["env"], "env_id": s["env_id"], "env_kwargs": s["env_kwargs"],
            "seed": s["seed"], "budget": s["budget"], "final_score": r["final_score"],
            "final_episodes": len(r["eval"]["returns"][-1]),
            # a seed batch of K runs that took T core-seconds in one process costs T / K per run
            # (CPU time where recorded: it holds whatever else shared the machine; else wall time)
            "core_s": r.get("cpu_time_s", r["wall_time_s"]) / r.get("seed_batch", 1),
            "eval_core_s": evals.sum(), "final_eval_core_s": evals[-1], "wall_s": r["wall_time_s"],
            "updates": np.nan if updates is None else updates,
            "machine": r.get("versions", {}).get("machine", "unknown"),
            "eval_steps": tuple(r["eval"]["steps"]),
            "eval_means": tuple(float(np.mean(x)) for x in r["eval"]["returns"]),
        })
    df = pd.DataFrame(rows, columns=["agent", "env", "env_id", "env_kwargs", "seed", "budget", "final_score",
                                     "final_episodes", "core_s", "eval_core_s", "final_eval_core_s", "wall_s",
                                     "updates", "machine", "eval_steps", "eval_means"])
    return df.sort_values(["env", "agent", "seed"], kind="stable").reset_index(drop=True)


def listed(cells: Sequence[str], n: int = 8) -> str:
    """The first n cells, comma-separated, and how many more."""
    return ", ".join(cells[:n]) + (f" and {len(cells) - n} more" if len(cells) > n else "")


def check_grid(df: pd.DataFrame, allow_ragged: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Each agent needs the same seeds on every env; otherwise name what is missing. Agents may
    differ in their number of seeds: rliable bootstraps each agent's runs on their own.

    -> (the runs of the seeds their agent has on every env, the missing "agent/env/seed N" cells).
    A ragged grid (a suite whose runs are still landing) is an error unless allow_ragged; then
    an agent with no seed on every env is simply absent from the first.
    """
    if df.empty:
        raise ConfigError("no finished runs to report")
    dup = df[df.duplicated(["agent", "env", "seed"], keep=False)]
    if not dup.empty:
        cells = sorted({f"{r.agent}/{r.env}/seed {r.seed}" for r in dup.itertuples()})
        raise ConfigError(f"several records for {', '.join(cells[:5])}{' ...' if len(cells) > 5 else ''} "
                          "(runs of an older config?); keep one record per agent x env x seed in runs/")
    envs = sorted(df["env"].unique())
    cells = df.groupby(["agent", "env"])["seed"].apply(set)
    missing, common = [], {}
    for agent in sorted(df["agent"].unique()):
        have = [cells.get((agent, e), set()) for e in envs]
        common[agent] = set.intersection(*have)
        missing += [f"{agent}/{e}/seed {s}" for e, seeds in zip(envs, have) for s in sorted(set.union(*have) - seeds)]
    if missing and not allow_ragged:
        raise ConfigError(f"ragged grid: missing runs {listed(missing)}; run them, or pass --allow-ragged "
                          "to report every run per env and only the seeds each agent has on every env in the aggregates")
    return df[[seed in common[agent] for agent, seed in zip(df["agent"], df["seed"])]], missing


def reference_for(df: pd.DataFrame, required: bool = True) -> dict[str, baselines.Reference]:
    """env -> its reference scores. An env without any (a user's own env) is a ConfigError when
    `required`, else left out: the report shows its raw scores outside the normalized aggregates."""
    refs = {}
    for env, row in df.drop_duplicates("env").set_index("env").iterrows():
        try:
            refs[env] = baselines.reference(row.env_id, row.env_kwargs)
        except baselines.NoReference as e:
            if required:
                raise ConfigError(str(e)) from None
    return refs


def normalized_scores(df: pd.DataFrame, refs: Mapping[str, baselines.Reference]) -> dict[str, np.ndarray]:
    """agent -> scores_RT, normalized per env, tasks in sorted env order."""
    envs = sorted(df["env"].unique())
    out = {}
    for agent, g in df.groupby("agent"):
        table = g.pivot(index="seed", columns="env", values="final_score")[envs]
        out[agent] = np.stack([refs[e].normalize(table[e].to_numpy(float)) for e in envs], axis=1)
    return out


def normalized_curves(df: pd.DataFrame, refs: Mapping[str, baselines.Reference]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Evaluation points as fractions of each env's budget (0..1) and agent -> curves_RTE."""
    envs = sorted(df["env"].unique())
    lengths = {len(s) for s in df["eval_steps"]}
    if len(lengths) != 1:
        raise ConfigError("evaluation curves differ in length across runs; give every env the same number of eval points")
    (n,) = lengths
    fractions = np.linspace(0, 1, n)
    out = {}
    for agent, g in df.groupby("agent"):
        per_env = []
        for e in envs:
            rows = g[g["env"] == e].sort_values("seed")
            per_env.append(refs[e].normalize(np.array(rows["eval_means"].tolist(), float)))
        out[agent] = np.stack(per_env, axis=1)
    return fractions, out


def all_aggregates(x_RT: np.ndarray) -> np.ndarray:
    """The four METRICS of one (runs x tasks) array; called once per bootstrap replication."""
    return np.array([fn(x_RT) for fn in AGGREGATES.values()])


def intervals(score_dict, func, reps: int, seed: int = 0):
    """rliable's get_interval_estimates, reproducible: its StratifiedBootstrap draws from numpy's
    global RNG (ignoring random_state), so seed that too, and restore it afterwards."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        return library.get_interval_estimates(score_dict, func, reps=reps, random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(saved)


def aggregate_intervals(scores: Mapping[str, np.ndarray], reps: int, seed: int = 0):
    """Point estimates and stratified-bootstrap 95% CIs of the four aggregate metrics per agent."""
    return intervals(scores, all_aggregates, reps, seed)


def probability_of_improvement(x_RT: np.ndarray, y_RT: np.ndarray) -> float:
    """rliable's P(X > Y): per task the Mann-Whitney U / (n m), i.e. the share of run pairs with
    x > y (ties count half), averaged over tasks. Vectorized: rliable's scipy call per task
    dominated a 2000-rep report; tests pin it to rliable's value."""
    greater = (x_RT[:, None, :] > y_RT[None, :, :]).mean(axis=(0, 1))
    ties = (x_RT[:, None, :] == y_RT[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(greater + 0.5 * ties))


def improvement_over(scores: Mapping[str, np.ndarray], base: str, reps: int, seed: int = 0):
    """P(agent > base) per agent with stratified-bootstrap 95% CIs (rliable)."""
    pairs = {f"{a},{base}": (scores[a], scores[base]) for a in sorted(scores) if a != base}
    if not pairs:
        return {}, {}
    return intervals(pairs, probability_of_improvement, reps, seed)


def iqm_per_eval(x_RTE: np.ndarray) -> np.ndarray:
    """rliable's aggregate_iqm (25% trimmed mean over runs x tasks) at every evaluation point at once."""
    return trim_mean(x_RTE.reshape(-1, x_RTE.shape[-1]), proportiontocut=0.25, axis=0)


def iqm_curves(curves: Mapping[str, np.ndarray], reps: int, seed: int = 0):
    """IQM across runs and tasks at every evaluation point, with CIs."""
    return intervals(curves, iqm_per_eval, reps, seed)


def performance_profiles(scores: Mapping[str, np.ndarray], taus: np.ndarray, reps: int, seed: int = 0):
    """Run-score distributions (fraction of runs above tau) with CIs. rliable's
    create_performance_profile takes no random_state, so call its pieces with ours."""
    func = lambda x: library.score_distributions(x, taus)  # noqa: E731
    return intervals(scores, func, reps, seed)
