"""The contract every agent implements; agents/ and envs/ import only this from dqn_bench."""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Protocol, runtime_checkable

import numpy as np


class ConfigError(ValueError):
    """Bad user input (unknown name, invalid value). The CLI prints it as one line, exit code 2."""


class Transitions(NamedTuple):
    """A batch of n transitions, one per environment, all arrays with leading axis n.

    next_obs is the real last observation when an episode ends (never the reset observation);
    bootstrapping stops only on `terminated`, a time-limit `truncated` still bootstraps.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


@runtime_checkable
class Agent(Protocol):
    """One seed, or K seeds of one configuration when its AgentSpec says `seed_batched`.

    A seed-batched agent is built with a tuple of K seeds, and row k of every call is seed k's own
    environment: act gets obs[K, ...] and may get `active` (bool[K]: rows that are not active must
    draw no randomness, their action is ignored); observe gets one transition per seed and returns
    per-seed metrics as [K] arrays ("loss" is checked per seed: a non-finite value fails that seed
    only). Every random stream of seed k (init, exploration, replay sampling) must depend on
    seeds[k] alone, so a seed's run does not depend on its batch mates.
    """

    def act(self, obs: np.ndarray, *, explore: bool) -> np.ndarray:
        """obs[n, *obs_shape] -> actions[n]. explore=False is the evaluation policy."""

    def observe(self, batch: Transitions) -> dict[str, Any]:
        """Store and learn on the agent's own schedule; returns metrics (loss, epsilon, ...)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: networks, optimizer, replay, schedules, RNG."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    # Optional, for saved agents and `play`: seed k's greedy policy as numpy arrays / plain data,
    # and loading it into an agent built for one seed. An agent without them is not saved.
    #   def policy_state(self, k: int) -> dict[str, Any]
    #   def load_policy_state(self, state: Mapping[str, Any]) -> None


Factory = Callable[..., Agent]  # make(observation_space, action_space, config, seed[s][, budget=]) -> Agent


@dataclass(frozen=True)
class AgentSpec:
    """What an entry point in the group `dqn_bench.agents` points at.

    `presets` maps a user-facing agent name to config overrides; the spec's own name is always
    usable and means the config defaults. `seed_batched=True` declares that the factory takes a
    tuple of seeds and the agent trains them together (see Agent); otherwise the harness runs one
    seed per agent and the factory gets one int seed. `takes_budget=True`: the factory also gets
    `budget=` (the run's env steps), for agents whose schedules are fractions of it.
    `hyperparams` names the suite table the agent reads (default: its own name), so a peer that
    takes the same keys (sb3_dqn) runs with exactly the suite's `dqn` values.
    `updates(config, budget)`: the gradient steps one seed makes in a run of `budget` env steps,
    for reports that state cost per update; None where the agent has no such count.
    """

    name: str
    factory: Factory
    config_cls: type
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""
    seed_batched: bool = False
    takes_budget: bool = False
    hyperparams: str = ""
    updates: Callable[[Any, int], int] | None = None

    def make_config(self, overrides: Mapping[str, Any]) -> Any:
        """Build the frozen config, coercing strings from the CLI; unknown keys are a ConfigError."""
        fields = {f.name: f for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(unknown)} for agent '{self.name}'; "
                f"valid: {', '.join(fields) or '(none)'}"
            )
        defaults = self.config_cls()
        values = {k: coerce(v, type(getattr(defaults, k)), k) for k, v in overrides.items()}
        return self.config_cls(**values)  # __post_init__ validates ranges

    @staticmethod
    def config_dict(config: Any) -> dict[str, Any]:
        """A config as run specs (and so run keys) hold it: every field, except that a field marked
        `new_field()` is left out while it holds its default, so adding an option to an agent keeps
        the keys of the runs already stored (their spec, rebuilt, gets the default back)."""
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                if not (f.metadata.get(NEW_FIELD) and getattr(config, f.name) == f.default)}


NEW_FIELD = "dqn_bench.new_field"


def new_field(default: Any) -> Any:
    """A config field added after runs were stored: out of their keys at its default (config_dict)."""
    return field(default=default, metadata={NEW_FIELD: True})


def coerce(value: Any, to: type, key: str) -> Any:
    """Turn a CLI/TOML value into the type of the config default (bool/int/float/str/tuple)."""
    if isinstance(value, to) and not (to is int and isinstance(value, bool)):
        return value
    try:
        if to is bool:
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, (int, np.integer)) and value in (0, 1):
                return bool(value)
            raise ValueError
        if to is int:
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if to is float:
            return float(value)
        if to is tuple:
            if isinstance(value, str):
                value = [v for v in value.strip("()[] ").split(",") if v.strip()]
            return tuple(float(v) if "." in str(v) or "e" in str(v).lower() else int(v) for v in value)
        if to is str:
            return str(value)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"bad value {value!r} for '{key}': expected {to.__name__}")


def check(condition: bool, message: str) -> None:
    """Config validation helper for __post_init__: raise a one-line ConfigError."""
    if not condition:
        raise ConfigError(message)


def available_memory() -> int:
    """MemAvailable in bytes (Linux), for agents that size a replay up front; 0 when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


_device = "cpu"


def compute_device() -> str:
    """The torch device a run asked its agents to train on (`run --device`); an agent with no
    network, or one that only runs on CPU, ignores it."""
    return _device


@contextmanager
def on_device(device: str) -> Iterator[None]:
    global _device
    before, _device = _device, device
    try:
        yield
    finally:
        _device = before
