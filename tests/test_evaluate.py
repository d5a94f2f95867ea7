"""The evaluation study (rrs.evaluate / rrs.report) on the tiny model: files, numbers, resume, Ray."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from rrs import evaluate as ev
from rrs import report
from rrs.metrics import spearman, topk_intersection


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One run of the test preset on the tiny model, then a second run over the same folder."""
    out = tmp_path_factory.mktemp("eval") / "results"
    cfg = ev.config_for("test", "tiny")
    first = ev.run_evaluation(cfg, out, show_progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "jobs").glob("*.json")}
    second = ev.run_evaluation(cfg, out, show_progress=False)
    return cfg, out, first, second, mtimes


def test_files_written(study):
    cfg, out, first, _, _ = study
    for name in ("rows.csv", "summary.csv", "summary.json", "comparisons.csv", "settings.json", "runs.jsonl",
                 "robustness_budget.png", "robustness_T.png", "accuracy_T.png", "radius_beta.png",
                 "pixel_vs_patch.png"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    md = (out.parent / "results.md").read_text()
    for heading in ("## Findings", "## Settings", "## Machine and run", "## 1. Robustness", "## 2. Robustness versus",
                    "## 3. Accuracy", "## 4. Certified radius"):
        assert heading in md, heading
    assert "torch " + torch.__version__ in md
    for png in out.glob("*.png"):
        assert png.stat().st_size < 300_000
    assert first.executed == len(ev.build_jobs(cfg)) and first.cached == 0
    assert len(list((out / "jobs").glob("*.json"))) == first.executed


def test_numbers_consistent(study):
    _, out, first, _, _ = study
    rows = first.rows
    inter = rows[rows.metric.isin(["intersection", "floor_intersection", "intersection_same_noise",
                                   "intersection_vs_reference", "reference_half_agreement"])]
    assert len(inter) > 0 and inter.value.between(0, 1).all()
    corr = rows[rows.metric.isin(["spearman", "floor_spearman"])]
    assert len(corr) > 0 and corr.value.between(-1, 1).all()
    # the vanilla gradient is deterministic: its floor is exactly 1
    van = rows[(rows.method == "vanilla") & (rows.metric == "floor_intersection")]
    assert len(van) > 0 and (van.value == 1.0).all()
    # perturbations stay inside their budgets
    for norm, metric in (("linf", "perturbation_linf"), ("l2", "perturbation_l2")):
        p = rows[(rows.norm == norm) & (rows.metric == metric)]
        assert len(p) > 0 and (p.value <= p.budget * (1 + 1e-4) + 1e-6).all()
    # certified radii: non-negative and never larger for a larger β (per map and certificate)
    rad = rows[(rows.metric == "radius")]
    assert len(rad) > 0 and (rad.value >= 0).all()
    assert set(rad.certificate) >= {"rdp-plugin", "rdp-finite", "cdf-plugin", "cdf-finite", "equal-level"}
    for _, g in rad[rad.certificate != "equal-level"].groupby(["image", "method", "cell", "seed", "certificate"]):
        g = g.sort_values("beta")
        assert np.all(np.diff(g.value.to_numpy()) <= 1e-12), g[["beta", "value"]]
    # some certificate is non-vacuous on the tiny model (otherwise the study measures nothing)
    assert rad[rad.certificate == "rdp-plugin"].value.max() > 0
    # summary: CIs contain the means, n counts images
    s = ev.load_summary(out)
    need = {"experiment", "method", "T", "norm", "budget", "metric", "mean", "ci_low", "ci_high", "n"}
    assert need <= set(s.columns)
    assert (s.ci_low <= s["mean"] + 1e-12).all() and (s["mean"] <= s.ci_high + 1e-12).all()
    assert set(s.experiment) == {"robustness", "accuracy", "certificates"}
    assert (s[s.metric == "intersection"].n == 2).all()  # two images


def test_rows_match_direct_computation(study):
    """A floor row and an accuracy row recomputed by hand from the library give the same numbers."""
    cfg, _, first, _, _ = study
    from rrs.noise import Gaussian
    from rrs.smoothing import smooth
    model = ev.get_model("tiny", "cpu")
    rows = first.rows
    r = rows[(rows.metric == "floor_intersection") & (rows.method == "smoothgrad") & (rows.cell == 1)
             & (rows["T"] == 4) & (rows.seed == 1) & (rows.image == "shape-1")]
    assert len(r) == 1
    x = ev.get_image(model, "shape-1")
    target = model(x[None]).argmax(1)
    p = dict(ev._common(cfg, "shape-1"), method="smoothgrad", cell=1, T=4, seed=1)
    maps = [smooth(model, x[None], target, method="smoothgrad", noise=Gaussian(cfg.sigma), samples=4,
                   generator=torch.Generator().manual_seed(ev._map_seed(p, w))).map[0] for w in "ab"]
    k = max(1, round(cfg.k_fraction * 32 * 32))
    assert r.value.iloc[0] == ev.tie_aware_intersection(maps[0], maps[1], k)
    ri = rows[(rows.metric == "floor_intersection_index") & (rows.method == "smoothgrad") & (rows.cell == 1)
              & (rows["T"] == 4) & (rows.seed == 1) & (rows.image == "shape-1")]
    assert ri.value.iloc[0] == topk_intersection(maps[0], maps[1], k)
    sp = rows[(rows.metric == "floor_spearman") & (rows.method == "smoothgrad") & (rows.cell == 1)
              & (rows["T"] == 4) & (rows.seed == 1) & (rows.image == "shape-1")]
    assert sp.value.iloc[0] == pytest.approx(spearman(maps[0], maps[1]))


def test_resume_recomputes_nothing(study):
    cfg, out, first, second, mtimes = study
    assert second.executed == 0
    assert second.cached == first.executed
    assert {p.name: p.stat().st_mtime_ns for p in (out / "jobs").glob("*.json")} == mtimes
    pd.testing.assert_frame_equal(first.summary.reset_index(drop=True), second.summary.reset_index(drop=True))
    runs = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["executed"] for r in runs] == [first.executed, 0]


def test_interrupted_run_resumes(tmp_path):
    """Losing some stored jobs (as after an interruption) recomputes exactly those."""
    cfg = dataclasses.replace(ev.config_for("test", "tiny", images=["1"], seeds=1),
                              experiments=("accuracy", "certificates"))
    jobs = ev.build_jobs(cfg)
    out = tmp_path / "r"
    full = ev.run_grid(jobs, out, show_progress=False, threads=1)
    assert full["executed"] == len(jobs)
    victims = sorted((out / "jobs").glob("*.json"))[:2]
    for v in victims:
        v.unlink()
    (out / "jobs" / "deadbeefdeadbeef.json").write_text("{ truncated")  # a damaged leftover is ignored
    again = ev.run_grid(jobs, out, show_progress=False, threads=1)
    assert again["executed"] == 2 and again["cached"] == len(jobs) - 2
    a = [r for res in full["results"] for r in res["rows"] if not r["metric"].endswith("seconds")]
    b = [r for res in again["results"] for r in res["rows"] if not r["metric"].endswith("seconds")]
    assert a == b  # recomputed jobs give identical numbers (seeded generators)


def test_ray_matches_in_process(tmp_path):
    import ray  # a test dependency (requirements-test.txt includes requirements-cluster.txt)
    cfg = ev.config_for("test", "tiny", images=["1"], seeds=1)
    jobs = [j for j in ev.build_jobs(cfg) if j["kind"] in ("floor", "accuracy", "certify")
            or (j["kind"] == "attack" and j["method"] == "rrs-topk")][:10]
    assert {j["kind"] for j in jobs} >= {"floor", "attack"}
    local = ev.run_grid(jobs, tmp_path / "local", show_progress=False, threads=1)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = ev.run_grid(jobs, tmp_path / "ray", ray=True, show_progress=False)
    finally:
        ray.shutdown()
    assert remote["executed"] == len(jobs) and local["executed"] == len(jobs)

    def numbers(res):
        return [[(r["metric"], r["value"]) for r in x["rows"] if not r["metric"].endswith("seconds")]
                for x in res["results"]]
    assert numbers(local) == numbers(remote)


def test_mean_ci_t_interval():
    from scipy import stats
    x = [0.2, 0.4, 0.9, 0.5]
    m, lo, hi, n = report.mean_ci(x)
    half = stats.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert (m, n) == (pytest.approx(0.5), 4)
    assert lo == pytest.approx(0.5 - half) and hi == pytest.approx(0.5 + half)
    assert report.mean_ci([0.3]) == (0.3, 0.3, 0.3, 1)
    m, lo, hi, _ = report.mean_ci([0.9, 1.0, 1.0], bounds=(0, 1))
    assert hi == 1.0 and lo < m


def test_summary_averages_seeds_within_images():
    rows = pd.DataFrame([
        {"experiment": "robustness", "image": img, "method": "rrs-topk", "cell": 1, "T": 4, "seed": s,
         "norm": "linf", "budget": 0.03, "attack": "standard", "certificate": None, "beta": None,
         "metric": "intersection", "value": v}
        for img, vals in (("a", (0.2, 0.4)), ("b", (0.6, 0.6)), ("c", (1.0, 0.8))) for s, v in enumerate(vals)])
    s = report.summarize(rows)
    r = s[s.metric == "intersection"].iloc[0]
    m, lo, hi, n = report.mean_ci([0.3, 0.6, 0.9], bounds=(0, 1))
    assert (r["mean"], r.ci_low, r.ci_high, r.n) == (pytest.approx(m), pytest.approx(lo), pytest.approx(hi), 3)


def test_paired_verdicts():
    def row(img, method, v):
        return {"experiment": "robustness", "image": img, "method": method, "cell": 1, "T": 4, "seed": 0,
                "norm": "linf", "budget": 0.03, "attack": "standard", "metric": "intersection", "value": v}
    rows = pd.DataFrame([row(i, "rrs-topk", 0.5 + 0.01 * i) for i in range(5)]
                        + [row(i, "smoothgrad", 0.3 + 0.02 * i) for i in range(5)]
                        + [row(i, "sparsified", 0.6 + 0.01 * i) for i in range(5)]
                        + [row(i, "vanilla", 0.5 + 0.1 * (-1) ** i) for i in range(5)])
    c = report.paired_comparisons(rows).set_index("other")
    assert c.loc["smoothgrad", "verdict"] == "wins"
    assert c.loc["sparsified", "verdict"] == "loses"
    assert c.loc["vanilla", "verdict"] == "ties"


def test_job_keys_and_seeds_are_stable():
    cfg = ev.config_for("test", "tiny")
    jobs = ev.build_jobs(cfg)
    keys = [ev.job_key(j) for j in jobs]
    assert len(set(keys)) == len(keys)
    assert keys == [ev.job_key(j) for j in ev.build_jobs(ev.config_for("test", "tiny"))]
    other = ev.build_jobs(ev.config_for("test", "tiny", seed=1))
    assert not set(keys) & {ev.job_key(j) for j in other}  # base seed is part of every job
    assert ev.derive_seed(0, "a") == ev.derive_seed(0, "a") != ev.derive_seed(0, "b")
    assert 0 <= ev.derive_seed(1, 2, 3) < 2 ** 63


def test_grid_covers_the_study():
    cfg = ev.config_for("full", "efficientnet-lite0")
    assert len(cfg.images) >= 12
    jobs = ev.build_jobs(cfg)
    attacks = [j for j in jobs if j["kind"] == "attack"]
    assert {j["norm"] for j in attacks} == {"linf", "l2"}
    assert {j["method"] for j in attacks} == set(ev.METHOD_NAMES)
    assert {j["T"] for j in attacks if j["method"] == "rrs-topk"} >= {1, 2, 4, 8, 16, 32, 64}
    assert {j["cell"] for j in attacks} >= {1, 16} and {j["attack"] for j in attacks} == {"standard", "strong"}
    # every attack has its floor (same image, method, cell, T, seed)
    floors = {(j["image"], j["method"], j["cell"], j["T"], j["seed"]) for j in jobs if j["kind"] == "floor"}
    assert all((j["image"], j["method"], j["cell"], j["T"], j["seed"]) in floors for j in attacks)
    cert = [j for j in jobs if j["kind"] == "certify"]
    assert {j["cell"] for j in cert} == {1, 8, 16} and {j["method"] for j in cert} == {"rrs-topk", "rrs-exp", "sparsified"}
    acc = [j for j in jobs if j["kind"] == "accuracy"]
    assert {j["T_ref"] for j in acc} == {512}


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert ev.main(["--images", "no-such-image", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "'no-such-image' is neither a bundled sample" in err and "Traceback" not in err
    assert ev.main(["--quick", "--images", "99", "--out", str(tmp_path / "x")]) == 2
    assert "between 1 and" in capsys.readouterr().err
    with pytest.raises(ev.EvaluationError, match="method"):
        dataclasses.replace(ev.config_for("test", "tiny"), methods=("bogus",)).validate()


def _picture(path, seed, size=(48, 40)):
    from PIL import Image
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_a_folder_of_user_images(tmp_path, capsys):
    """``--images FOLDER`` evaluates the folder's image files (name order), skipping other
    files; the numbers for a file equal those computed on the file loaded directly."""
    from rrs.images import load_image, to_tensor
    folder = tmp_path / "mine"
    folder.mkdir()
    b = _picture(folder / "b.png", 1)
    a = _picture(folder / "a.jpg", 2)
    (folder / "notes.txt").write_text("not an image")
    cfg = ev.config_for("test", "tiny", images=[str(folder)], seeds=1)
    assert cfg.images == (str(a), str(b))
    from rrs.models import load_tiny
    tiny = load_tiny()
    assert torch.equal(ev.get_image(tiny, str(b)), to_tensor(load_image(b), tiny.input_size))
    out = tmp_path / "r"
    assert ev.main(["--preset", "test", "--model", "tiny", "--images", str(folder), "--seeds", "1",
                    "--experiments", "accuracy", "--T", "2", "3", "--out", str(out), "--quiet"]) == 0
    rows = pd.read_csv(out / "rows.csv")
    assert set(rows["image"]) == {str(a), str(b)}
    assert set(rows[rows["metric"] == "intersection_vs_reference"]["T"]) == {2, 3}
    acc = rows[rows["metric"] == "intersection_vs_reference"]["value"]
    assert len(acc) and acc.between(0, 1).all()
    # a damaged file in the folder is named in a one-line error
    (folder / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    capsys.readouterr()
    assert ev.main(["--preset", "test", "--model", "tiny", "--images", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "c.png" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert ev.main(["--model", "tiny", "--images", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "holds no image files" in capsys.readouterr().err
    assert ev.main(["--model", "tiny", "--images", str(tmp_path / "missing.png"), "--out", str(out)]) == 2
    assert "neither a bundled sample" in capsys.readouterr().err


def test_cli_registered_in_rrs_command_line(tmp_path):
    import argparse
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    ev.register_cli(sub)
    args = parser.parse_args(["evaluate", "--quick", "--model", "tiny", "--out", str(tmp_path), "--ray"])
    assert args.func is ev.run_from_args and args.quick and args.ray and args.out == str(tmp_path)


def test_load_summary_missing(tmp_path):
    assert ev.load_summary(tmp_path) is None
    assert ev.load_summary(tmp_path / "nope") is None


def test_bench_output_parsed():
    smoothing = """device=cpu threads=2 T=32 batch=16 input=224x224
method                  seconds   × bare  × captum
bare loop                 2.000    1.000     0.800
rrs rrs                   2.200    1.100     0.880
certificates for one 224x224 map (n=50176, k=2508, 6 β levels): 0.150 s without per-cell radii, 0.340 s with per-cell radii
"""
    attack = """                                                              CPU s   wall s  ÷ grad (CPU)
plain vanilla gradient (batch 1)                              0.056    0.056          1.00
RRS EOT-4 step [after]: incl. real label check                0.561    0.748         10.01
"""
    rows = ev.parse_bench_output({}, "smoothing", smoothing) + ev.parse_bench_output({}, "attack", attack)
    got = {(r["certificate"], r["metric"]): r["value"] for r in rows}
    assert got == {("smoothing: bare loop", "seconds"): 2.0, ("smoothing: bare loop", "ratio_to_bare_loop"): 1.0,
                   ("smoothing: bare loop", "ratio_to_captum"): 0.8, ("smoothing: rrs rrs", "seconds"): 2.2,
                   ("smoothing: rrs rrs", "ratio_to_bare_loop"): 1.1, ("smoothing: rrs rrs", "ratio_to_captum"): 0.88,
                   ("smoothing: certify one map, without per-cell radii", "certify_seconds"): 0.15,
                   ("smoothing: certify one map, with per-cell radii", "certify_seconds"): 0.34,
                   ("attack: plain vanilla gradient (batch 1)", "cpu_seconds"): 0.056,
                   ("attack: plain vanilla gradient (batch 1)", "ratio_to_gradient_cpu"): 1.0,
                   ("attack: RRS EOT-4 step [after]: incl. real label check", "cpu_seconds"): 0.561,
                   ("attack: RRS EOT-4 step [after]: incl. real label check", "ratio_to_gradient_cpu"): 10.01}


def test_label_changing_attacks_are_left_out():
    base = {"experiment": "robustness", "method": "smoothgrad", "cell": 1, "T": 4, "seed": 0, "norm": "linf",
            "budget": 0.03, "attack": "standard", "certificate": None, "beta": None}
    rows = pd.DataFrame([dict(base, image="a", metric="intersection", value=0.5),
                         dict(base, image="a", metric="label_preserved", value=1.0),
                         dict(base, image="b", metric="intersection", value=0.0),
                         dict(base, image="b", metric="label_preserved", value=0.0)])
    s = report.summarize(rows)
    inter = s[s.metric == "intersection"].iloc[0]
    assert (inter["mean"], inter.n) == (0.5, 1)
    kept = s[s.metric == "label_preserved"].iloc[0]
    assert (kept["mean"], kept.n) == (0.5, 2)


def test_tie_aware_intersection():
    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50)
    assert ev.tie_aware_intersection(a, b, 7) == topk_intersection(a, b, 7)  # no ties: the usual metric
    # two-valued maps (RRS top-k' uniform at T=1): four tied cells compete for two places
    a = np.array([1, 1, 1, 1, 0, 0, 0, 0.])
    b = np.array([0, 0, 1, 1, 1, 1, 0, 0.])
    assert topk_intersection(a, b, 2) == 0.0  # index tie-break: {0, 1} vs {2, 3}
    assert ev.tie_aware_intersection(a, b, 2) == pytest.approx(2 * 0.5 * 0.5 / 2)
    assert ev.tie_aware_intersection(a, a, 2) == pytest.approx(4 * 0.25 / 2)
    # equals the average over random tie-breaks (Monte Carlo)
    a = np.round(rng.random(40) * 4) / 4
    b = np.round(rng.random(40) * 4) / 4
    mc = np.mean([topk_intersection(a + 1e-9 * rng.random(40), b + 1e-9 * rng.random(40), 6) for _ in range(20000)])
    assert ev.tie_aware_intersection(a, b, 6) == pytest.approx(mc, abs=0.01)
