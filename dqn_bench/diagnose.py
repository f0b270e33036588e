"""`diagnose`: train a seed batch of one configuration while probing the agent's insides every
few steps -> a CSV of every probe and a Markdown table of how the quantities move.

For telling a bug from a hard problem: Q scale against the returns actually reached, TD errors,
gradient norms, action gaps, dead units, dueling streams, priorities and IS weights. Probing
draws from its own generator and never steps the optimizer, so the probed seeds train exactly as
in a `run` (their evaluations match the stored records).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from dqn_bench import registry, runner
from dqn_bench.config import RunSpec
from dqn_bench.files import atomic_write_text


def diagnose(specs: list[RunSpec], every: int, probe_size: int = 1024) -> tuple[list[dict], list[dict]]:
    """-> (probe rows: step, seed and each quantity; the runs' results as `train` returns them)."""
    rng = np.random.default_rng(20_161_123)  # the probes' own stream, apart from every seed's
    rows: list[dict] = []
    probe = registry.probe(specs[0].agent_spec)

    def hook(step: int, agent) -> None:
        if step % every == 0 and agent.steps >= agent.cfg.learning_starts and agent.replay.size > 0:
            values = probe(agent, probe_size, rng)
            for k, spec in enumerate(specs):
                rows.append({"step": step, "seed": spec.seed, **{q: float(v[k]) for q, v in values.items()}})

    with runner.cpu_settings():  # as run_batch trains, so probed runs match stored ones
        results, _ = runner.train(specs, hook=hook)
    return rows, results


def write(out: Path, specs: list[RunSpec], rows: list[dict], results: list[dict],
          overrides: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """CSV of every probe + a Markdown summary (median over seeds at up to 10 probe steps, the
    evaluation returns beside them). The file name carries the overrides (`--set`), so probing a
    changed config never overwrites the suite config's files."""
    s0 = specs[0]
    stem = out / "__".join([s0.env, s0.agent, *overrides, f"s{'-'.join(str(s.seed) for s in specs)}"])
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(stem.with_suffix(".csv"), buf.getvalue())
    atomic_write_text(stem.with_suffix(".md"), summary(specs, rows, results))
    return stem.with_suffix(".csv"), stem.with_suffix(".md")


def summary(specs: list[RunSpec], rows: list[dict], results: list[dict]) -> str:
    s0 = specs[0]
    v = runner.versions()
    lines = [f"# {s0.agent} on {s0.env}, seeds {', '.join(str(s.seed) for s in specs)}", "",
             f"Code git {v['git_sha']}, torch {v['torch']}, {v['machine']}.", "",
             f"Budget {s0.budget} env steps; config: " + ", ".join(f"{k}={v}" for k, v in sorted(s0.config.items())),
             "", "Median over seeds of each probe (1024 replay transitions per seed); eval = mean greedy "
             "return of the evaluation at or before that step, median over seeds.", ""]
    if not rows:
        return "\n".join(lines + ["No probes (learning never started).", ""])
    steps = sorted({r["step"] for r in rows})
    shown = [steps[i] for i in np.unique(np.linspace(0, len(steps) - 1, min(10, len(steps))).round().astype(int))]
    quantities = [q for q in rows[0] if q not in ("step", "seed")]
    lines += ["| step | eval | " + " | ".join(quantities) + " |", "|" + "---|" * (len(quantities) + 2)]
    for step in shown:
        at = [r for r in rows if r["step"] == step]
        evals = [_eval_at(res, step) for res in results if res["status"] == "ok"]
        cells = [f"{np.median([r[q] for r in at]):.3g}" for q in quantities]
        lines.append(f"| {step} | {np.median(evals):.1f} | " + " | ".join(cells) + " |" if evals else
                     f"| {step} | – | " + " | ".join(cells) + " |")
    finals = [f"s{s.seed}: {res['final_score']:.1f}" if res["status"] == "ok" else f"s{s.seed}: failed"
              for s, res in zip(specs, results)]
    lines += ["", f"Final evaluation ({s0.final_eval_episodes or s0.eval_episodes} episodes): " + ", ".join(finals), ""]
    return "\n".join(lines)


def _eval_at(result: dict, step: int) -> float:
    steps = result["eval"]["steps"]
    i = max(j for j, s in enumerate(steps) if s <= step)
    return float(np.mean(result["eval"]["returns"][i]))
