"""Exact top-k certificates against independent computations (method.md §4–§6)."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from rrs import certify as C
from rrs.noise import Gaussian, Laplace
from rrs.settings import CertifySettings


def renyi(q, p, alpha):
    mask = q > 0
    return math.log(np.sum(q[mask] ** alpha * p[mask] ** (1 - alpha))) / (alpha - 1)


def solver_min(p, alpha, in_sets, out_sets, rng, starts=3):
    """General constrained solver: min D_α(Q‖P) over the simplex such that every cell of some
    chosen ``A`` is at or below every cell of the matching ``B`` (all choices enumerated)."""
    n = p.size
    best = np.inf
    for a_set in in_sets:
        for b_set in out_sets:
            cons = [{"type": "ineq", "fun": (lambda q, a=a, b=b: q[b] - q[a])} for a in a_set for b in b_set]
            cons.append({"type": "eq", "fun": lambda q: q.sum() - 1})
            for s in range(starts):
                x0 = p.copy() if s == 0 else rng.dirichlet(np.ones(n))
                res = optimize.minimize(lambda q: renyi(np.clip(q, 1e-300, None), p, alpha), x0,
                                        method="SLSQP", bounds=[(0, 1)] * n, constraints=cons,
                                        options={"ftol": 1e-15, "maxiter": 1000})
                q = np.clip(res.x, 0, None)
                feasible = all(q[b] >= q[a] - 1e-9 for a in a_set for b in b_set) and abs(q.sum() - 1) < 1e-7
                if feasible:
                    best = min(best, renyi(q / q.sum(), p, alpha))
    return best


def random_case(rng):
    n = int(rng.integers(4, 8))
    k = int(rng.integers(1, n))
    k0 = int(rng.integers(1, min(k, n - k) + 1))
    alpha = float(1 + rng.exponential(3))
    p = rng.dirichlet(np.ones(n) * rng.uniform(0.3, 3))
    return p, k, k0, alpha


def test_min_renyi_divergence_matches_general_solver():
    rng = np.random.default_rng(2024)
    for _ in range(32):
        p, k, k0, alpha = random_case(rng)
        order = np.lexsort((np.arange(p.size), -p))
        top, rest = order[:k], order[k:]
        exact = C.min_renyi_divergence(p, k, k0, alpha)
        brute = solver_min(p, alpha, itertools.combinations(top, k0), list(itertools.combinations(rest, k0)), rng)
        assert exact == pytest.approx(brute, abs=1e-6), (p, k, k0, alpha)


def test_torch_input_is_accepted():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    assert C.min_renyi_divergence(torch.tensor(p), 2, 1, 2.0) == pytest.approx(C.min_renyi_divergence(p, 2, 1, 2.0))


def test_equal_level_form_over_estimates_for_k0_at_least_2():
    rng = np.random.default_rng(7)
    strictly = 0
    for _ in range(300):
        p, k, k0, alpha = random_case(rng)
        exact = C.min_renyi_divergence(p, k, k0, alpha)
        eq = C.equal_level_divergence(p, k, k0, alpha)
        assert eq >= exact - 1e-12
        if k0 == 1:
            assert eq == pytest.approx(exact, rel=1e-9, abs=1e-12)
        elif eq > exact * (1 + 1e-6) + 1e-12:
            strictly += 1
    assert strictly > 0
    # a concrete case where the gap certifies perturbations that break the guarantee
    p = np.array([0.198, 0.159, 0.135, 0.129, 0.126, 0.125, 0.124, 0.005])
    p = p / p.sum()
    exact = C.min_renyi_divergence(p, 6, 2, 3.91)
    eq = C.equal_level_divergence(p, 6, 2, 3.91)
    assert eq > exact * 1.5
    cert = C.equal_level_radius(p, 6, 5 / 6, Gaussian(0.5))
    assert not cert.is_certificate and "not a certificate" in cert.label


def test_per_cell_structure_matches_general_solver():
    """Cell i leaves the top-k iff k other cells reach it; the cheapest set is the k largest."""
    rng = np.random.default_rng(11)
    for _ in range(25):
        n = int(rng.integers(4, 7))
        k = int(rng.integers(1, n))
        alpha = float(1 + rng.exponential(3))
        p = rng.dirichlet(np.ones(n))
        order = np.lexsort((np.arange(n), -p))
        u = p[order[:k + 1]]
        fast = C._cell_divergences(u, u[:k], np.full(k, k), np.full(k, 1 - u.sum()), alpha)
        for j, i in enumerate(order[:k]):
            others = [c for c in range(n) if c != i]
            brute = solver_min(p, alpha, [(i,)], list(itertools.combinations(others, k)), rng, starts=2)
            assert fast[j] == pytest.approx(brute, abs=1e-6), (p, k, i, alpha)


def test_per_cell_binary_search_matches_full_scan_incl_ties_and_zeros():
    rng = np.random.default_rng(3)
    for case in range(1500):
        n = int(rng.integers(3, 40))
        k = int(rng.integers(1, n))
        p = rng.dirichlet(np.ones(n) * rng.uniform(0.05, 3))
        if case % 3 == 0:
            p[rng.random(n) < 0.3] = 0
            p = p / p.sum() if p.sum() > 0 else np.full(n, 1 / n)
        if case % 5 == 0:
            p = np.round(p, 2)
            p = p / p.sum()
        alpha = float(1 + rng.exponential(5))
        order = np.lexsort((np.arange(n), -p))
        u = p[order[:k + 1]]
        fast = C._cell_divergences(u, u[:k], np.full(k, k), np.full(k, 1 - u.sum()), alpha)
        for j in range(k):
            ref = C._Threshold([u[j]], np.delete(u, j), 1 - u.sum()).value(alpha)
            assert fast[j] == pytest.approx(ref, rel=1e-9, abs=1e-12) or (np.isinf(fast[j]) and np.isinf(ref))


def test_two_pass_alpha_search_never_exceeds_the_full_grid_and_stays_close():
    """Per-cell radii: the coarse-then-local α search is a subset of the full grid scan, so
    never larger (soundness does not depend on the grid), and equal to it up to 1e-4."""
    from rrs.noise import Gaussian, Laplace
    rng = np.random.default_rng(0)
    for case in range(150):
        n = int(rng.integers(4, 200))
        k = int(rng.integers(1, n))
        p = rng.dirichlet(np.ones(n) * rng.uniform(0.05, 3))
        if case % 3 == 0:
            p[rng.random(n) < 0.3] = 0
            p = p / p.sum() if p.sum() > 0 else np.full(n, 1 / n)
        noise = Gaussian(rng.uniform(0.05, 1)) if case % 2 else Laplace(rng.uniform(0.05, 1))
        norm = [1, 2, np.inf][case % 3]
        order = np.lexsort((np.arange(n), -p))
        u = p[order[:k + 1]]
        args = (u, u[:k], np.full(k, k), np.full(k, 1 - u.sum()), noise, norm, 3 * n, None)
        full = C._cell_radius_search(*args, stride=1)
        fast = C._cell_radius_search(*args)
        assert np.all(fast <= full)
        # radii below ~1e-5 scales come from D*_α near float noise (α → 1), whose α-curve
        # is jagged; everywhere else the search finds the grid maximum
        big = full > 1e-5 * noise.scale_value
        np.testing.assert_allclose(fast[big], full[big], rtol=1e-4, atol=0)


def test_box_per_cell_matches_scan():
    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(4, 30))
        k = int(rng.integers(1, n))
        p = rng.dirichlet(np.ones(n))
        width = rng.uniform(0, 0.05)
        lower, upper = np.clip(p - width * rng.random(n), 0, 1), np.clip(p + width * rng.random(n), 0, 1)
        selected = np.lexsort((np.arange(n), -p))[:k]
        alpha = float(1 + rng.exponential(3))
        alphas = np.array([alpha])
        got = C.cell_radii_from_bounds(lower, upper, selected, k, Gaussian(1.0), alphas=alphas).radii
        for i in selected:
            comp = [j for j in np.lexsort((np.arange(n), -upper)) if j != i][:k]
            rest = 1 - lower[i] - upper[comp].sum()
            if rest < 0 or lower[i] <= upper[comp].min():
                want = 0.0
            else:
                d = C._Threshold([lower[i]], upper[comp], rest).value(alpha)
                want = Gaussian(1.0).radius_for_epsilon(alpha, d)
            assert got[i] == pytest.approx(want, rel=1e-7, abs=1e-12)


def test_divergence_is_monotone_in_the_box():
    """§5: D* falls when an A value falls or a B value rises (the rest absorbing the mass)."""
    rng = np.random.default_rng(9)
    for _ in range(2000):
        n = int(rng.integers(4, 12))
        k = int(rng.integers(1, n))
        k0 = int(rng.integers(1, min(k, n - k) + 1))
        alpha = float(1 + rng.exponential(4))
        p = np.sort(rng.dirichlet(np.ones(n)))[::-1]
        a, b = p[k - k0:k].copy(), p[k:k + k0].copy()
        rest = 1 - a.sum() - b.sum()
        base = C._Threshold(a, b, rest).value(alpha)
        i = rng.integers(k0)
        if rng.random() < 0.5:
            delta = rng.uniform(0, a[i])
            a2 = a.copy(); a2[i] -= delta
            moved = C._Threshold(a2, b, rest + delta).value(alpha)
        else:
            delta = rng.uniform(0, max(rest, 0.0))
            b2 = b.copy(); b2[i] += delta
            moved = C._Threshold(a, b2, rest - delta).value(alpha)
        assert moved <= base + 1e-12


def test_certified_radius_is_the_supremum_over_alpha():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(20))
    sigma = 0.3
    cert = C.certified_radius(p, 5, 0.6, Gaussian(sigma))
    k0 = cert.k0
    assert k0 == 5 - 3 + 1
    # Gaussian ℓ2: radius = sup_α σ sqrt(2 D*_α / α); a much finer grid gains almost nothing
    fine = np.linspace(1.001, 60, 6000)
    best = max(sigma * math.sqrt(2 * C.min_renyi_divergence(p, 5, k0, a) / a) for a in fine)
    assert cert.radius <= best + 1e-12
    assert cert.radius >= 0.995 * best
    # at the reported radius, the certifying α satisfies ε(α, L) ≤ D*_α
    assert Gaussian(sigma).rdp_epsilon(cert.alpha, cert.radius) <= cert.divergence * (1 + 1e-9)
    # Laplace and ℓ∞ work through the same search
    lap = C.certified_radius(p, 5, 0.6, Laplace(0.3), norm=float("inf"), dim=100)
    assert 0 < lap.radius < cert.radius


def test_radius_non_increasing_in_beta():
    rng = np.random.default_rng(4)
    for _ in range(10):
        p = rng.dirichlet(np.ones(60) * 0.5)
        radii = [C.certified_radius(p, 10, b, Gaussian(0.2)).radius for b in (0.2, 0.4, 0.6, 0.8, 1.0)]
        assert all(x >= y - 1e-15 for x, y in zip(radii, radii[1:]))


def test_clopper_pearson_bounds_match_scipy_and_cover():
    t, n, eta, v1 = 200, 8, 0.1, 0.25
    rng = np.random.default_rng(0)
    true = np.array([0.9, 0.7, 0.5, 0.3, 0.2, 0.2, 0.1, 0.1]) * v1 / (np.array([0.9, 0.7, 0.5, 0.3, 0.2, 0.2, 0.1, 0.1]).sum() * v1) * 2
    true = np.clip(true, 0, 1) * v1
    misses = 0
    for trial in range(400):
        counts = rng.binomial(t, true / v1)
        stats_ = C.CellStats(counts * v1 / t, counts * v1 ** 2 / t, t, v1, binary=True)
        lo, hi = C.probability_bounds(stats_, eta, "clopper-pearson")
        if trial == 0:
            for i in range(n):
                ci = stats.binomtest(int(counts[i]), t).proportion_ci(confidence_level=1 - eta / n, method="exact")
                assert lo[i] == pytest.approx(ci.low * v1, abs=1e-12)
                assert hi[i] == pytest.approx(ci.high * v1, abs=1e-12)
        misses += np.any((true < lo) | (true > hi))
    assert misses / 400 <= eta


def test_hoeffding_and_bernstein_cover():
    t, n, eta = 100, 5, 0.2
    rng = np.random.default_rng(1)
    means = rng.uniform(0, 1, n)
    for method in ("hoeffding", "bernstein"):
        misses = 0
        for _ in range(300):
            x = rng.beta(means * 2 + 0.1, 2.1 - means * 2, size=(t, n))  # values in [0, 1]
            true = (means * 2 + 0.1) / 2.2
            st = C.CellStats(x.mean(0), (x ** 2).mean(0), t, 1.0)
            lo, hi = C.probability_bounds(st, eta, method)
            misses += np.any((true < lo) | (true > hi))
        assert misses / 300 <= eta
    st = C.CellStats(np.full(4, 0.5), np.full(4, 0.25), 50, 2.0)
    lo, hi = C.probability_bounds(st, 0.1, "hoeffding")
    half = 2.0 * math.sqrt(math.log(2 * 4 / 0.1) / (2 * 50))
    np.testing.assert_allclose(hi - 0.5, half)


def test_gaussian_cdf_cell_radii_match_direct_count():
    rng = np.random.default_rng(6)
    for _ in range(50):
        n, k = 30, 6
        v1 = 0.5
        m = rng.uniform(0, v1, n)
        lower, upper = np.clip(m - 0.02, 0, v1), np.clip(m + 0.02, 0, v1)
        sel = np.lexsort((np.arange(n), -m))[:k]
        sigma = 0.4
        cells = C.gaussian_cdf_cell_radii(lower, upper, sel, k, sigma, v1)
        for i in sel:
            r = cells.radii[i]
            for L, expect in ((r * 0.999, True), (r * 1.001 + 1e-12, False)):
                lo_i = v1 * stats.norm.cdf(stats.norm.ppf(lower[i] / v1) - L / sigma)
                hi = v1 * stats.norm.cdf(stats.norm.ppf(upper / v1) + L / sigma)
                count = sum(1 for j in range(n) if j != i and hi[j] >= lo_i)
                if r > 0:
                    assert (count < k) == expect
        beta = 0.5
        rad = C.gaussian_cdf_radius(lower, upper, sel, k, beta, sigma, v1)
        need = k - C.displaced_count(k, beta) + 1
        if rad > 0:
            assert C.gaussian_cdf_overlap(lower, upper, sel, k, sigma, rad * 0.999, v1).sum() >= need
            assert C.gaussian_cdf_overlap(lower, upper, sel, k, sigma, rad * 1.001, v1).sum() < need


def test_certify_report_on_rrs_like_map():
    rng = np.random.default_rng(8)
    n, kp, t = 64, 8, 4000
    # per-sample top-k' uniform indicator maps from a noisy score
    score = np.linspace(2, 0, n)
    counts = np.zeros(n)
    for _ in range(t):
        top = np.argsort(-(score + rng.normal(0, 0.4, n)), kind="stable")[:kp]
        counts[top] += 1
    mean = counts / t / kp
    st = C.CellStats(mean, mean / kp, t, 1 / kp, binary=True)
    rep = C.certify(st, k=kp, noise=Gaussian(0.5), settings=CertifySettings(betas=(1.0, 0.75, 0.5)))
    for group in (rep.rdp_plugin, rep.rdp_finite, rep.cdf_plugin, rep.cdf_finite):
        radii = [c.radius for c in group]
        assert all(r >= 0 for r in radii)
        assert all(x <= y + 1e-15 for x, y in zip(radii, radii[1:]))  # β decreasing → radius grows
    for plug, fin in zip(rep.rdp_plugin, rep.rdp_finite):
        assert fin.radius <= plug.radius + 1e-12
    assert rep.rdp_plugin[-1].radius > 0
    assert rep.cells_plugin.radii[rep.selected].max() > 0
    assert len(rep.rows()) == 15


@pytest.mark.parametrize("kwargs,match", [
    (dict(p=np.array([[0.5, 0.5]]), k=1, k0=1, alpha=2), "1-D"),
    (dict(p=np.array([0.5, 0.6]), k=1, k0=1, alpha=2), "sum to 1"),
    (dict(p=np.array([0.5, np.nan, 0.5]), k=1, k0=1, alpha=2), "non-finite"),
    (dict(p=np.array([0.5, 0.3, 0.2]), k=3, k0=1, alpha=2), "k must"),
    (dict(p=np.array([0.5, 0.3, 0.2]), k=0, k0=1, alpha=2), "k must"),
    (dict(p=np.array([0.5, 0.3, 0.2]), k=1, k0=2, alpha=2), "k0"),
    (dict(p=np.array([0.5, 0.3, 0.2]), k=1, k0=1, alpha=1.0), "alpha"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        C.min_renyi_divergence(**kwargs)


def test_bad_beta_and_noise():
    p = np.full(10, 0.1)
    for beta in (0, 1.5, -0.1, "x"):
        with pytest.raises(ValueError, match="beta"):
            C.certified_radius(p, 3, beta, Gaussian(0.1))
    with pytest.raises(ValueError, match="noise"):
        C.certified_radius(p, 3, 0.5, 0.1)
    with pytest.raises(ValueError, match="eta"):
        C.probability_bounds(C.CellStats(p, p, 10, 1.0), 0)
    with pytest.raises(ValueError, match="bounded"):
        C.probability_bounds(C.CellStats(p, p, 10, None), 0.05)
    with pytest.raises(ValueError, match="radius"):
        C.certified_region(p, -1)


def test_certify_takes_the_settings_object_whole():
    """certify() reads norm, η, β, per-cell radii and the scheme from one CertifySettings (no
    loose keywords that could disagree with it); no settings = CertifySettings()."""
    from rrs.smoothing import CellStats

    rng = np.random.default_rng(3)
    p = np.minimum(rng.dirichlet(np.ones(12) * 2.0), 0.3)
    p = p / p.sum()
    stats = CellStats(p, p * 0.4, 400, 0.4, False)
    cs = CertifySettings(norm="l2", eta=0.1, betas=(1.0, 0.8))
    a = C.certify(stats, 3, Gaussian(0.3), settings=cs)
    assert a.betas == (1.0, 0.8) and a.eta == 0.1 and a.norm == 2.0 and a.scheme == "bonferroni"
    assert a.cells_finite is not None
    b = C.certify(stats, 3, Gaussian(0.3), cs.replace(cell_radii=False, norm="inf"), dim=48)
    assert b.cells_finite is None and b.norm == math.inf
    assert [c.radius for c in a.rdp_finite] == [c.radius for c in
                                                C.certify(stats, 3, Gaussian(0.3), cs).rdp_finite]
    default = C.certify(stats, 3, Gaussian(0.3))
    assert default.betas == CertifySettings().betas and default.eta == 0.05 and default.norm == 2.0
    with pytest.raises(TypeError):
        C.certify(stats, 3, Gaussian(0.3), betas=(1.0,))


def test_bad_certificate_arguments_are_clear_value_errors():
    from rrs.smoothing import CellStats

    p = np.array([0.4, 0.3, 0.2, 0.1])
    with pytest.raises(ValueError, match="sq_mean"):
        C.certify(CellStats(p, None, 100, 0.4, False), 1, Gaussian(0.3), bound_method="bernstein")
    stats = CellStats(p, p * 0.4, 100, 0.4, False)
    with pytest.raises(ValueError, match="at least one Rényi order"):
        C.certify(stats, 1, Gaussian(0.3), alphas=[])
    with pytest.raises(ValueError, match="tau"):
        C.stays_important(stats, Gaussian(0.3), tau=None)
    one = C.certify(stats, 1, Gaussian(0.3), CertifySettings(betas=0.5))  # one β as a number
    assert [c.beta for c in one.rdp_plugin] == [0.5]
    r32 = C.gaussian_cdf_cell_radii(p, p, np.array([0]), 1, np.float32(0.5)).radii
    np.testing.assert_allclose(r32, C.gaussian_cdf_cell_radii(p, p, np.array([0]), 1, 0.5).radii)
