"""Q-learning on a grid: Box observations binned per dimension, over the tabular learner."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from agents.tabular_q import TabularQ, TabularQConfig
from dqn_bench.protocol import AgentSpec, ConfigError, check


@dataclass(frozen=True)
class DiscretizedQConfig(TabularQConfig):
    bins: tuple = (10,)
    """bins per dimension; one value applies to every dimension"""
    low: tuple = ()
    """clipping bounds per dimension; empty = the observation space's (must then be finite)"""
    high: tuple = ()

    def __post_init__(self):
        super().__post_init__()
        check(len(self.bins) >= 1 and all(int(b) >= 1 for b in self.bins), f"bins must be positive, got {self.bins}")


class Binning:
    """obs[..., d] -> flat cell index[...]; values outside [low, high] land in the edge cells."""

    def __init__(self, low: np.ndarray, high: np.ndarray, bins: np.ndarray):
        self.low, self.bins = low, bins
        self.width = (high - low) / bins
        self.strides = np.cumprod(np.r_[1, bins[:-1]])
        self.n_cells = int(np.prod(bins))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        cell = np.floor((np.asarray(obs, np.float64) - self.low) / self.width).astype(np.int64)
        return np.clip(cell, 0, self.bins - 1) @ self.strides


def _per_dim(values: tuple, dims: int, name: str) -> np.ndarray:
    if len(values) == 1:
        values = values * dims
    if len(values) != dims:
        raise ConfigError(f"{name} needs 1 or {dims} values (one per observation dimension), got {len(values)}")
    return np.asarray(values, np.float64)


def make(observation_space, action_space, config: DiscretizedQConfig, seeds: tuple[int, ...]) -> TabularQ:
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ConfigError(f"discretized_q needs a 1-D Box observation space, got {observation_space}")
    if not isinstance(action_space, spaces.Discrete):
        raise ConfigError(f"discretized_q needs a Discrete action space, got {action_space}")
    dims = observation_space.shape[0]
    low = _per_dim(config.low, dims, "low") if config.low else observation_space.low.astype(np.float64)
    high = _per_dim(config.high, dims, "high") if config.high else observation_space.high.astype(np.float64)
    infinite = [i for i in range(dims) if not (np.isfinite(low[i]) and np.isfinite(high[i]))]
    if infinite:
        raise ConfigError(f"observation dims {infinite} have infinite bounds; set low=... and high=... ({dims} values each)")
    if np.any(high <= low):
        raise ConfigError(f"need high > low in every dimension, got low={low.tolist()} high={high.tolist()}")
    binning = Binning(low, high, _per_dim(config.bins, dims, "bins").astype(np.int64))
    return TabularQ(binning.n_cells, int(action_space.n), config, tuple(seeds), encode=binning)


SPEC = AgentSpec("discretized_q", make, DiscretizedQConfig, description="Q-learning on binned Box observations",
                 seed_batched=True)
