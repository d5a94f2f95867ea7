"""rrs.certify.budget: the earliest T at which a finite-sample certificate can be non-empty,
against a brute-force search over T with the real certificates (rrs.certify.certify) on
perfect counts, and against the real certificates on non-perfect data (never non-empty earlier)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rrs.certify import CellStats, certify
from rrs.certify.budget import bound_level, earliest_samples
from rrs.noise import Gaussian
from rrs.settings import CertifySettings

BETAS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)   # the Certify page's


def _perfect(n: int, k: int, kp: int, t: int) -> CellStats:
    """Counts out of ``t`` top-k′ samples: the first min(k, k′) cells every time, the k′ − k
    other choices of each sample (if k′ > k) spread as evenly as possible over the other cells."""
    v1 = 1.0 / kp
    counts = np.zeros(n)
    counts[:min(k, kp)] = t
    extra = t * max(kp - k, 0)
    base, rest = divmod(extra, n - k)
    counts[k:] = base
    counts[k:k + rest] += 1
    mean = counts / t * v1
    return CellStats(mean, mean * v1, int(t), v1, True)


def _nonempty(report) -> bool:
    radii = [c.radius for c in report.rdp_finite + report.cdf_finite]
    for cells in (report.cells_finite, report.cdf_cells_finite):
        if cells is not None:
            radii += list(cells.radii)
    return max(radii + [0.0]) > 0


def _brute(n, k, kp, eta, scheme, betas, checkpoint, t_max=200) -> int:
    eta_j = eta * 2.0 ** (-(checkpoint + 1))
    for t in range(2, t_max):
        stats = _perfect(n, k, kp, t)
        sel = _perfect(n, k, kp, 8) if scheme == "selection" else None
        rep = certify(stats, k, Gaussian(0.25), CertifySettings(betas=betas, norm=2, eta=eta_j, scheme=scheme),
                      dim=3 * 224 * 224, selection=sel)
        if _nonempty(rep):
            return t
    raise AssertionError("no non-empty certificate found")


@pytest.mark.parametrize("n,k,kp,eta,scheme,betas,j", [
    (49, 5, 5, 0.05, "selection", BETAS, 0),          # the Certify defaults: 32-px cells, k = 10%
    (49, 5, 5, 0.05, "selection", BETAS, 3),
    (49, 5, 5, 0.05, "bonferroni", BETAS, 0),
    (196, 20, 20, 0.01, "selection", (1.0,), 0),      # 16-px cells
    (49, 5, 3, 0.05, "selection", BETAS, 1),          # k′ < k
    (49, 5, 10, 0.05, "selection", BETAS, 0),         # k′ > k: the other cells are chosen too
    (16, 2, 6, 0.2, "bonferroni", (1.0, 0.5), 0),
])
def test_earliest_samples_equals_a_brute_force_search_with_the_real_certificates(n, k, kp, eta, scheme, betas, j):
    got = earliest_samples(k, n, eta, scheme, betas, checkpoint=j, scoring_count=kp)
    assert got == _brute(n, k, kp, eta, scheme, betas, j)


def test_the_level_is_the_schemes():
    # selection: η_j / (2k + 1 + k0_max); k = 5, β down to 0.5 moves up to k0 = 3 cells
    assert bound_level(5, 49, 0.05, "selection", BETAS, 0) == pytest.approx(0.025 / 14)
    assert bound_level(5, 49, 0.05, "selection", (1.0,), 2) == pytest.approx(0.05 / 8 / 12)
    assert bound_level(5, 49, 0.05, "bonferroni", BETAS, None) == pytest.approx(0.05 / 98)
    assert earliest_samples(5, 49, 0.05, "selection", BETAS) == math.floor(math.log2(14 / 0.025)) + 1 == 10


def test_real_maps_are_never_certified_earlier():
    """Below T_min no certificate is non-empty, whatever the counts: random binary maps."""
    rng = np.random.default_rng(0)
    n, k = 49, 5
    t_min = earliest_samples(k, n, 0.05, "bonferroni", (1.0,), checkpoint=None)
    for _ in range(30):
        t = int(rng.integers(2, t_min))
        counts = np.zeros(n)
        for _ in range(t):
            counts[rng.choice(n, size=k, replace=False, p=rng.dirichlet(np.ones(n) * 0.05))] += 1
        mean = counts / t / k
        rep = certify(CellStats(mean, mean / k, t, 1 / k, True), k, Gaussian(0.25),
                      CertifySettings(betas=(1.0,), eta=0.05))
        assert not _nonempty(rep)


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="k must be"):
        earliest_samples(49, 49)
    with pytest.raises(ValueError, match="scheme"):
        earliest_samples(5, 49, scheme="holm")
    with pytest.raises(ValueError, match="scoring_count"):
        earliest_samples(5, 49, scoring_count=50)
