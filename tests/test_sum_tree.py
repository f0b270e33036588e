"""Sum tree invariants (hypothesis) and proportional sampling (fixed-seed statistical test)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from agents.sum_tree import SumTree

priorities = st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=1, max_size=70)


def build(ps):
    tree = SumTree(len(ps))
    tree.update(np.arange(len(ps)), np.array(ps))
    return tree


@settings(max_examples=100, deadline=None)
@given(ps=priorities)
def test_every_node_is_the_sum_of_its_children(ps):
    tree = build(ps)
    internal = np.arange(1, tree.size)
    np.testing.assert_allclose(tree.tree[internal], tree.tree[2 * internal] + tree.tree[2 * internal + 1])
    assert tree.total == np.float64(sum(ps)) or np.isclose(tree.total, sum(ps))


@settings(max_examples=100, deadline=None)
@given(ps=priorities, data=st.data())
def test_find_returns_the_leaf_whose_prefix_interval_holds_the_mass(ps, data):
    tree = build(ps)
    if tree.total <= 0:
        return
    mass = data.draw(st.lists(st.floats(0.0, tree.total, exclude_max=True), min_size=1, max_size=20))
    leaves = tree.find(np.array(mass))
    prefix = np.concatenate([[0.0], np.cumsum(ps)])
    for m, leaf in zip(mass, leaves):
        assert ps[leaf] > 0
        # within float round-off of the interval [prefix(leaf), prefix(leaf) + p_leaf)
        assert prefix[leaf] - 1e-9 * tree.total <= m <= prefix[leaf + 1] + 1e-9 * tree.total


@settings(max_examples=100, deadline=None)
@given(ps=priorities, updates=st.lists(st.tuples(st.integers(0, 69), st.floats(0.0, 50.0)), max_size=30))
def test_updates_keep_totals_consistent(ps, updates):
    tree = build(ps)
    expected = np.array(ps, dtype=np.float64)
    for i, p in updates:
        i %= len(ps)
        tree.update(np.array([i]), np.array([p]))
        expected[i] = p
    np.testing.assert_allclose(tree.get(np.arange(len(ps))), expected)
    assert np.isclose(tree.total, expected.sum())


def test_batched_update_with_repeated_indices_matches_sequential():
    tree = build([1.0] * 10)
    tree.update(np.array([3, 3, 5]), np.array([7.0, 9.0, 2.0]))
    assert tree.get(np.array([3, 5])).tolist() == [9.0, 2.0]
    assert tree.total == 8 + 9 + 2


def test_sampling_frequencies_are_proportional_to_priorities():
    ps = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])
    tree = build(ps)
    rng = np.random.default_rng(0)
    counts = np.bincount(np.concatenate([tree.sample(64, rng) for _ in range(2000)]), minlength=len(ps))
    assert counts[4] == 0  # zero priority is never sampled
    keep = ps > 0
    expected = ps[keep] / ps.sum() * counts.sum()
    # stratified sampling is less variable than multinomial, so chi-square is conservative here
    assert stats.chisquare(counts[keep], expected).pvalue > 0.01
    np.testing.assert_allclose(counts / counts.sum(), ps / ps.sum(), atol=0.005)
