"""Soundness by attack: try hard to break certified top-k claims on a tiny model.

A certificate that can be broken is worse than none. On a tiny ReLU net with a 1×4×4 input
(16 pixel cells) the RRS map can be estimated with tens of thousands of samples, so Monte
Carlo error is small and explicitly accounted for. The attacker gets random search and PGD
on a smooth surrogate (softplus net, soft top-k' membership, common random numbers).
"""
import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from rrs.certify import cell_radii, cell_radii_from_bounds, certified_radius, probability_bounds
from rrs.metrics import topk_indices
from rrs.noise import Gaussian
from rrs.settings import MapSettings
from rrs.smoothing import smooth

from conftest import TinyConvNet

SIGMA, K, KPRIME, T_BIG = 0.5, 3, 3, 40_000


def rrs_map(model, x, t=T_BIG, seed=0):
    settings = MapSettings(method="rrs", sigma=SIGMA, samples=t, scoring_param=KPRIME, seed=seed)
    return smooth(model, x, settings, target=0, batch_size=8192)


def softplus_copy(model, beta=10.0):
    m = copy.deepcopy(model)

    class SoftNet(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            h = nn.functional.softplus(self.inner.conv1(x), beta)
            h = nn.functional.softplus(self.inner.conv2(h), beta)
            return self.inner.fc(h.mean((2, 3)))
    return SoftNet(m).double()


def surrogate_margin(soft, x_adv, deltas, cell, k):
    """Smooth proxy of (m_cell − k-th largest other cell) under common random numbers."""
    inp = (x_adv[None] + deltas).requires_grad_(True)
    score = soft(inp)[:, 0].sum()
    (g,) = torch.autograd.grad(score, inp, create_graph=True)
    a = g.abs().sum(1).reshape(len(deltas), -1)
    srt = torch.sort(a.detach(), dim=1, descending=True).values
    thr = 0.5 * (srt[:, KPRIME - 1] + srt[:, KPRIME])
    temp = (srt[:, 0] - srt[:, -1]).clamp_min(1e-6)[:, None] * 0.05
    member = torch.sigmoid((a - thr[:, None]) / temp).mean(0)
    others = torch.cat([member[:cell], member[cell + 1:]])
    return member[cell] - torch.topk(others, k).values[-1]


def project_l2(delta, radius):
    norm = delta.norm()
    return delta * (radius / norm) if norm > radius else delta


def violation(m, cell, k):
    """How far cell is below the k-th largest other cell (> 0 means pushed out)."""
    others = np.delete(m, cell)
    return np.sort(others)[::-1][k - 1] - m[cell]


def attack_cell(model, x, cell, radius, rng_seed):
    """Best perturbation found for pushing ``cell`` out of the top-k within ℓ2 ``radius``."""
    soft = softplus_copy(model)
    gen = torch.Generator().manual_seed(rng_seed)
    deltas = Gaussian(SIGMA).sample((256, *x.shape), generator=gen, dtype=torch.float64)
    candidates = []
    # random search on the sphere
    for _ in range(24):
        d = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        candidates.append(d * radius / d.norm())
    # PGD on the smooth surrogate, a few restarts
    for restart in range(3):
        d = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        d = d * radius * 0.5 / d.norm() if restart else torch.zeros_like(x)
        for _ in range(25):
            d.requires_grad_(True)
            obj = surrogate_margin(soft, x + d, deltas, cell, K)
            (grad,) = torch.autograd.grad(obj, d)
            with torch.no_grad():
                d = project_l2(d - radius * 0.25 * grad / grad.norm().clamp_min(1e-12), radius)
        candidates.append(d.detach())
    # screen candidates with a moderate T, confirm the best with the big T
    scores = [violation(rrs_map(model, x + d, t=4000, seed=1).flat(), cell, K) for d in candidates]
    best = candidates[int(np.argmax(scores))]
    return best, max(scores)


@pytest.fixture(scope="module")
def setup():
    model = TinyConvNet(channels=1, classes=3, width=4, seed=3).double().eval()
    x = torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    res = rrs_map(model, x)
    return model, x, res


def mc_tolerance(t):
    # m_i is a mean of T values in {0, 1/k'}: sd ≤ 0.5/(k'√T); a difference of two cells at
    # 5 sd each is a generous bound on Monte Carlo error of the comparison.
    return 2 * 5 * 0.5 / (KPRIME * math.sqrt(t))


def test_certified_cells_survive_attacks_inside_their_radius(setup):
    model, x, res = setup
    p = res.stats().mean
    cells = cell_radii(p, K, Gaussian(SIGMA))
    certified = [int(i) for i in cells.selected if cells.radii[i] > 0]
    assert certified, "the certificate must be non-vacuous for this test to mean anything"
    for cell in certified:
        radius = 0.98 * cells.radii[cell]
        best, _ = attack_cell(model, x, cell, radius, rng_seed=cell)
        assert best.norm() <= radius + 1e-9
        m = rrs_map(model, x + best, seed=11).flat()
        assert violation(m, cell, K) < mc_tolerance(T_BIG), f"cell {cell} broken inside its radius {radius}"


def test_the_attack_does_break_claims_far_outside_the_radius(setup):
    """The same attacker succeeds with a large budget, so the test above has teeth."""
    model, x, res = setup
    cells = cell_radii(res.stats().mean, K, Gaussian(SIGMA))
    cell = int(cells.selected[0])
    big = max(30 * cells.radii[cell], 1.5)
    best, _ = attack_cell(model, x, cell, big, rng_seed=99)
    m = rrs_map(model, x + best, seed=12).flat()
    assert violation(m, cell, K) > mc_tolerance(T_BIG)


def test_finite_sample_and_set_certificates_are_no_larger_and_hold(setup):
    model, x, res = setup
    st = res.stats()
    lo, hi = probability_bounds(st, 0.01)
    sel = topk_indices(st.mean, K)
    fin = cell_radii_from_bounds(lo, hi, sel, K, Gaussian(SIGMA))
    plug = cell_radii(st.mean, K, Gaussian(SIGMA))
    assert np.all(fin.radii <= plug.radii + 1e-12)
    cert = certified_radius(st.mean, K, 1 / 3, Gaussian(SIGMA))
    if cert.radius > 0:
        # β = 1/3: at least one of the top-3 must stay; attack the weakest certified cell too
        # and check that the top-k set of the attacked map still meets the original one.
        radius = 0.98 * cert.radius
        for cell in sel:
            best, _ = attack_cell(model, x, int(cell), radius, rng_seed=int(cell) + 50)
            m = rrs_map(model, x + best, seed=13).flat()
            # some original cell is still clearly inside the top-k
            margins = [-violation(m, int(c), K) for c in sel]
            assert max(margins) > -mc_tolerance(T_BIG)
