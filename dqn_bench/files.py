"""File operations the store, checkpoints and reports share: atomic writes that fail as one
`WriteFailed` naming the path (a full disk included), and moving a broken file aside."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable


class WriteFailed(Exception):
    """A record, checkpoint or report could not be written (disk full, no permission, ...).
    Nothing was half-written: readers still see the old file, or none."""

    def __init__(self, path: str, reason: str):
        super().__init__(path, reason)
        self.path, self.reason = path, reason

    def __str__(self) -> str:
        return (f"cannot write {self.path}: {self.reason}; nothing was half-written: fix that and rerun the same "
                "command to continue (stored runs are skipped, checkpointed batches resume)")


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """write(file) into a temp file beside `path`, fsync, rename over `path`: readers see the old
    file or the new one, never half of one. Any OSError (ENOSPC, EACCES, ...) -> WriteFailed."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are shared data
        os.replace(tmp, path)
    except OSError as e:
        raise WriteFailed(str(path), e.strerror or str(e)) from None
    finally:
        if tmp is not None and os.path.exists(tmp):  # KeyboardInterrupt too: no temp file left
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def move_aside(path: Path, suffix: str = ".corrupt") -> Path:
    """Rename a broken file to `<name><suffix>` (`.1`, `.2`, ... if taken): never overwritten,
    never deleted, so redoing its work cannot destroy what was there. Returns the new path."""
    target = path.with_name(path.name + suffix)
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}{suffix}.{n}")
        n += 1
    os.replace(path, target)
    return target
