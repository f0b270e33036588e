"""`sweep`: a cartesian grid of config values, each point a normal set of stored runs, ranked by
the IQM of normalized final scores with the probability of improvement over the suite's default."""
from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rliable import metrics  # noqa: E402

from dqn_bench import config as cfg  # noqa: E402
from dqn_bench import stats  # noqa: E402
from dqn_bench.protocol import ConfigError  # noqa: E402
from dqn_bench.reporting import _ci, _png  # noqa: E402
from dqn_bench.files import atomic_write_text  # noqa: E402
from dqn_bench.store import Store  # noqa: E402

DEFAULT = "default"


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """["buffer_size=1000,10000", ...] -> {"buffer_size": ["1000", "10000"], ...}."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",")]
        if not sep or not key or not all(vals):
            raise ConfigError(f"bad --grid '{item}'; expected key=v1,v2[,...], e.g. --grid buffer_size=1000,10000")
        if key in grid:
            raise ConfigError(f"--grid key '{key}' given twice; give all its values in one --grid")
        if len(set(vals)) != len(vals):
            raise ConfigError(f"--grid {key} repeats a value: {values}")
        grid[key] = vals
    return grid


def folder_name(suite: str, agents: Sequence[str], env_labels: Sequence[str], grid: Mapping) -> str:
    safe = lambda text: re.sub(r"[^A-Za-z0-9._-]+", "_", text)  # noqa: E731
    return "__".join(safe(x) for x in (suite, "-".join(agents), "-".join(env_labels), "-".join(grid)))


Points = dict[str, tuple[dict[str, str], list[str]]]  # label -> (grid values, run keys)


def plan(suite: Mapping, agents, env_labels, seeds, sets: Mapping[str, str], grid: Mapping[str, list[str]],
         first_seed: int = 0) -> tuple[list[cfg.RunSpec], Points]:
    """The runs of the default point (the suite's values with `sets`) and of every grid point, and
    which runs make each point. A run shared by two points (a grid value equal to the suite's on
    some env) is planned and run once."""
    specs = {s.key: s for s in cfg.plan(suite, agents, env_labels, seeds, sets, first_seed)}
    points: Points = {DEFAULT: ({}, list(specs))}
    for values in itertools.product(*grid.values()):
        assignment = dict(zip(grid, values))
        runs = cfg.plan(suite, agents, env_labels, seeds, {**sets, **assignment}, first_seed)
        specs.update((s.key, s) for s in runs)
        points[", ".join(f"{k}={v}" for k, v in assignment.items())] = (assignment, [s.key for s in runs])
    return list(specs.values()), points


def save_definition(root: Path, grid: Mapping[str, list[str]], points: Points) -> None:
    atomic_write_text(root / "sweep.json", json.dumps({"grid": grid, "points": points}, indent=1) + "\n")


def load_definition(root: Path) -> tuple[dict[str, list[str]], Points]:
    data = json.loads((root / "sweep.json").read_text())
    return data["grid"], {label: (values, keys) for label, (values, keys) in data["points"].items()}


def frame(records: Sequence[Mapping], points: Points) -> pd.DataFrame:
    """One row per (point, ok run): agent, point, its grid values, env, seed, final score."""
    by_key = {r["key"]: r for r in records if r["status"] == "ok"}
    rows = []
    for label, (assignment, keys) in points.items():
        for key in keys:
            if key in by_key:
                s = by_key[key]["spec"]
                rows.append({"agent": s["agent"], "point": label, **{f"value:{k}": v for k, v in assignment.items()},
                             "env": s["env"], "env_id": s["env_id"], "env_kwargs": s["env_kwargs"], "seed": s["seed"],
                             "final_score": by_key[key]["final_score"]})
    if not rows:
        raise ConfigError("no finished runs in this sweep yet")
    return pd.DataFrame(rows)


def _matrix(rows: pd.DataFrame, refs, envs: list[str]) -> np.ndarray:
    """Normalized scores, runs x envs; a run is one (point, seed) with a score on every env."""
    table = rows.pivot_table(index=["point", "seed"], columns="env", values="final_score").dropna()[envs]
    return np.stack([refs[e].normalize(table[e].to_numpy(float)) for e in envs], axis=1)


def build(root: Path, grid: Mapping[str, list[str]], points: Points, reps: int = 2000) -> dict[str, bytes]:
    """README.md, points.csv and iqm_by_value.png of a sweep folder, from its records."""
    records = [r for r in Store(root).records() if any(r["key"] in keys for _, keys in points.values())]
    df = frame(records, points)
    refs = stats.reference_for(df)
    envs = sorted(df["env"].unique())
    scores = {f"{a} | {p}": _matrix(g, refs, envs) for (a, p), g in df.groupby(["agent", "point"], sort=True)}
    estimates, cis = stats.intervals(scores, metrics.aggregate_iqm, reps)
    poi, poi_ci = {}, {}
    for agent in sorted(df["agent"].unique()):
        base = f"{agent} | {DEFAULT}"
        mine = {name: x for name, x in scores.items() if name.startswith(f"{agent} | ")}
        if base in mine:
            got, ci = stats.improvement_over(mine, base, reps)
            poi |= {pair[: -len(base) - 1]: float(np.ravel(v)[0]) for pair, v in got.items()}
            poi_ci |= {pair[: -len(base) - 1]: np.ravel(v) for pair, v in ci.items()}
    rows = []
    for name, x in scores.items():
        agent, point = name.split(" | ", 1)
        row = {"agent": agent, "point": point, **points[point][0], "runs": len(x),
               "IQM": float(np.ravel(estimates[name])[0]),
               "IQM ci_low": float(np.ravel(cis[name])[0]), "IQM ci_high": float(np.ravel(cis[name])[1])}
        if name in poi:
            row |= {"P(> default)": poi[name], "P ci_low": poi_ci[name][0], "P ci_high": poi_ci[name][1]}
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["agent", "IQM", "point"], ascending=[True, False, True], kind="stable")
    return {"points.csv": table.to_csv(index=False, float_format="%.6g").encode(),
            "iqm_by_value.png": _plot(df, refs, envs, grid, reps),
            "README.md": _markdown(root.name, grid, table, df, records, reps).encode()}


def _plot(df: pd.DataFrame, refs, envs: list[str], grid: Mapping, reps: int) -> bytes:
    """IQM (95% CI) per value of each grid key, pooling the runs of every point with that value."""
    fig, axes = plt.subplots(1, len(grid), figsize=(4.5 * len(grid), 3.5), squeeze=False)
    for ax, key in zip(axes[0], grid):
        values = grid[key]  # as given; the default point has no grid values and is not pooled
        pooled = {f"{a}={v}": _matrix(g[g[f"value:{key}"] == v], refs, envs)
                  for a, g in df.groupby("agent") for v in values if (g[f"value:{key}"] == v).any()}
        pts, ci = stats.intervals(pooled, metrics.aggregate_iqm, reps)
        for agent in sorted(df["agent"].unique()):
            have = [v for v in values if f"{agent}={v}" in pooled]
            y = np.array([np.ravel(pts[f"{agent}={v}"])[0] for v in have])
            lo, hi = (np.array([np.ravel(ci[f"{agent}={v}"])[i] for v in have]) for i in (0, 1))
            ax.errorbar(range(len(have)), y, yerr=[y - lo, hi - y], marker="o", capsize=3, label=agent)
            ax.set_xticks(range(len(have)), [str(v) for v in have])
        for i, agent in enumerate(sorted(df["agent"].unique())):
            base = df[(df["agent"] == agent) & (df["point"] == DEFAULT)]
            if not base.empty:
                ax.axhline(metrics.aggregate_iqm(_matrix(base, refs, envs)), color=f"C{i}", ls="--", lw=1,
                           label=f"{agent} {DEFAULT}")
        ax.set_xlabel(key)
        ax.set_ylabel("IQM normalized score")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    return _png(fig)


def _markdown(name, grid, table, df, records, reps) -> str:
    machines = sorted({r["versions"].get("machine", "unknown") for r in records})
    seeds = sorted(df["seed"].unique())
    core_h = sum(r.get("cpu_time_s", r["wall_time_s"]) / r.get("seed_batch", 1) for r in records) / 3600
    lines = [f"# Sweep `{name}`", "",
             "Generated by `python -m dqn_bench sweep` from the run records in `runs/`; do not edit by hand.", "",
             "- grid: " + "; ".join(f"{k} in {{{', '.join(v)}}}" for k, v in grid.items()),
             f"- runs: {len(records)} ({df['env'].nunique()} env(s), seeds {seeds[0]}..{seeds[-1]}), "
             f"{core_h:.2f} core-hours",
             f"- machine(s): {'; '.join(machines)}",
             f"- ranked by IQM of normalized final scores (95% stratified-bootstrap CIs, rliable, {reps} reps); "
             "P(> default): probability of improvement over the suite's default config", "",
             "| agent | point | runs | IQM | P(> default) |", "|---|---|---|---|---|"]
    for _, r in table.iterrows():
        p = "" if pd.isna(r.get("P(> default)", np.nan)) else _ci(r["P(> default)"], r["P ci_low"], r["P ci_high"])
        lines.append(f"| {r['agent']} | {r['point']} | {r['runs']} | {_ci(r['IQM'], r['IQM ci_low'], r['IQM ci_high'])} | {p} |")
    lines += ["", "![IQM per value of each grid key](iqm_by_value.png)", ""]
    return "\n".join(lines)
