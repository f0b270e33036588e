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
_saving = 0  # checkpointing training loops running in this process
_deferred = 0  # loops that raise a stop themselves, between library calls (deferred())
_worker = False  # a pool worker: its parent tells the user, and may signal it more than once


def _handler(signum, frame) -> None:
    global _asked
    if _saving and _asked is None:
        _asked = signum
        if not _worker:
            print("stopping: the run saves its checkpoint at the end of this step (an evaluation in progress "
                  "finishes first); Ctrl-C again stops at once", file=sys.stderr, flush=True)
        return
    if _saving and _worker:  # a pool shutting down signals its workers again: the save goes on
        return
    if _deferred and _asked is None:
        _asked = signum
        return
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
def saving(active: bool = True) -> Iterator[None]:
    """A checkpointing training loop: inside, a first signal waits for `asked()` at a step boundary."""
    global _saving
    _saving += active
    try:
        yield
    finally:
        _saving -= active


@contextmanager
def deferred() -> Iterator[None]:
    """Inside, a first signal only marks the stop and the loop raises it with `check()` between the calls
    of a library that must not be interrupted halfway: a Stopped raised inside one of Ray's core-worker
    calls (the handler runs wherever Python code next runs, in Ray's own callbacks too) can leave it to
    crash while it shuts down. A second signal stops at once."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1


def asked() -> int | None:
    return _asked


def check() -> None:
    """Raise Stopped if a stop was asked (a loop that could not save has nothing to wait for)."""
    if _asked is not None:
        raise Stopped(_asked)
