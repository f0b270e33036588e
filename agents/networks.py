"""Q-networks: an MLP torso for vector observations, Nature CNN for stacked frames, and a
plain or dueling head on either."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class DuelingHead(nn.Module):
    """Q = V + A - mean(A): the mean keeps V and A identifiable (Wang et al. 2016, eq. 9)."""

    def __init__(self, in_features: int, n_actions: int, hidden: int):
        super().__init__()
        self.value = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.advantage = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, n_actions)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.advantage(x)
        return self.value(x) + a - a.mean(dim=1, keepdim=True)


def mlp(obs_dim: int, n_actions: int, hidden: tuple[int, ...], dueling: bool) -> nn.Module:
    layers: list[nn.Module] = []
    width = obs_dim
    torso = hidden[:-1] if dueling else hidden
    for h in torso:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    if dueling:
        layers.append(DuelingHead(width, n_actions, hidden[-1]))
    else:
        layers.append(nn.Linear(width, n_actions))
    return nn.Sequential(*layers)


class NatureCNN(nn.Module):
    """Mnih et al. 2015: 3 conv layers + 512 hidden units; uint8 frames scaled to [0, 1]."""

    def __init__(self, in_channels: int, n_actions: int, dueling: bool):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        features = 64 * 7 * 7
        if dueling:
            self.head: nn.Module = DuelingHead(features, n_actions, 512)
        else:
            self.head = nn.Sequential(nn.Linear(features, 512), nn.ReLU(), nn.Linear(512, n_actions))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x.float() / 255.0))


def numpy_greedy(net: nn.Module):
    """A numpy copy of an MLP's greedy policy, or None for other networks.

    Acting calls the network once per env step on a single observation, where torch's dispatch
    costs ~3x the arithmetic; a numpy snapshot (refreshed after each training round) does not.
    A dueling head's argmax is the advantage stream's argmax (V and mean A shift every action).
    """
    mods = list(net) if isinstance(net, nn.Sequential) else []
    if not mods or not all(isinstance(m, (nn.Linear, nn.ReLU)) for m in mods[:-1]):
        return None
    if isinstance(mods[-1], DuelingHead):
        mods = mods[:-1] + list(mods[-1].advantage)
    elif not isinstance(mods[-1], nn.Linear):
        return None
    layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in mods if isinstance(m, nn.Linear)]

    def greedy(obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        for i, (w, b) in enumerate(layers):
            x = x @ w + b
            if i < len(layers) - 1:
                np.maximum(x, 0, out=x)
        return x.argmax(axis=1)

    return greedy


def q_network(obs_shape: tuple[int, ...], n_actions: int, hidden: tuple[int, ...], dueling: bool) -> nn.Module:
    if len(obs_shape) == 3:  # (stack, 84, 84) frames
        return NatureCNN(obs_shape[0], n_actions, dueling)
    return mlp(int(torch.tensor(obs_shape).prod()), n_actions, hidden, dueling)
