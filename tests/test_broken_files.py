"""A broken checkpoint and a full disk: nothing half-written, one line, and a rerun finishes
with records equal to an uninterrupted run's."""
import errno
import json
import os
from pathlib import Path

import pytest

from dqn_bench import checkpoints, cli, files

RUN = ["run", "--suite", "smoke", "--agents", "dqn", "--envs", "CartPole-v1", "--seeds", "2", "--workers", "1",
       "--checkpoint-every", "200", "--set", "budget=600", "--set", "eval_every=200", "--set", "eval_episodes=2",
       "--set", "final_eval_episodes=2"]


def run(out: Path) -> int:
    return cli.main([*RUN, "--out", str(out)])


def results(out: Path) -> list[dict]:
    """What a record says about learning (no timings), seed order."""
    recs = [json.loads(p.read_text()) for p in sorted((out / "smoke" / "runs").glob("*.json"))]
    return [{k: r[k] for k in ("key", "status", "eval", "train", "final_score")} for r in recs]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    assert run(out) == 0
    return results(out)


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def fail_writes(monkeypatch, match: str, after: int = 0):
    """fsync raises ENOSPC for the temp files whose path holds `match`, after the first `after` of
    them: a disk that fills up."""
    real, seen = os.fsync, []

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if match in name:
            seen.append(name)
            if len(seen) > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)


def test_a_truncated_checkpoint_is_moved_aside_and_its_batch_starts_over(tmp_path, monkeypatch, capsys, uninterrupted):
    real_save, saves = checkpoints.save, []

    def save_then_die(*args):
        real_save(*args)
        saves.append(1)
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save", save_then_die)
    assert run(tmp_path) == 130
    monkeypatch.setattr(checkpoints, "save", real_save)
    (ckpt,) = (tmp_path / "smoke" / "checkpoints").glob("*.pt")
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # a truncated copy
    capsys.readouterr()
    assert run(tmp_path) == 0
    err = capsys.readouterr().err
    (line,) = [l for l in err.splitlines() if "moved aside" in l]
    assert str(ckpt) in line and "starts over" in line
    assert ckpt.with_name(ckpt.name + ".corrupt").read_bytes() == data[: len(data) // 2]  # nothing lost
    assert not ckpt.exists() and results(tmp_path) == uninterrupted  # started over: records exact


def test_a_full_disk_while_a_record_is_written_stops_in_one_line_and_a_rerun_continues(
        tmp_path, monkeypatch, capsys, uninterrupted):
    fail_writes(monkeypatch, "/smoke/runs/")
    assert run(tmp_path) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot write ") and "/smoke/runs/CartPole-v1__dqn__s" in err[-1]
    assert "No space left on device" in err[-1] and "rerun the same command" in err[-1]
    assert not list((tmp_path / "smoke" / "runs").glob("*.json")) and not leftovers(tmp_path)
    (ckpt,) = (tmp_path / "smoke" / "checkpoints").glob("*.pt")  # the last checkpoint stays for the rerun
    assert checkpoints.read(ckpt)["progress"]["step"] == 400
    monkeypatch.undo()
    assert run(tmp_path) == 0
    assert results(tmp_path) == uninterrupted and not ckpt.exists()


def test_a_full_disk_while_a_checkpoint_is_written_keeps_the_last_one_and_a_rerun_resumes_it(
        tmp_path, monkeypatch, capsys, uninterrupted):
    fail_writes(monkeypatch, "/smoke/checkpoints/.", after=2)  # the key list and step 200 pass, 400 fails
    assert run(tmp_path) == 1
    err = capsys.readouterr().err.strip().splitlines()
    (ckpt,) = (tmp_path / "smoke" / "checkpoints").glob("*.pt")
    assert err[-1].startswith(f"error: cannot write {ckpt}: No space left on device")
    assert checkpoints.read(ckpt)["progress"]["step"] == 200  # the previous one, whole
    assert not leftovers(tmp_path) and not list((tmp_path / "smoke" / "runs").glob("*.json"))
    monkeypatch.undo()
    assert run(tmp_path) == 0
    assert results(tmp_path) == uninterrupted and not ckpt.exists()
