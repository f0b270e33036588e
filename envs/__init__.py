"""Environment construction by family: `make(env_id, seed, evaluation=...)`."""
from __future__ import annotations

import difflib
import importlib
from typing import Any

import gymnasium as gym

from dqn_bench.protocol import ConfigError


def import_env_package(name: str) -> None:
    """Import a package whose import registers more Gymnasium ids (`--env-package`)."""
    try:
        importlib.import_module(name)
    except ImportError as e:
        raise ConfigError(f"cannot import env package '{name}': {e}") from None


def check_registered(env_id: str) -> None:
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"unknown env '{env_id}'; {hint}valid: any registered Gymnasium id "
            "(`python -m dqn_bench list` shows the suites' envs; --env-package registers more)"
        )


def make(env_id: str, seed: int, *, evaluation: bool = False, **kwargs: Any) -> gym.Env:
    """A seeded env with the family's wrappers. Discrete action spaces only.

    `evaluation` selects the evaluation variant of a family's wrappers (identical for classic
    control); the caller gives the evaluation env its own seed.
    """
    check_registered(env_id)
    try:
        env = gym.make(env_id, **kwargs)
    except TypeError as e:
        raise ConfigError(f"bad env kwargs {kwargs} for '{env_id}': {e}") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ConfigError(
            f"env '{env_id}' has action space {env.action_space}; valid: Discrete action spaces only"
        )
    env.action_space.seed(seed)
    env.reset(seed=seed)  # seeds the env's RNG once; later resets continue its stream
    return env
