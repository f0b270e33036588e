"""Records: atomic writes, schema check, corrupt files reported and never used."""
import json

import pytest

from dqn_bench import config as cfg
from dqn_bench.runner import run_one
from dqn_bench.store import CorruptRecord, Store, validate


@pytest.fixture(scope="module")
def record():
    spec = cfg.plan(cfg.load_suite("smoke"), ["random"], ["CartPole-v1"], 1,
                    {"budget": "200", "eval_every": "100", "eval_episodes": "2", "final_eval_episodes": "2"})[0]
    return run_one(spec)


def test_write_is_atomic_and_roundtrips(tmp_path, record):
    store = Store(tmp_path)
    path = store.write(record)
    assert json.loads(path.read_text()) == record
    assert [p.name for p in store.runs.iterdir()] == [path.name]  # no temp file left behind
    assert store.finished() == {record["key"]}


def test_corrupt_and_tampered_records_are_reported_not_used(tmp_path, record, capsys):
    store = Store(tmp_path)
    good = store.write(record)
    (store.runs / "truncated.json").write_text(good.read_text()[:100])
    tampered = dict(record, spec={**record["spec"], "seed": 99})
    (store.runs / "tampered.json").write_text(json.dumps(tampered))
    assert [r["key"] for r in store.records()] == [record["key"]]
    err = capsys.readouterr().err
    assert "truncated.json" in err and "tampered.json" in err and "does not match its spec" in err


def test_validate_rejects_missing_fields(record):
    broken = {k: v for k, v in record.items() if k != "status"}
    with pytest.raises(CorruptRecord, match="status"):
        validate(broken)


def test_interrupted_write_leaves_old_record(tmp_path, record, monkeypatch):
    store = Store(tmp_path)
    path = store.write(record)
    before = path.read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        store.write(dict(record, wall_time_s=123.0))
    assert path.read_text() == before
    assert len(list(store.runs.iterdir())) == 1


def test_run_moves_a_corrupt_record_aside_before_redoing_it(run_cli, tmp_path):
    tiny = ["--suite", "smoke", "--agents", "random", "--envs", "CartPole-v1", "--seeds", "1", "--out", tmp_path,
            "--set", "budget=100", "--set", "eval_every=100", "--set", "eval_episodes=1", "--set", "final_eval_episodes=1"]
    assert run_cli("run", *tiny).returncode == 0
    (path,) = (tmp_path / "smoke" / "runs").glob("*.json")
    path.write_text('{"half a rec')  # e.g. a disk that filled up under another tool
    r = run_cli("run", *tiny)
    assert r.returncode == 0, r.stderr
    assert "moved corrupt record aside" in r.stderr and "1 to run" in r.stderr
    assert (path.parent / (path.name + ".corrupt")).read_text() == '{"half a rec'  # nothing lost
    assert json.loads(path.read_text())["status"] == "ok"  # and the run was redone


def test_a_record_names_the_code_its_process_loaded(monkeypatch):
    """git is read once, at import: a run that ends hours later, after new commits, still names the
    commit that trained it, "+dirty" when tracked code differed from it."""
    import re

    from dqn_bench import runner

    loaded = runner.versions()["git_sha"]
    assert re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?|unknown", loaded)

    def no_git(*args, **kwargs):
        raise AssertionError("git read again after import")

    monkeypatch.setattr(runner.subprocess, "run", no_git)
    runner._versions.cache_clear()
    assert runner.versions()["git_sha"] == loaded


def test_a_record_names_the_vector_isa_its_kernels_ran_on():
    """One CPU model name covers AVX2 and AVX-512 parts whose GEMMs differ 2-3x: timings in a record
    are only comparable to others from the same ISA, so the machine string says which."""
    import torch

    from dqn_bench import runner

    isa = torch.backends.cpu.get_cpu_capability()
    assert isa in {"DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX"} or isa.startswith("SVE")
    assert f", {isa}, " in runner.versions()["machine"]
