"""Reference scores (data in this folder, sources in SOURCES.md) and a tiny loader.

reference(env_id, kwargs) -> Reference: the random score, the score that normalizes to 1
(classic: gymnasium reward threshold; tabular: exact optimum; Atari: human), and published
numbers for the env. Imports nothing of dqn_bench.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
AT_100K = "(100k steps)"  # label suffix of the published Atari-100k numbers
ATARI_100K_PROTOCOL = (
    "DER, DrQ(eps) and SPR as Dopamine's atari_100k configs run them: no sticky actions, a lost life ends a "
    "training episode, evaluation at epsilon 0.001 over 100 episodes of up to 27k agent steps; SimPLe, IRIS, "
    "EfficientZero and MuZero as their papers report."
)
MACHADO_CAVEAT = (
    "Ours follows Machado et al. 2018 (sticky actions 0.25, no life-loss signal, games up to 108k frames; the final "
    "evaluation's episodes per run are in each table), which is harder: read them as context, not as a like-for-like "
    "comparison (sources: baselines/SOURCES.md)."
)


def atari_100k_protocol(env_kwargs: dict) -> bool:
    """Whether an Atari run's env kwargs are the Atari-100k protocol's (no sticky actions, life-loss terminals)."""
    return env_kwargs.get("repeat_action_probability") == 0.0 and bool(env_kwargs.get("terminal_on_life_loss"))


class NoReference(KeyError):
    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class Reference:
    env_id: str
    kind: str  # classic | tabular | atari
    random: float
    reference: float  # the score that normalizes to 1
    reference_name: str  # threshold | optimum | human
    published: dict[str, float] = field(default_factory=dict)

    def normalize(self, score):
        """(score - random) / (reference - random); works on scalars and numpy arrays."""
        return (score - self.random) / (self.reference - self.random)


def _rows(name: str) -> list[dict[str, str]]:
    with open(HERE / name, newline="") as f:
        return list(csv.DictReader(f))


@cache
def _table() -> dict[tuple[str, str], Reference]:
    refs: dict[tuple[str, str], Reference] = {}
    for r in _rows("classic_control.csv"):
        published = {}
        if r["zoo_dqn_mean"]:
            published[f"RL Zoo DQN ({r['zoo_benchmark_env_id']}, {r['zoo_dqn_n_timesteps']} steps)"] = float(r["zoo_dqn_mean"])
        if r["cleanrl_dqn_py_mean"]:
            published[f"CleanRL dqn.py ({r['cleanrl_total_timesteps']} steps)"] = float(r["cleanrl_dqn_py_mean"])
        refs[(r["env_id"], "{}")] = Reference(r["env_id"], "classic", float(r["random_mean"]),
                                               float(r["reward_threshold"]), "threshold", published)
    for r in _rows("tabular.csv"):
        kwargs = json.dumps(json.loads(r["make_kwargs"]), sort_keys=True)
        refs[(r["env_id"], kwargs)] = Reference(r["env_id"], "tabular", float(r["random_exact_mean"]),
                                                float(r["optimal_return"]), "optimum")
    published: dict[str, dict[str, float]] = {}
    for r in _rows("atari_dqn_reference.csv"):
        frames = f"{int(r['frames']) // 1_000_000}M frames" if r["frames"] else "frames n/a"
        published.setdefault(r["ale_v5_id"], {})[f"{r['agent']} ({frames})"] = float(r["score"])
    for r in _rows("atari100k_reference.csv"):
        published.setdefault(r["ale_v5_id"], {})[f"{r['agent']} {AT_100K}"] = float(r["score"])
    for r in _rows("atari_random_human.csv"):
        refs[(r["ale_v5_id"], "{}")] = Reference(r["ale_v5_id"], "atari", float(r["random"]), float(r["human"]),
                                                 "human", published.get(r["ale_v5_id"], {}))
    return refs


def reference(env_id: str, kwargs: dict | None = None) -> Reference:
    # Env kwargs that change the task (is_slippery, a step cap) select the row: a row for the exact
    # kwargs first, else the row without the step cap. Atari protocol knobs keep the game's row.
    task = {} if env_id.startswith("ALE/") else dict(kwargs or {})
    uncapped = {k: v for k, v in task.items() if k != "max_episode_steps"}
    refs = _table()
    for candidate in (task, uncapped):
        key = json.dumps(candidate, sort_keys=True)
        if (env_id, key) in refs:
            return refs[(env_id, key)]
    known = sorted({e for e, _ in refs})
    raise NoReference(f"no reference scores for env '{env_id}' with kwargs {key}; known: {', '.join(known[:12])}, ... "
                      f"({len(known)} envs; add a row to baselines/*.csv with its source)")


@cache
def published_runs(agent: str = "drq_eps") -> dict[str, list[float]]:
    """Published per-run scores by ALE id: DrQ(eps)'s 100 Atari-100k runs per game (rliable data)."""
    out: dict[str, list[float]] = {}
    for r in _rows(f"{agent}_atari100k_runs.csv"):
        out.setdefault(r["ale_v5_id"], []).append(float(r["score"]))
    return out


@cache
def atari5_weights() -> dict[str, float]:
    """Atari-5 regression weights (Aitchison et al. 2022) for the median-HNS prediction."""
    return {r["ale_v5_id"]: float(r["weight"]) for r in _rows("atari5.csv") if r["subset"] == "Atari_5"}


@cache
def atari5_normalization() -> dict[str, tuple[float, float]]:
    """(random, human) as used to fit the Atari-5 weights (Atari-5 repo's Atari-Human.csv)."""
    return {r["ale_v5_id"]: (float(r["random_used"]), float(r["human_used"]))
            for r in _rows("atari5.csv") if r["subset"] == "Atari_5"}
