"""Suites (TOML data files) + presets + --set overrides -> fully resolved RunSpecs."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from dqn_bench import registry
from envs import family, resolve_kwargs
from dqn_bench.protocol import ConfigError, coerce

SUITES_DIR = Path(__file__).parent / "suites"
RUN_KEYS = {"budget": int, "eval_every": int, "eval_episodes": int, "final_eval_episodes": int}  # per run, not per agent
OPTIONAL_RUN_KEYS = {"final_eval_episodes"}  # unset: the final evaluation plays eval_episodes


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run; its hash is the run's key in the store."""

    agent: str  # user-facing name (a preset or a spec name)
    agent_spec: str  # registry entry that builds it
    config: Mapping[str, Any]  # every config field, resolved
    env: str  # label in the suite (usually the Gymnasium id)
    env_id: str
    env_kwargs: Mapping[str, Any]
    seed: int
    budget: int  # env steps
    eval_every: int
    eval_episodes: int
    eval_seed: int  # evaluation episode i resets with eval_seed + i
    final_eval_episodes: int | None = None  # the last evaluation's episodes; None: eval_episodes

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["final_eval_episodes"] is None:  # unset optional fields stay out, so older keys hold
            del data["final_eval_episodes"]
        return json.loads(json.dumps(data))

    @property
    def key(self) -> str:
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunSpec":
        return cls(**data)

    @property
    def name(self) -> str:
        """File-safe and readable: names the run's record, saved network and TensorBoard folder."""
        safe = lambda text: re.sub(r"[^A-Za-z0-9._-]+", "_", text)  # noqa: E731
        return f"{safe(self.env)}__{safe(self.agent)}__s{self.seed}__{self.key}"

    @property
    def cell(self) -> str:
        """What the seeds of one configuration share: everything but seed and eval_seed."""
        data = {k: v for k, v in self.to_json().items() if k not in ("seed", "eval_seed")}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def seed_batches(specs: Sequence[RunSpec], workers: int, seed_batch: int | None = None,
                 batched: Callable[[RunSpec], bool] = lambda spec: True,
                 max_batch: Callable[[RunSpec], int] = lambda spec: 1 << 30,
                 pending: Sequence[Sequence[str]] = ()) -> list[list[RunSpec]]:
    """Group runs that differ only in seed into seed batches, seed-major: batches in order of their
    lowest seed (cells in plan order among equals), so a grid that is still running soon has whole
    seeds on every env, which is what the report's aggregates need, also when cells have finished
    different seeds (seed 0 of one env comes before seed 1 of another).

    Batches with a checkpoint (`pending` key lists) are re-formed first, exactly, so they resume.
    Otherwise a cell's seeds are split into batches of `seed_batch` seeds, or by default into as
    few equal batches as keep every worker busy (10 seeds, 2 workers, 1 cell -> 2 x 5; 20 cells ->
    20 x 10). `batched(spec)` False means one seed per batch; `max_batch(spec)` caps the size
    (memory).
    """
    by_key = {s.key: s for s in specs}
    batches: list[list[RunSpec]] = []
    for keys in pending:
        if keys and all(k in by_key for k in keys):
            batches.append([by_key.pop(k) for k in keys])
    cells: dict[str, list[RunSpec]] = {}
    for spec in by_key.values():
        cells.setdefault(spec.cell, []).append(spec)
    per_cell = max(1, math.ceil(workers / max(1, len(cells))))  # batches per cell by default
    split: list[list[list[RunSpec]]] = []
    for runs in cells.values():
        if not batched(runs[0]):
            split.append([[r] for r in runs])
            continue
        size = seed_batch or math.ceil(len(runs) / min(per_cell, len(runs)))
        size = max(1, min(size, max_batch(runs[0])))
        if seed_batch and size == seed_batch:
            split.append([runs[i : i + size] for i in range(0, len(runs), size)])
        else:  # balanced: 10 seeds at most 4 per batch -> 4, 3, 3
            n = math.ceil(len(runs) / size)
            bounds = [round(i * len(runs) / n) for i in range(n + 1)]
            split.append([runs[a:b] for a, b in zip(bounds, bounds[1:])])
    # a stable sort: within a lowest seed, cells keep plan order
    return batches + sorted((b for cell in split for b in cell), key=lambda b: min(r.seed for r in b))


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def load_suite(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = SUITES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown suite '{name_or_path}'; valid: {', '.join(suite_names())} or a .toml path")
    try:
        suite = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"suite file {path} is not valid TOML: {e}") from None
    check_suite(suite, path)
    suite.setdefault("name", path.stem)
    return suite


# Every field a suite file may hold, with its type: a typo or a wrong type is named, never guessed.
_NAMES = (list, str)
SUITE_KEYS: dict[str, Any] = {
    "name": str, "description": str, "agents": _NAMES, "envs": _NAMES, "seeds": int,
    "checkpoint_every": int, "seed_batch": int, "defaults": dict, "env": dict, "hyperparams": dict, "notes": dict,
    "improvement_over": _NAMES,  # the agents the report gives every other agent's P(improvement) over
    "env_kwargs": dict,  # per env family ("atari", "default"): kwargs for every env of it, under each env's own
}
ENV_KEYS: dict[str, Any] = {"id": str, "kwargs": dict, **RUN_KEYS}


def _type_name(expected) -> str:
    return "a list of strings" if expected == _NAMES else {str: "a string", int: "an integer", dict: "a table"}[expected]


def _check_table(table: Mapping[str, Any], schema: Mapping[str, Any], where: str, path: Path) -> None:
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"suite file {path}: unknown key '{where}{key}'; valid: {', '.join(sorted(schema))}")
        expected = schema[key]
        if expected == _NAMES:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok:
            raise ConfigError(f"suite file {path}: '{where}{key}' must be {_type_name(expected)}, "
                              f"got {type(value).__name__} {value!r}")


def check_suite(suite: Mapping[str, Any], path: Path) -> None:
    """Type-check every field of a suite file; one-line ConfigError naming file, key and type."""
    _check_table(suite, SUITE_KEYS, "", path)
    if suite.get("seed_batch", 1) < 1:
        raise ConfigError(f"suite file {path}: 'seed_batch' must be >= 1, got {suite['seed_batch']}")
    # defaults.<agent>: run keys for one agent only (its evaluation protocol where it differs)
    defaults = suite.get("defaults", {})
    _check_table({k: v for k, v in defaults.items() if k in RUN_KEYS or not isinstance(v, dict)}, RUN_KEYS,
                 "defaults.", path)
    for agent, table in _agent_tables({"defaults": {k: v for k, v in defaults.items() if isinstance(v, dict)}},
                                      "defaults", path):
        _check_table(table, RUN_KEYS, f"defaults.{agent}.", path)
    _check_table(suite.get("env_kwargs", {}), {"atari": dict, "default": dict}, "env_kwargs.", path)
    for label, table in suite.get("env", {}).items():
        _check_table({label: table}, {label: dict}, "env.", path)
        _check_table(table, ENV_KEYS, f"env.{label}.", path)
    # a typo in an agent's name would otherwise leave a variant on the default values, or a note unprinted
    for agent, layers in _agent_tables(suite, "hyperparams", path):
        for layer, values in layers.items():
            _check_table({layer: values}, {layer: dict}, f"hyperparams.{agent}.", path)
    known = registry.agent_names()
    for agent in suite.get("improvement_over", []):
        if agent not in known:
            raise ConfigError(f"suite file {path}: 'improvement_over' names '{agent}', no agent or preset; "
                              f"valid: {', '.join(sorted(known))}")
    # notes.<agent>.<env label> = why a result is what it is; the report prints it beside the number
    envs = set(suite.get("envs", [])) | set(suite.get("env", {}))
    for agent, by_env in _agent_tables(suite, "notes", path):
        for env, note in by_env.items():
            if env not in envs:
                raise ConfigError(f"suite file {path}: 'notes.{agent}.{env}' names no env of this suite; "
                                  f"valid: {', '.join(sorted(envs))}")
            _check_table({env: note}, {env: str}, f"notes.{agent}.", path)


def _agent_tables(suite: Mapping[str, Any], section: str, path: Path) -> list[tuple[str, dict]]:
    """(agent, table) of a section keyed by agent names; each must be a table naming a known agent."""
    known = registry.agent_names()
    for agent, table in suite.get(section, {}).items():
        _check_table({agent: table}, {agent: dict}, f"{section}.", path)
        if agent not in known:
            raise ConfigError(f"suite file {path}: '{section}.{agent}' names no agent or preset; "
                              f"valid: {', '.join(sorted(known))}")
    return list(suite.get(section, {}).items())


def parse_sets(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad --set '{pair}'; expected key=value, e.g. --set learning_rate=0.001")
        out[key.strip()] = value.strip()
    return out


def _layered(table: Mapping[str, Any], env: str, env_id: str) -> dict[str, Any]:
    """default -> family -> env, later layers win."""
    merged: dict[str, Any] = {}
    for layer in ("default", family(env_id), env):
        merged.update(table.get(layer, {}))
    return merged


def _run_keys(suite: Mapping[str, Any], env_table: Mapping[str, Any], agent: str,
              sets: Mapping[str, int]) -> dict[str, Any]:
    """One agent's run keys on one env: suite defaults -> the agent's defaults -> the env's table
    -> --set, later layers win."""
    defaults = suite.get("defaults", {})
    run = {k: v for k, v in defaults.items() if k in RUN_KEYS} | defaults.get(agent, {})
    run = {k: env_table.get(k, run.get(k)) for k in RUN_KEYS} | dict(sets)
    for k, v in run.items():
        if v is not None and v < 1:
            raise ConfigError(f"{k} must be >= 1, got {v}")
    return run


def plan(
    suite: Mapping[str, Any],
    agents: Sequence[str] | None = None,
    envs: Sequence[str] | None = None,
    seeds: int | None = None,
    sets: Mapping[str, str] | None = None,
    first_seed: int = 0,
) -> list[RunSpec]:
    """Resolve the agent x env x seed grid (seeds first_seed..first_seed+N-1). Raises ConfigError
    before anything is run."""
    sets = dict(sets or {})
    env_tables: Mapping[str, Any] = suite.get("env", {})
    agents = list(agents or suite.get("agents", []))
    env_labels = list(envs or suite.get("envs", []))
    n_seeds = seeds if seeds is not None else int(suite.get("seeds", 1))
    if n_seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {n_seeds}")
    if first_seed < 0:
        raise ConfigError(f"--first-seed must be >= 0, got {first_seed}")
    if not agents or not env_labels:
        raise ConfigError("the suite selects no agents or no envs; give --agents and --envs")
    resolved = {a: registry.resolve(a) for a in agents}

    run_sets = {k: coerce(v, RUN_KEYS[k], k) for k, v in sets.items() if k in RUN_KEYS}
    agent_sets = {k: v for k, v in sets.items() if k not in RUN_KEYS}
    known = set(RUN_KEYS)
    for spec, _ in resolved.values():
        known |= {f.name for f in dataclasses.fields(spec.config_cls)}
    unknown = sorted(set(agent_sets) - known)
    if unknown:
        raise ConfigError(f"unknown --set key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")

    runs = []
    for label in env_labels:
        table = env_tables.get(label, {})
        env_id = table.get("id", label)
        env_kwargs = resolve_kwargs(env_id, {**suite.get("env_kwargs", {}).get(family(env_id), {}),
                                             **table.get("kwargs", {})})
        for agent, (spec, preset) in resolved.items():
            run = _run_keys(suite, table, agent, run_sets)
            missing = [k for k, v in run.items() if v is None and k not in OPTIONAL_RUN_KEYS]
            if missing:
                raise ConfigError(f"env '{label}' has no {', '.join(missing)} in suite '{suite['name']}'; "
                                  "add it or --set it")
            fields = {f.name for f in dataclasses.fields(spec.config_cls)}
            tables = suite.get("hyperparams", {})
            overrides = _layered(tables.get(spec.hyperparams or spec.name, {}), label, env_id)
            overrides |= dict(preset)
            if agent != spec.name:  # a preset's own table: a variant's values where they differ (cited)
                overrides |= _layered(tables.get(agent, {}), label, env_id)
            overrides |= {k: v for k, v in agent_sets.items() if k in fields}
            config = spec.config_dict(spec.make_config(overrides))
            for seed in range(first_seed, first_seed + n_seeds):
                runs.append(
                    RunSpec(
                        agent=agent,
                        agent_spec=spec.name,
                        config=config,
                        env=label,
                        env_id=env_id,
                        env_kwargs=env_kwargs,
                        seed=seed,
                        budget=run["budget"],
                        eval_every=run["eval_every"],
                        eval_episodes=run["eval_episodes"],
                        eval_seed=1_000_000 + 1000 * seed,
                        final_eval_episodes=run["final_eval_episodes"],
                    )
                )
    return runs
