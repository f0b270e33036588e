"""Does bf16 pay for the Atari gradient step on a CPU with bf16 units (AMX, AVX512-BF16)?

A stand-in for drq_eps's step in plain `nn` modules (Dopamine-style torso with SAME-like padding,
a 512-unit head, batch 32 of 4x84x84 frames): one forward with backward and two without (the
online, target and double-DQN passes), one thread, timed fp32 and under
`torch.autocast("cpu", torch.bfloat16)`, in NCHW and channels-last. Print the ratios; a bf16 path
would be a new numeric path, so it pays only if the ratio outweighs re-validating the preset.

    python benchmarks/bf16_lever.py [--seconds 10]
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

from atari_update import _timed  # this folder: the script's own path


def steps_per_second(bf16: bool, channels_last: bool, seconds: float) -> float:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 32, 8, 4, padding=2), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, padding=1), nn.ReLU(),
                        nn.Conv2d(64, 64, 3, 1, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(512), nn.ReLU(),
                        nn.Linear(512, 7))
    x = torch.rand(32, 4, 84, 84)
    net(x[:1])  # sizes the lazy layer
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = net(x).float().pow(2).mean()
            with torch.no_grad():
                net(x), net(x)
        loss.backward()

    return _timed(step, seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    seconds = ap.parse_args().seconds
    torch.set_num_threads(1)
    for channels_last in (False, True):
        fp32, bf16 = (steps_per_second(b, channels_last, seconds) for b in (False, True))
        print(f"{'channels-last' if channels_last else 'NCHW':>13}: fp32 {fp32:.1f} steps/s, bf16 autocast "
              f"{bf16:.1f} ({bf16 / fp32:.2f}x)")


if __name__ == "__main__":
    main()
