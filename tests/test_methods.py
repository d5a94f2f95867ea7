"""The per-sample transforms: hard versions against independent numpy code; soft versions
converge to the hard ones as the temperature falls and carry gradients."""
import math

import numpy as np
import pytest
import torch

from rrs.methods import Identity, RankScore, Sparsify
from rrs.scoring import exponential, topk_uniform


def _maps(n=30, rows=6, seed=0):
    """Rows of distinct values, neighbours in rank a factor e^0.1 apart (soft steps can resolve them)."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.exp(0.1 * torch.arange(n, dtype=torch.float64))
    return torch.stack([levels[torch.randperm(n, generator=g)] for _ in range(rows)])


def test_rank_score_hard_against_numpy_ranks():
    a = _maps()
    v = exponential(30, 4.0)
    got = RankScore(v).hard(a).numpy()
    for row, out in zip(a.numpy(), got):
        ranks = np.empty(30, dtype=int)
        ranks[np.lexsort((np.arange(30), -row))] = np.arange(30)
        np.testing.assert_allclose(out, v[ranks])
    assert RankScore(v).value_bound == pytest.approx(v[0]) and not RankScore(v).binary
    assert RankScore(topk_uniform(30, 3)).binary


def test_sparsify_hard_against_numpy():
    a = _maps(n=40)
    t = Sparsify(40, tau=0.25, phi=0.05)
    for row, out in zip(a.numpy(), t.hard(a).numpy()):
        clip = np.sort(row)[::-1][math.ceil(0.05 * 40) - 1]
        keep = np.argsort(-row, kind="stable")[:10]
        want = np.zeros(40)
        want[keep] = np.minimum(row[keep], clip) / clip
        np.testing.assert_allclose(out, want)


@pytest.mark.parametrize("make", [lambda n: RankScore(topk_uniform(n, 4)), lambda n: RankScore(exponential(n, 2.0), 64),
                                  lambda n: Sparsify(n, 0.2, 0.05), lambda n: Identity(True)])
def test_soft_tends_to_hard_and_is_differentiable(make):
    a = _maps(n=20)
    t = make(20)
    hard = t.hard(a)
    errs = [float((t.soft(a, temperature=temp) - hard).abs().max()) for temp in (0.5, 0.05, 0.002)]
    assert errs[-1] < 1e-3 and errs[-1] <= errs[0]
    x = a.clone().requires_grad_(True)
    t.soft(x, 0.5).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_identity_normalises_to_max_one():
    a = _maps()
    assert torch.allclose(Identity(True).hard(a).amax(1), torch.ones(6, dtype=a.dtype))
    assert Identity(False).hard(a) is a and Identity(False).value_bound is None
