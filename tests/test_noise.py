"""RDP curves of the smoothing noises against direct numerical integration (method.md §3)."""
import math

import mpmath as mp
import numpy as np
import pytest
import torch
from scipy import integrate, stats

from rrs.noise import Gaussian, Laplace


def renyi_1d(logpdf_q, logpdf_p, alpha, lo=-60, hi=60, points=None):
    """D_α(Q‖P) = log ∫ q^α p^{1−α} / (α − 1) by adaptive quadrature."""
    g = lambda x: alpha * logpdf_q(x) + (1 - alpha) * logpdf_p(x)
    grid = np.linspace(lo, hi, 1001)
    peak = max(g(x) for x in grid)
    peak = max(peak, max(g(x) for x in (points or [])) if points else peak)
    # integrate exp(g − peak) so that large α·shift does not overflow
    val, _ = integrate.quad(lambda x: math.exp(g(x) - peak), lo, hi, points=points, limit=400,
                            epsabs=0, epsrel=1e-11)
    return (math.log(val) + peak) / (alpha - 1)


@pytest.mark.parametrize("alpha", [1.05, 2.0, 7.5, 40.0])
@pytest.mark.parametrize("shift", [0.01, 0.3, 1.2])
def test_gaussian_curve_matches_integration(alpha, shift):
    sigma = 0.7
    q = stats.norm(shift, sigma).logpdf
    p = stats.norm(0, sigma).logpdf
    lo, hi = -12 * sigma - alpha * shift, 12 * sigma + alpha * shift
    numeric = renyi_1d(q, p, alpha, lo, hi)
    assert Gaussian(sigma).rdp_epsilon(alpha, shift, norm=2) == pytest.approx(numeric, rel=1e-6, abs=1e-12)
    # ℓ1 (and any d ≤ 2) threat: the worst case is the same one-coordinate shift
    assert Gaussian(sigma).rdp_epsilon(alpha, shift, norm=1) == pytest.approx(numeric, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("d", [3.0, 4.0, float("inf")])
def test_gaussian_high_norm_uses_dimension_factor(d):
    """For d > 2 the worst ℓ_d-bounded shift spreads equally: ‖δ‖₂ = N^{1/2−1/d} L."""
    sigma, alpha, radius, n = 0.5, 3.0, 0.05, 12
    per_coord = radius * n ** (-(0 if math.isinf(d) else 1 / d))
    delta = np.full(n, per_coord)
    assert np.linalg.norm(delta, d) == pytest.approx(radius)
    # divergence of a product of independent coordinates is the sum of 1-D divergences
    numeric = sum(renyi_1d(stats.norm(v, sigma).logpdf, stats.norm(0, sigma).logpdf, alpha, -8, 8)
                  for v in delta)
    assert Gaussian(sigma).rdp_epsilon(alpha, radius, norm=d, dim=n) == pytest.approx(numeric, rel=1e-6)
    # and no other direction of the same ℓ_d size does worse
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.normal(size=n)
        v *= radius / np.linalg.norm(v, d)
        assert alpha * (v @ v) / (2 * sigma ** 2) <= Gaussian(sigma).rdp_epsilon(alpha, radius, norm=d, dim=n) + 1e-12


@pytest.mark.parametrize("alpha", [1.01, 1.5, 3.0, 20.0, 150.0])
@pytest.mark.parametrize("shift", [0.05, 1.0, 4.0])
def test_laplace_curve_matches_integration(alpha, shift):
    b = 0.8
    q = stats.laplace(shift * b, b).logpdf
    p = stats.laplace(0, b).logpdf
    numeric = renyi_1d(q, p, alpha, -60 * b, 60 * b, points=[0.0, shift * b])
    assert Laplace(b).rdp_epsilon(alpha, shift * b, norm=1) == pytest.approx(numeric, rel=1e-6, abs=1e-10)


def test_laplace_curve_is_convex_in_the_shift():
    """Superadditivity (hence the one-coordinate worst case) rests on convexity, ε(α,0)=0."""
    lap = Laplace(1.0)
    s = np.linspace(0, 20, 801)
    for alpha in np.geomspace(1.01, 200, 25):
        eps = lap.rdp_epsilon(alpha, s, norm=1)
        assert eps[0] == pytest.approx(0.0, abs=1e-12)
        second = eps[2:] - 2 * eps[1:-1] + eps[:-2]
        assert second.min() >= -1e-9 * max(1.0, eps.max())
        # superadditivity on random splits of the budget
        rng = np.random.default_rng(int(alpha * 100))
        for _ in range(20):
            total = rng.uniform(0, 20)
            parts = rng.dirichlet(np.ones(4)) * total
            assert sum(lap.rdp_epsilon(alpha, v, norm=1) for v in parts) <= lap.rdp_epsilon(alpha, total, norm=1) + 1e-9


@pytest.mark.parametrize("d", [2.0, float("inf")])
def test_laplace_high_norm_bounds_every_direction(d):
    lap, alpha, radius, n = Laplace(0.3), 4.0, 0.1, 10
    bound = lap.rdp_epsilon(alpha, radius, norm=d, dim=n)
    rng = np.random.default_rng(1)
    for _ in range(4):
        v = rng.normal(size=n)
        v *= radius / np.linalg.norm(v, d)
        numeric = sum(renyi_1d(stats.laplace(x, 0.3).logpdf, stats.laplace(0, 0.3).logpdf, alpha, -20, 20,
                               points=[0.0, x]) for x in v)
        assert numeric <= bound + 1e-9


@pytest.mark.parametrize("noise", [Gaussian(0.25), Laplace(0.25)])
def test_radius_for_epsilon_inverts_the_curve(noise):
    alphas = np.array([1.1, 2.0, 10.0, 80.0])
    eps = np.array([0.001, 0.05, 0.3, 2.0])
    for norm, dim in [(1, None), (2, 3 * 8 * 8), (float("inf"), 3 * 8 * 8)]:
        r = noise.radius_for_epsilon(alphas, eps, norm=norm, dim=dim)
        back = np.array([noise.rdp_epsilon(a, x, norm=norm, dim=dim) for a, x in zip(alphas, r)])
        np.testing.assert_allclose(back, eps, rtol=1e-7)


def test_rdp_is_monotone_in_alpha_and_radius():
    for noise in (Gaussian(0.3), Laplace(0.3)):
        a = np.geomspace(1.01, 100, 30)
        e = noise.rdp_epsilon(a, 0.2, norm=1)
        assert np.all(np.diff(e) >= -1e-12)
        r = np.linspace(0, 2, 30)
        e = noise.rdp_epsilon(3.0, r, norm=1)
        assert np.all(np.diff(e) > 0)


def test_sampling_statistics_and_reproducibility():
    g = torch.Generator().manual_seed(0)
    z = Gaussian(0.2).sample((200_000,), generator=g)
    assert z.std().item() == pytest.approx(0.2, rel=0.01)
    assert abs(z.mean().item()) < 0.002
    g = torch.Generator().manual_seed(0)
    y = Laplace(0.2).sample((200_000,), generator=g)
    assert y.abs().mean().item() == pytest.approx(0.2, rel=0.01)
    assert y.std().item() == pytest.approx(0.2 * math.sqrt(2), rel=0.01)
    a = Gaussian(0.2).sample((5,), generator=torch.Generator().manual_seed(3))
    b = Gaussian(0.2).sample((5,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "0.1"])
def test_bad_scales_are_rejected(bad):
    with pytest.raises(ValueError, match="sigma"):
        Gaussian(bad)
    with pytest.raises(ValueError, match="scale"):
        Laplace(bad)


def test_bad_arguments_are_rejected():
    g = Gaussian(0.1)
    with pytest.raises(ValueError, match="alpha"):
        g.rdp_epsilon(1.0, 0.1)
    with pytest.raises(ValueError, match="radius"):
        g.rdp_epsilon(2.0, -0.1)
    with pytest.raises(ValueError, match="norm"):
        g.rdp_epsilon(2.0, 0.1, norm=0.5)
    with pytest.raises(ValueError, match="dim"):
        g.rdp_epsilon(2.0, 0.1, norm=float("inf"))
    with pytest.raises(ValueError, match="dim"):
        Laplace(0.1).rdp_epsilon(2.0, 0.1, norm=float("inf"))
    with pytest.raises(ValueError, match="dim"):
        Laplace(0.1).radius_for_epsilon(2.0, 0.1, norm=3)
    # ℓ2 needs no dimension: the per-coordinate zCDP curve alone is valid
    assert Laplace(0.1).rdp_epsilon(2.0, 0.1, norm=2) == pytest.approx(2.0 * 0.1 ** 2 / (2 * 0.1 ** 2))


# ------------------------------------------------------------ Laplace: minimum of valid curves

def mironov_mp(alpha, s):
    """Mironov's Prop. 6 in 60-digit arithmetic (independent of the float implementation)."""
    mp.mp.dps = 60
    a, s = mp.mpf(alpha), mp.mpf(s)
    return float(mp.log(a / (2 * a - 1) * mp.exp((a - 1) * s) + (a - 1) / (2 * a - 1) * mp.exp(-a * s)) / (a - 1))


def laplace_1d(alpha, shift, b):
    return renyi_1d(stats.laplace(shift, b).logpdf, stats.laplace(0, b).logpdf, alpha,
                    -60 * b - abs(shift), 60 * b + abs(shift), points=[0.0, shift])


@pytest.mark.parametrize("alpha", [1 + 1e-6, 1 + 1e-4, 1.01, 3.0, 500.0])
@pytest.mark.parametrize("s", [1e-7, 1e-4, 0.05, 2.0, 40.0])
def test_laplace_curve_near_alpha_one_against_60_digits(alpha, s):
    got = Laplace(1.0).rdp_epsilon(alpha, s, norm=1)
    assert got == pytest.approx(mironov_mp(alpha, s), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("alpha", [1.05, 2.0, 8.0, 60.0])
@pytest.mark.parametrize("radius", [0.02, 0.3, 1.5])
def test_laplace_l2_minimum_of_valid_curves(alpha, radius):
    """ℓ2: min(zCDP α L²/(2b²), ℓ1 conversion at √N·L, N·ε₁(L)) — ≤ each valid curve, and ≥ the
    numerically integrated divergence of every worst-case shift we can construct."""
    b, n = 0.5, 6
    lap = Laplace(b)
    got = lap.rdp_epsilon(alpha, radius, norm=2, dim=n)
    zcdp = alpha * radius ** 2 / (2 * b ** 2)
    l1 = mironov_mp(alpha, math.sqrt(n) * radius / b)
    linf = n * mironov_mp(alpha, radius / b)
    assert got <= min(zcdp, l1, linf) * (1 + 1e-9)
    assert got == pytest.approx(min(zcdp, l1, linf), rel=1e-8)
    assert lap.rdp_epsilon(alpha, radius, norm=2) == pytest.approx(zcdp, rel=1e-12)  # no dim: zCDP only
    assert lap.rdp_epsilon(alpha, radius, norm=2) >= got * (1 - 1e-12)
    rng = np.random.default_rng(int(alpha * 10 + radius * 100))
    shifts = [np.eye(n)[0] * radius, np.full(n, radius / math.sqrt(n))]
    shifts += [v * radius / np.linalg.norm(v) for v in rng.normal(size=(3, n))]
    for delta in shifts:
        true = sum(laplace_1d(alpha, float(x), b) for x in delta)  # product densities add
        assert true <= got * (1 + 1e-7) + 1e-12, (delta, true, got)


@pytest.mark.parametrize("alpha", [1.01, 2.0, 30.0])
def test_laplace_linf_is_exactly_n_times_the_1d_curve(alpha):
    b, n, radius = 0.4, 5, 0.1
    got = Laplace(b).rdp_epsilon(alpha, radius, norm=float("inf"), dim=n)
    numeric = n * laplace_1d(alpha, radius, b)   # the corner shift, every coordinate at L
    assert got == pytest.approx(numeric, rel=1e-7)
    # the old ℓ1 conversion (N·L on one coordinate) is valid but larger
    assert mironov_mp(alpha, n * radius / b) > got


def test_laplace_l2_radius_far_larger_than_l1_conversion_and_consistent():
    lap, dim = Laplace(0.1), 3 * 224 * 224
    alphas = np.geomspace(1.01, 100, 12)
    eps = np.full(12, 0.05)
    r = lap.radius_for_epsilon(alphas, eps, norm=2, dim=dim)
    old = lap._inverse_curve(alphas, eps) * 0.1 / math.sqrt(dim)
    assert np.all(r >= 100 * old)
    back = lap.rdp_epsilon(alphas, r, norm=2, dim=dim)
    np.testing.assert_allclose(back, eps, rtol=1e-7)
    assert lap.radius_for_epsilon(2.0, np.inf, norm=2, dim=dim) == np.inf
    assert Gaussian(0.1).radius_for_epsilon(2.0, np.inf) == np.inf
