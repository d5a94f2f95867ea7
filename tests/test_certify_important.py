"""The per-cell "stays important" certificate (method.md §6b) against hand-computed cases,
exact worst cases (half-spaces) and Monte Carlo coverage."""
import math

import numpy as np
import pytest
from scipy import stats

from rrs import certify as C
from rrs.noise import Gaussian, Laplace


def binary_stats(counts, t, v1=0.25):
    m = np.asarray(counts, dtype=float) / t * v1
    return C.CellStats(m, m * v1, t, v1, True)


def test_hand_computed_plugin_radii():
    t = 1000
    h = np.array([stats.norm.cdf(1.0), 0.5, 0.3, 1.0, stats.norm.cdf(2.0)])
    counts = h * t
    st = C.CellStats(h * 0.25, h * 0.25 ** 2, t, 0.25, False)   # exact h, not rounded to counts
    cert = C.stays_important(st, Gaussian(0.25), finite_sample=False)
    np.testing.assert_allclose(cert.radii[[0, 1, 2, 4]], [0.25, 0.0, 0.0, 0.5], atol=1e-12)
    assert cert.radii[3] == math.inf and cert.unbounded[3] and cert.unbounded.sum() == 1
    # τ = Φ(−1): σ(Φ⁻¹(h) + 1)
    cert = C.stays_important(st, Gaussian(0.25), tau=stats.norm.cdf(-1.0), finite_sample=False)
    np.testing.assert_allclose(cert.radii[[0, 1]], [0.5, 0.25], atol=1e-12)
    # ℓ∞ via √N, and the region
    cert = C.stays_important(st, Gaussian(0.25), finite_sample=False, norm=float("inf"), dim=16)
    np.testing.assert_allclose(cert.radii[0], 0.25 / 4, atol=1e-12)
    assert cert.region(0.05).tolist() == [True, False, False, True, True]
    assert cert.tau == 0.5 and cert.bound == "gaussian-cdf" and cert.interval == "plug-in" and cert.eta is None


def test_clopper_pearson_lower_bound_and_radius_by_hand():
    t, eta, n = 200, 0.05, 4
    counts = np.array([180, 120, 60, 10])
    cert = C.stays_important(binary_stats(counts, t), Gaussian(0.3), eta=eta)
    for i, x in enumerate(counts):
        ci = stats.binomtest(int(x), t, alternative="greater").proportion_ci(confidence_level=1 - eta / n)
        assert cert.lower[i] == pytest.approx(ci.low, abs=1e-12)
        want = max(0.3 * (stats.norm.ppf(ci.low) - 0.0), 0.0)
        assert cert.radii[i] == pytest.approx(want, abs=1e-12)
    assert cert.interval == "clopper-pearson" and cert.eta == eta and cert.finite_sample
    per_cell = C.stays_important(binary_stats(counts, t), Gaussian(0.3), eta=eta, simultaneous=False)
    assert np.all(per_cell.radii >= cert.radii) and per_cell.radii[0] > cert.radii[0]


def halfspace_h(x_shift, sigma):
    """h(x') = P(x' + δ > 0) for 1-D Gaussian noise: the worst case of the CDF bound."""
    return stats.norm.cdf(x_shift / sigma)


def test_gaussian_radius_is_tight_on_the_halfspace():
    sigma = 0.4
    for h in (0.55, 0.8, 0.97):
        x = sigma * stats.norm.ppf(h)                 # h(x) = h
        st = C.CellStats(np.array([h, 1 - h]), np.array([h, 1 - h]), 10, 1.0)
        r = C.stays_important(st, Gaussian(sigma), finite_sample=False).radii[0]
        assert halfspace_h(x - 0.999 * r, sigma) > 0.5
        assert halfspace_h(x - 1.001 * r, sigma) < 0.5


def test_monte_carlo_coverage_of_the_finite_sample_claim():
    """Binary samples with known h; the claim "h(x') > τ within the radius" is false exactly
    when the radius exceeds σ(Φ⁻¹(h) − Φ⁻¹(τ)) (the half-space worst case)."""
    rng = np.random.default_rng(0)
    sigma, t, eta, trials = 0.25, 100, 0.2, 1500
    h = np.array([0.7, 0.85, 0.6])
    truth = sigma * (stats.norm.ppf(h) - stats.norm.ppf(0.5))
    bad = bad_plugin = 0
    for _ in range(trials):
        counts = rng.binomial(t, h)
        cert = C.stays_important(binary_stats(counts, t, 1.0), Gaussian(sigma), eta=eta)
        bad += np.any(cert.radii > truth + 1e-12)
        plug = C.stays_important(binary_stats(counts, t, 1.0), Gaussian(sigma), finite_sample=False)
        bad_plugin += np.any(plug.radii > truth + 1e-12)
    m = 3 * math.sqrt(eta * (1 - eta) / trials)
    assert bad / trials <= eta + m
    assert bad_plugin / trials > eta + m        # the test can fail


def test_rdp_version_is_sound_for_laplace_and_weaker_than_cdf_for_gaussian():
    # Laplace, 1-D half-line: h(x') = P(x' + δ > 0); check h stays > τ inside the radius
    b = 0.3
    for h in (0.6, 0.8, 0.95, 0.995):
        x = -b * math.log(2 * (1 - h)) if h > 0.5 else b * math.log(2 * h)
        assert stats.laplace(0, b).sf(-x) == pytest.approx(h)
        st = C.CellStats(np.array([h, 1 - h]), np.array([h, 1 - h]), 10, 1.0)
        cert = C.stays_important(st, Laplace(b), finite_sample=False, norm=1)
        r = cert.radii[0]
        assert cert.bound == "rdp" and r > 0
        assert stats.laplace(0, b).sf(-(x - r)) > 0.5 - 1e-12
        # Gaussian: the RDP route is valid but never better than the exact CDF bound
        g_rdp = C.stays_important(st, Gaussian(b), finite_sample=False, bound="rdp").radii[0]
        g_cdf = C.stays_important(st, Gaussian(b), finite_sample=False).radii[0]
        assert 0 < g_rdp <= g_cdf
    with pytest.raises(ValueError, match="Gaussian"):
        C.stays_important(st, Laplace(b), bound="gaussian-cdf")
    with pytest.raises(ValueError, match="tau"):
        C.stays_important(st, Gaussian(b), tau=1.0)


def test_laplace_radius_takes_the_complement_bound_and_reaches_the_exact_1d_value():
    """RDP applied to the complement event "not important" is valid too and far tighter near
    h = 1: at h = 0.99 (Laplace with std 0.25) the event bound gives 0.224, the complement
    0.6916, the exact 1-D worst case (a half-line) F⁻¹(1 − τ) − F⁻¹(1 − h) = b log 50."""
    b = 0.25 / math.sqrt(2)
    lap = stats.laplace(0, b)
    # the exact one-dimensional radius by numerical integration of the Laplace density
    from scipy import integrate, optimize

    def tail(c):   # P(δ > c), integrated
        return integrate.quad(lambda z: math.exp(-abs(z) / b) / (2 * b), c, np.inf)[0]

    def exact(h, tau):
        return optimize.brentq(lambda c: tail(c) - tau, -20 * b, 20 * b) - \
            optimize.brentq(lambda c: tail(c) - h, -20 * b, 20 * b)

    assert exact(0.99, 0.5) == pytest.approx(b * math.log(50), rel=1e-7)
    rng = np.random.default_rng(0)
    for h, tau in ((0.99, 0.5), (0.9, 0.5), (0.999, 0.5), (0.95, 0.8), (0.99, 0.3), (0.7, 0.5), (0.55, 0.5)):
        st = C.CellStats(np.array([h, 1 - h]), np.array([h, 1 - h]), 10, 1.0)
        r = C.stays_important(st, Laplace(b), tau=tau, finite_sample=False, norm=1).radii[0]
        e = exact(h, tau)
        assert r <= e * (1 + 1e-7)                       # never beyond the exact worst case
        if h >= 0.9:
            assert r >= 0.97 * e                         # the complement bound is nearly exact
        # Monte Carlo: the worst-case half-line event shifted by the radius keeps P ≥ τ
        c = lap.isf(h)                                   # P(δ > c) = h at x
        z = rng.laplace(0.0, b, 400_000)
        assert (z > c + r).mean() >= tau - 4 * math.sqrt(tau * (1 - tau) / z.size)
    st = C.CellStats(np.array([0.99, 0.01]), np.array([0.99, 0.01]), 10, 1.0)
    r = C.stays_important(st, Laplace(b), finite_sample=False, norm=1).radii[0]
    assert r == pytest.approx(0.6916, abs=1e-4)
    # both bounds are sound: the radius is the larger one, so it is never below the event bound
    event_only = 0.0
    for alpha in (1.5, 3.0, 10.0):
        budget = alpha / (alpha - 1) * math.log(0.99) - math.log(0.5)
        event_only = max(event_only, float(Laplace(b).radius_for_epsilon(alpha, budget, norm=1)))
    assert r >= event_only and 0.15 < event_only < 0.23
