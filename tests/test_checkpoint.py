"""A run killed after a checkpoint and resumed ends exactly as an uninterrupted run."""
import pytest
import torch

from dqn_bench import checkpoints, config as cfg
from dqn_bench.runner import TIMING_KEYS, run_one

SETS = {"budget": "3000", "eval_every": "1000", "eval_episodes": "2", "final_eval_episodes": "2", "learning_starts": "300",
        "train_freq": "16", "gradient_steps": "4", "buffer_size": "2000"}


def strip(record):
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


@pytest.mark.parametrize("agent", ["dqn", "combined_dqn", "discretized_q", "sb3_dqn"])
def test_killed_and_resumed_run_equals_uninterrupted(agent, tmp_path, monkeypatch):
    sets = SETS if agent != "discretized_q" else {k: SETS[k] for k in ("budget", "eval_every", "eval_episodes", "final_eval_episodes")}
    (spec,) = cfg.plan(cfg.load_suite("classic"), [agent], ["CartPole-v1"], 1, sets)
    uninterrupted = run_one(spec)
    assert uninterrupted["status"] == "ok", uninterrupted["error"]

    path = tmp_path / "ckpt.pt"
    real_save, saves = checkpoints.save, []

    def save_then_die(*args):
        real_save(*args)
        saves.append(args[2]["step"])

        if len(saves) == 2:
            raise KeyboardInterrupt  # the process is killed right after its second checkpoint

    monkeypatch.setattr(checkpoints, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_one(spec, path, checkpoint_every=500)
    assert path.exists() and 1000 <= saves[-1] < 3000
    torch.load(path, weights_only=True)  # loadable without unpickling arbitrary objects

    state = checkpoints.read(path)  # say the first attempt took 1000 s: the record must count them
    assert state["progress"]["spent"][1] > 0
    state["progress"]["spent"] = (1000.0, 1000.0)
    checkpoints.write(path, state)

    monkeypatch.setattr(checkpoints, "save", real_save)
    resumed = run_one(spec, path, checkpoint_every=500)
    assert strip(resumed) == strip(uninterrupted)
    assert not path.exists()  # the record replaces the checkpoint
    assert 1000 < resumed["wall_time_s"] < 1000 + uninterrupted["wall_time_s"] + 60  # cost spans both attempts
    assert 1000 < resumed["cpu_time_s"] < 1000 + uninterrupted["cpu_time_s"] + 60
