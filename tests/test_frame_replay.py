"""Frame replay rebuilds exactly the naive stacked transitions, on a real Atari stream with
terminations, a truncation and ring wraparound; and stores about one frame per transition."""
import numpy as np
import pytest

import envs
from agents.frame_replay import FrameReplay
from agents.replay import ReplayBuffer


def record_stream(steps=700, seed=0):
    # a 60-step cap truncates episodes; Pong's own ends are rarer, so also end some by hand
    env = envs.make("ALE/Pong-v5", seed, max_num_frames_per_episode=240)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    stream = []
    for i in range(steps):
        a = int(rng.integers(env.action_space.n))
        nxt, r, term, trunc, _ = env.step(a)
        term = term or (i % (97 + 10 * seed) == 96)  # synthetic terminal mid-episode: must not bootstrap
        stream.append((obs, a, float(r) + i % 3, nxt, term, trunc))
        obs = env.reset()[0] if term or trunc else nxt
    assert any(t for *_, t in stream) and any(s[4] for s in stream)  # has truncations and terminations
    return stream


@pytest.fixture(scope="module")
def streams():
    """Two seeds' streams: their episodes end at different steps, so their cursors drift apart."""
    return [record_stream(seed=0), record_stream(seed=1)]


def push(buf, streams):
    for steps in zip(*streams):
        o, a, r, n, te, tr = (np.array(x) for x in zip(*steps))
        buf.add(o, a, r.astype(np.float32), n, te, tr)


@pytest.mark.parametrize("capacity", [1000, 257])  # 257 < stream length: wraps around
@pytest.mark.parametrize("n_step", [1, 3])
def test_every_sampleable_transition_equals_the_naive_one(streams, capacity, n_step):
    frames = FrameReplay(capacity, (4, 84, 84), np.uint8, seeds=[0, 1])
    push(frames, streams)
    assert frames.cursor[0] != frames.cursor[1]
    for k, stream in enumerate(streams):
        naive = ReplayBuffer(len(stream), (4, 84, 84), np.uint8, seeds=[0])
        push(naive, [stream])
        rows = np.arange(frames.size[k])
        # the newest n-1 transitions see fewer steps in either buffer (their successors are not
        # written yet); every other sampleable row must match exactly
        all_rows = np.tile(rows, (2, 1)) % frames.size.min()
        all_rows[k] = rows
        ok = frames.valid(all_rows)[k] & (frames._age(all_rows)[k] >= n_step)
        rows = rows[ok]
        assert len(rows) > 0.9 * min(capacity, len(stream)) - 20
        # which stream transition each row holds: one row per transition, one more per episode end
        written = [w for i, s in enumerate(stream) for w in ([i, None] if s[4] or s[5] else [i])]
        index = {pos % capacity: i for pos, i in enumerate(written) if pos >= len(written) - frames.size[k]}
        query = np.tile(rows, (2, 1)) % frames.size.min()
        query[k] = rows
        got = frames.gather(query, gamma=0.9, n_step=n_step)
        want = naive.gather(np.array([[index[r] for r in rows]]), gamma=0.9, n_step=n_step)
        np.testing.assert_array_equal(got.obs[k], want.obs[0])
        np.testing.assert_array_equal(got.action[k], want.action[0])
        np.testing.assert_allclose(got.returns[k], want.returns[0], rtol=1e-6)
        np.testing.assert_allclose(got.discount[k], want.discount[0], rtol=1e-6)
        np.testing.assert_array_equal(got.next_obs[k], want.next_obs[0])


def test_sampled_rows_are_always_valid(streams):
    frames = FrameReplay(257, (4, 84, 84), np.uint8, seeds=[1, 2])
    push(frames, streams)
    rows = frames.sample_rows(5000)
    assert rows.shape == (2, 5000) and frames.valid(rows).all()


def test_bytes_per_transition_close_to_one_frame(streams):
    stream = streams[0]
    per_row = FrameReplay.bytes_per_row((4, 84, 84), np.uint8)
    episodes = sum(1 for s in stream if s[4] or s[5])
    per_transition = per_row * (len(stream) + episodes) / len(stream)
    assert per_row / (84 * 84) < 1.01
    # this stream ends an episode every ~50 steps; real Atari episodes are far longer
    assert per_transition / (84 * 84) < 1.05
