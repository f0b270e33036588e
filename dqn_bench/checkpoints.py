"""Atomic agent + progress checkpoints, loadable with torch.load(weights_only=True), one per seed
batch: `<dir>/<batch>.pt` beside `<batch>.keys.json`, the run keys it holds, so a rerun re-forms
exactly that batch (whatever --workers or --seed-batch say) and resumes it.

numpy arrays become tagged tensors on save and numpy again on load, so nothing but tensors and
plain Python containers goes through pickle.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dqn_bench.files import atomic_write, atomic_write_text, move_aside

TAG = "__ndarray__"


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {TAG: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_encode(v) for v in obj)
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {TAG}:
            return obj[TAG].numpy()
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_decode(v) for v in obj)
    return obj


def write(path: Path, obj: Any) -> None:
    """Atomically save plain containers of numpy arrays / tensors / scalars (torch.save format);
    a failed write (a full disk) raises files.WriteFailed and leaves the old file."""
    encoded = _encode(obj)
    atomic_write(path, lambda f: torch.save(encoded, f))


class Unreadable(Exception):
    """A checkpoint or saved network that cannot be read back (truncated, a disk fault)."""


def read(path: Path) -> Any:
    """What `write` saved, numpy arrays as numpy; loads without unpickling arbitrary objects."""
    try:
        return _decode(torch.load(path, map_location="cpu", weights_only=True))  # a GPU run's loads anywhere
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - torch's zip reader and unpickler raise many kinds
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise Unreadable(f"{path} is unreadable ({type(e).__name__}: {reason[:200]})") from None


def save(path: Path, agent, progress: dict) -> None:
    write(path, {"agent": agent.state_dict(), "progress": progress})


def load(path: Path, agent) -> dict | None:
    """Restore the agent in place and return the loop's progress; None when the checkpoint is
    unreadable (a truncated copy, a disk fault): it is moved aside to `<name>.corrupt`, said in one
    line, and the batch starts over (its records stay exact). The agent is untouched then."""
    try:
        state = read(path)
    except Unreadable as e:
        target = move_aside(path)
        print(f"warning: checkpoint {e}; moved aside to {target.name}, its batch starts over", file=sys.stderr)
        return None
    agent.load_state_dict(state["agent"])
    return state["progress"]


def batch_name(keys: list[str]) -> str:
    """A seed batch's name: its checkpoint, key list and claim (dqn_bench/claims.py) carry it."""
    return hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:16]


def path_for(folder: Path, keys: list[str]) -> Path:
    """The checkpoint of the batch holding these runs; writes its key list beside it."""
    path = Path(folder) / f"{batch_name(keys)}.pt"
    sidecar = path.with_suffix(".keys.json")
    if not sidecar.exists():
        atomic_write_text(sidecar, json.dumps(list(keys)))
    return path


def pending(folder: Path) -> list[list[str]]:
    """Key lists of the batches that have a checkpoint to resume."""
    out = []
    for sidecar in sorted(Path(folder).glob("*.keys.json")):
        if sidecar.with_name(sidecar.name.replace(".keys.json", ".pt")).exists():
            try:
                out.append(json.loads(sidecar.read_text()))
            except (OSError, ValueError):
                continue  # unreadable: that batch just starts afresh
    return out


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_suffix(".keys.json").unlink(missing_ok=True)
