"""Scoring vectors: shapes, hand-computed values and validation (method.md §2)."""
import numpy as np
import pytest

from rrs import scoring as S


def test_families_by_hand():
    np.testing.assert_allclose(S.topk_uniform(5, 2), [0.5, 0.5, 0, 0, 0])
    np.testing.assert_allclose(S.linear(5, 3), [3 / 6, 2 / 6, 1 / 6, 0, 0])
    e = np.exp(-np.arange(4) / 2.0)
    np.testing.assert_allclose(S.exponential(4, 2.0), e / e.sum())
    w = np.arange(1, 5) ** -1.5
    np.testing.assert_allclose(S.power(4, 1.5), w / w.sum())


@pytest.mark.parametrize("family,param", [("topk", 7), ("exponential", 3.0), ("linear", 10), ("power", 0.8)])
def test_every_family_is_a_valid_scoring_vector(family, param):
    v = S.make_scoring(family, 50, param)
    assert v.shape == (50,)
    assert v.sum() == pytest.approx(1.0)
    assert np.all(np.diff(v) <= 1e-15) and np.all(v >= 0)
    S.validate_scoring(v, 50)


@pytest.mark.parametrize("values,match", [
    ([0.2, 0.5, 0.3], "non-increasing"),
    ([0.5, 0.4], "sum to 1"),
    ([0.7, 0.4, -0.1], "negative"),
    ([[0.5, 0.5]], "1-D"),
    ([1.0, np.nan], "non-finite"),
])
def test_user_vectors_are_validated(values, match):
    with pytest.raises(ValueError, match=match):
        S.from_values(values)


def test_bad_parameters():
    with pytest.raises(ValueError, match="k'"):
        S.topk_uniform(10, 0)
    with pytest.raises(ValueError, match="k'"):
        S.linear(10, 11)
    with pytest.raises(ValueError, match="tau"):
        S.exponential(10, 0)
    with pytest.raises(ValueError, match="gamma"):
        S.power(10, -1)
    with pytest.raises(ValueError, match="family"):
        S.make_scoring("cubic", 10, 1)
    with pytest.raises(ValueError, match="cells"):
        S.from_values([0.5, 0.5], n=3)
