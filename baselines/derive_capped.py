"""Derive reference scores for a time-capped variant of a toy-text env (not in the upstream data).

Exact expected return of the uniform-random policy and the optimal return within H steps, by
finite-horizon dynamic programming on env.unwrapped.P, the same method as tabular.csv's
random_exact_mean / optimal_return. Prints a CSV row for baselines/tabular.csv.

    python baselines/derive_capped.py CliffWalking-v1 1000
"""
import json
import sys

import gymnasium as gym
import numpy as np


def values(env_id: str, horizon: int):
    env = gym.make(env_id).unwrapped
    n_s, n_a = env.observation_space.n, env.action_space.n
    v_rand, v_opt = np.zeros(n_s), np.zeros(n_s)
    for _ in range(horizon):  # V_h from V_{h-1}; terminal transitions stop the sum
        q_rand, q_opt = np.zeros((n_s, n_a)), np.zeros((n_s, n_a))
        for s in range(n_s):
            for a in range(n_a):
                for p, s2, r, done in env.P[s][a]:
                    q_rand[s, a] += p * (r + (0 if done else v_rand[s2]))
                    q_opt[s, a] += p * (r + (0 if done else v_opt[s2]))
        v_rand, v_opt = q_rand.mean(axis=1), q_opt.max(axis=1)
    start = np.asarray(env.initial_state_distrib)
    return float(start @ v_rand), float(start @ v_opt)


if __name__ == "__main__":
    env_id, horizon = sys.argv[1], int(sys.argv[2])
    rand, opt = values(env_id, horizon)
    print(json.dumps({"env_id": env_id, "max_episode_steps": horizon,
                      "random_exact_mean": round(rand, 6), "optimal_return": round(opt, 6)}))
