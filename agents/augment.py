"""DrQ's image augmentation for training batches of stacked frames (Kostrikov et al. 2020, as
Dopamine's atari_100k agent applies it: `drq_image_augmentation` in
dopamine/labs/atari_100k/atari_100k_rainbow_agent.py).

Each sampled stack gets one random shift, the same for its frames: replicate-pad PAD pixels, crop
back to the original size at an offset drawn from [0, 2 * PAD) per axis (Dopamine's range; the
DrQ authors' kornia crop also allows 2 * PAD), then an intensity factor 1 + 0.05 * clip(N(0, 1),
-2, 2). Seed k draws from its own generator, so its augmentations never depend on its batch mates.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

PAD = 4
INTENSITY = 0.05


class Augment:
    def __init__(self, rngs: list[np.random.Generator]):
        self.rngs = rngs

    def draw(self, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Seed k's shifts [n, 2] (rows, columns) and intensity factors [n] for n stacks."""
        rng = self.rngs[k]
        shifts = rng.integers(0, 2 * PAD, size=(n, 2))
        factors = 1.0 + INTENSITY * np.clip(rng.standard_normal(n), -2.0, 2.0)
        return shifts, factors.astype(np.float32)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x[K, B, C, H, W] uint8 -> augmented float32 on the same 0..255 scale (the network
        divides by 255, so this equals Dopamine's augmentation of x / 255)."""
        k, b = x.shape[:2]
        draws = [self.draw(i, b) for i in range(k)]
        shifts = torch.as_tensor(np.concatenate([d[0] for d in draws]))
        factors = torch.as_tensor(np.concatenate([d[1] for d in draws]), device=x.device)
        return shift_and_scale(x.flatten(0, 1), shifts, factors).unflatten(0, (k, b))


def shift_and_scale(x: torch.Tensor, shifts: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """x[N, C, H, W] -> each image replicate-padded by PAD, cropped at (shifts[n, 0], shifts[n, 1])
    back to H x W, times factors[n]."""
    n, c, h, w = x.shape
    padded = F.pad(x.float(), (PAD, PAD, PAD, PAD), mode="replicate")
    out = torch.empty(n, c, h, w, device=x.device)
    for i, (dy, dx) in enumerate(shifts.tolist()):  # a slice copy per image: cheaper than index math
        out[i] = padded[i, :, dy: dy + h, dx: dx + w]
    return out.mul_(factors[:, None, None, None])
