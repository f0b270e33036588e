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
    old = agent == "dqn"  # as a checkpoint written before evaluations were timed
    if old:
        for p in state["progress"]["seeds"]:
            del p["eval_cpu_s"]
    checkpoints.write(path, state)

    monkeypatch.setattr(checkpoints, "save", real_save)
    resumed = run_one(spec, path, checkpoint_every=500)
    assert strip(resumed) == strip(uninterrupted)
    assert not path.exists()  # the record replaces the checkpoint
    assert 1000 < resumed["wall_time_s"] < 1000 + uninterrupted["wall_time_s"] + 60  # cost spans both attempts
    assert 1000 < resumed["cpu_time_s"] < 1000 + uninterrupted["cpu_time_s"] + 60
    # every evaluation timed, those before the checkpoint included; none when the checkpoint lacks them
    if old:
        assert "eval_cpu_s" not in resumed
    else:
        assert len(resumed["eval_cpu_s"]) == len(resumed["eval"]["steps"]) == 4


def test_a_checkpoint_with_narrow_weights_saved_as_in_out_loads_into_todays_layout():
    """Checkpoints and policies written before layers with out < in were stored [K, out, in]
    hold those weights (and their Adam moments) as [K, in, out]: loading puts them back."""
    import gymnasium as gym
    import numpy as np

    from agents.dqn import DQN, DQNConfig
    from dqn_bench.protocol import Transitions

    space = gym.spaces.Box(-1, 1, (4,), np.float32)
    cfg_ = DQNConfig(hidden=(8, 8), learning_starts=4, batch_size=4, buffer_size=50, train_freq=1, dueling=True)
    agent = DQN(space, 2, cfg_, (0, 1))
    for _ in range(6):  # a few Adam steps, so the moments are not zero
        o = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
        agent.observe(Transitions(o, np.array([0, 1]), np.ones(2, np.float32), o, np.zeros(2, bool), np.zeros(2, bool)))
    state = agent.state_dict()
    ps = agent.params
    narrow = [i for i in range(0, len(ps), 2) if ps[i].shape[2] != ps[i + 1].shape[-1]]  # weights [K, out, in]
    assert narrow  # the value and advantage outputs at least
    names = [n for n, _ in agent.q.named_parameters()]
    old = {**state, "q": dict(state["q"]), "q_target": dict(state["q_target"])}
    old["optimizer"] = {**state["optimizer"], "state": {i: dict(s) for i, s in state["optimizer"]["state"].items()}}
    for i in narrow:  # as the old code saved them
        for net in ("q", "q_target"):
            old[net][names[i]] = state[net][names[i]].transpose(1, 2).contiguous()
        for m in ("exp_avg", "exp_avg_sq"):
            old["optimizer"]["state"][i][m] = state["optimizer"]["state"][i][m].transpose(1, 2).contiguous()
    fresh = DQN(space, 2, cfg_, (0, 1))
    fresh.load_state_dict(old)
    for p, q in zip(fresh.params, agent.params):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    for mine, want in zip(fresh.optimizer.exp_avg, agent.optimizer.exp_avg):
        torch.testing.assert_close(mine, want, rtol=0, atol=0)
    lone = DQN(space, 2, cfg_, (5,))  # a policy saved by the old code, for `play`
    lone.load_policy_state({n: old["q"][n][0].numpy() for n in names})
    for p, q in zip(lone.params, agent.params):
        torch.testing.assert_close(p[0], q[0], rtol=0, atol=0)
