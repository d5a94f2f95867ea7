"""The certify workflow (rrs/workflows/certify.py, advice.py) on the tiny model: the anytime driver's
checkpoints equal fresh certify() calls at those T with η_j, a stopped run stays valid, the
verdict reads the same in every norm, suggestions only when predicted to help."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rrs import certify as C
from rrs.certify import certify, merge_stats, stays_important
from rrs.images import load_sample, to_tensor
from rrs.models import load_tiny
from rrs.settings import L1, L2, LINF, CertifySettings, MapSettings
from rrs.smoothing import generator_for, smooth
from rrs.workflows import advice as WA
from rrs.workflows import certify as WC
from ui.compute import CERTIFY_BETAS


@pytest.fixture(scope="module")
def setup():
    model = load_tiny("cpu")
    x = to_tensor(load_sample("coffee"), 32)
    return model, x


def run(model, x, scheme, samples=512, cell=4, **kw):
    settings = MapSettings(method="rrs", sigma=0.25, cell=cell, k=0.1, samples=samples, **kw)
    return list(WC.sample_run(model, x, settings, CertifySettings(scheme=scheme)))


@pytest.mark.parametrize("total,scheme", [(64, "selection"), (1024, "selection"), (1024, "bonferroni"),
                                          (4096, "selection"), (100, "bonferroni")])
def test_plan_doubles_and_uses_every_sample(total, scheme):
    plan = WC.plan_run(total, scheme)
    assert plan.selection == (total // 8 if scheme == "selection" else 0)
    assert plan.checkpoints[-1] == total - plan.selection
    assert all(b == 2 * a for a, b in zip(plan.checkpoints, plan.checkpoints[1:]))
    assert plan.t0 >= WC.T0_MIN or len(plan.checkpoints) == 1


@pytest.mark.parametrize("scheme", ["selection", "bonferroni"])
def test_checkpoints_equal_fresh_certify_at_eta_j(setup, scheme):
    model, x = setup
    runs = run(model, x, scheme)
    sampled = runs[-1]
    assert sampled.complete and len(runs) == len(sampled.plan.checkpoints)
    cert = CertifySettings(norm=L2, eta=0.05, betas=CERTIFY_BETAS, scheme=scheme)
    view = WC.certify_sampled(sampled, cert)
    s = sampled.settings
    best = {}
    important = np.zeros(sampled.n)
    for j, c in enumerate(sampled.plan.checkpoints):
        gen = generator_for(model, s.seed)          # a fresh run continuing the same generator
        sel = smooth(model, x, s.replace(samples=sampled.plan.selection), generator=gen) if scheme == "selection" \
            else None
        est = smooth(model, x, s.replace(samples=c), generator=gen)
        eta_j = 0.05 * 2.0 ** (-(j + 1))
        rep = certify(est.stats(), sampled.k, s.noise_model(),
                      CertifySettings(betas=CERTIFY_BETAS, norm=2, eta=eta_j, scheme=scheme), dim=sampled.dim,
                      selection=None if sel is None else sel.stats())
        np.testing.assert_allclose(est.stats().mean, sampled.checkpoints[j].stats.mean)
        for group in ("rdp_finite", "cdf_finite"):
            for cc in getattr(rep, group):
                best[(group, cc.beta)] = max(best.get((group, cc.beta), 0.0), cc.radius)
        pooled = est.stats() if sel is None else merge_stats(sel.stats(), est.stats())
        important = np.maximum(important, stays_important(pooled, s.noise_model(), eta=eta_j, norm=2,
                                                          dim=sampled.dim).radii)
    for (group, beta), r in best.items():
        assert view.radius(group, beta) == pytest.approx(r, rel=1e-9, abs=1e-15)
    np.testing.assert_allclose(view.important, important, rtol=1e-9)
    # the last report is the last checkpoint's (plug-in numbers from the pooled samples)
    assert view.report.estimation_samples == sampled.plan.checkpoints[-1]
    assert [h["eta_j"] for h in view.history] == [0.05 * 2.0 ** (-(j + 1)) for j in range(len(runs))]


def test_a_stopped_run_is_a_prefix_and_stays_valid(setup):
    model, x = setup
    runs = run(model, x, "selection", samples=1024)
    stopped = runs[1]
    assert not stopped.complete and stopped.samples_done == stopped.plan.totals()[1]
    cert = CertifySettings(norm=L2, eta=0.05, betas=CERTIFY_BETAS, scheme="selection")
    v_stop, v_full = WC.certify_sampled(stopped, cert), WC.certify_sampled(runs[-1], cert)
    # the full run only adds checkpoints: every best-so-far radius can only grow
    assert np.all(v_full.cell_radii("best", True) >= v_stop.cell_radii("best", True) - 1e-15)
    assert v_full.guaranteed(0.6) >= v_stop.guaranteed(0.6)
    assert stopped.next_seconds() is not None and runs[-1].next_seconds() is None


def test_verdict_level_is_the_same_in_every_norm(setup):
    model, x = setup
    sampled = run(model, x, "selection", samples=1024)[-1]
    levels = set()
    for norm in (L1, L2, LINF):
        v = WC.certify_sampled(sampled, CertifySettings(scheme=sampled.scheme, norm=norm, eta=0.05,
                                                        betas=CERTIFY_BETAS))
        verdict = WA.verdict(v, 1.0)
        levels.add(verdict.level)
        assert verdict.whole.startswith("Whole top-k set:") and verdict.cells.startswith("Per cell:")
        n_cells = int((v.cell_radii("best", True) > 0).sum())
        assert (f"{n_cells} of the {sampled.k}" in verdict.cells) == (n_cells > 0)
    assert len(levels) == 1


def test_suggestions_are_only_those_predicted_to_help(setup):
    model, x = setup
    sampled = run(model, x, "selection", samples=256)[-1]
    view = WC.certify_sampled(sampled, CertifySettings(scheme=sampled.scheme, norm=L2, eta=0.05,
                                                       betas=CERTIFY_BETAS))
    pilots = WA.run_pilots(model, x, sampled.settings, (1, 2, 4, 8))
    now_r = view.guaranteed(1.0)
    now_c = int((view.cell_radii("best", True) > 0).sum())
    found = WA.suggestions(view, 1.0, 8192, (1, 2, 4, 8), pilots)
    for sg in found:
        assert sg.radius > now_r * 1.05 or (now_r == 0 and sg.radius == 0 and sg.cells > now_c)
        assert sg.seconds is not None and sg.seconds >= 0
    # every candidate that is not offered was predicted not to help
    offered = {sg.label for sg in found}
    for label, (updates, pooled, ps) in pilots.items():
        r, c = WA.project(pooled, sampled, view.settings, sampled.settings.samples, 1.0, ps)
        assert (label in offered) == (r > now_r * 1.05 if (r > 0 or now_r > 0) else c > now_c)


def test_projection_at_the_current_T_reproduces_the_last_checkpoint(setup):
    model, x = setup
    sampled = run(model, x, "bonferroni", samples=256)[-1]
    view = WC.certify_sampled(sampled, CertifySettings(scheme=sampled.scheme, norm=L2, eta=0.05, betas=(1.0,)))
    r, c = WA.project(sampled.pooled(), sampled, view.settings, 256, 1.0)
    last = view.report
    assert r == pytest.approx(max([cc.radius for cc in last.rdp_finite + last.cdf_finite] + [0.0]))


def test_unbounded_radius_is_text_never_a_number():
    assert WA.radius_text(math.inf, L2, 3072) == "unbounded at this T (plug-in)"
    assert "/255" in WA.radius_text(1 / 255, LINF)


def test_break_it_runs_the_attack_at_the_certified_radius(setup):
    model, x = setup
    sampled = run(model, x, "selection", samples=512)[-1]
    view = WC.certify_sampled(sampled, CertifySettings(scheme=sampled.scheme, norm=L2, eta=0.05,
                                                       betas=CERTIFY_BETAS))
    source, radius, claimed = WA.break_plan(view, 1.0)
    assert radius > 0 and claimed.size
    res = WA.break_it(model, x, view, 1.0, eval_samples=32, steps=2, eot=1)
    assert res.budgets[0][0] == pytest.approx(radius, rel=1e-5)
    assert res.budgets[1][0] == pytest.approx(10 * radius, rel=1e-5)
    lines = res.lines(view.dim)
    assert f"{res.budgets[0][1]}" in lines[0] or "all" in lines[0]
    with pytest.raises(ValueError, match="ℓ2 and ℓ∞"):
        WA.break_it(model, x, WC.certify_sampled(sampled, CertifySettings(scheme=sampled.scheme, norm=L1, eta=0.05)),
                    1.0)


def test_the_contrast_attacks_both_maps_just_below_the_certified_radius_and_no_claim_breaks(setup):
    """The raw base map and the certified map at the radius of break_plan: the smoothed map's
    reference is the certified map itself (its top-k cells are the certified ones) and no
    claimed cell is pushed out (soundness); the raw map is attacked at the same budget."""
    import torch

    model, x = setup
    sampled = run(model, x, "selection", samples=512)[-1]
    view = WC.certify_sampled(sampled, CertifySettings(scheme=sampled.scheme, norm=L2, eta=0.05,
                                                       betas=CERTIFY_BETAS))
    source, radius, claimed = WA.break_plan(view, 1.0)
    res = WA.contrast_at_radius(model, x, view, "vanilla")
    assert (res.source, res.radius, res.claimed) == (source, radius, tuple(int(c) for c in claimed))
    assert res.raw.epsilon == res.smoothed.epsilon == pytest.approx(radius, rel=1e-5) and res.raw.epsilon < radius
    assert res.raw.settings.method == "vanilla" and res.raw.settings.cell == view.sampled.settings.cell
    torch.testing.assert_close(res.smoothed.clean_map, torch.as_tensor(view.sampled.map(), dtype=torch.float32))
    assert set(res.claimed) <= set(res.smoothed.top_cells) and not set(res.claimed) & set(res.smoothed.fallen)
    assert res.provable == len(claimed) and f"provably keeps {len(claimed)}" in res.sentence()
    with pytest.raises(ValueError, match="ℓ2 and ℓ∞"):
        WA.contrast_at_radius(model, x, WC.certify_sampled(sampled, CertifySettings(scheme=sampled.scheme, norm=L1,
                                                                                    eta=0.05)), "vanilla")


def _bonferroni_run_whose_best_set_is_not_the_last():
    """A Bonferroni run (two checkpoints, 64 and 128 samples) whose first checkpoint separates
    cells {0, 1} clearly and whose second ranks {2, 3} first by a hair: the best whole-set
    radius is the first checkpoint's, about {0, 1}; the last checkpoint's top-k is {2, 3}."""
    settings = MapSettings(method="rrs", sigma=0.25, cell=4, k=2, samples=128)
    plan = WC.plan_run(128, "bonferroni", t0_min=64)       # two checkpoints
    assert plan.checkpoints == (64, 128)
    first = np.zeros(16)
    first[[0, 1]] = 0.5
    last = np.zeros(16)
    last[[0, 1]], last[[2, 3]] = 0.24, 0.26
    cps = tuple(WC.Checkpoint(t, t, C.CellStats(m, m * 0.5, t, 0.5, True), 1.0, float(t))
                for t, m in ((64, first), (128, last)))
    return WC.Sampled(settings, "bonferroni", plan, 0, "x", 0.9, (4, 4), 2, 16, None, cps)


def test_bonferroni_view_keeps_the_best_radius_with_the_set_it_certified():
    """Audit defect: the view kept the best whole-set radius over checkpoints but showed (and
    attacked) the last checkpoint's top-k set beside it. Under Bonferroni the sets differ."""
    sampled = _bonferroni_run_whose_best_set_is_not_the_last()
    view = WC.certify_sampled(sampled, CertifySettings(norm=L2, eta=0.05, betas=(1.0,)))
    assert set(view.report.selected.tolist()) == {2, 3}                  # the last checkpoint's K̂
    best = view.whole_set(1.0)
    assert best.radius > 0 and best.checkpoint == 0 and view.guaranteed(1.0) == best.radius
    assert set(best.selected.tolist()) == {0, 1}
    # the set shown, attacked and exported with that radius is the one it certified
    assert set(view.certified_set(1.0).tolist()) == {0, 1}
    source, radius, claimed = WA.break_plan(view, 1.0)
    assert source == "whole-set finite-sample" and radius == best.radius and set(claimed.tolist()) == {0, 1}
    region = view.categories(0.0, "best", True, 1.0).ravel()
    assert region[0] > 0 and region[1] > 0
    finite = [r for r in view.rows() if r["finite_sample"] and r["beta"] == 1.0 and r["radius"] > 0]
    assert finite and all(r["certified_set"] == [0, 1] and r["checkpoint"] == 0 for r in finite)
    assert {r["cell"] for r in view.cell_rows(1.0) if r["in_topk"]} == {0, 1}
