"""One JSON record per run under <out>/<suite>/runs/, written atomically, keyed by the spec hash."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from dqn_bench import checkpoints
from dqn_bench.config import RunSpec
from dqn_bench.files import atomic_write_text, move_aside
from dqn_bench.protocol import ConfigError

REQUIRED = {
    "schema": int, "key": str, "spec": dict, "status": str, "versions": dict,
    "wall_time_s": (int, float), "steps_per_s": (int, float),
}


class CorruptRecord(ValueError):
    pass


def validate(record: object) -> dict:
    if not isinstance(record, dict):
        raise CorruptRecord("not a JSON object")
    for key, typ in REQUIRED.items():
        if not isinstance(record.get(key), typ):
            raise CorruptRecord(f"field '{key}' missing or not {typ}")
    if record["status"] not in ("ok", "failed"):
        raise CorruptRecord(f"status '{record['status']}' is not ok/failed")
    try:
        key = RunSpec.from_json(record["spec"]).key
    except TypeError as e:
        raise CorruptRecord(f"spec does not match RunSpec: {e}") from None
    if key != record["key"]:
        raise CorruptRecord(f"key {record['key']} does not match its spec (hash {key})")
    if record["status"] == "ok":
        ev = record.get("eval")
        if not (isinstance(ev, dict) and len(ev.get("steps", [])) == len(ev.get("returns", [])) > 0):
            raise CorruptRecord("eval curve missing or ragged")
        if not isinstance(record.get("final_score"), (int, float)):
            raise CorruptRecord("final_score missing")
    return record


class Store:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.runs = self.root / "runs"

    def check_writable(self) -> None:
        """Fail before any work if the folder cannot take records."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.runs):
                pass
        except OSError as e:
            raise ConfigError(f"output folder {self.root} is not writable ({e.strerror}); choose another with --out") from None

    def path_for(self, spec: RunSpec) -> Path:
        return self.runs / f"{spec.name}.json"

    def model_path(self, spec: RunSpec) -> Path:
        """The run's final greedy network (git-ignored: see .gitignore to keep them)."""
        return self.root / "models" / f"{spec.name}.pt"

    def write(self, record: dict) -> Path:
        """Write a record; a record carrying its agent's final `policy` has it saved under models/
        first, so a stored record never points at a missing network."""
        record = dict(record)
        policy = record.pop("policy", None)
        spec = RunSpec.from_json(record["spec"])
        validate(record)
        if policy is not None:
            checkpoints.write(self.model_path(spec), {"spec": record["spec"], "policy": policy})
        path = self.path_for(spec)
        # one compact line: long runs carry tens of thousands of episode returns
        atomic_write_text(path, json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
        return path

    def scan(self) -> Iterator[tuple[Path, dict | CorruptRecord]]:
        for path in sorted(self.runs.glob("*.json")):
            try:
                yield path, validate(json.loads(path.read_text()))
            except (json.JSONDecodeError, UnicodeDecodeError, CorruptRecord) as e:
                yield path, CorruptRecord(f"{path}: {e}")

    def records(self) -> list[dict]:
        """Every valid record; corrupt files are reported on stderr, never used."""
        good = []
        for path, rec in self.scan():
            if isinstance(rec, CorruptRecord):
                print(f"warning: skipping corrupt record {rec}", file=sys.stderr)
            else:
                good.append(rec)
        return good

    def done(self, spec: RunSpec, retry_failed: bool = False) -> bool:
        """Whether the run is stored (as ok, or failed unless `retry_failed`): one file read."""
        try:
            record = validate(json.loads(self.path_for(spec).read_text()))
        except (OSError, ValueError, CorruptRecord):
            return False
        return record["status"] == "ok" or not retry_failed

    def finished(self, retry_failed: bool = False) -> set[str]:
        return {r["key"] for r in self.records() if r["status"] == "ok" or not retry_failed}

    def quarantine_corrupt(self) -> list[Path]:
        """Move every corrupt record aside to `<name>.corrupt` (never overwritten, never deleted),
        so a run that redoes it cannot destroy what was there. Returns the new paths."""
        moved = []
        for path, rec in self.scan():
            if isinstance(rec, CorruptRecord):
                target = move_aside(path)
                print(f"warning: moved corrupt record aside to {target.name} ({rec}); its run will be redone",
                      file=sys.stderr)
                moved.append(target)
        return moved
