"""Stored records -> results/<suite>/README.md, CSVs and PNGs. Same records -> same bytes."""
from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rliable import plot_utils  # noqa: E402

import baselines  # noqa: E402
from dqn_bench import stats  # noqa: E402
from dqn_bench.files import atomic_write_bytes  # noqa: E402
from dqn_bench.store import Store  # noqa: E402

# P(improvement) is reported over these agents, in this order, unless a suite names its own
# (`improvement_over`): the baseline of the family and the peer run by this harness
IMPROVEMENT_OVER = ("dqn", "sb3_dqn")
BASE_DESCRIPTIONS = {"sb3_dqn": "the peer (Stable-Baselines3's DQN run by this harness, same seeds, budgets, "
                                "hyperparameters and evaluation)", "random": "the uniform-random policy"}
SOLVED_EPISODES = 100  # gymnasium's "solved": a 100-episode mean at or above the reward threshold
ATARI_100K_FRAMES = 400_000  # 100k agent steps x frame skip 4: the Atari-100k budget
PUBLISHED_AGENT = "drq_eps"  # our preset whose published per-run scores baselines/ holds


def _ci(point, lo, hi, digits=2, seeds: int = 2) -> str:
    # a bootstrap over one seed resamples that seed alone: its [x, x] would read as certainty
    if seeds < 2:
        return f"{point:.{digits}f} (1 seed: no CI)"
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def aggregate_figure(points: dict, cis: dict, agents: list[str]):
    """rliable's interval plot of the aggregate metrics. rliable sizes the figure by rows and puts
    the x label at a fixed figure fraction, so with few agents the label would land on the tick
    labels: keep 2.2 in of height and the label 0.62 in below the axes (its look at 8 agents, where
    rliable's defaults, 0.37 in a row and the label at -0.1, are kept)."""
    row_height = max(0.37, 2.2 / len(agents))
    axes_bottom = plt.rcParams["figure.subplot.bottom"]  # rliable keeps matplotlib's default
    label_y = min(-0.1, axes_bottom - 0.62 / (row_height * len(agents)))
    fig, _ = plot_utils.plot_interval_estimates(points, cis, metric_names=list(stats.METRICS), algorithms=agents,
                                                xlabel="Normalized score", row_height=row_height,
                                                xlabel_y_coordinate=label_y)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _published(ref, frames: int) -> dict[str, float]:
    """Atari at 100k agent steps: the Atari-100k agents, plus Nature DQN for scale; other Atari
    budgets: Nature DQN plus Dopamine at the frame count nearest ours; other envs: all."""
    if ref.kind != "atari":
        return dict(ref.published)
    nature = {k: v for k, v in ref.published.items() if k.startswith("DQN (Nature")}
    if frames == ATARI_100K_FRAMES:
        return {k: v for k, v in ref.published.items() if k.endswith(baselines.AT_100K)} | nature
    at = {k: int(m.group(1)) * 1_000_000 for k in ref.published if (m := re.search(r"\((\d+)M frames\)", k))}
    dopamine = [f for k, f in at.items() if k.startswith("Dopamine")]
    nearest = min(dopamine, key=lambda f: abs(f - frames), default=None)
    return nature | {k: v for k, v in ref.published.items() if k.startswith("Dopamine") and at.get(k) == nearest}


def atari5_prediction(df: pd.DataFrame, reps: int) -> dict[str, tuple[float, float, float]]:
    """Atari-5 (Aitchison et al. 2022) prediction of the Atari-57 median human-normalized score
    (%), per agent that ran all five games: 10^(sum_g w_g log10(1 + HNS_g)) - 1 over the per-game
    mean raw scores, HNS clipped at 0, with a 95% stratified-bootstrap CI over seeds
    -> {agent: (point, low, high)}."""
    weights, norms = baselines.atari5_weights(), baselines.atari5_normalization()
    games = list(weights)
    w = np.array([weights[g] for g in games])
    lo, hi = np.array([norms[g][0] for g in games]), np.array([norms[g][1] for g in games])

    def predict(scores):  # [seeds, games] raw scores -> [1]
        hns = np.maximum(100 * (scores.mean(axis=0) - lo) / (hi - lo), 0.0)
        return np.array([10 ** (w @ np.log10(1 + hns)) - 1])

    matrices = {}
    for agent, g in df[df["env_id"].isin(games)].groupby("agent"):
        columns = [g[g["env_id"] == game].sort_values("seed")["final_score"].to_numpy(float) for game in games]
        if all(len(c) == len(columns[0]) > 0 for c in columns):  # the bootstrap needs [seeds, games]
            matrices[agent] = np.stack(columns, axis=1)
    if not matrices:
        return {}
    points, cis = stats.intervals(matrices, predict, reps)
    return {a: (points[a][0], cis[a][0, 0], cis[a][1, 0]) for a in matrices}


def _per_env(df: pd.DataFrame, refs, reps: int) -> pd.DataFrame:
    rows = []
    frames = {r.env: r.env_kwargs.get("frame_skip", 1) * r.budget for r in df.drop_duplicates("env").itertuples()}
    for (env, agent), g in df.groupby(["env", "agent"]):
        scores = g.sort_values("seed")["final_score"].to_numpy(float)[:, None]
        point, ci = stats.intervals({agent: scores}, lambda x: np.array([x.mean()]), reps)
        ref = refs.get(env)  # None: an env without reference scores, raw scores only
        solvable = ref is not None and ref.reference_name == "threshold" and (g["final_episodes"] >= SOLVED_EPISODES).all()
        rows.append({
            "env": env, "agent": agent, "seeds": len(scores), "mean": point[agent][0],
            "ci_low": ci[agent][0, 0], "ci_high": ci[agent][1, 0],
            "normalized": ref.normalize(point[agent][0]) if ref else None,
            "solved": int((g["final_score"] >= ref.reference).sum()) if solvable else None,
            "final_episodes": int(g["final_episodes"].min()), "core_s": float(g["core_s"].median()),
            **({"random": ref.random, ref.reference_name: ref.reference} if ref else {}),
            "published": "; ".join(f"{k}: {v:g}" for k, v in _published(ref, frames[env]).items()) if ref else "",
        })
    return pd.DataFrame(rows)


def build(root: Path, reps: int = 2000, allow_ragged: bool = False,
          notes: Mapping[str, Mapping[str, str]] | None = None,
          improvement_over: Sequence[str] = IMPROVEMENT_OVER) -> dict[str, bytes]:
    """Every output file of a suite's report, by name relative to `root`. notes[agent][env]: the
    suite's explanation of a result, printed beside it; improvement_over: the agents every other
    agent's P(improvement) is reported over, each in its own table."""
    records = Store(root).records()
    runs = stats.tidy(records)
    # every run in the per-env tables; in the aggregates only seeds their agent has on every env
    df, missing = stats.check_grid(runs, allow_ragged)
    refs = stats.reference_for(runs, required=False)
    per_env = _per_env(runs, refs, reps)
    out: dict[str, bytes] = {"per_env.csv": per_env.to_csv(index=False, float_format="%.6g").encode()}
    normed = df[df["env"].isin(refs)]  # the aggregates need reference scores
    agg, poi = _aggregates(normed, refs, reps, improvement_over, out) if not normed.empty else (None, pd.DataFrame())
    predicted = atari5_prediction(df, reps)
    beside = published_comparison(runs, df, refs, reps)
    if beside is not None:
        out["published.csv"] = beside[1].to_csv(index=False, float_format="%.6g").encode()
    out["README.md"] = _markdown(root.name, records, runs, df, missing, refs, per_env, agg, poi, reps, predicted,
                                 notes or {}, beside[0] if beside else [], improvement_over).encode()
    return out


def published_comparison(runs: pd.DataFrame, complete: pd.DataFrame, refs,
                         reps: int) -> tuple[list[str], pd.DataFrame] | None:
    """Our `drq_eps` runs beside the published DrQ(eps) runs (baselines.published_runs) on the
    games both have: per game the means with CIs, where each of our runs falls among the published
    ones (percentile) and a one-sided Mann-Whitney test of "ours lower" (the per-run scores are
    skewed: no t-test); over those games IQM / median / mean HNS with stratified-bootstrap CIs for
    both, and P(ours > published), over the seeds finished on every game (`complete`; `runs` has
    every run). None when the suite has no such runs."""
    from scipy.stats import mannwhitneyu

    published = baselines.published_runs(PUBLISHED_AGENT)
    def of_ours(df):
        return df[(df["agent"] == PUBLISHED_AGENT) & df["env_id"].isin(published) & df["env"].isin(refs)]

    ours = of_ours(runs)
    if ours.empty:
        return None
    rows, ours_T, pub_T = [], [], []
    for env, g in ours.groupby("env"):
        mine = g.sort_values("seed")["final_score"].to_numpy(float)
        pub = np.array(published[g["env_id"].iloc[0]])
        means, cis = stats.intervals({"ours": mine[:, None], "published": pub[:, None]}, lambda x: np.array([x.mean()]), reps)
        percentiles = [100 * ((pub < x).mean() + 0.5 * (pub == x).mean()) for x in mine]
        rows.append({"env": env, "runs": len(mine), "mean": means["ours"][0], "ci_low": cis["ours"][0, 0],
                     "ci_high": cis["ours"][1, 0], "published_runs": len(pub), "published_mean": means["published"][0],
                     "published_ci_low": cis["published"][0, 0], "published_ci_high": cis["published"][1, 0],
                     "percentiles": " ".join(f"{p:.0f}" for p in percentiles),
                     "p_ours_lower": float(mannwhitneyu(mine, pub, alternative="less").pvalue)})
        pub_T.append(refs[env].normalize(pub))
    for env, g in of_ours(complete).groupby("env"):
        ours_T.append(refs[env].normalize(g.sort_values("seed")["final_score"].to_numpy(float)))
    table = pd.DataFrame(rows)
    lines = ["## Beside the published DrQ(eps) runs", "",
             f"`{PUBLISHED_AGENT}` against the {len(pub_T[0])} published DrQ(eps) runs per game (rliable's Atari-100k data, "
             "`baselines/drq_eps_atari100k_runs.csv`), each run's score the mean of its final evaluation. Percentile: "
             "where each of our runs (by seed) falls among the published runs; p: one-sided Mann-Whitney U test of "
             "\"ours lower\" (the per-run scores are skewed: no t-test).", "",
             "| game | our runs | ours: mean | published: mean | our runs' percentiles | p (ours lower) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['env']} | {r['runs']} | {_ci(r['mean'], r['ci_low'], r['ci_high'], 1, r['runs'])} | "
                     f"{_ci(r['published_mean'], r['published_ci_low'], r['published_ci_high'], 1)} | "
                     f"{r['percentiles']} | {r['p_ours_lower']:.3f} |")
    if len(ours_T) == len(pub_T):  # the aggregates need our seeds on every game
        scores = {"ours": np.stack(ours_T, axis=1), "published": np.stack(pub_T, axis=1)}
        points, cis = stats.aggregate_intervals(scores, reps)
        poi, poi_ci = stats.improvement_over(scores, "published", reps)
        lines += ["", f"Over these {len(rows)} games, human-normalized (95% stratified-bootstrap CIs; ours: the "
                  f"{len(ours_T[0])} seed(s) finished on every game):", "",
                  "| runs | " + " | ".join(stats.METRICS) + " |", "|---|" + "---|" * len(stats.METRICS)]
        for name in ("ours", "published"):
            lines.append(f"| {name} | " + " | ".join(_ci(points[name][i], cis[name][0, i], cis[name][1, i],
                                                        seeds=len(scores[name])) for i in range(len(stats.METRICS))) + " |")
        (pair,) = poi
        lines += ["", f"P(ours > published) = "
                  f"{_ci(np.ravel(poi[pair])[0], *np.ravel(poi_ci[pair])[:2], seeds=len(ours_T[0]))}"]
    else:
        lines += ["", "The aggregates over the games wait for a seed of ours finished on every game."]
    # per machine: one CPU model name spans AVX2 and AVX-512 parts 2-3x apart, so no median across them
    for machine, g in ours.groupby("machine", sort=False):
        lines += ["", f"Cost of our runs on {machine} ({len(g)} of {len(ours)}), median (range) per run: "
                  f"{_spread(g['core_s'] / 3600)} core-hours, {_spread(g['wall_s'] / 3600)} h wall, "
                  f"{_spread(g['updates'] / g['core_s'], 1)} gradient updates per core-second "
                  f"({_spread(g['updates'], 0)} updates; the time includes the run's env steps and evaluations)."]
        timed = g.dropna(subset=["eval_core_s"])
        if not timed.empty:  # records that time their evaluations
            lines[-1] += (f" Evaluations: {_spread(timed['eval_core_s'] / 60, 1)} core-minutes per run "
                          f"({_spread(100 * timed['eval_core_s'] / timed['core_s'], 1)}% of it), the final one "
                          f"{_spread(timed['final_eval_core_s'] / 60, 1)} ({len(timed)} of the runs time them).")
    return lines, table


def _spread(x: pd.Series, digits: int = 2) -> str:
    """median (min-max), or the one value"""
    x = x.dropna()
    vals = [f"{v:,.{digits}f}" for v in (x.median(), x.min(), x.max())]
    return vals[0] if vals[1] == vals[2] else f"{vals[0]} ({vals[1]}-{vals[2]})"


def _aggregates(df: pd.DataFrame, refs, reps: int, bases: Sequence[str],
                out: dict[str, bytes]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """rliable's aggregates, probabilities of improvement, profiles and sample-efficiency curves
    of the normalized scores: tables returned, CSVs and PNGs added to `out`."""
    scores = stats.normalized_scores(df, refs)
    agents = sorted(scores)
    points, cis = stats.aggregate_intervals(scores, reps)

    core_s = df.groupby("agent")["core_s"].median()
    agg = pd.DataFrame([{"agent": a, "median core-s/run": core_s[a], **{m: points[a][i] for i, m in enumerate(stats.METRICS)},
                         **{f"{m} ci_low": cis[a][0, i] for i, m in enumerate(stats.METRICS)},
                         **{f"{m} ci_high": cis[a][1, i] for i, m in enumerate(stats.METRICS)}} for a in agents])
    poi_points, poi_cis = {}, {}
    # over each base every other agent but the later bases, whose own tables hold that pair the other way
    for i, base in enumerate(bases):
        if base in scores:
            later = set(bases[i + 1:])
            p, c = stats.improvement_over({a: s for a, s in scores.items() if a not in later}, base, reps)
            poi_points |= p
            poi_cis |= c
    poi = pd.DataFrame([{"pair": p, "P(X > Y)": np.ravel(poi_points[p])[0], "ci_low": np.ravel(poi_cis[p])[0],
                         "ci_high": np.ravel(poi_cis[p])[1]} for p in poi_points])

    out["aggregate.csv"] = agg.to_csv(index=False, float_format="%.6g").encode()
    if not poi.empty:
        out["improvement.csv"] = poi.to_csv(index=False, float_format="%.6g").encode()

    out["aggregate.png"] = _png(aggregate_figure(points, cis, agents))
    taus = np.linspace(-0.25, 1.5, 36)
    prof, prof_ci = stats.performance_profiles(scores, taus, reps)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(prof, taus, performance_profile_cis=prof_ci, ax=ax,
                                         xlabel=r"Normalized score ($\tau$)")
    ax.legend(loc="lower left", fontsize="small")
    out["profiles.png"] = _png(fig)
    if poi_points:
        fig = plot_utils.plot_probability_of_improvement(poi_points, poi_cis)
        out["improvement.png"] = _png(fig.figure if hasattr(fig, "figure") else fig)
    fractions, curves = stats.normalized_curves(df, refs)
    c_points, c_cis = stats.iqm_curves(curves, reps)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_sample_efficiency_curve(fractions, c_points, c_cis, algorithms=agents, ax=ax,
                                            xlabel="Fraction of the env's training budget",
                                            ylabel="IQM normalized score", labelsize="large", ticklabelsize="large")
    ax.legend(fontsize="small")
    out["sample_efficiency.png"] = _png(fig)
    return agg, poi


def _markdown(suite, records, runs, df, missing, refs, per_env, agg, poi, reps, predicted, notes, beside,
              bases) -> str:
    ok = [r for r in records if r["status"] == "ok"]
    failed = len(records) - len(ok)
    # a seed batch of K runs that took T seconds in one process counts T, not K x T
    wall = sum(r["wall_time_s"] / r.get("seed_batch", 1) for r in records)
    threaded = sum(r.get("threads", 1) > 1 for r in records)  # their wall time spanned several cores
    machines = sorted({r["versions"].get("machine", "unknown") for r in records})
    # One entry per package, listing each version seen, so a new commit adds a sha, not a whole line.
    packages = sorted({k for r in records for k in r["versions"]} - {"machine"})
    versions = [f"{k} {' / '.join(sorted({r['versions'][k] for r in records if k in r['versions']}))}"
                for k in packages]
    waiting = sorted(set(runs["agent"]) - set(df["agent"]))  # agents with no seed on every env yet
    seeds = df.groupby("agent")["seed"].nunique()  # each agent's seeds in the aggregates
    lines = [
        f"# Results: `{suite}` suite",
        "",
        f"Generated by `python -m dqn_bench report{' --allow-ragged' if missing else ''}` from the run records in "
        "`runs/`; do not edit by hand.",
        "",
        f"- runs: {len(runs)} reported ({runs['agent'].nunique()} agents x {runs['env'].nunique()} envs"
        f"{' x ' + _seeds(runs) if not missing else ', a partial grid'}), {failed} failed, {len(records)} records",
        *([f"- in progress: {len(missing)} run{'s' * (len(missing) != 1)} missing from the grid "
           f"({stats.listed(missing)}). The per-env tables show "
           "every run; the aggregates, plots and P(improvement) only the seeds their agent has on every env"
           + (f" (none yet of {', '.join(waiting)})" if waiting else "") + "."] if missing else []),
        f"- total training wall time: {wall / 3600:.2f} h of "
        + (f"process run time ({threaded} run{'s' * (threaded != 1)} on more than one thread)" if threaded
           else "single-core run time"),
        f"- machine(s): {'; '.join(machines)}",
        f"- versions: {', '.join(versions)}",
        "- normalization: (score - random) / (reference - random); reference = gymnasium reward threshold "
        "(classic), exact optimum (tabular), human (Atari); sources in `baselines/SOURCES.md`",
        f"- intervals: 95% stratified-bootstrap CIs (rliable, {reps} reps, fixed random_state)",
        "",
        "## Aggregate (normalized final scores)",
        "",
    ]
    unreferenced = sorted(set(runs["env"]) - set(refs))
    if unreferenced:
        lines += [f"Left out of the aggregates, with no reference scores: {', '.join(unreferenced)} (raw scores "
                  "below; add a row to `baselines/*.csv` with its source to normalize them).", ""]
    if agg is not None:
        lines += ["| agent | " + " | ".join(stats.METRICS) + " | median core-s/run |",
                  "|---|" + "---|" * (len(stats.METRICS) + 1)]
    for _, r in (agg if agg is not None else pd.DataFrame()).iterrows():
        n = seeds[r["agent"]]
        lines.append(f"| {r['agent']} | " + " | ".join(_ci(r[m], r[f'{m} ci_low'], r[f'{m} ci_high'], seeds=n)
                                                         for m in stats.METRICS) + f" | {r['median core-s/run']:.0f} |")
    lines += ["", "Cost: the median over an agent's runs of its single-core process seconds (CPU time where the "
              "record has it, else wall time; a seed batch's time shared by its seeds), on the machine(s) above."]
    for base in bases:
        rows = poi[poi["pair"].str.endswith(f",{base}")] if not poi.empty else poi
        if not rows.empty:
            what = f", {BASE_DESCRIPTIONS[base]}" if base in BASE_DESCRIPTIONS else ""
            lines += ["", f"Probability of improvement over `{base}`{what}:", "", "| X, Y | P(X > Y) |", "|---|---|"]
            for _, r in rows.iterrows():
                fewest = min(seeds[a] for a in r["pair"].split(","))
                lines.append(f"| {r['pair']} | {_ci(r['P(X > Y)'], r['ci_low'], r['ci_high'], seeds=fewest)} |")
    if predicted:
        lines += ["", "Atari-5 prediction of the Atari-57 median human-normalized score (Aitchison et al. 2022, "
                  "weights in `baselines/atari5.csv`; 95% stratified-bootstrap CI over seeds):", "",
                  "| agent | predicted median HNS (%) |", "|---|---|"]
        lines += [f"| {a} | {_ci(*v, digits=1, seeds=seeds[a])} |" for a, v in sorted(predicted.items())]
    if beside:
        lines += ["", *beside]
    lines += ["", "## Per environment (final score: mean over seeds, 95% CI)", ""]
    for env, g in per_env.groupby("env"):
        ref = refs.get(env)
        lines += [f"### {env}", "",
                  "no reference scores: raw scores only" if ref is None else
                  f"random {ref.random:g}, {ref.reference_name} {ref.reference:g}"
                  + (f"; published: {g['published'].iloc[0]}" if g["published"].iloc[0] else ""), ""]
        threshold = ref is not None and ref.reference_name == "threshold"  # gymnasium's "solved" needs one
        lines += ["| agent | seeds | final score | normalized |" + (" solved |" if threshold else "")
                  + " final eval episodes | core-s/run |", "|---|---|---|---|---|---|" + ("---|" if threshold else "")]
        why = []
        for _, r in g.iterrows():
            solved = ("–" if pd.isna(r["solved"]) else f"{int(r['solved'])}/{r['seeds']}") if threshold else None
            note = notes.get(r["agent"], {}).get(env)
            if note:
                why.append(f"{len(why) + 1}. `{r['agent']}`: {note}")
            normalized = "–" if ref is None else f"{r['normalized']:.2f}"
            lines.append(f"| {r['agent']} | {r['seeds']} | {_ci(r['mean'], r['ci_low'], r['ci_high'], seeds=r['seeds'])} | "
                         f"{normalized}" + (f" (note {len(why)})" if note else "") + " |"
                         + (f" {solved} |" if threshold else "") + f" {r['final_episodes']} | {r['core_s']:.0f} |")
        lines += ["", *why, ""] if why else [""]
    if per_env["published"].str.contains(baselines.AT_100K, regex=False).any():
        same = all(baselines.atari_100k_protocol(r["spec"].get("env_kwargs", {})) for r in records
                   if r["spec"]["env"].startswith("ALE/"))
        lines += [f"Published numbers marked {baselines.AT_100K} follow the Atari-100k protocol, "
                  + ("as this suite's runs do. " if same else "not ours. ") + baselines.ATARI_100K_PROTOCOL + " "
                  + ("Sources: baselines/SOURCES.md." if same else baselines.MACHADO_CAVEAT), ""]
    if any(ref.reference_name == "threshold" for ref in refs.values()):
        lines += [f"solved: seeds whose final evaluation, a mean over {SOLVED_EPISODES} episodes, reached the reward "
                  "threshold (gymnasium's criterion); – where that evaluation played fewer episodes.", ""]
    if agg is not None:
        lines += ["## Plots", "", "![aggregate](aggregate.png)", "", "![profiles](profiles.png)", ""]
        if not poi.empty:
            lines += ["![improvement](improvement.png)", ""]
        lines += ["![sample efficiency](sample_efficiency.png)", ""]
    return "\n".join(lines)


def _seeds(df: pd.DataFrame) -> str:
    """"5 seeds", or with the agents that differ: "5 seeds; sb3_dqn: 10 seeds"."""
    counts = df.groupby("agent")["seed"].nunique()
    common = counts.mode().max()
    others = ", ".join(f"{a}: {n}" for a, n in counts.items() if n != common)
    return f"{common} seeds" + (f"; {others} seeds" if others else "")


def write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        atomic_write_bytes(root / name, data)


def stale(root: Path, files: dict[str, bytes]) -> list[str]:
    return [name for name, data in files.items() if not (root / name).is_file() or (root / name).read_bytes() != data]
