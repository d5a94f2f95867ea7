"""Radii are never overstated near α → 1: float results against 60-digit arithmetic
(method.md §4 and "Numerical traps"), plus the degenerate inputs of the audit."""
import math

import mpmath as mp
import numpy as np
import pytest

from rrs import certify as C
from rrs.certify.stable import divergence_at, log_f
from rrs.noise import Gaussian, Laplace
from rrs.settings import CertifySettings

mp.mp.dps = 60
ALPHAS = C.DEFAULT_ALPHAS


def mp_objective(a, b, rest, alpha, r):
    """(log N − α log M)/(α − 1) of the threshold problem, in 60-digit arithmetic."""
    n = rest
    m = rest
    for p in a:
        q = min(p, r)
        n += q ** alpha * p ** (1 - alpha) if p > 0 else 0
        m += q
    for p in b:
        q = max(p, r)
        if p == 0 and q > 0:
            return mp.inf
        n += q ** alpha * p ** (1 - alpha) if p > 0 else 0
        m += q
    return (mp.log(n) - alpha * mp.log(m)) / (alpha - 1)


def mp_threshold(a, b, rest, alpha):
    """min over r of the objective: every breakpoint and every interval's stationary point
    (no use of quasi-convexity: an independent brute force)."""
    a = [mp.mpf(float(x)) for x in a]
    b = [mp.mpf(float(x)) for x in b]
    # P sums to exactly 1 (the float ``rest`` carries rounding error of ~1e-17, which would
    # shift D by that much: comparable to D itself at relative gaps of 1e-8)
    rest = 1 - sum(a) - sum(b)
    alpha = mp.mpf(float(alpha))
    lo, hi = min(b), max(a)
    if lo >= hi:
        return mp.mpf(0)
    pts = sorted({x for x in a + b if lo <= x <= hi})
    cands = list(pts)
    for s, t in zip(pts, pts[1:]):
        act = [x for x in a if x > s] + [x for x in b if x < t]
        if any(x == 0 for x in act):
            continue
        S = sum(x ** (1 - alpha) for x in act)
        r = (len(act) / S) ** (1 / (alpha - 1))
        if s < r < t:
            cands.append(r)
    return max(min(mp_objective(a, b, rest, alpha, r) for r in cands), mp.mpf(0))


def tiny_gap_map(rng, n, k, gap):
    p = np.sort(rng.dirichlet(np.ones(n)))[::-1]
    # make cells around the top-k boundary nearly equal (relative gap `gap`)
    lvl = p[k - 1]
    for j in range(max(0, k - 3), min(n, k + 3)):
        p[j] = lvl * (1 + gap * (k - 1 - j + rng.uniform(-0.3, 0.3)))
    return p / p.sum()


@pytest.mark.parametrize("gap", [1e-3, 1e-5, 1e-6, 1e-7, 1e-8])
def test_whole_set_radius_never_exceeds_60_digit_value(gap):
    rng = np.random.default_rng(int(-math.log10(gap)))
    sigma = 0.5
    grid = ALPHAS[::3]
    for case in range(3):
        n, k = 12, 5
        p = tiny_gap_map(rng, n, k, gap)
        for beta in (1.0, 0.6):
            k0 = C.displaced_count(k, beta)
            vals = p[np.lexsort((np.arange(n), -p))]
            a, b, rest = vals[k - k0:k], vals[k:k + k0], 1 - vals[k - k0:k + k0].sum()
            want = [mp_threshold(a, b, rest, al) for al in grid]
            got = [C.min_renyi_divergence(p, k, k0, al) for al in grid]
            for g, w in zip(got, want):
                assert g <= float(w) * (1 + 1e-7) + 1e-300, (gap, g, float(w))
                assert g >= float(w) * (1 - 1e-5)  # and not needlessly small
            cert = C.certified_radius(p, k, beta, Gaussian(sigma), alphas=grid)
            exact = max(sigma * mp.sqrt(2 * w / mp.mpf(float(al))) for w, al in zip(want, grid))
            assert cert.radius <= float(exact) * (1 + 1e-7), (gap, cert.radius, float(exact))
            assert cert.radius >= float(exact) * (1 - 1e-5)


@pytest.mark.parametrize("gap", [1e-5, 1e-6, 1e-7, 1e-8])
def test_per_cell_radii_never_exceed_60_digit_values(gap):
    rng = np.random.default_rng(10 + int(-math.log10(gap)))
    sigma = 0.5
    grid = ALPHAS[::4]
    n, k = 10, 4
    for case in range(2):
        p = tiny_gap_map(rng, n, k, gap)
        order = np.lexsort((np.arange(n), -p))
        got = C.cell_radii(p, k, Gaussian(sigma), alphas=grid)
        for i in order[:k]:
            others = np.delete(p, i)
            comp = np.sort(others)[::-1][:k]
            rest = 1 - p[i] - comp.sum()
            exact = max(sigma * mp.sqrt(2 * mp_threshold([p[i]], comp, rest, al) / mp.mpf(float(al)))
                        for al in grid)
            assert got.radii[i] <= float(exact) * (1 + 1e-7), (gap, i, got.radii[i], float(exact))
            assert got.radii[i] >= float(exact) * (1 - 1e-4)


def test_finite_sample_box_radii_against_60_digits():
    rng = np.random.default_rng(5)
    grid = ALPHAS[::4]
    for _ in range(4):
        n, k = 9, 3
        p = tiny_gap_map(rng, n, k, 1e-6)
        lower, upper = p * (1 - 1e-7), p * (1 + 1e-7)
        sel = np.lexsort((np.arange(n), -p))[:k]
        cert = C.certified_radius_from_bounds(lower, upper, sel, k, 1.0, Gaussian(0.3), alphas=grid)
        a = [np.sort(lower[sel])[0]]
        b = [np.sort(np.delete(upper, sel))[::-1][0]]
        rest = 1 - a[0] - b[0]
        exact = max(0.3 * mp.sqrt(2 * mp_threshold(a, b, rest, al) / mp.mpf(float(al))) for al in grid)
        assert cert.radius <= float(exact) * (1 + 1e-7)


def test_log_f_and_divergence_against_60_digits():
    rng = np.random.default_rng(0)
    for _ in range(400):
        alpha = 1 + 10 ** rng.uniform(-4, 3.3)
        u = max(float(rng.choice([-1, 1]) * 10 ** rng.uniform(-12, 2)), -1.0)
        x, al = 1 + mp.mpf(u), mp.mpf(alpha)
        want = mp.log(x ** al - 1 - al * (x - 1))
        assert log_f(np.array([u]), alpha)[0] == pytest.approx(float(want), abs=1e-11)
    for _ in range(100):
        n = int(rng.integers(2, 8))
        p = rng.dirichlet(np.ones(n))
        q = p * (1 + 10 ** rng.uniform(-9, 0) * rng.normal(size=n))
        q = np.abs(q)
        alpha = 1 + 10 ** rng.uniform(-3, 2)
        P = [mp.mpf(float(x)) for x in p[:-1]]
        P.append(1 - sum(P))            # the lumped, unchanged rest; P sums to exactly 1
        Q = [mp.mpf(float(x)) for x in q[:-1]] + [P[-1]]
        M = sum(Q)
        al = mp.mpf(alpha)
        want = mp.log(sum((qq / M) ** al * pp ** (1 - al) for qq, pp in zip(Q, P))) / (al - 1)
        got = divergence_at(p[None, :-1], q[None, :-1], 1 - p[:-1].sum(), alpha)[0]
        assert got == pytest.approx(float(want), rel=1e-8, abs=1e-300)


# ---------------------------------------------------------------- degenerate inputs

def test_all_equal_cells_give_zero_radius():
    p = np.full(20, 0.05)
    assert C.certified_radius(p, 5, 1.0, Gaussian(0.5)).radius == 0.0
    assert np.all(C.cell_radii(p, 5, Gaussian(0.5)).radii == 0.0)
    st = C.CellStats(p, p * 0.5, 100, 0.5, binary=True)
    rep = C.certify(st, 5, Gaussian(0.5), CertifySettings(betas=(1.0, 0.6)))
    assert all(c.radius == 0 and not c.unbounded for c in rep.rdp_plugin + rep.rdp_finite)


def test_infinite_divergence_is_an_explicit_unbounded_radius():
    # k = 2 cells hold all the mass: displacing both (β = 1/2 → k0 = 2) needs mass on zero cells
    p = np.array([0.5, 0.5, 0.0, 0.0, 0.0])
    assert C.min_renyi_divergence(p, 2, 2, 3.0) == math.inf
    for noise in (Gaussian(0.3), Laplace(0.3)):
        cert = C.certified_radius(p, 2, 0.5, noise, norm=2, dim=10)
        assert cert.radius == math.inf and cert.unbounded
        finite = C.certified_radius(np.array([0.5, 0.3, 0.2, 0.0]), 2, 1.0, noise, norm=2, dim=10)
        assert math.isfinite(finite.radius) and not finite.unbounded and finite.radius < 10


def test_cell_in_every_sample_is_flagged_unbounded_not_huge():
    n, kp, t = 10, 2, 64
    mean = np.zeros(n)
    mean[[0, 1]] = 1 / kp          # the same two cells in every sample
    st = C.CellStats(mean, mean / kp, t, 1 / kp, binary=True)
    rep = C.certify(st, 2, Gaussian(0.5), CertifySettings(betas=(1.0, 0.5)))
    cdf = rep.cdf_cells_plugin
    assert np.all(np.isinf(cdf.radii[[0, 1]])) and np.all(cdf.unbounded[[0, 1]])
    assert not cdf.unbounded[2:].any()
    for c in rep.rdp_plugin + rep.cdf_plugin:
        assert c.unbounded == math.isinf(c.radius)
        assert math.isinf(c.radius) or c.radius < 1e6
    for c in rep.rdp_finite + rep.cdf_finite:   # finite-sample bounds are never unbounded
        assert math.isfinite(c.radius) and not c.unbounded
    assert np.all(np.isfinite(rep.cells_finite.radii))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_statistics_are_rejected_clearly(bad):
    mean = np.full(8, 1 / 8)
    mean[3] = bad
    st = C.CellStats(mean, np.abs(mean), 50, 0.5, binary=False)
    with pytest.raises(ValueError, match="non-finite"):
        C.certify(st, 2, Gaussian(0.5))
    with pytest.raises(ValueError, match="non-finite"):
        C.probability_bounds(st, 0.05)
    with pytest.raises(ValueError, match="non-finite"):
        C.stays_important(st, Gaussian(0.5))


def test_statistics_out_of_range_are_rejected():
    with pytest.raises(ValueError, match="samples"):
        C.certify(C.CellStats(np.full(4, 0.25), np.full(4, 0.1), 0, 0.5), 1, Gaussian(0.5))
    with pytest.raises(ValueError, match="value_bound"):
        C.certify(C.CellStats(np.full(4, 0.25), np.full(4, 0.1), 10, 0.1), 1, Gaussian(0.5))
