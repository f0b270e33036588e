"""Environment construction by family: `make(env_id, seed, evaluation=...)`."""
from __future__ import annotations

import difflib
import importlib
from typing import Any

import ale_py
import gymnasium as gym
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

from dqn_bench.protocol import ConfigError

gym.register_envs(ale_py)  # ALE/*-v5 ids
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stderr at each ROM load

# Machado et al. 2018 protocol: sticky actions, no life-loss terminal, no no-op starts (sticky
# actions already randomize), full episodes up to 108k frames; Nature DQN preprocessing.
# terminal_on_life_loss (the Atari-100k protocol): a lost life is a terminal for learning only
# (`info["life_lost"]`, which the harness passes to the agent as `terminated`); the game and its
# score go on, so an episode is always a whole game. (gymnasium's own flag would end the game's
# episode at each life, and the harness would reset the whole game: not that protocol.)
ATARI_DEFAULTS = {
    "repeat_action_probability": 0.25,
    "full_action_space": False,
    "max_num_frames_per_episode": 108_000,
    "terminal_on_life_loss": False,
    "noop_max": 0,
    "frame_skip": 4,
    "screen_size": 84,
    "frame_stack": 4,
}
_ALE_KEYS = ("repeat_action_probability", "full_action_space", "max_num_frames_per_episode")


def family(env_id: str) -> str:
    return "atari" if env_id.startswith("ALE/") else "default"


def resolve_kwargs(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every knob of the env family, explicit, so a run record states its full protocol."""
    if family(env_id) != "atari":
        return dict(kwargs)
    unknown = sorted(set(kwargs) - set(ATARI_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown Atari option(s) {', '.join(unknown)}; valid: {', '.join(ATARI_DEFAULTS)}")
    return {**ATARI_DEFAULTS, **kwargs}


def _make_atari(env_id: str, evaluation: bool, kw: dict[str, Any], render_mode: str | None) -> gym.Env:
    env = gym.make(env_id, frameskip=1, **_render(render_mode), **{k: kw[k] for k in _ALE_KEYS})
    env = AtariPreprocessing(env, noop_max=kw["noop_max"], frame_skip=kw["frame_skip"],
                             screen_size=kw["screen_size"])
    env = FrameStackObservation(env, kw["frame_stack"])
    # evaluation plays whole games and signals nothing: the reported score is the game score
    return LifeLoss(env) if kw["terminal_on_life_loss"] and not evaluation else env


class LifeLoss(gym.Wrapper):
    """info["life_lost"]: this step lost a life and the game goes on (the DrQ authors' env, after
    Kaixhin's Rainbow: checked after the whole frame skip, not on the game's last life)."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = self.env.unwrapped.ale.lives()
        info["life_lost"] = bool(lives < self.lives and not terminated)
        self.lives = lives
        return obs, reward, terminated, truncated, info


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


def _render(render_mode: str | None) -> dict[str, str]:
    """render_mode only when a caller asks to render: many users' envs take no such argument."""
    return {"render_mode": render_mode} if render_mode else {}


def make(env_id: str, seed: int, *, evaluation: bool = False, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """A seeded env with the family's wrappers. Discrete action spaces only.

    `evaluation` selects the evaluation variant of a family's wrappers (identical for classic
    control); the caller gives the evaluation env its own seed. `render_mode` (e.g. "rgb_array"
    for video) changes what the env draws, never its dynamics.
    """
    check_registered(env_id)
    try:
        if family(env_id) == "atari":
            env = _make_atari(env_id, evaluation, resolve_kwargs(env_id, kwargs), render_mode)
        else:
            env = gym.make(env_id, **_render(render_mode), **kwargs)
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
