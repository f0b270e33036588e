"""CI regenerates every committed report from the committed records, and runs the smoke suite
end to end (train -> store -> report) into a temp folder."""
from pathlib import Path

import pytest

from dqn_bench import cli

RESULTS = Path(__file__).resolve().parents[1] / "results"
# suites: folders with records and a report (diagnostics/ and phase/ hold other outputs)
COMMITTED = sorted(p.parent.name for p in RESULTS.glob("*/README.md") if (p.parent / "runs").is_dir())


@pytest.mark.parametrize("suite", COMMITTED)
def test_committed_report_matches_its_records(suite, capsys):
    # --allow-ragged: a suite whose runs still land is committed as they land; on a full grid the
    # flag changes nothing, and a report left behind by a new record still differs from a rebuild
    code = cli.main(["report", "--suite", suite, "--out", str(RESULTS), "--check", "--allow-ragged"])
    assert code == 0, capsys.readouterr().err


def test_smoke_suite_end_to_end(run_cli, tmp_path):
    r = run_cli("run", "--suite", "smoke", "--out", tmp_path, "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "smoke" / "runs").glob("*.json"))) == 8
    r = run_cli("report", "--suite", "smoke", "--out", tmp_path, "--reps", "500")
    assert r.returncode == 0, r.stderr
    readme = (tmp_path / "smoke" / "README.md").read_text()
    assert "| dqn |" in readme and "| random |" in readme and "### CartPole-v1" in readme
    for png in ("aggregate.png", "profiles.png", "improvement.png", "sample_efficiency.png"):
        assert (tmp_path / "smoke" / png).read_bytes()[:4] == b"\x89PNG"
    r = run_cli("report", "--suite", "smoke", "--out", tmp_path, "--reps", "500", "--check")
    assert r.returncode == 0, r.stderr


SWEEPS = sorted(p.parent.name for p in (RESULTS / "sweeps").glob("*/sweep.json"))


@pytest.mark.parametrize("name", SWEEPS)
def test_committed_sweep_report_matches_its_records(name):
    from dqn_bench import sweep

    root = RESULTS / "sweeps" / name
    files = sweep.build(root, *sweep.load_definition(root))
    assert sorted(files) == ["README.md", "iqm_by_value.png", "points.csv"]
    stale = [f for f, data in files.items() if (root / f).read_bytes() != data]
    assert not stale, f"{stale} differ from a rebuild; rerun the sweep command in {root / 'README.md'}"


@pytest.mark.parametrize("suite", [s for s in COMMITTED if (RESULTS.parent / "dqn_bench" / "suites" / f"{s}.toml").exists()])
def test_todays_plan_keeps_every_committed_records_key(suite):
    """A new config option (protocol.new_field) must leave the runs already stored as they are:
    planning each stored (agent, env) today gives every committed record's key, so a rerun skips it."""
    from dqn_bench import config as cfg
    from dqn_bench.store import Store

    seeds: dict[tuple[str, str], dict[int, str]] = {}
    for r in Store(RESULTS / suite).records():
        seeds.setdefault((r["spec"]["agent"], r["spec"]["env"]), {})[r["spec"]["seed"]] = r["key"]
    assert seeds
    loaded = cfg.load_suite(suite)
    for (agent, env), stored in sorted(seeds.items()):
        planned = {s.seed: s.key for s in cfg.plan(loaded, [agent], [env], max(stored) + 1)}
        assert {k: planned[k] for k in stored} == stored, f"{suite}: {agent} on {env} no longer plans its stored keys"
