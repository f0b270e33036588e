"""The fastest CPU peer we know of: a DQN whose whole training run is one XLA program, vmapped over
seeds, in the style of PureJaxRL (luchris429/purejaxrl, purejaxrl/dqn.py): env, replay, acting
and learning all inside `jax.lax.scan`, nothing back in Python until the run ends.

CartPole-v1 is written here in JAX (gymnasium's classic_control/cartpole.py equations, Euler,
reward 1 per step, 500-step limit) instead of gymnax's port, whose package pins gymnasium < 1.4;
`check_env` steps it beside gymnasium's from the same states before anything is timed.
Hyperparameters: the RL Zoo's CartPole-v1 DQN, as our `dqn` preset and SB3 run it in bench_peers.

    python benchmarks/jax_seed_vmap_dqn.py [--seeds 10] [--steps 50000]   (needs the peers extra)
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

ZOO = dict(lr=2.3e-3, batch=64, learning_starts=1_000, gamma=0.99, target_update_interval=10,
           train_freq=256, gradient_steps=128, eps_steps=8_000, eps_end=0.04, hidden=(256, 256),
           max_grad_norm=10.0)
OBS, ACTIONS, LIMIT = 4, 2, 500


# -- CartPole-v1 ---------------------------------------------------------------------------------
def cartpole_step(s: jnp.ndarray, action) -> tuple[jnp.ndarray, jnp.ndarray]:
    """gymnasium's CartPoleEnv.step (euler): state [4], action 0/1 -> (next state, terminated)."""
    x, x_dot, theta, theta_dot = s
    force = jnp.where(action == 1, 10.0, -10.0)
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    temp = (force + 0.05 * theta_dot ** 2 * sin) / 1.1
    theta_acc = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos ** 2 / 1.1))
    x_acc = temp - 0.05 * theta_acc * cos / 1.1
    nxt = jnp.stack([x + 0.02 * x_dot, x_dot + 0.02 * x_acc, theta + 0.02 * theta_dot, theta_dot + 0.02 * theta_acc])
    terminated = (jnp.abs(nxt[0]) > 2.4) | (jnp.abs(nxt[2]) > 12 * 2 * jnp.pi / 360)
    return nxt, terminated


def cartpole_reset(key) -> jnp.ndarray:
    return jax.random.uniform(key, (OBS,), minval=-0.05, maxval=0.05)


def check_env(steps: int = 2_000) -> float:
    """Largest |difference| between this CartPole and gymnasium's over `steps` random-action steps
    from gymnasium's own resets; raises if a termination differs."""
    import gymnasium as gym

    env, rng, worst = gym.make("CartPole-v1").unwrapped, np.random.default_rng(0), 0.0
    env.reset(seed=0)
    step = jax.jit(cartpole_step)
    for _ in range(steps):
        state, action = np.asarray(env.state, np.float32), int(rng.integers(2))
        ours, term = step(jnp.asarray(state), action)
        _, _, their_term, _, _ = env.step(action)
        worst = max(worst, float(np.abs(np.asarray(ours) - np.asarray(env.state, np.float32)).max()))
        if bool(term) != their_term:
            raise AssertionError(f"termination differs from gymnasium at state {state}, action {action}")
        if their_term:
            env.reset(seed=int(rng.integers(2**31)))
    return worst


# -- the agent -------------------------------------------------------------------------------------
def init_mlp(key, sizes) -> list[tuple[jnp.ndarray, jnp.ndarray]]:
    """torch.nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    params = []
    for key, (fan_in, fan_out) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        kw, kb = jax.random.split(key)
        bound = 1.0 / np.sqrt(fan_in)
        params.append((jax.random.uniform(kw, (fan_in, fan_out), minval=-bound, maxval=bound),
                       jax.random.uniform(kb, (fan_out,), minval=-bound, maxval=bound)))
    return params


def q_values(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def make_train(steps: int, hp: dict = ZOO):
    optimizer = optax.chain(optax.clip_by_global_norm(hp["max_grad_norm"]), optax.adam(hp["lr"], eps=1e-8))
    sizes = (OBS, *hp["hidden"], ACTIONS)

    def init(key):
        k_net, k_env, key = jax.random.split(key, 3)
        params = init_mlp(k_net, sizes)
        return dict(params=params, target=params, opt=optimizer.init(params), key=key,
                    obs=cartpole_reset(k_env), ep_len=jnp.zeros((), jnp.int32),
                    buf_obs=jnp.zeros((steps, OBS)), buf_next=jnp.zeros((steps, OBS)),
                    buf_action=jnp.zeros(steps, jnp.int32), buf_done=jnp.zeros(steps))

    def env_step(s, t):
        """One epsilon-greedy step of one seed; the transition goes to row t."""
        key, k_eps, k_act, k_reset = jax.random.split(s["key"], 4)
        eps = jnp.maximum(1.0 + (hp["eps_end"] - 1.0) * t / hp["eps_steps"], hp["eps_end"])
        greedy = jnp.argmax(q_values(s["params"], s["obs"]))
        action = jnp.where(jax.random.uniform(k_eps) < eps, jax.random.randint(k_act, (), 0, ACTIONS), greedy)
        nxt, terminated = cartpole_step(s["obs"], action)
        ep_len = s["ep_len"] + 1
        end = terminated | (ep_len >= LIMIT)  # a time limit is a truncation: stored as not done
        return {**s, "key": key, "obs": jnp.where(end, cartpole_reset(k_reset), nxt), "ep_len": jnp.where(end, 0, ep_len),
                "buf_obs": s["buf_obs"].at[t].set(s["obs"]), "buf_next": s["buf_next"].at[t].set(nxt),
                "buf_action": s["buf_action"].at[t].set(action), "buf_done": s["buf_done"].at[t].set(terminated)}

    def loss(params, target, obs, action, nxt, done):
        bootstrap = jnp.max(q_values(target, nxt), axis=-1)
        y = jax.lax.stop_gradient(1.0 + hp["gamma"] * (1.0 - done) * bootstrap)  # CartPole's reward is 1
        q = jnp.take_along_axis(q_values(params, obs), action[:, None], axis=-1)[:, 0]
        return optax.huber_loss(q, y).mean()

    def grad_step(learner, s, t):
        """One Adam step of one seed on a uniform batch from rows [0, t]; only the learner's
        (params, opt, key) is the loop's carry, so the replay is never copied."""
        params, opt, key = learner
        key, k_batch = jax.random.split(key)
        rows = jax.random.randint(k_batch, (hp["batch"],), 0, t + 1)
        grads = jax.grad(loss)(params, s["target"], s["buf_obs"][rows], s["buf_action"][rows],
                               s["buf_next"][rows], s["buf_done"][rows])
        updates, opt = optimizer.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, key

    def train_round(s, t):
        s = {**s, "target": s["params"]}  # synced every 10 env steps, so before every round
        params, opt, key = jax.lax.fori_loop(0, hp["gradient_steps"], lambda _, learner: grad_step(learner, s, t),
                                             (s["params"], s["opt"], s["key"]))
        return {**s, "params": params, "opt": opt, "key": key}

    def train(keys):
        # The loop counter stays outside vmap, so the training round is a real branch, not a select
        def body(state, t):
            state = jax.vmap(env_step, in_axes=(0, None))(state, t)
            learn = ((t + 1) % hp["train_freq"] == 0) & (t + 1 > hp["learning_starts"])
            state = jax.lax.cond(learn, jax.vmap(train_round, in_axes=(0, None)), lambda s, t: s, state, t)
            return state, None

        state, _ = jax.lax.scan(body, jax.vmap(init)(keys), jnp.arange(steps))
        return state["params"]

    return jax.jit(train)


def greedy_returns(params, key, episodes: int = 10) -> jnp.ndarray:
    """Mean return of `episodes` greedy episodes per seed: params with a leading seed axis."""
    def episode(p, key):
        def body(carry, _):
            s, ret, alive = carry
            nxt, term = cartpole_step(s, jnp.argmax(q_values(p, s)))
            return (nxt, ret + alive, alive * (1.0 - term)), None
        (_, ret, _), _ = jax.lax.scan(body, (cartpole_reset(key), 0.0, 1.0), None, LIMIT)
        return ret

    keys = jax.random.split(key, episodes)
    per_seed = jax.vmap(lambda p: jax.vmap(episode, in_axes=(None, 0))(p, keys).mean())
    return jax.jit(per_seed)(params)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--steps", type=int, default=50_000)
    args = p.parse_args()
    start = time.perf_counter()
    train = make_train(args.steps)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(args.seeds))
    compiled = train.lower(keys).compile()
    compile_s = time.perf_counter() - start
    params = jax.block_until_ready(compiled(keys))
    scores = np.asarray(greedy_returns(params, jax.random.PRNGKey(1_000_000)))
    print(json.dumps({"compile_s": compile_s, "train_s": time.perf_counter() - start - compile_s,
                      "scores": scores.tolist()}))


if __name__ == "__main__":
    main()
