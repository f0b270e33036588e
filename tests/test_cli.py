"""The CLI end to end: smoke run, resume, listing, an out-of-tree agent, bad input."""
import json
import os
import textwrap
from pathlib import Path

import pytest

from dqn_bench.store import Store

TINY = ["--set", "budget=300", "--set", "eval_every=150", "--set", "eval_episodes=2", "--set", "final_eval_episodes=2"]


def records(root):
    return [json.loads(p.read_text()) for p in sorted(Path(root).glob("*/runs/*.json"))]


def test_smoke_run_then_resume_skips_finished(run_cli, tmp_path):
    r = run_cli("run", "--suite", "smoke", "--seeds", "1", "--workers", "2", "--out", tmp_path, *TINY)
    assert r.returncode == 0, r.stderr
    recs = records(tmp_path)
    assert len(recs) == 4  # 2 agents x 2 envs x 1 seed
    for rec in recs:
        assert rec["status"] == "ok"
        assert rec["eval"]["steps"] == [0, 150, 300]
        assert all(len(ep) == 2 for ep in rec["eval"]["returns"])
        assert rec["final_score"] == pytest.approx(sum(rec["eval"]["returns"][-1]) / 2)
        assert rec["versions"]["torch"].startswith("2.")
        assert len(rec["eval_cpu_s"]) == 3 and all(t >= 0 for t in rec["eval_cpu_s"])  # one per evaluation
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/runs/*.json")}
    r = run_cli("run", "--suite", "smoke", "--seeds", "2", "--workers", "1", "--out", tmp_path, *TINY)
    assert r.returncode == 0, r.stderr
    assert "4 already stored, 4 to run" in r.stderr
    assert len(records(tmp_path)) == 8
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # finished runs untouched


def test_a_suites_seed_batch_is_the_default_and_the_flag_overrides_it(run_cli, tmp_path):
    suite = tmp_path / "batched.toml"
    suite.write_text('agents = ["dqn"]\nenvs = ["CartPole-v1"]\nseeds = 2\nseed_batch = 1\n'
                     "[defaults]\nbudget = 60\neval_every = 60\neval_episodes = 1\n"
                     "[hyperparams.dqn.default]\nlearning_starts = 30\nbatch_size = 8\nhidden = [8]\n")
    r = run_cli("run", "--suite", suite, "--workers", "1", "--out", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    assert "2 to run in 2 seed batch(es) of 1" in r.stderr
    assert [rec["seed_batch"] for rec in records(tmp_path / "a")] == [1, 1]
    r = run_cli("run", "--suite", suite, "--workers", "1", "--seed-batch", "2", "--out", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert "2 to run in 1 seed batch(es) of 2" in r.stderr
    assert [rec["seed_batch"] for rec in records(tmp_path / "b")] == [2, 2]
    assert [rec["threads"] for rec in records(tmp_path / "b")] == [1, 1]
    r = run_cli("run", "--suite", suite, "--seed-batch", "2", "--threads", "2", "--out", tmp_path / "c")
    assert r.returncode == 0, r.stderr
    assert "on 1 worker(s) of 2 threads" in r.stderr
    assert [rec["threads"] for rec in records(tmp_path / "c")] == [2, 2]


def test_a_batch_trains_on_the_threads_asked_and_gives_the_process_its_own_back():
    import torch

    from dqn_bench.runner import cpu_settings

    before = torch.get_num_threads()
    with cpu_settings(3):
        assert torch.get_num_threads() == 3
    with cpu_settings():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_list_names_agents_presets_suites(run_cli):
    r = run_cli("list")
    assert r.returncode == 0
    for name in ("random", "dqn", "double_dqn", "dueling_dqn", "per_dqn", "combined_dqn", "classic", "smoke"):
        assert name in r.stdout


def test_out_of_tree_agent_via_entry_point(run_cli, tmp_path):
    """A third-party package registers an agent in group dqn_bench.agents; the CLI runs it unchanged."""
    pkg = tmp_path / "site"
    (pkg / "always_zero").mkdir(parents=True)
    (pkg / "always_zero" / "__init__.py").write_text(textwrap.dedent("""
        from dataclasses import dataclass
        import numpy as np
        from dqn_bench.protocol import AgentSpec

        @dataclass(frozen=True)
        class Config:
            action: int = 0

        class AlwaysSame:
            def __init__(self, action): self.action = action
            def act(self, obs, *, explore): return np.full(len(obs), self.action)
            def observe(self, batch): return {}
            def state_dict(self): return {}
            def load_state_dict(self, state): pass

        SPEC = AgentSpec("always", lambda o, a, cfg, seed: AlwaysSame(cfg.action), Config,
                         presets={"always_left": {"action": 0}, "always_right": {"action": 1}})
    """))
    dist = pkg / "always_zero-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: always-zero\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dqn_bench.agents]\nalways = always_zero:SPEC\n")
    env = {"PYTHONPATH": f"{pkg}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    assert "always_right" in run_cli("list", env=env).stdout
    r = run_cli("run", "--suite", "smoke", "--agents", "always_right", "--envs", "CartPole-v1",
                "--seeds", "2", "--out", tmp_path / "out", *TINY, env=env)
    assert r.returncode == 0, r.stderr
    assert "in 2 seed batch(es) of 1" in r.stderr  # not seed-batched: one seed per process, unchanged
    for rec in records(tmp_path / "out"):
        assert rec["spec"]["agent"] == "always_right" and rec["spec"]["config"] == {"action": 1}
        assert rec["final_score"] < 15 and rec["seed_batch"] == 1  # pushing right topples the pole fast


BAD = [
    (["--agents", "dqnn"], "unknown agent 'dqnn'; valid:"),
    (["--envs", "CartPole-v9"], "unknown env 'CartPole-v9'"),
    (["--suite", "nope"], "unknown suite 'nope'; valid:"),
    (["--set", "learning_rat=0.1"], "unknown --set key(s) learning_rat; valid:"),
    (["--set", "learning_rate=-0.1"], "learning_rate must be > 0"),
    (["--set", "gamma=1.5"], "gamma must be in [0, 1]"),
    (["--set", "batch_size=512", "--set", "buffer_size=100"], "batch_size must be in [1, buffer_size=100]"),
    (["--set", "gamma=abc"], "bad value 'abc' for 'gamma'"),
    (["--envs", "MountainCarContinuous-v0"], "valid: Discrete action spaces only"),
    (["--agents", "tabular_q"], "agent 'tabular_q' cannot run on 'CartPole-v1'"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--workers", "x"], "invalid int value"),
    (["--seed-batch", "0"], "--seed-batch must be >= 1"),
    (["--threads", "0"], "--threads must be >= 1, got 0"),
    (["--device", "tpu"], "--device tpu is not a device; give cpu, cuda or cuda:N"),
    (["--executor", "spark"], "invalid choice: 'spark'"),
    (["--checkpoint-dir", "pyproject.toml"], "--checkpoint-dir pyproject.toml is not a folder"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_one_line_exit_2_nothing_written(run_cli, tmp_path, args, message):
    r = run_cli("run", "--suite", "smoke", "--out", tmp_path / "out", *args)  # a later --suite wins
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


SUITE = 'agents = ["random"]\nenvs = ["CartPole-v1"]\nseeds = 1\n[defaults]\nbudget = 100\neval_every = 100\neval_episodes = 1\n'
BAD_SUITES = [
    (SUITE.replace("seeds = 1", 'seeds = "three"'), "'seeds' must be an integer, got str 'three'"),
    (SUITE.replace("seeds = 1", "seeds = true"), "'seeds' must be an integer, got bool"),
    ("seed_batch = 0\n" + SUITE, "'seed_batch' must be >= 1, got 0"),
    ("bogus_key = 3\n" + SUITE, "unknown key 'bogus_key'; valid: agents,"),
    (SUITE.replace('envs = ["CartPole-v1"]', 'envs = "CartPole-v1"'), "'envs' must be a list of strings"),
    (SUITE.replace("budget = 100", "budget = 1e5"), "'defaults.budget' must be an integer, got float"),
    (SUITE.replace("budget = 100", "budgit = 100"), "unknown key 'defaults.budgit'; valid: budget,"),
    (SUITE + '[env."CartPole-v1"]\nid = 3\n', "'env.CartPole-v1.id' must be a string"),
    (SUITE + '[env."CartPole-v1"]\nbudgett = 3\n', "unknown key 'env.CartPole-v1.budgett'"),
    (SUITE + "[hyperparams]\ndqn = 3\n", "'hyperparams.dqn' must be a table"),
    (SUITE + "[hyperparams.per_dq.default]\nlearning_rate = 1e-4\n", "'hyperparams.per_dq' names no agent or preset"),
    (SUITE + '[notes.duelling_dqn]\n"CartPole-v1" = "why"\n', "'notes.duelling_dqn' names no agent or preset"),
    (SUITE + '[notes.dqn]\n"CartPole-v1" = 3\n', "'notes.dqn.CartPole-v1' must be a string"),
    (SUITE + '[notes.dqn]\n"CartPole-v0" = "why"\n', "'notes.dqn.CartPole-v0' names no env of this suite"),
    (SUITE + "[defaults.drq_epss]\nfinal_eval_episodes = 100\n", "'defaults.drq_epss' names no agent or preset"),
    (SUITE + "[defaults.drq_eps]\nfinal_eval_episode = 100\n", "unknown key 'defaults.drq_eps.final_eval_episode'"),
    (SUITE + "[defaults.drq_eps]\nfinal_eval_episodes = 1.5\n", "'defaults.drq_eps.final_eval_episodes' must be an integer"),
    ('improvement_over = ["randon"]\n' + SUITE, "'improvement_over' names 'randon', no agent or preset; valid:"),
    ('improvement_over = "random"\n' + SUITE, "'improvement_over' must be a list of strings"),
]


def test_a_presets_own_table_overrides_the_base_agents_values():
    import tomllib

    from dqn_bench import config as cfg

    suite = tomllib.loads(SUITE + textwrap.dedent("""
        [hyperparams.dqn.default]
        learning_rate = 1e-3
        batch_size = 16
        [hyperparams.dqn."CartPole-v1"]
        learning_rate = 2e-3
        [hyperparams.per_dqn."CartPole-v1"]
        learning_rate = 5e-4
        per_alpha = 0.5
    """)) | {"name": "mine"}
    by_agent = {s.agent: s.config for s in cfg.plan(suite, ["dqn", "per_dqn", "double_dqn"])}
    assert by_agent["dqn"]["learning_rate"] == 2e-3 and by_agent["double_dqn"]["learning_rate"] == 2e-3
    assert by_agent["per_dqn"]["learning_rate"] == 5e-4 and by_agent["per_dqn"]["per_alpha"] == 0.5
    assert by_agent["per_dqn"]["prioritized"] and by_agent["per_dqn"]["batch_size"] == 16
    assert by_agent["dqn"]["per_alpha"] == 0.6


def test_an_agents_own_run_defaults_apply_to_it_alone():
    """defaults.<agent>: one agent's evaluation protocol in a shared suite (atari5's drq_eps keeps
    the 100-episode final evaluation it was validated with); an env's table and --set still win."""
    import tomllib

    from dqn_bench import config as cfg

    text = SUITE.replace('envs = ["CartPole-v1"]', 'envs = ["CartPole-v1", "Acrobot-v1"]') + textwrap.dedent("""
        [defaults.double_dqn]
        final_eval_episodes = 100
        eval_episodes = 3
        [env."Acrobot-v1"]
        eval_episodes = 2
    """)
    suite = tomllib.loads(text) | {"name": "mine"}
    runs = {(s.agent, s.env): s for s in cfg.plan(suite, ["dqn", "double_dqn"])}
    assert (runs["dqn", "CartPole-v1"].eval_episodes, runs["dqn", "CartPole-v1"].final_eval_episodes) == (1, None)
    assert (runs["double_dqn", "CartPole-v1"].eval_episodes, runs["double_dqn", "CartPole-v1"].final_eval_episodes) == (3, 100)
    assert runs["double_dqn", "Acrobot-v1"].eval_episodes == 2 and runs["dqn", "Acrobot-v1"].eval_episodes == 2
    # the other agents' runs keep their keys: their spec is what it was without the agent's table
    without = tomllib.loads(text.split("[defaults.double_dqn]")[0]) | {"name": "mine"}
    assert runs["dqn", "CartPole-v1"].key == cfg.plan(without, ["dqn"], ["CartPole-v1"])[0].key
    (overridden,) = cfg.plan(suite, ["double_dqn"], ["CartPole-v1"], sets={"final_eval_episodes": "7"})
    assert overridden.final_eval_episodes == 7


@pytest.mark.parametrize("text,message", BAD_SUITES, ids=[m[:30] for _, m in BAD_SUITES])
def test_bad_suite_file_one_line_naming_file_key_and_type(run_cli, tmp_path, text, message):
    suite = tmp_path / "mine.toml"
    suite.write_text(text)
    r = run_cli("run", "--suite", suite, "--out", tmp_path / "out")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and str(suite) in lines[0], r.stderr
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = run_cli("run", "--suite", "smoke", "--out", blocker, *TINY)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "not writable" in r.stderr
    assert blocker.read_text() == "not a folder"


def test_failed_run_is_recorded_and_suite_goes_on(tmp_path, monkeypatch):
    """A NaN loss fails that run only; the record says why and a rerun skips it."""
    from dqn_bench import cli

    r = cli.main(["run", "--suite", "smoke", "--agents", "dqn", "random", "--envs", "CartPole-v1",
                  "--seeds", "1", "--workers", "1", "--out", str(tmp_path),
                  "--set", "learning_rate=1e30", "--set", "max_grad_norm=0", "--set", "loss=mse",
                  "--set", "learning_starts=32", "--set", "budget=2000", "--set", "eval_every=1000"])
    assert r == 1  # some run failed
    by_agent = {rec["spec"]["agent"]: rec for rec in records(tmp_path)}
    assert by_agent["dqn"]["status"] == "failed"
    assert "non-finite loss" in by_agent["dqn"]["error"]
    assert by_agent["random"]["status"] == "ok"
    assert len(Store(tmp_path / "smoke").finished()) == 2


def test_env_package_registers_more_envs(run_cli, tmp_path):
    pkg = tmp_path / "site" / "short_envs"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import gymnasium as gym\n"
        "gym.register('ShortPole-v0', entry_point='gymnasium.envs.classic_control:CartPoleEnv', max_episode_steps=20)\n"
    )
    env = {"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = run_cli("run", "--suite", "smoke", "--agents", "random", "--envs", "ShortPole-v0", "--seeds", "1",
                "--workers", "2", "--env-package", "short_envs", "--out", tmp_path / "out", *TINY, env=env)
    assert r.returncode == 0, r.stderr
    (rec,) = records(tmp_path / "out")
    assert rec["spec"]["env_id"] == "ShortPole-v0"
    assert max(rec["train"]["episode_returns"]) <= 20  # the package's own time limit
    r = run_cli("run", "--suite", "smoke", "--envs", "ShortPole-v0", "--out", tmp_path / "out2", *TINY)
    assert r.returncode == 2 and "unknown env 'ShortPole-v0'" in r.stderr


def test_a_users_env_without_render_mode_trains_and_reports(run_cli, tmp_path):
    """Many users' envs take no `render_mode`: the harness passes it only when asked to render."""
    pkg = tmp_path / "site" / "my_envs"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""\
        import gymnasium as gym
        import numpy as np

        class Corridor(gym.Env):
            \"\"\"Walk right to the end of a 5-cell corridor; no constructor arguments at all.\"\"\"
            observation_space = gym.spaces.Box(0, 4, (1,), np.float32)
            action_space = gym.spaces.Discrete(2)

            def __init__(self):
                self.x = 0

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                self.x = 0
                return np.array([self.x], np.float32), {}

            def step(self, action):
                self.x = max(0, self.x + (1 if action == 1 else -1))
                done = self.x == 4
                return np.array([self.x], np.float32), float(done), done, False, {}

        gym.register("MyEnv-v0", entry_point=Corridor, max_episode_steps=30)
    """))
    env = {"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = run_cli("run", "--suite", "smoke", "--env-package", "my_envs", "--envs", "MyEnv-v0", "--seeds", "2",
                "--out", tmp_path / "out", *TINY, env=env)
    assert r.returncode == 0, r.stderr
    recs = records(tmp_path / "out")
    assert len(recs) == 4 and all(rec["status"] == "ok" for rec in recs)
    r = run_cli("report", "--suite", "smoke", "--out", tmp_path / "out", "--reps", "200", env=env)
    assert r.returncode == 0, r.stderr
    assert "### MyEnv-v0" in (tmp_path / "out" / "smoke" / "README.md").read_text()


def test_missing_ray_extra_one_line_with_the_install_command(run_cli, tmp_path):
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")  # as if not installed
    env = {"PYTHONPATH": f"{tmp_path / 'noray'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = run_cli("run", "--suite", "smoke", "--executor", "ray", "--out", tmp_path / "out", *TINY, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "pip install -e .[ray]" in r.stderr
    assert not (tmp_path / "out").exists()
    r = run_cli("run", "--suite", "smoke", "--ray-address", "auto", "--out", tmp_path / "out", *TINY)
    assert r.returncode == 2 and "--ray-address needs --executor ray" in r.stderr


def test_device_cuda_without_a_gpu_is_a_one_line_error(run_cli, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU (tests/test_cuda.py runs there)")
    r = run_cli("run", "--suite", "smoke", "--device", "cuda", "--out", tmp_path / "out")
    assert r.returncode == 2 and r.stderr.strip() == (f"error: --device cuda: torch {torch.__version__} sees no CUDA "
                                                      "device here; use --device cpu")
    assert not (tmp_path / "out").exists()
