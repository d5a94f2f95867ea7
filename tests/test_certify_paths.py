"""One certify workflow behind every front end: the command line (``python -m rrs certify
--json``), the app's path (``ui.jobs.anytime`` + ``ui.caching.anytime_view``, what the Certify
page calls) and ``bench/certify.py``'s anytime run give the same certificates for the same
settings and seed (tiny model)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rrs.images import load_sample
from rrs.models import load_tiny
from rrs.settings import L2, CertifySettings, MapSettings
from rrs.workflows import certify as WC

SEED, T, CELL, K, ETA = 5, 256, 8, 3, 0.05
BETAS = (1.0, 0.8, 0.6)


@pytest.fixture(scope="module")
def app_run():
    from ui import caching, jobs

    model = load_tiny("cpu")
    x = model.prepare(load_sample("coffee"))
    settings = MapSettings(method="rrs", sigma=0.25, cell=CELL, k=K, samples=T, seed=SEED)
    cert = CertifySettings(norm=L2, eta=ETA, betas=BETAS, scheme="selection")
    sampled = None
    for sampled in jobs.anytime(model, x, settings, cert):
        pass
    view = caching.anytime_view(("paths-test", SEED), sampled, cert)
    return model, x, settings, cert, sampled, view


def test_cli_certifies_the_apps_last_checkpoint(app_run, tmp_path, capsys):
    """The app's last checkpoint is certified at η_J = η·2^−(J+1); the command line at the
    same T, seed and scheme with --eta η_J draws the same samples and states the same radii."""
    from rrs.cli import main

    model, x, settings, cert, sampled, view = app_run
    j = len(sampled.plan.checkpoints) - 1
    eta_j = sampled.plan.eta_at(j, ETA)
    assert eta_j == ETA * 2.0 ** -(j + 1) and j >= 1
    js = tmp_path / "c.json"
    code = main(["certify", "coffee", "--model", "tiny", "-T", str(T), "--cell", str(CELL), "--k", str(K),
                 "--seed", str(SEED), "--sigma", "0.25", "--scheme", "selection", "--eta", repr(eta_j),
                 "--betas", ",".join(map(str, BETAS)), "--json", str(js), "-q"])
    capsys.readouterr()
    assert code == 0
    rec = json.loads(js.read_text())
    assert MapSettings.from_dict(rec["settings"]) == settings                  # the same map settings
    np.testing.assert_allclose(np.asarray(rec["map"]).ravel(), sampled.pooled().mean, rtol=1e-6, atol=1e-9)
    assert rec["k"] == sampled.k and rec["samples"] == T
    want = view.report.rows()
    got = rec["certificates"]
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        assert (g["certificate"], g["beta"], g["scheme"]) == (w["certificate"], w["beta"], w["scheme"])
        assert math.isclose(g["radius"], w["radius"], rel_tol=1e-9, abs_tol=1e-15), (g, w)
    assert rec["selected"] == [int(c) for c in view.report.selected]
    np.testing.assert_allclose(rec["cell_radii"]["finite"], view.report.cells_finite.radii, rtol=1e-9)
    assert any(w["finite_sample"] and w["radius"] > 0 for w in want)     # something real is compared


def test_bench_anytime_run_equals_the_apps(app_run):
    """bench/certify.py's anytime run is the app's: same checkpoints, best radii per β and per cell."""
    from bench import certify as B

    model, x, settings, cert, sampled, view = app_run
    bench_view, first, _ = B._anytime(model, x, settings, T, cert)
    assert bench_view.sampled.plan == sampled.plan
    for a, b in zip(bench_view.sampled.checkpoints, sampled.checkpoints):
        np.testing.assert_array_equal(a.stats.mean, b.stats.mean)
    for beta in BETAS:
        for group in ("rdp_finite", "cdf_finite", "rdp_plugin", "cdf_plugin"):
            assert bench_view.radius(group, beta) == view.radius(group, beta)
    np.testing.assert_array_equal(bench_view.cell_radii("best", True), view.cell_radii("best", True))
    np.testing.assert_array_equal(bench_view.important, view.important)
    assert view.guaranteed(1.0) > 0 or (view.cell_radii("best", True) > 0).any()


def test_one_selection_rule_for_every_front_end():
    """The selection batch is T/8 (at least 16 samples in all) wherever a plan is made."""
    for total in (16, 64, 100, 1024):
        for anytime in (True, False):
            plan = WC.plan_run(total, "selection", anytime=anytime)
            assert plan.selection == total // 8 and plan.selection + plan.checkpoints[-1] == total
        assert WC.plan_run(total, "bonferroni").selection == 0
    with pytest.raises(ValueError, match="T ≥ 16"):
        WC.plan_run(8, "selection")
    assert WC.plan_run(1024, "selection", anytime=False).checkpoints == (1024 - 128,)
