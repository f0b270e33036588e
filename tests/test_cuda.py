"""`run --device cuda`: the DQN family trains on a GPU as on the CPU (same initial weights, same
batches, the same arithmetic in another float rounding). Skipped where torch sees no GPU (CI has
none); run on a GPU machine with `pytest tests/test_cuda.py`."""
import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents.dqn import PRESETS, DQNConfig, make
from dqn_bench import checkpoints
from dqn_bench.protocol import Transitions, on_device

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

IMAGE = spaces.Box(0, 255, (4, 84, 84), np.uint8)
VECTOR = spaces.Box(-1, 1, (4,), np.float32)


def transitions(space, k, n, seed=0):
    rng = np.random.default_rng(seed)

    def obs():
        if space.dtype == np.uint8:
            return rng.integers(0, 255, (k, *space.shape), dtype=np.uint8)
        return rng.normal(size=(k, *space.shape)).astype(np.float32)
    return [Transitions(obs(), rng.integers(4, size=k), rng.normal(size=k).astype(np.float32), obs(),
                        rng.random(k) < 0.1, np.zeros(k, bool)) for _ in range(n)]


@pytest.mark.parametrize("space,config", [
    (VECTOR, DQNConfig(hidden=(64, 64), learning_starts=16, batch_size=8, double=True, dueling=True, n_step=3,
                       prioritized=True)),
    (IMAGE, DQNConfig(**{**PRESETS["drq_eps"], "learning_starts": 8, "batch_size": 4, "buffer_size": 64})),
], ids=["mlp-double-dueling-per", "drq_eps"])
def test_a_gpu_agent_trains_as_the_cpu_agent_up_to_float_rounding(space, config):
    with on_device("cuda"):
        gpu = make(space, spaces.Discrete(4), config, (0, 1))
    cpu = make(space, spaces.Discrete(4), config, (0, 1))
    assert all(p.is_cuda for p in gpu.q.parameters())
    for a, b in zip(gpu.q.parameters(), cpu.q.parameters(), strict=True):
        assert torch.equal(a.cpu(), b)  # drawn on the CPU: the same start on every device
    for batch in transitions(space, 2, 24):
        gpu_metrics, cpu_metrics = gpu.observe(batch), cpu.observe(batch)
        if "loss" in cpu_metrics:
            np.testing.assert_allclose(gpu_metrics["loss"], cpu_metrics["loss"], rtol=1e-3, atol=1e-5)
    for a, b in zip(gpu.q.parameters(), cpu.q.parameters(), strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-3, atol=1e-5)
    obs = transitions(space, 2, 1, seed=1)[0].obs
    assert np.array_equal(gpu.act(obs, explore=False), cpu.act(obs, explore=False))
    episodes = np.stack([obs, obs], axis=1)
    assert np.array_equal(gpu.act_episodes(episodes, np.ones((2, 2), bool)), cpu.act_episodes(episodes, np.ones((2, 2), bool)))


def test_a_gpu_checkpoint_resumes_on_the_cpu(tmp_path):
    c = DQNConfig(**{**PRESETS["drq_eps"], "learning_starts": 8, "batch_size": 4, "buffer_size": 64})
    with on_device("cuda"):
        gpu = make(IMAGE, spaces.Discrete(4), c, (0,))
    for batch in transitions(IMAGE, 1, 12):
        gpu.observe(batch)
    checkpoints.write(tmp_path / "c.pt", {"agent": gpu.state_dict()})
    cpu = make(IMAGE, spaces.Discrete(4), c, (0,))
    cpu.load_state_dict(checkpoints.read(tmp_path / "c.pt")["agent"])
    for a, b in zip(gpu.q.parameters(), cpu.q.parameters(), strict=True):
        assert torch.equal(a.cpu(), b)
    cpu.observe(transitions(IMAGE, 1, 1, seed=2)[0])  # and trains on


def test_run_device_cuda_end_to_end(run_cli, tmp_path):
    r = run_cli("run", "--suite", "smoke", "--agents", "dqn", "--seeds", "2", "--device", "cuda", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "smoke" / "runs").glob("*.json")]
    assert records and all(rec["status"] == "ok" for rec in records)
    assert all(torch.cuda.get_device_name() in rec["versions"]["machine"] for rec in records)


def test_an_agent_without_a_network_runs_on_the_cpu_and_its_record_names_no_gpu(run_cli, tmp_path):
    r = run_cli("run", "--suite", "smoke", "--agents", "random", "--seeds", "1", "--device", "cuda", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    (path,) = (tmp_path / "smoke" / "runs").glob("*.json")
    assert torch.cuda.get_device_name() not in json.loads(path.read_text())["versions"]["machine"]
