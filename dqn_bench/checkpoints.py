"""Atomic agent + progress checkpoints, loadable with torch.load(weights_only=True), one per seed
batch: `<dir>/<batch>.pt` beside `<batch>.keys.json`, the run keys it holds, so a rerun re-forms
exactly that batch (whatever --workers or --seed-batch say) and resumes it.

numpy arrays become tagged tensors on save and numpy again on load, so nothing but tensors and
plain Python containers goes through pickle.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
    """Atomically save plain containers of numpy arrays / tensors / scalars (torch.save format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(_encode(obj), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path) -> Any:
    """What `write` saved, numpy arrays as numpy; loads without unpickling arbitrary objects."""
    return _decode(torch.load(path, weights_only=True))


def save(path: Path, agent, progress: dict) -> None:
    write(path, {"agent": agent.state_dict(), "progress": progress})


def load(path: Path, agent) -> dict:
    """Restore the agent in place; returns the loop's progress."""
    state = read(path)
    agent.load_state_dict(state["agent"])
    return state["progress"]


def path_for(folder: Path, keys: list[str]) -> Path:
    """The checkpoint of the batch holding these runs; writes its key list beside it."""
    name = hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:16]
    path = Path(folder) / f"{name}.pt"
    sidecar = path.with_suffix(".keys.json")
    if not sidecar.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{sidecar.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(list(keys), f)
        os.replace(tmp, sidecar)
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
