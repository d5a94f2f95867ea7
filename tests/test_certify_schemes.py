"""Finite-sample schemes attacked by simulation (method.md §5): the separate selection batch
and anytime-valid checkpoints. Synthetic RRS maps with top-1 scoring: each sample is a
one-hot vector drawn from p, so the map's expectation is exactly p and the truth is known."""
import math

import numpy as np
import pytest

from rrs import certify as C
from rrs.noise import Gaussian, Laplace
from rrs.settings import CertifySettings
from rrs.workflows.certify import T0_MIN, plan_run

P = np.array([0.45, 0.3] + [0.25 / 8] * 8)
K = 1
G = Gaussian(0.5)
AL = C.DEFAULT_ALPHAS[::6]


def stats_of(counts, t):
    m = counts / t
    return C.CellStats(m, m, int(t), 1.0, True)


def true_radius(sel, noise=G, norm=2):
    return C.certified_radius_from_bounds(P, P, sel, K, 1.0, noise, norm=norm, alphas=AL).radius


def margin(eta, trials):
    return 3 * math.sqrt(eta * (1 - eta) / trials)


def test_selection_scheme_violation_rate_at_most_eta():
    """Claimed finite-sample radius (certify(scheme='selection')) above the radius of the true
    map for the same K̂, at most η of the time; a plug-in "certificate" (the most common
    mistake) is caught by the same test."""
    rng = np.random.default_rng(0)
    eta, trials, t = 0.2, 300, 512
    bad = bad_plugin = 0
    for _ in range(trials):
        sel_stats = stats_of(rng.multinomial(t // 8, P), t // 8)
        est = stats_of(rng.multinomial(t - t // 8, P), t - t // 8)
        rep = C.certify(est, K, G, CertifySettings(betas=(1.0,), eta=eta, cell_radii=False, scheme="selection"),
                        alphas=AL, selection=sel_stats)
        assert rep.scheme == "selection" and rep.rdp_finite[0].scheme == "selection"
        truth = true_radius(rep.selected)
        bad += rep.rdp_finite[0].radius > truth * (1 + 1e-9)
        plug = C.certified_radius_from_bounds(est.mean, est.mean, rep.selected, K, 1.0, G, alphas=AL)
        bad_plugin += plug.radius > truth * (1 + 1e-9)
    print(f"violation rate: selection {bad / trials:.3f}, plug-in {bad_plugin / trials:.3f} (eta {eta})")
    assert bad / trials <= eta + margin(eta, trials)
    assert bad_plugin / trials > eta + margin(eta, trials)


def test_selection_uses_the_separate_batch_and_one_sided_levels():
    rng = np.random.default_rng(1)
    sel_stats = stats_of(rng.multinomial(64, P), 64)
    est = stats_of(rng.multinomial(448, P), 448)
    rep = C.certify(est, 2, G, CertifySettings(betas=(1.0, 0.5), eta=0.1, scheme="selection"), selection=sel_stats,
                    alphas=AL)
    np.testing.assert_array_equal(rep.selected, np.lexsort((np.arange(P.size), -sel_stats.mean))[:2])
    # one level for every certificate of the report (they are combined, e.g. best of RDP and
    # CDF): k lower bounds, k + 1 and k0_max upper bounds -> η / (2k + 1 + k0_max)
    k, k0_max = 2, 2
    lo, hi = C.one_sided_bounds(est, 0.1 / (2 * k + 1 + k0_max))
    np.testing.assert_allclose(rep.set_lower, lo)
    np.testing.assert_allclose(rep.set_upper, hi)
    np.testing.assert_allclose(rep.p_lower, lo)
    np.testing.assert_allclose(rep.p_upper, hi)
    assert rep.selection_samples == 64 and rep.estimation_samples == 448
    # the plug-in map pools both batches
    pooled = C.merge_stats(sel_stats, est)
    np.testing.assert_allclose(pooled.mean, (64 * sel_stats.mean + 448 * est.mean) / 512)
    assert rep.rdp_plugin[0].radius == pytest.approx(C.certified_radius(pooled.mean, 2, 1.0, G, alphas=AL).radius)
    with pytest.raises(ValueError, match="selection"):
        C.certify(est, 2, G, CertifySettings(scheme="selection"))
    with pytest.raises(ValueError, match="scheme"):
        C.certify(est, 2, G, CertifySettings(scheme="holm"))
    with pytest.raises(ValueError, match="selection"):
        C.certify(est, 2, G, selection=sel_stats)
    default = C.certify(est, 2, G, CertifySettings(betas=(1.0,)), alphas=AL)
    assert default.scheme == "bonferroni" and default.rdp_finite[0].scheme == "bonferroni"


def test_one_sided_bounds_cover_at_their_level():
    rng = np.random.default_rng(2)
    t, level, trials = 100, 0.1, 2000
    for method in ("clopper-pearson", "hoeffding", "bernstein"):
        miss_lo = miss_hi = 0
        for _ in range(trials // 4):
            c = rng.binomial(t, [0.05, 0.3, 0.5, 0.8])
            st = C.CellStats(c / t, c / t, t, 1.0, True)
            lo, hi = C.one_sided_bounds(st, level, method)
            miss_lo += np.sum(lo > [0.05, 0.3, 0.5, 0.8])
            miss_hi += np.sum(hi < [0.05, 0.3, 0.5, 0.8])
        assert miss_lo / trials <= level + margin(level, trials)
        assert miss_hi / trials <= level + margin(level, trials)


def run_checkpoints(rng, eta, anytime, noise, checkpoints=6, t0=64):
    """One simulated run with adversarial early stopping: stop at the first checkpoint where
    the best-so-far certificate exceeds the truth. Returns whether that happened."""
    sel_stats = stats_of(rng.multinomial(32, P), 32)
    cert = C.AnytimeCertifier(K, noise, CertifySettings(eta=eta, betas=(1.0,), norm=1, cell_radii=False,
                                                       scheme="selection"), t0=t0, selection=sel_stats, alphas=AL)
    counts, t = np.zeros(P.size), 0
    for j in range(checkpoints):
        target = t0 * 2 ** j
        counts += rng.multinomial(target - t, P)
        t = target
        st = stats_of(counts, t)
        if anytime:
            cert.update(st)
            best = cert.best[0]
            claim, sel = best.radius, best.selected
        else:   # naive: fixed-T intervals at the full η at every look
            rep = C.certify(st, K, noise, CertifySettings(betas=(1.0,), eta=eta, norm=1, cell_radii=False,
                                                    scheme="selection"), alphas=AL, selection=sel_stats)
            claim, sel = rep.rdp_finite[0].radius, rep.selected
        if sel is not None and claim > true_radius(sel, noise, norm=1) * (1 + 1e-9):
            return True
    return False


@pytest.mark.parametrize("t0", [64, T0_MIN, plan_run(128, "selection").t0])
def test_anytime_best_so_far_holds_under_adversarial_stopping_and_naive_reuse_does_not(t0):
    """At the old first checkpoint (64), the smallest the app plans (T0_MIN) and the fast
    preset's (T = 128)."""
    noise = Laplace(0.5)
    eta, trials = 0.2, 180
    rng = np.random.default_rng(3)
    anytime = np.mean([run_checkpoints(rng, eta, True, noise, t0=t0) for _ in range(trials)])
    naive = np.mean([run_checkpoints(rng, eta, False, noise, t0=t0) for _ in range(trials)])
    assert anytime <= eta + margin(eta, trials)
    print(f"violation rate: anytime {anytime:.3f}, naive re-use {naive:.3f} (eta {eta})")
    assert naive > 2.5 * anytime + 0.02, (naive, anytime)


def test_anytime_checkpoints_and_levels():
    cert = C.AnytimeCertifier(2, G, CertifySettings(eta=0.1, betas=(1.0, 0.5), cell_radii=False), t0=16)
    assert [cert.eta_at(j) for j in range(3)] == [0.05, 0.025, 0.0125]
    assert sum(cert.eta_at(j) for j in range(30)) < 0.1
    assert cert.next_checkpoint == 16
    rng = np.random.default_rng(4)
    c16 = rng.multinomial(16, P)
    with pytest.raises(ValueError, match="checkpoint"):
        cert.update(stats_of(rng.multinomial(20, P), 20))
    rep = cert.update(stats_of(c16, 16))
    assert rep.eta == 0.05 and cert.next_checkpoint == 32
    with pytest.raises(ValueError, match="past"):
        cert.update(stats_of(c16, 16))
    c64 = c16 + rng.multinomial(48, P)
    rep = cert.update(stats_of(c64, 64))      # skipping checkpoint 32 is allowed
    assert rep.eta == pytest.approx(0.1 / 8)
    assert [h[0] for h in cert.history] == [0, 2]
    for b in cert.best:
        assert b.radius == max([c.radius for h in cert.history for c in h[3].rdp_finite + h[3].cdf_finite
                                if c.beta == b.beta] + [0.0])
    with pytest.raises(ValueError, match="selection"):
        C.AnytimeCertifier(2, G, CertifySettings(scheme="selection"), t0=16)


def test_anytime_best_per_kind_and_per_cell_with_its_set():
    """best_at(β, kind) and best_cells(kind) are the maxima over the checkpoints' reports, and a
    best whole-set radius carries the K̂ of the report that certified it."""
    cert = C.AnytimeCertifier(2, G, CertifySettings(eta=0.1, betas=(1.0, 0.5)), t0=16)
    rng = np.random.default_rng(5)
    counts, t = np.zeros(P.size, dtype=int), 0
    for mark in (16, 32, 64, 128):
        counts = counts + rng.multinomial(mark - t, P)
        t = mark
        cert.update(stats_of(counts, t))
    reports = [h[3] for h in cert.history]
    for beta in (1.0, 0.5):
        for kind, group in (("rdp", "rdp_finite"), ("gaussian-cdf", "cdf_finite")):
            radii = [next(c.radius for c in getattr(r, group) if c.beta == beta) for r in reports]
            best = cert.best_at(beta, kind)
            assert best.radius == max(radii + [0.0])
            if best.radius > 0:
                assert np.array_equal(best.selected, reports[best.checkpoint].selected)
        assert cert.best_at(beta).radius == max(cert.best_at(beta, "rdp").radius,
                                                cert.best_at(beta, "gaussian-cdf").radius)
    np.testing.assert_array_equal(cert.best_cells("rdp"), np.max([r.cells_finite.radii for r in reports], 0))
    np.testing.assert_array_equal(cert.best_cells("gaussian-cdf"),
                                  np.max([r.cdf_cells_finite.radii for r in reports], 0))
    with pytest.raises(ValueError, match="β"):
        cert.best_at(0.7)
