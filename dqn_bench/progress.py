"""One suite-wide progress count in env steps: a tqdm bar on a terminal, plain periodic lines
otherwise (CI logs), both with throughput and ETA."""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from tqdm import tqdm


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    def __init__(self, total_steps: int, runs: int, stream: TextIO = sys.stderr, every: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.runs, self.stream, self.every, self.clock = total_steps, runs, stream, every, clock
        self.done = self.runs_done = self.failed = 0
        self.resumed = 0  # steps a checkpoint had done: not this process's throughput
        self.start = self.last_line = clock()
        self.tty = stream.isatty()
        self.bar = tqdm(total=total_steps, unit="step", unit_scale=True, file=stream, dynamic_ncols=True,
                        disable=not (self.tty and total_steps), smoothing=0.05)

    def steps(self, n: int, resumed: bool = False) -> None:
        """n env steps done; `resumed`: restored from a checkpoint rather than trained now."""
        self.done = min(self.total, self.done + n)
        self.resumed += n if resumed else 0
        if resumed and self.tty:  # move the bar without a burst in tqdm's rate
            self.bar.n += n
            self.bar.last_print_n = self.bar.n
            self.bar.refresh()
        else:
            self.bar.update(n)
        now = self.clock() if not self.tty else 0.0
        if not self.tty and now - self.last_line >= self.every:
            self._line(now)

    def drop(self, steps: int, runs: int) -> None:
        """Runs this command will not train after all (another command has them)."""
        self.total -= steps
        self.runs -= runs
        self.bar.total = self.total
        self.bar.refresh()

    def run_finished(self, label: str, failed: bool) -> None:
        self.runs_done += 1
        self.failed += failed
        self.bar.set_postfix_str(f"{self.runs_done}/{self.runs} runs, last {label}"
                                 + (f", {self.failed} failed" if self.failed else ""))

    def note(self, text: str) -> None:
        """A line that does not break the bar."""
        if self.tty:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def _line(self, now: float) -> None:
        self.last_line = now
        elapsed = max(now - self.start, 1e-9)
        rate = max(self.done - self.resumed, 0) / elapsed
        eta = _duration((self.total - self.done) / rate) if rate > 0 else "?"
        pct = 100 * self.done / self.total if self.total else 100.0
        print(f"progress: {self.done:,}/{self.total:,} env steps ({pct:.0f}%), {rate:,.0f} steps/s, ETA {eta}, "
              f"{self.runs_done}/{self.runs} runs done" + (f", {self.failed} failed" if self.failed else ""),
              file=self.stream, flush=True)

    def close(self) -> None:
        self.bar.close()
        if not self.tty and self.total:
            self._line(self.clock())
