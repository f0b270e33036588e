"""Same seed -> identical record apart from timings; another seed -> a different one."""
from dqn_bench import config as cfg
from dqn_bench.runner import TIMING_KEYS, run_one

SETS = {"budget": "3000", "eval_every": "1000", "eval_episodes": "3", "final_eval_episodes": "3", "learning_starts": "500",
        "train_freq": "64", "gradient_steps": "32"}


def strip(record):
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


def test_same_seed_same_record_every_variant_flag():
    # combined_dqn exercises double, dueling, prioritized and n-step sampling at once
    for agent in ("dqn", "combined_dqn"):
        spec = cfg.plan(cfg.load_suite("classic"), [agent], ["CartPole-v1"], 2, SETS)
        a, b, other = run_one(spec[0]), run_one(spec[0]), run_one(spec[1])
        assert a["status"] == "ok", a["error"]
        assert strip(a) == strip(b)
        assert a["train"] != other["train"]
