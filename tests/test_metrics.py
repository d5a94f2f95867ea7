"""Map agreement metrics against hand-computed cases and scipy."""
import numpy as np
import pytest
import torch

from rrs.metrics import kendall, spearman, topk_indices, topk_intersection


def test_topk_intersection_by_hand():
    a = np.array([5, 4, 3, 2, 1.0])
    b = np.array([1, 4, 5, 2, 3.0])
    assert topk_intersection(a, b, 2) == 0.5     # {0,1} vs {2,1}
    assert topk_intersection(a, b, 3) == 2 / 3   # {0,1,2} vs {2,1,4}
    assert topk_intersection(a, a, 4) == 1.0
    assert topk_intersection(torch.tensor(a).reshape(1, 5), b, 5) == 1.0


def test_ties_are_broken_by_index():
    np.testing.assert_array_equal(topk_indices(np.array([1.0, 2.0, 2.0, 0.0]), 2), [1, 2])
    np.testing.assert_array_equal(topk_indices(np.zeros(4), 2), [0, 1])


def test_rank_correlations_by_hand():
    a = np.arange(10.0)
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert kendall(a, a[::-1].copy()) == pytest.approx(-1.0)
    b = a.copy(); b[[0, 1]] = b[[1, 0]]
    assert kendall(a, b) == pytest.approx(1 - 2 * 1 / 45)   # one discordant pair of 45
    assert spearman(a, b) == pytest.approx(1 - 6 * 2 / (10 * 99))


def test_bad_input():
    with pytest.raises(ValueError, match="same number"):
        topk_intersection(np.ones(4), np.ones(5), 2)
    with pytest.raises(ValueError, match="k must"):
        topk_intersection(np.ones(4), np.ones(4), 5)
    with pytest.raises(ValueError, match="non-finite"):
        spearman(np.array([1.0, np.inf]), np.ones(2))


def test_tie_aware_intersection_against_brute_force_tie_breaking():
    """The expected intersection under uniform random tie-breaking, by enumerating every
    tie-break of both maps (independent) and averaging the index-free intersection."""
    import itertools

    from rrs.metrics import tie_aware_intersection, topk_membership

    a = np.array([3, 2, 2, 2, 1, 0.0])
    b = np.array([1, 1, 1, 1, 5, 0.0])
    k = 2

    def top_sets(m):
        sets = []
        for perm in itertools.permutations(range(m.size)):
            order = sorted(range(m.size), key=lambda i: (-m[i], perm[i]))
            sets.append(frozenset(order[:k]))
        return sets

    sa, sb = top_sets(a), top_sets(b)
    want = np.mean([len(x & y) / k for x in sa for y in sb])
    assert tie_aware_intersection(a, b, k) == pytest.approx(want)
    assert topk_membership(a, k).sum() == pytest.approx(k)
    # without ties it is the plain intersection
    c, d = np.array([5, 4, 3, 2, 1.0]), np.array([1, 4, 5, 2, 3.0])
    assert tie_aware_intersection(c, d, 2) == topk_intersection(c, d, 2)
    # a constant map agrees with anything at chance level k/n
    assert tie_aware_intersection(np.ones(10), np.arange(10.0), 3) == pytest.approx(0.3)
