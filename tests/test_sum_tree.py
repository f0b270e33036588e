"""Sum tree invariants (hypothesis) and proportional sampling (fixed-seed statistical test), for
a batch of trees: seed 1 holds seed 0's priorities reversed, so any leak between seeds shows."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from agents.sum_tree import SumTree

priorities = st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=1, max_size=70)


def build(ps):
    """Two seeds: ps and ps reversed."""
    ps = np.asarray(ps, dtype=np.float64)
    tree = SumTree(len(ps), k=2)
    n = len(ps)
    tree.update(np.repeat([0, 1], n), np.tile(np.arange(n), 2), np.concatenate([ps, ps[::-1]]))
    return tree, np.stack([ps, ps[::-1]])


@settings(max_examples=100, deadline=None)
@given(ps=priorities)
def test_every_node_is_the_sum_of_its_children(ps):
    tree, both = build(ps)
    internal = np.arange(1, tree.size)
    for k in range(2):
        np.testing.assert_allclose(tree.tree[k, internal], tree.tree[k, 2 * internal] + tree.tree[k, 2 * internal + 1])
        assert np.isclose(tree.total[k], both[k].sum())


@settings(max_examples=100, deadline=None)
@given(ps=priorities, data=st.data())
def test_find_returns_the_leaf_whose_prefix_interval_holds_the_mass(ps, data):
    tree, both = build(ps)
    if tree.total[0] <= 0:
        return
    mass = data.draw(st.lists(st.floats(0.0, tree.total[0], exclude_max=True), min_size=1, max_size=20))
    leaves = tree.find(np.array([mass, mass]))
    for k in range(2):
        p = both[k]
        prefix = np.concatenate([[0.0], np.cumsum(p)])
        for m, leaf in zip(mass, leaves[k]):
            assert p[leaf] > 0
            # within float round-off of the interval [prefix(leaf), prefix(leaf) + p_leaf)
            assert prefix[leaf] - 1e-9 * tree.total[k] <= m <= prefix[leaf + 1] + 1e-9 * tree.total[k]


@settings(max_examples=100, deadline=None)
@given(ps=priorities, updates=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 69), st.floats(0.0, 50.0)), max_size=30))
def test_updates_keep_totals_consistent(ps, updates):
    tree, expected = build(ps)
    for k, i, p in updates:
        i %= len(ps)
        tree.update(np.array([k]), np.array([i]), np.array([p]))
        expected[k, i] = p
    np.testing.assert_allclose(tree.get(np.tile(np.arange(len(ps)), (2, 1))), expected)
    np.testing.assert_allclose(tree.total, expected.sum(axis=1))


def test_batched_update_with_repeated_indices_matches_sequential():
    tree, _ = build([1.0] * 10)
    tree.update(np.array([0, 0, 0, 1]), np.array([3, 3, 5, 3]), np.array([7.0, 9.0, 2.0, 4.0]))
    assert tree.get(np.array([[3, 5], [3, 5]])).tolist() == [[9.0, 2.0], [4.0, 1.0]]
    assert tree.total.tolist() == [8 + 9 + 2, 9 + 4]


def test_sampling_frequencies_are_proportional_to_priorities():
    ps = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])
    tree, both = build(ps)
    rngs = [np.random.default_rng(0), np.random.default_rng(1)]
    draws = np.concatenate([tree.sample(64, rngs) for _ in range(2000)], axis=1)
    for k in range(2):
        p = both[k]
        counts = np.bincount(draws[k], minlength=len(p))
        assert counts[p == 0].sum() == 0  # zero priority is never sampled
        keep = p > 0
        expected = p[keep] / p.sum() * counts.sum()
        # stratified sampling is less variable than multinomial, so chi-square is conservative here
        assert stats.chisquare(counts[keep], expected).pvalue > 0.01
        np.testing.assert_allclose(counts / counts.sum(), p / p.sum(), atol=0.005)
    single = [tree.sample_one(1, 64, rngs[0]) for _ in range(500)]
    counts = np.bincount(np.concatenate(single), minlength=len(ps))
    np.testing.assert_allclose(counts / counts.sum(), both[1] / both[1].sum(), atol=0.01)
