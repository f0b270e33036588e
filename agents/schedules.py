"""Exploration schedules: constant, linear or exponential in steps or episodes."""
from __future__ import annotations

import math
from dataclasses import dataclass

from dqn_bench.protocol import check

KINDS = ("constant", "linear", "exponential")
UNITS = ("step", "episode")


@dataclass(frozen=True)
class Schedule:
    """value(t) goes from `start` to `end` over `duration` units of t.

    linear reaches `end` exactly at t = duration; exponential closes 99% of the gap by then
    (end + (start - end) * 0.01 ** (t / duration)) and keeps approaching it. With a `delay`, the
    value holds at `start` for the first `delay` units and the schedule runs from there (Dopamine's
    linearly_decaying_epsilon with warmup_steps).
    """

    kind: str
    start: float
    end: float
    duration: int
    delay: int = 0

    def __call__(self, t: int) -> float:
        t -= self.delay
        if t < 0:
            return self.start
        if self.kind == "constant" or self.duration <= 0:
            return self.start if self.kind == "constant" else self.end
        frac = t / self.duration
        if self.kind == "linear":
            return self.start + (self.end - self.start) * min(frac, 1.0)
        return self.end + (self.start - self.end) * math.pow(0.01, frac)


def check_exploration(cfg) -> None:
    """Validate the epsilon fields that every epsilon-greedy agent config carries."""
    check(cfg.epsilon_schedule in KINDS, f"epsilon_schedule must be one of {', '.join(KINDS)}; got '{cfg.epsilon_schedule}'")
    check(cfg.epsilon_unit in UNITS, f"epsilon_unit must be one of {', '.join(UNITS)}; got '{cfg.epsilon_unit}'")
    for name in ("epsilon_start", "epsilon_end", "eval_epsilon"):
        check(0.0 <= getattr(cfg, name) <= 1.0, f"{name} must be in [0, 1], got {getattr(cfg, name)}")
    check(cfg.epsilon_duration >= 0, f"epsilon_duration must be >= 0, got {cfg.epsilon_duration}")
    check(getattr(cfg, "epsilon_warmup", 0) >= 0, f"epsilon_warmup must be >= 0, got {getattr(cfg, 'epsilon_warmup', 0)}")


def epsilon_schedule(cfg) -> Schedule:
    return Schedule(cfg.epsilon_schedule, cfg.epsilon_start, cfg.epsilon_end, cfg.epsilon_duration,
                    getattr(cfg, "epsilon_warmup", 0))
