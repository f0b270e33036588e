"""Stopping a run without losing its steps: Ctrl-C, or SIGTERM from a scheduler's preemption or
`kill`. While a checkpointing training loop runs in this process, the first signal only asks it to
stop: it finishes its step (an evaluation in progress too), saves its checkpoint there and raises
Stopped, so a rerun resumes where it stopped. A second signal, or one while nothing can be saved,
stops at once (the last periodic checkpoint stays)."""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A stop asked by a signal; the command exits with 128 + signum."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum


_asked: int | None = None  # the signal that asked this process to stop
_deferring: list[str] = []  # one notice per loop inside deferred() ("": says nothing)
_busy = 0  # batches running in this process: a pool worker with none is idle
_worker = False  # a pool worker: its parent tells the user, and may signal it more than once
SAVING = ("stopping: the run saves its checkpoint at the end of this step (an evaluation in progress finishes "
          "first); Ctrl-C again stops at once")


def _handler(signum, frame) -> None:
    global _asked
    if _deferring and _asked is None:
        _asked = signum
        if _deferring[-1] and not _worker:
            print(_deferring[-1], file=sys.stderr, flush=True)
        return
    if _deferring and _worker:  # a pool shutting down signals its workers again: the save goes on
        return
    if _worker and not _busy:  # idle: nothing to save, and the parent tells the user (no traceback)
        raise SystemExit(128 + signum)
    raise Stopped(signum)


def install(signals=SIGNALS, worker: bool = False) -> dict:
    """Route `signals` to the handler (main thread only: elsewhere nothing changes); returns the
    handlers replaced. A `worker` of a process pool always finishes its checkpoint once asked."""
    global _worker
    if threading.current_thread() is not threading.main_thread():
        return {}
    _worker = worker
    return {s: signal.signal(s, _handler) for s in signals}


@contextmanager
def handled(signals=SIGNALS) -> Iterator[None]:
    """The handler inside, the previous handlers (and no pending stop) after."""
    global _asked
    before = install(signals)
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        _asked = None


@contextmanager
def deferred(notice: str = "", active: bool = True) -> Iterator[None]:
    """Inside (if `active`), a first signal only marks the stop (and prints `notice`): the loop raises it
    with `check()` where stopping is safe. A checkpointing loop saves its step first (saving()); the Ray
    driver waits for Ray's call to return, since a Stopped raised inside one of Ray's core-worker calls
    (the handler runs wherever Python code next runs, in Ray's callbacks too) can leave Ray to crash
    while it shuts down. A second signal stops at once."""
    if active:
        _deferring.append(notice)
    try:
        yield
    finally:
        if active:
            _deferring.remove(notice)  # any equal notice: a generator may leave out of nesting order


def saving(active: bool = True):
    """A checkpointing training loop: a first signal waits for `asked()` at a step boundary."""
    return deferred(SAVING, active)


@contextmanager
def busy() -> Iterator[None]:
    """A batch runs in this process (a pool worker outside one is idle)."""
    global _busy
    _busy += 1
    try:
        yield
    finally:
        _busy -= 1


def asked() -> int | None:
    return _asked


def check() -> None:
    """Raise Stopped if a stop was asked (a loop that could not save has nothing to wait for)."""
    if _asked is not None:
        raise Stopped(_asked)
