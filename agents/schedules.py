"""Exploration schedules: constant, linear or exponential in steps or episodes."""
from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("constant", "linear", "exponential")
UNITS = ("step", "episode")


@dataclass(frozen=True)
class Schedule:
    """value(t) goes from `start` to `end` over `duration` units of t.

    linear reaches `end` exactly at t = duration; exponential closes 99% of the gap by then
    (end + (start - end) * 0.01 ** (t / duration)) and keeps approaching it.
    """

    kind: str
    start: float
    end: float
    duration: int

    def __call__(self, t: int) -> float:
        if self.kind == "constant" or self.duration <= 0:
            return self.start if self.kind == "constant" else self.end
        frac = t / self.duration
        if self.kind == "linear":
            return self.start + (self.end - self.start) * min(frac, 1.0)
        return self.end + (self.start - self.end) * math.pow(0.01, frac)
