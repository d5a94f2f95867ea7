"""The study's decisive parts (issue 17): EOT sized by the attack gradient's variance, drop versus
steps, claim 2 at matched cost, every certificate scheme, certificate versus attack — each
against an independent computation, on the tiny model."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from rrs.attacks.variance import attack_gradients, eot_for, gradient_noise
from rrs.settings import AttackSettings, CertifySettings
from rrs.study import config, jobs, matched, stats
from rrs.study.jobbase import prepare


# ------------------------------------------------------------------ gradient variance

def test_gradient_noise_matches_the_known_moments():
    """Draws g = μ + ε with known μ and diagonal Σ: the estimates agree with ‖μ‖², tr Σ."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([1.0, -2.0, 0.5, 0.0])
    sd = torch.tensor([3.0, 1.0, 2.0, 0.5])
    g = mu + sd * torch.randn(20000, 4, generator=gen, dtype=torch.float64)
    est = gradient_noise(g)
    assert est["trace"] == pytest.approx(float((sd ** 2).sum()), rel=0.03)
    assert est["signal"] == pytest.approx(float((mu ** 2).sum()), rel=0.05)
    assert est["ratio"] == pytest.approx(float((sd ** 2).sum() / (mu ** 2).sum()), rel=0.06)


def test_gradient_noise_signal_is_unbiased_with_few_draws():
    """With R = 4 draws the plain ‖ḡ‖² overstates ‖μ‖² by tr Σ / R; the estimate does not
    (averaged over many repetitions: Monte Carlo; μ large enough that the clip at 0 never acts)."""
    gen = torch.Generator().manual_seed(1)
    mu, sd, r = torch.tensor([2.0, 2.0]), torch.tensor([1.0, 1.0]), 4
    draws = mu + sd * torch.randn(6000, r, 2, generator=gen, dtype=torch.float64)
    sig = np.array([gradient_noise(g)["signal"] for g in draws])
    naive = (draws.mean(1) ** 2).sum(-1).numpy()
    se = sig.std() / np.sqrt(sig.size)
    assert abs(sig.mean() - 8.0) < 4 * se                             # ‖μ‖² = 8
    assert abs(naive.mean() - (8.0 + 2.0 / r)) < 4 * se               # + tr Σ / R
    assert abs(naive.mean() - 8.0) > 8 * se                           # the bias is real and corrected
    with pytest.raises(ValueError, match="two"):
        gradient_noise(torch.zeros(1, 3))


def test_eot_for_hand_computed():
    assert eot_for(0.5) == 1 and eot_for(1.0) == 1 and eot_for(1.01) == 2
    assert eot_for(18.1) == 32 and eot_for(4.0) == 4 and eot_for(4.0, target=0.5) == 8
    assert eot_for(math.inf, largest=64) == 64
    with pytest.raises(ValueError):
        eot_for(1.0, target=0)


def test_attack_gradients_are_seeded_and_averaging_reduces_their_spread(tiny, x32):
    from rrs.settings import MapSettings
    ms = MapSettings(method="smoothgrad", samples=8, cell=4, sigma=0.15, seed=3)
    one = AttackSettings(norm="linf", epsilon=8 / 255, steps=1, eot=1, seed=5)
    a = attack_gradients(tiny, x32, ms, one, 12)
    assert a.shape == (12,) + tuple(x32.shape[-3:])
    assert torch.equal(a, attack_gradients(tiny, x32, ms, one, 12))          # same seed, same draws
    assert not torch.equal(a[0], a[1])                                       # independent draws
    many = attack_gradients(tiny, x32, ms, one.replace(eot=16), 12)
    assert gradient_noise(many)["trace"] < gradient_noise(a)["trace"]
    with pytest.raises(ValueError, match="deterministic"):
        attack_gradients(tiny, x32, ms.replace(method="vanilla", samples=1), one, 4)


# ----------------------------------------------------------------------- matched cost

def test_interpolate_log_hand_computed():
    assert matched.interpolate_log([1, 4], [0.2, 0.6], 2) == pytest.approx(0.4)     # log2 midpoint
    assert matched.interpolate_log([1, 4], [0.2, 0.6], 4) == pytest.approx(0.6)
    assert math.isnan(matched.interpolate_log([1, 4], [0.2, 0.6], 8))                # no extrapolation
    assert math.isnan(matched.interpolate_log([1, 4], [0.2, 0.6], 0.5))
    assert matched.interpolate_log([2, 2, 8], [0.1, 0.3, 0.8], 4) == pytest.approx(0.5)  # repeated costs averaged


def _curves():
    """Three images, four smoothed methods at T = 1, 4 (RRS better by known amounts) and vanilla."""
    recs = []
    gains = {"a": (0.10, 0.02), "b": (0.12, -0.01), "c": (0.08, 0.04)}
    for image, (g1, g4) in gains.items():
        for method, off in (("smoothgrad", 0.0), ("sparsified", -0.05), ("rrs-topk", None), ("rrs-exp", -0.2)):
            for T, g in ((1, g1), (4, g4)):
                base = 0.3 if T == 1 else 0.6
                v = base + (g if off is None else off) if method != "rrs-exp" else base - 0.2
                recs.append(dict(image=image, method=method, T=T, gradients=float(T), seconds=0.1 * T, value=v))
        recs.append(dict(image=image, method="vanilla", T=1, gradients=1.0, seconds=0.05, value=0.1))
    return pd.DataFrame(recs)


def test_matched_verdicts_against_a_hand_computation():
    from scipy import stats as st
    curves = _curves()
    table = matched.matched_verdicts(curves, "gradients", levels=[1, 2, 4])
    assert list(table.rrs) == ["rrs-topk"] * 3 and list(table.base) == ["smoothgrad"] * 3
    diffs = {1: [0.10, 0.12, 0.08], 4: [0.02, -0.01, 0.04]}
    diffs[2] = [(a + b) / 2 for a, b in zip(diffs[1], diffs[4])]   # halfway in log2(cost)
    p = [st.ttest_1samp(diffs[c], 0.0).pvalue for c in (1, 2, 4)]
    assert table.p_value.to_numpy() == pytest.approx(p)
    order = np.argsort(p)
    adj = np.empty(3)
    adj[order] = np.maximum.accumulate([min(1.0, (3 - i) * p[j]) for i, j in enumerate(order)])
    assert table.p_holm.to_numpy() == pytest.approx(adj)
    assert table["diff"].to_numpy() == pytest.approx([np.mean(diffs[c]) for c in (1, 2, 4)])
    assert list(table.verdict) == [("wins" if a <= 0.05 else "ties") for a in adj]
    # the wall-clock axis: seconds = 0.1·T, so 0.2 s is T = 2
    by_time = matched.matched_verdicts(curves, "seconds", levels=[0.2])
    assert by_time["diff"].iloc[0] == pytest.approx(np.mean(diffs[2]))
    assert matched.levels_for(curves, "gradients") == [1.0, 4.0]
    assert matched.levels_for(curves, "seconds", 3) == pytest.approx([0.1, 0.2, 0.4])


def test_cost_curves_from_rows():
    rows = []
    for image in ("a", "b"):
        for method, T in (("vanilla", 1), ("smoothgrad", 4), ("rrs-topk", 4)):
            for seed, v in ((0, 0.2), (1, 0.4)):
                common = dict(experiment="robustness", image=image, method=method, cell=1, T=T, seed=seed)
                rows.append(dict(common, norm="linf", budget=4 / 255, attack="standard", metric="intersection",
                                 value=v))
                kept = 0.0 if (image, method, seed) == ("a", "smoothgrad", 1) else 1.0
                rows.append(dict(common, norm="linf", budget=4 / 255, attack="standard", metric="label_preserved",
                                 value=kept))
                rows.append(dict(common, norm=None, budget=None, attack=None, metric="map_seconds", value=0.5 * T))
    rows = pd.DataFrame(rows)
    c = matched.cost_curves(rows, 1, "linf", 4 / 255)
    assert len(c) == 6
    # seed-averaged; the run that lost the label is left out (image a, SmoothGrad: only seed 0)
    assert c.set_index(["image", "method"])["value"].to_dict() == pytest.approx(
        {(i, m): 0.2 if (i, m) == ("a", "smoothgrad") else 0.3 for i in "ab" for m in ("vanilla", "smoothgrad", "rrs-topk")})
    assert list(c[c.method == "vanilla"]["gradients"]) == [1.0, 1.0]
    assert list(c[c.method == "smoothgrad"]["gradients"]) == [4.0, 4.0]
    assert c[c.method == "rrs-topk"]["seconds"].tolist() == pytest.approx([2.0, 2.0])
    assert matched.cost_curves(rows, 1, "l2", 4 / 255).empty


# ------------------------------------------------------------------------- the jobs

@pytest.fixture(scope="module")
def grid():
    cfg = config.config_for("test", "tiny", images=["1"], seeds=1)
    return cfg, jobs.build_jobs(cfg)


def _one(grid, kind, method=None):
    return next(j for j in grid[1] if j["kind"] == kind and (method is None or j["method"] == method))


def test_strong_attacks_restarts_and_images():
    cfg = dataclasses.replace(config.config_for("test", "tiny", images=["3"]),
                              strong_attack=config.AttackStrength("strong", 100, 4, restarts=3), strong_images=1,
                              strong_T_values=(2,))
    strong = [j for j in jobs.build_jobs(cfg) if j.get("strength") == "strong" and j["kind"] == "attack"]
    assert {j["image"] for j in strong} == {"shape-0"}
    assert {j["attack"]["steps"] for j in strong} == {100} and {j["attack"]["restarts"] for j in strong} == {3}
    assert {(j["map"]["cell"], j["map"]["samples"]) for j in strong if j["method"] != "vanilla"} == {(4, 8), (1, 2)}
    cost = jobs.job_cost(strong[0])
    a = strong[0]["attack"]
    step = 4.0 if strong[0]["method"] == "vanilla" else 3.0 * a["eot"] + 1.5
    assert cost == pytest.approx(100 * 3 * step + 4 * strong[0]["map"]["samples"])


def test_convergence_starts_at_the_floor_and_counts_steps(grid):
    from rrs.floor import no_attack_floor
    job = _one(grid, "convergence", "rrs-topk")
    res = jobs.run_job(job, threads=1)
    rows = pd.DataFrame(res["rows"])
    model, x, target, settings = prepare(job, "cpu")
    fl = no_attack_floor(model, x, settings, target=target)
    it = rows[rows.metric == "convergence_intersection"].set_index("steps")["value"]
    drop = rows[rows.metric == "convergence_drop"].set_index("steps")["value"]
    assert list(it.index) == job["checkpoints"]
    assert it[0] == pytest.approx(fl.topk_intersection) and drop[0] == 0
    assert (drop + it).to_numpy() == pytest.approx(np.full(len(it), fl.topk_intersection))
    assert job["attack"]["step_size"] == pytest.approx(2.5 * job["attack"]["epsilon"] / grid[0].strong_attack.steps)


def test_the_scheme_job_equals_a_fresh_certificate(grid):
    """The Bonferroni fixed-T radii equal rrs.certify.certify on a fresh smooth() of the same
    seed and T (sample_run's last checkpoint = a fresh smooth on the same generator); the
    selection scheme's set comes from its own batch."""
    from rrs.certify import certify
    from rrs.smoothing import generator_for, smooth
    cfg = dataclasses.replace(grid[0], scheme_T=256, scheme_cells=(8,))
    job = next(j for j in jobs.build_jobs(cfg) if j["kind"] == "scheme"
               and CertifySettings.from_dict(j["certify"]).scheme == "bonferroni")
    rows = pd.DataFrame(jobs.run_job(job, threads=1)["rows"])
    model, x, target, settings = prepare(job, "cpu")
    cs = CertifySettings.from_dict(job["certify"])
    res = smooth(model, x[None], settings, target=target, generator=generator_for(model, settings.seed))
    rep = certify(res.stats(0), settings.k_for(res.map[0].numel()), settings.noise_model(), cs)
    fixed = rows[(rows.metric == "radius") & (rows.certificate == "bonferroni, fixed T")].set_index("beta")["value"]
    for c_rdp, c_cdf in zip(rep.rdp_finite, rep.cdf_finite):
        assert fixed[c_rdp.beta] == pytest.approx(max(c_rdp.radius, c_cdf.radius))
    assert fixed.max() > 0  # a positive radius, so the comparison is not 0 == 0
    assert set(rows.certificate.dropna()) >= {"bonferroni, fixed T", "bonferroni, anytime"}


def test_the_profile_job_is_sound_and_matches_its_workflow(grid):
    job = _one(grid, "profile")
    rows = pd.DataFrame(jobs.run_job(job, threads=1)["rows"])
    assert set(rows.method) == (set(grid[0].profile_methods) & set(grid[0].methods)) | {"all"}
    per = rows[rows.method != "all"].pivot_table(index="method", columns="metric", values="value", aggfunc="first",
                                                 dropna=False)
    # the same profile computed directly by the workflow
    from rrs.settings import MapSettings
    from rrs.workflows.robustness import RobustnessSettings, robustness_profile
    model, x, target, _ = prepare(dict(job, map=next(iter(job["maps"].values()))), "cpu")
    prof = robustness_profile(model, x, [MapSettings.from_dict(m) for m in job["maps"].values()],
                              RobustnessSettings.from_dict(job["robustness"]), CertifySettings.from_dict(job["certify"]),
                              target=int(target[0]))
    for name, m in zip(job["maps"], prof.methods):
        assert per.loc[name, "held_radius"] == pytest.approx(m.held_radius)
        assert per.loc[name, "broken"] == float(m.broken)
        if m.certified_radius is not None:
            assert per.loc[name, "certified_radius"] == pytest.approx(m.certified_radius)
    assert (per["contradictions"] == 0).all()
    broken = per[per.broken == 1]
    cert = broken["certified_radius"].dropna()
    assert (broken.loc[cert.index, "break_radius"] >= cert).all()   # a certificate is never above a break
    assert per.loc["vanilla", "held_radius"] >= 0 and "certified_radius" not in rows[rows.method == "vanilla"].metric.values


def test_gradvar_rows(grid):
    job = _one(grid, "gradvar", "rrs-topk")
    rows = pd.DataFrame(jobs.run_job(job, threads=1)["rows"]).set_index("metric")["value"]
    assert rows["eot_used"] == grid[0].strong_attack.eot
    assert rows["eot_needed"] == eot_for(rows["gradient_noise_ratio"], grid[0].gradvar_target)


def test_new_kinds_over_ray_equal_in_process(tmp_path, grid):
    """One job of each new kind as a task on a fresh local Ray instance (no mock): same numbers."""
    import ray
    from rrs.study import runner
    picked = [_one(grid, k) for k in ("gradvar", "convergence", "scheme", "profile")]
    local = runner.run_grid(picked, tmp_path / "local", show_progress=False, threads=1)
    remote = runner.run_grid(picked, tmp_path / "ray", ray=True, show_progress=False)
    assert not ray.is_initialized()

    def numbers(res):
        return [[(r["metric"], r.get("certificate"), r.get("steps"), r["value"]) for r in x["rows"]
                 if not r["metric"].endswith("seconds")] for x in res["results"]]
    assert numbers(local) == numbers(remote)


# -------------------------------------------------------------- the preset and the plan

def test_the_eval_preset_is_decisive_and_affordable():
    """make eval's preset: ≥ 100 PGD steps with restarts in both robustness tables, every image
    profiled, every scheme certified, within ≈ 60k gradient evaluations."""
    from rrs.settings import SCHEMES
    cfg = config.config_for("eval", "efficientnet-lite0")
    st = cfg.strong_attack
    assert st.steps >= 100 and st.restarts >= 2
    assert set(cfg.strong_cells) & {c for c, _ in cfg.robustness_T}               # section 1 has a strong table
    assert set(cfg.strong_T_values) <= set(cfg.T_values) and cfg.strong_T_values   # section 2 has a strong row
    assert max(cfg.convergence_steps) > st.steps                                   # steps beyond the strong attack's
    grid = jobs.build_jobs(cfg)
    assert {j["image"] for j in grid if j["kind"] == "profile"} == set(config.ALL_SAMPLES)
    assert {CertifySettings.from_dict(j["certify"]).scheme for j in grid if j["kind"] == "scheme"} == set(SCHEMES)
    assert jobs.estimate_cost(grid) <= 60_000  # make eval took 80 min here (82 ms per estimated gradient)


def test_plan_line_hand_computed():
    from rrs.study.plan import plan_line
    grid = [{"kind": "floor", "map": {"samples": 30}}, {"kind": "certify", "map": {"samples": 40}}]
    line = plan_line(grid, 0.5)          # (2·30 + 40) gradients × 0.5 s = 50 s ≈ 1 min
    assert line.startswith("2 jobs (1 floor, 1 certify) ≈ 100 gradient evaluations ≈ 1 min at 500 ms")
    assert "min" not in plan_line(grid, None)


def test_convergence_verdict():
    from rrs.study.decisive import _converged
    conv = pd.DataFrame({"steps": [50, 100, 50, 100], "method": ["vanilla", "vanilla", "rrs-topk", "rrs-topk"],
                         "drop": [0.80, 0.80, 0.10, 0.11]})
    done, moved = _converged(conv)
    assert done and dict(moved) == pytest.approx({"vanilla": 0.0, "rrs-topk": 0.01})
    conv.loc[3, "drop"] = 0.2
    assert _converged(conv)[0] is False


def test_raw_versus_certified_counts_cells_certified_beyond_the_raw_break_hand_computed():
    from rrs.study.decisive import _raw_versus_certified
    t = pd.DataFrame({
        "image": ["a", "a", "b", "b", "c", "c"],
        "method": ["vanilla", "rrs-topk"] * 3,
        "broken": [1, 0, 1, 0, 0, 0],                      # c: the raw map held, so c is not compared
        "break_radius": [0.01, math.nan, 0.05, math.nan, math.nan, math.nan],
        "certified_cell_radius": [math.nan, 0.02, math.nan, 0.04, math.nan, 0.5]})
    text = _raw_versus_certified(t)
    assert "on 1/2" in text                                # a: 0.02 > 0.01; b: 0.04 < 0.05
    assert "median raw break radius 0.03" in text
    assert _raw_versus_certified(t[t.method == "rrs-topk"]) == ""
