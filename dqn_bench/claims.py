"""Claims on seed batches, so commands sharing one results folder (two terminals, machines on a
shared filesystem, a Ray job beside a local one) train each batch once.

A claim is an exclusive OS lock (flock) on `<checkpoint dir>/<batch>.claim`, held by the command
that will store the batch's records from just before its batch starts until they are stored. The
kernel drops the lock when that process dies, however it dies (kill -9 included; on NFS, when the
client's lease lapses), so a dead command never holds a batch: the next command to look takes it
over, and resumes the batch's checkpoint if there is one. The file names its owner (host, pid,
since) for the one line a skipping command prints.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from dqn_bench import checkpoints
from dqn_bench.config import RunSpec

CLAIMED, BUSY, FINISHED = "claimed", "busy", "finished"


def describe(batch: Sequence[RunSpec]) -> str:
    """'dqn on CartPole-v1, seeds 0-4' for messages."""
    seeds = sorted(s.seed for s in batch)
    span = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    return f"{batch[0].agent} on {batch[0].env}, {span}"


class Claims:
    """Claims of one command on the batches in `folder`; `finished(spec)` says whether the store
    already holds a run (done elsewhere since this command planned)."""

    def __init__(self, folder: Path, finished: Callable[[RunSpec], bool], say: Callable[[str], None] = print):
        self.folder, self.finished, self.say = Path(folder), finished, say
        self.held: dict[str, tuple[int, Path]] = {}  # batch name -> (locked fd, claim file)
        self.batch_of: dict[str, str] = {}  # run key -> batch name, while its record is not stored

    def claimed(self, batches: Iterable[Sequence[RunSpec]],
                left: Callable[[Sequence[RunSpec]], None] = lambda batch: None) -> Iterator[list[RunSpec]]:
        """The batches this command may train, each claimed as it is handed out (pull them as
        workers free up). Batches in flight elsewhere are skipped with one line each, then looked
        at once more at the end: an owner that died meanwhile left them to take over. `left(batch)`
        hears of each batch this command leaves to others."""
        busy = []
        for batch in batches:
            state = self.take(batch)
            if state == CLAIMED:
                yield list(batch)
            elif state == BUSY:
                busy.append(batch)
            else:
                left(batch)
        for batch in busy:  # said once already: the second look is quiet
            if self.take(batch, say=False) == CLAIMED:
                yield list(batch)
            else:
                left(batch)

    def take(self, batch: Sequence[RunSpec], say: bool = True) -> str:
        """Claim a batch -> CLAIMED, or BUSY (a live command holds it) or FINISHED (its runs are
        stored), each said in one line unless `say` is False."""
        name = checkpoints.batch_name([s.key for s in batch])
        path = self.folder / f"{name}.claim"
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if say:
                    self.say(f"skipping {describe(batch)}: in flight elsewhere ({_owner(path)})")
                return BUSY
            try:  # the file we locked may have been released and unlinked meanwhile: lock the current one
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        if all(self.finished(s) for s in batch):
            _unlink_and_close(fd, path)
            if say:
                self.say(f"skipping {describe(batch)}: finished elsewhere")
            return FINISHED
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        self.held[name] = (fd, path)
        self.batch_of |= {s.key: name for s in batch}
        return CLAIMED

    def stored(self, key: str) -> None:
        """A run's record is stored; the batch's claim goes once all of its records are."""
        name = self.batch_of.pop(key, None)
        if name is not None and name not in self.batch_of.values():
            _unlink_and_close(*self.held.pop(name))

    def release(self) -> None:
        """Drop every claim still held (the command ends, or stops on an error)."""
        for fd, path in self.held.values():
            _unlink_and_close(fd, path)
        self.held.clear()
        self.batch_of.clear()


def _unlink_and_close(fd: int, path: Path) -> None:
    path.unlink(missing_ok=True)  # while locked: a waiting command then locks a fresh file
    os.close(fd)


def _owner(path: Path) -> str:
    try:
        owner = json.loads(path.read_text())
        return f"host {owner['host']}, pid {owner['pid']}, since {owner['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner not yet written"

