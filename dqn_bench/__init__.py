"""dqn_bench: one agent protocol, a resumable harness over Gymnasium, rliable reports.

In a notebook::

    import dqn_bench
    runs = dqn_bench.load_runs("classic")            # one row per stored run
    curves = dqn_bench.load_curves("classic")        # one row per evaluation point
    dqn_bench.run("smoke", agents=["dqn"], seeds=2, learning_rate=1e-3)
    dqn_bench.report("smoke")

`run` and `report` do exactly what the CLI does and raise `ConfigError` for bad input.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ConfigError", "load_curves", "load_runs", "report", "run"]

if TYPE_CHECKING:
    from dqn_bench.api import load_curves, load_runs, report, run
    from dqn_bench.protocol import ConfigError


def __getattr__(name: str) -> Any:
    # imported on first use: `import dqn_bench.protocol` (every agent does) stays light
    if name == "ConfigError":
        from dqn_bench.protocol import ConfigError

        return ConfigError
    if name in __all__:
        from dqn_bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'dqn_bench' has no attribute {name!r}")
