"""The evaluation study (rrs.study) on the tiny model: files, numbers, resume, Ray, statistics."""
from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from rrs.metrics import spearman, tie_aware_intersection, topk_intersection
from rrs.settings import AttackSettings, MapSettings
from rrs.study import bench, cli, config, inputs, jobs, report, runner, stats, store, version


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One run of the test preset on the tiny model, then a second run over the same folder."""
    out = tmp_path_factory.mktemp("eval") / "results"
    cfg = config.config_for("test", "tiny")
    first = runner.run_evaluation(cfg, out, show_progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "jobs").glob("*.json")}
    second = runner.run_evaluation(cfg, out, show_progress=False)
    return cfg, out, first, second, mtimes


HEADINGS = ("## Findings", "## Settings", "## Machine and run", "## 1. Robustness", "### Paired comparisons",
            "## 2. Robustness versus", "## 3. Accuracy", "## 4. Certified radius", "## 5. Speed",
            "## 6. How strong the attacks were", "### EOT sized by", "### Drop versus PGD steps", "## 7. Claim 2 at matched cost",
            "### Verdict at equal cost (gradient evaluations)", "## 8. Every certificate scheme",
            "## 9. Certificate versus attack", "## Plots")


def _headings(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("#")]


def test_files_written(study):
    cfg, out, first, _, _ = study
    for name in ("rows.csv", "summary.csv", "summary.json", "comparisons.csv", "settings.json", "runs.jsonl",
                 "robustness_budget.png", "robustness_T.png", "accuracy_T.png", "radius_beta.png",
                 "pixel_vs_patch.png", "convergence.png", "convergence.csv", "matched_cost.csv",
                 "matched_cost_curves.csv", "profile.csv"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    md = (out.parent / "results.md").read_text()
    for heading in HEADINGS:
        assert heading in md, heading
    assert "torch " + torch.__version__ in md
    assert "Holm" in md and "α = 0.05" in md  # the multiplicity correction is stated
    for png in out.glob("*.png"):
        assert png.stat().st_size < 300_000
    assert first.executed == len(jobs.build_jobs(cfg)) and first.cached == 0
    assert len(list((out / "jobs").glob("*.json"))) == first.executed
    comp = pd.read_csv(out / "comparisons.csv")
    assert {"p_value", "p_holm", "verdict"} <= set(comp.columns) and len(comp)
    assert (comp.p_holm >= comp.p_value - 1e-12).all()


def test_report_from_stored_rows(study, tmp_path):
    """The report written from the rows read back from the job store has the same sections and
    the same summary as the one written during the run."""
    cfg, out, first, _, _ = study
    rows = store.load_rows(out)
    assert len(rows) == len(first.rows)
    run = json.loads((out / "settings.json").read_text())["run"]
    files = report.write_outputs(rows, tmp_path / "again", tmp_path / "again.md", cfg, run)
    assert tmp_path / "again.md" in files
    assert _headings((tmp_path / "again.md").read_text()) == _headings((out.parent / "results.md").read_text())
    a = pd.read_csv(out / "summary.csv")
    b = pd.read_csv(tmp_path / "again" / "summary.csv")
    key = stats.KEYS
    pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True)[["mean", "ci_low", "ci_high", "n"]],
                                  b.sort_values(key).reset_index(drop=True)[["mean", "ci_low", "ci_high", "n"]])


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
    s = store.load_summary(out)
    need = {"experiment", "method", "T", "norm", "budget", "metric", "mean", "ci_low", "ci_high", "n"}
    assert need <= set(s.columns)
    assert (s.ci_low <= s["mean"] + 1e-12).all() and (s["mean"] <= s.ci_high + 1e-12).all()
    assert set(s.experiment) == set(config.EXPERIMENTS)  # the test preset runs every experiment
    assert (s[s.metric == "intersection"].n == 2).all()  # two images


def _one(rows, **kw):
    m = np.ones(len(rows), dtype=bool)
    for k, v in kw.items():
        m &= (rows[k] == v).to_numpy()
    assert m.sum() == 1, kw
    return rows[m].iloc[0]


def test_rows_match_direct_computation(study):
    """A floor row and an attack row recomputed by hand from the library (rrs.smoothing,
    rrs.attacks) with the job's settings give the same numbers: seeds s and s + 1."""
    cfg, _, first, _, _ = study
    from rrs.attacks import attack
    from rrs.smoothing import interpretation_map
    model = inputs.get_model("tiny", "cpu")
    rows = first.rows
    x = inputs.get_image(model, "shape-1")
    target = model(x[None]).argmax(1)
    grid = jobs.build_jobs(cfg)
    job = next(j for j in grid if j["kind"] == "floor" and j["method"] == "smoothgrad" and j["image"] == "shape-1"
               and j["seed"] == 1 and j["map"]["cell"] == 1 and j["map"]["samples"] == 4)
    settings = MapSettings.from_dict(job["map"])
    assert settings.to_dict() == job["map"] and settings.method == "smoothgrad" and settings.samples == 4
    s = settings.seed
    maps = [interpretation_map(model, x, settings, target=target, seed=seed) for seed in (s, s + 1)]
    k = math.ceil(cfg.k_fraction * 32 * 32)
    sel = dict(method="smoothgrad", cell=1, T=4, seed=1, image="shape-1")
    assert _one(rows, metric="floor_intersection", **sel).value == tie_aware_intersection(maps[0], maps[1], k)
    assert _one(rows, metric="floor_intersection_index", **sel).value == topk_intersection(maps[0], maps[1], k)
    assert _one(rows, metric="floor_spearman", **sel).value == pytest.approx(spearman(maps[0], maps[1]))
    # the attack of the same setting: same map seed, attacked map at s + 1
    aj = next(j for j in grid if j["kind"] == "attack" and j["map"] == job["map"] and j["attack"]["norm"] == "linf"
              and j["strength"] == "standard")
    res = attack(model, x, settings, AttackSettings.from_dict(aj["attack"]), target=target)
    assert torch.equal(res.clean_map, maps[0])
    assert res.floor.topk_intersection == tie_aware_intersection(maps[0], maps[1], k)
    sel = dict(sel, norm="linf", budget=aj["attack"]["epsilon"], attack="standard")
    assert _one(rows, metric="intersection", **sel).value == res.topk_intersection
    assert _one(rows, metric="intersection_same_noise", **sel).value == \
        tie_aware_intersection(res.clean_map, res.attacked_map_same_noise, k)


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
    cfg = dataclasses.replace(config.config_for("test", "tiny", images=["1"], seeds=1),
                              experiments=("accuracy", "certificates"))
    grid = jobs.build_jobs(cfg)
    out = tmp_path / "r"
    full = runner.run_grid(grid, out, show_progress=False, threads=1)
    assert full["executed"] == len(grid)
    victims = sorted((out / "jobs").glob("*.json"))[:2]
    for v in victims:
        v.unlink()
    (out / "jobs" / "deadbeefdeadbeef.json").write_text("{ truncated")  # a damaged leftover is ignored
    again = runner.run_grid(grid, out, show_progress=False, threads=1)
    assert again["executed"] == 2 and again["cached"] == len(grid) - 2
    a = [r for res in full["results"] for r in res["rows"] if not r["metric"].endswith("seconds")]
    b = [r for res in again["results"] for r in res["rows"] if not r["metric"].endswith("seconds")]
    assert a == b  # recomputed jobs give identical numbers (seeded generators)


def test_old_schema_results_are_not_reused(tmp_path):
    """A stored result under another schema version is a different job (key), so it is recomputed."""
    cfg = dataclasses.replace(config.config_for("test", "tiny", images=["1"], seeds=1), experiments=("accuracy",))
    job = jobs.build_jobs(cfg)[0]
    old = dict(job, schema=job["schema"] - 1)
    assert jobs.job_key(old) != jobs.job_key(job)
    store.save_job(tmp_path, {"key": jobs.job_key(old), "params": old, "rows": []})
    assert store.load_job(tmp_path, jobs.job_key(job)) is None


def test_every_row_carries_the_current_code_version(study):
    cfg, out, first, _, _ = study
    current = version.code_version()
    assert {json.loads(p.read_text())["code"] for p in (out / "jobs").glob("*.json")} == {current}
    assert set(pd.read_csv(out / "rows.csv")["code"]) == {current}
    assert version.stale_count(store.load_rows(out)) == 0
    version.check_current(store.load_rows(out))  # does not raise
    assert f"Code version of every row: {current}" in (out.parent / "results.md").read_text()


def _restamp(path, code):
    data = json.loads(path.read_text())
    if code is None:
        data.pop("code", None)
    else:
        data["code"] = code
    path.write_text(json.dumps(data))


def test_stale_jobs_are_recomputed_on_resume(tmp_path, capsys):
    """Jobs stored by another code version (or by code that recorded none) are recomputed and
    overwritten; the others are reused."""
    cfg = dataclasses.replace(config.config_for("test", "tiny", images=["1"], seeds=1),
                              experiments=("accuracy", "certificates"))
    grid = jobs.build_jobs(cfg)
    out = tmp_path / "r"
    full = runner.run_grid(grid, out, show_progress=False, threads=1)
    assert full["stale"] == 0 and {r["code"] for r in full["results"]} == {version.code_version()}
    files = sorted((out / "jobs").glob("*.json"))
    _restamp(files[0], "0.0.1+000000000000")
    _restamp(files[1], None)
    assert cli.main(["--preset", "test", "--model", "tiny", "--images", "1", "--seeds", "1", "--experiments",
                     "accuracy", "certificates", "--dry-run", "--out", str(out)]) == 0
    assert "2 stale ones to recompute" in capsys.readouterr().out
    again = runner.run_grid(grid, out, show_progress=False, threads=1)
    assert again["stale"] == 2 and again["executed"] == 2 and again["cached"] == len(grid) - 2
    assert {json.loads(p.read_text())["code"] for p in files} == {version.code_version()}
    assert version.stale_count(store.rows_frame(again["results"])) == 0


def test_the_report_refuses_stale_rows(study, tmp_path):
    cfg, out, first, _, _ = study
    rows = store.load_rows(out)
    rows.loc[rows.index[:5], "code"] = "0.0.1+000000000000"
    run = json.loads((out / "settings.json").read_text())["run"]
    with pytest.raises(config.EvaluationError) as info:
        report.write_outputs(rows, tmp_path / "again", tmp_path / "again.md", cfg, run)
    msg = str(info.value)
    assert msg.startswith(f"5 of {len(rows)} result rows were computed by another code version (0.0.1+000000000000;")
    assert "python -m rrs evaluate" in msg and "\n" not in msg
    assert not (tmp_path / "again").exists() and not (tmp_path / "again.md").exists()  # nothing written
    assert version.stale_count(rows.drop(columns="code")) == len(rows)  # rows that record no version are stale


def test_the_report_lists_only_the_runs_of_its_code_version(study, tmp_path):
    """runs.jsonl keeps every run, but "Machine and runs" names only the runs that computed this
    report's rows: a run of older code (whose rows were recomputed) is left out."""
    import shutil
    cfg, out, *_ = study
    copy = tmp_path / "results"
    shutil.copytree(out, copy)
    first = store.read_runs(copy)[0]
    old = dict(first, code="0.0.1+000000000000", executed=7, machine=dict(first["machine"], date="1999-01-01T00:00"))
    store.append_run(copy, old)
    report.write_outputs(store.load_rows(copy), copy, tmp_path / "r.md", cfg, first)
    md = (tmp_path / "r.md").read_text()
    assert f"{first['machine']['date']}: {first['executed']} jobs computed" in md
    assert "1999-01-01" not in md


def test_code_version_hashes_the_result_determining_sources(tmp_path):
    import shutil
    pkg = tmp_path / "rrs"
    shutil.copytree(version.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    base = version.code_version(pkg)
    assert base == version.code_version(version.PACKAGE) and base.startswith(__import__("rrs").__version__ + "+")
    (pkg / "study" / "report.py").write_text((pkg / "study" / "report.py").read_text() + "\n# wording\n")
    version.code_version.cache_clear()
    assert version.code_version(pkg) == base  # presentation only
    (pkg / "floor.py").write_text((pkg / "floor.py").read_text() + "\n# changed\n")
    version.code_version.cache_clear()
    assert version.code_version(pkg) != base
    assert "study/report.py" not in {p.relative_to(version.PACKAGE).as_posix() for p in version.hashed_files()}
    assert "study/jobs.py" in {p.relative_to(version.PACKAGE).as_posix() for p in version.hashed_files()}


def test_ray_matches_in_process(tmp_path):
    """Jobs as tasks on a fresh local Ray instance (started and stopped by run_grid) give the
    same numbers as in-process."""
    import ray  # a test dependency (rrs[test] includes rrs[cluster])
    cfg = config.config_for("test", "tiny", images=["1"], seeds=1)
    grid = [j for j in jobs.build_jobs(cfg) if j["kind"] in ("floor", "accuracy", "certify")
            or (j["kind"] == "attack" and j["method"] == "rrs-topk")][:10]
    assert {j["kind"] for j in grid} >= {"floor", "attack"}
    local = runner.run_grid(grid, tmp_path / "local", show_progress=False, threads=1)
    assert not ray.is_initialized()
    remote = runner.run_grid(grid, tmp_path / "ray", ray=True, show_progress=False)
    assert not ray.is_initialized()  # the instance it started is shut down
    assert remote["executed"] == len(grid) and local["executed"] == len(grid)

    def numbers(res):
        return [[(r["metric"], r["value"]) for r in x["rows"] if not r["metric"].endswith("seconds")]
                for x in res["results"]]
    assert numbers(local) == numbers(remote)
    assert {x["code"] for x in remote["results"]} == {version.code_version()}  # the workers ran this code


# ------------------------------------------------------------------------ statistics

def test_mean_ci_t_interval():
    from scipy import stats as st
    x = [0.2, 0.4, 0.9, 0.5]
    m, lo, hi, n = stats.mean_ci(x)
    half = st.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert (m, n) == (pytest.approx(0.5), 4)
    assert lo == pytest.approx(0.5 - half) and hi == pytest.approx(0.5 + half)
    assert stats.mean_ci([0.3]) == (0.3, 0.3, 0.3, 1)
    m, lo, hi, _ = stats.mean_ci([0.9, 1.0, 1.0], bounds=(0, 1))
    assert hi == 1.0 and lo < m


def test_paired_p_value_matches_the_interval():
    from scipy import stats as st
    d = [0.05, 0.02, 0.08, 0.01, 0.04]
    p = stats.paired_p_value(d)
    assert p == pytest.approx(st.ttest_1samp(d, 0.0).pvalue)
    _, lo, hi, _ = stats.mean_ci(d)
    assert (p < 0.05) == (lo > 0 or hi < 0)
    assert stats.paired_p_value([0.3]) == 1.0  # one difference: nothing to conclude
    assert stats.paired_p_value([-0.1, -0.1, -0.1]) < 1e-12 and stats.paired_p_value([0.0, 0.0]) == 1.0
    assert stats.paired_p_value([0.5, 0.5]) == 0.0  # no spread at all


def test_holm_hand_computed():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
    adjusted, reject = stats.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert reject.tolist() == [True, False, False, True]
    adjusted, reject = stats.holm([0.5, 0.9], alpha=0.05)
    assert adjusted == pytest.approx([1.0, 1.0]) and not reject.any()  # capped at 1
    assert stats.holm([], 0.05)[0].size == 0
    with pytest.raises(ValueError):
        stats.holm([0.1, float("nan")])


def _closed_bonferroni(p, alpha):
    """Holm by its definition as a closed test: reject H_i when every intersection hypothesis
    containing i is rejected by Bonferroni (min_{j ∈ S} p_j ≤ α/|S|)."""
    m = len(p)
    out = []
    for i in range(m):
        others = [j for j in range(m) if j != i]
        ok = all(min(p[j] for j in (i,) + extra) <= alpha / (1 + len(extra))
                 for r in range(m) for extra in itertools.combinations(others, r))
        out.append(ok)
    return out


def test_holm_equals_closed_testing_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(300):
        m = int(rng.integers(1, 8))
        p = rng.choice([rng.random(m) * 0.1, rng.random(m), np.round(rng.random(m) * 20) / 200], axis=0)
        alpha = float(rng.choice([0.05, 0.1, 0.01]))
        _, reject = stats.holm(p, alpha)
        assert reject.tolist() == _closed_bonferroni(list(p), alpha), (p, alpha)


def _row(img, method, v, budget=0.03):
    return {"experiment": "robustness", "image": img, "method": method, "cell": 1, "T": 4, "seed": 0,
            "norm": "linf", "budget": budget, "attack": "standard", "metric": "intersection", "value": v}


def test_paired_verdicts():
    rows = pd.DataFrame([_row(i, "rrs-topk", 0.5 + 0.01 * i) for i in range(5)]
                        + [_row(i, "smoothgrad", 0.3 + 0.02 * i) for i in range(5)]
                        + [_row(i, "sparsified", 0.6 + 0.01 * i) for i in range(5)]
                        + [_row(i, "vanilla", 0.5 + 0.1 * (-1) ** i) for i in range(5)])
    c = stats.paired_comparisons(rows).set_index("other")
    assert c.loc["smoothgrad", "verdict"] == "wins"
    assert c.loc["sparsified", "verdict"] == "loses"
    assert c.loc["vanilla", "verdict"] == "ties"
    assert c.p_holm.to_numpy() == pytest.approx(stats.holm(c.p_value.to_numpy())[0])


def test_holm_turns_a_lone_significant_win_into_a_tie_in_a_family():
    """p ≈ 0.031 wins alone; two such comparisons in one family both tie (0.031·2 > 0.05)."""
    d = [0.05, 0.02, 0.08, 0.01, 0.04]
    base = [0.3, 0.5, 0.4, 0.6, 0.45]
    one = pd.DataFrame([_row(i, "smoothgrad", base[i]) for i in range(5)]
                       + [_row(i, "rrs-topk", base[i] + d[i]) for i in range(5)])
    c = stats.paired_comparisons(one)
    assert c.p_value.iloc[0] == pytest.approx(0.031, abs=0.002) and c.verdict.tolist() == ["wins"]
    assert c.ci_low.iloc[0] > 0
    two = pd.concat([one, pd.DataFrame([_row(i, m, v, budget=0.06) for i in range(5)
                                        for m, v in (("smoothgrad", base[i]), ("rrs-topk", base[i] + d[i]))])])
    c = stats.paired_comparisons(two)
    assert len(c) == 2 and (c.ci_low > 0).all() and c.verdict.tolist() == ["ties", "ties"]
    assert c.p_holm.to_numpy() == pytest.approx(2 * c.p_value.to_numpy())
    b = stats.best_vs_best(two)
    assert b.verdict.tolist() == ["ties", "ties"] and b.p_holm.to_numpy() == pytest.approx(2 * b.p_value.to_numpy())


def test_summary_averages_seeds_within_images():
    rows = pd.DataFrame([
        {"experiment": "robustness", "image": img, "method": "rrs-topk", "cell": 1, "T": 4, "seed": s,
         "norm": "linf", "budget": 0.03, "attack": "standard", "certificate": None, "beta": None,
         "metric": "intersection", "value": v}
        for img, vals in (("a", (0.2, 0.4)), ("b", (0.6, 0.6)), ("c", (1.0, 0.8))) for s, v in enumerate(vals)])
    s = stats.summarize(rows)
    r = s[s.metric == "intersection"].iloc[0]
    m, lo, hi, n = stats.mean_ci([0.3, 0.6, 0.9], bounds=(0, 1))
    assert (r["mean"], r.ci_low, r.ci_high, r.n) == (pytest.approx(m), pytest.approx(lo), pytest.approx(hi), 3)


def test_label_changing_attacks_are_left_out():
    base = {"experiment": "robustness", "method": "smoothgrad", "cell": 1, "T": 4, "seed": 0, "norm": "linf",
            "budget": 0.03, "attack": "standard", "certificate": None, "beta": None}
    rows = pd.DataFrame([dict(base, image="a", metric="intersection", value=0.5),
                         dict(base, image="a", metric="label_preserved", value=1.0),
                         dict(base, image="b", metric="intersection", value=0.0),
                         dict(base, image="b", metric="label_preserved", value=0.0)])
    s = stats.summarize(rows)
    inter = s[s.metric == "intersection"].iloc[0]
    assert (inter["mean"], inter.n) == (0.5, 1)
    kept = s[s.metric == "label_preserved"].iloc[0]
    assert (kept["mean"], kept.n) == (0.5, 2)


# ------------------------------------------------------------------------ the grid

def test_job_keys_and_seeds_are_stable():
    cfg = config.config_for("test", "tiny")
    grid = jobs.build_jobs(cfg)
    keys = [jobs.job_key(j) for j in grid]
    assert len(set(keys)) == len(keys)
    assert keys == [jobs.job_key(j) for j in jobs.build_jobs(config.config_for("test", "tiny"))]
    other = jobs.build_jobs(config.config_for("test", "tiny", seed=1))
    assert not set(keys) & {jobs.job_key(j) for j in other}  # base seed is part of every job
    assert jobs.derive_seed(0, "a") == jobs.derive_seed(0, "a") != jobs.derive_seed(0, "b")
    assert 0 <= jobs.derive_seed(1, 2, 3) < 2 ** 63
    # jobs carry the library's settings: they read back unchanged
    for j in grid:
        for m in (j["maps"].values() if j["kind"] == "profile" else [j["map"]]):  # a profile: one map per method
            assert MapSettings.from_dict(m).to_dict() == m
        if j["kind"] == "attack":
            assert AttackSettings.from_dict(j["attack"]).to_dict() == j["attack"]
    # repetitions of one setting get different noise seeds; the floor and the attacks of one
    # setting share the map (and so its seed)
    floors = [j for j in grid if j["kind"] == "floor"]
    seeds = {(j["image"], j["method"], j["map"]["cell"], j["map"]["samples"]): set() for j in floors}
    for j in floors:
        seeds[(j["image"], j["method"], j["map"]["cell"], j["map"]["samples"])].add(j["map"]["seed"])
    assert all(len(v) == cfg.seeds for v in seeds.values())
    floor_maps = {json.dumps(j["map"], sort_keys=True) for j in floors}
    assert all(json.dumps(j["map"], sort_keys=True) in floor_maps for j in grid if j["kind"] == "attack")


def test_study_methods_map_to_settings():
    cfg = config.config_for("test", "tiny")
    assert jobs.map_settings(cfg, "vanilla", 4, 32).samples == 1
    topk = jobs.map_settings(cfg, "rrs-topk", 1, 8)
    assert (topk.method, topk.scoring, topk.scoring_param, topk.samples) == ("rrs", "topk", 0.1, 8)
    assert np.count_nonzero(topk.scoring_vector(1024)) == 103  # k' = ⌈n/10⌉
    exp = jobs.map_settings(cfg, "rrs-exp", 1, 8)
    assert exp.scoring == "exponential" and exp.scoring_param == cfg.k_fraction
    assert config.method_label("rrs-topk") == "RRS (top-k' uniform)"
    assert config.method_label("smoothgrad") == "SmoothGrad"


def test_grid_covers_the_study():
    cfg = config.config_for("full", "efficientnet-lite0")
    assert len(cfg.images) >= 12
    grid = jobs.build_jobs(cfg)
    attacks = [j for j in grid if j["kind"] == "attack"]
    assert {j["attack"]["norm"] for j in attacks} == {"linf", "l2"}
    assert {j["method"] for j in attacks} == set(config.METHOD_NAMES)
    assert {j["map"]["samples"] for j in attacks if j["method"] == "rrs-topk"} >= {1, 2, 4, 8, 16, 32, 64}
    assert {j["map"]["cell"] for j in attacks} >= {1, 16} and {j["strength"] for j in attacks} == {"standard", "strong"}
    # every attack has its floor (same image, method, map settings and seed)
    floors = {(j["image"], j["method"], json.dumps(j["map"], sort_keys=True)) for j in grid if j["kind"] == "floor"}
    assert all((j["image"], j["method"], json.dumps(j["map"], sort_keys=True)) in floors for j in attacks)
    cert = [j for j in grid if j["kind"] == "certify"]
    assert {j["map"]["cell"] for j in cert} == {1, 8, 16}
    assert {j["method"] for j in cert} == {"rrs-topk", "rrs-exp", "sparsified"}
    acc = [j for j in grid if j["kind"] == "accuracy"]
    assert {j["T_ref"] for j in acc} == {512} and {j["map"]["samples"] for j in acc} == {256}
    assert sum(j["kind"] == "speed" for j in grid) == 1
    assert jobs.estimate_cost(grid) > 0


# ------------------------------------------------------------------------ command line

def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["--images", "no-such-image", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "'no-such-image' is neither a bundled sample" in err and "Traceback" not in err
    assert cli.main(["--quick", "--images", "99", "--out", str(tmp_path / "x")]) == 2
    assert "between 1 and" in capsys.readouterr().err
    with pytest.raises(config.EvaluationError, match="method"):
        dataclasses.replace(config.config_for("test", "tiny"), methods=("bogus",)).validate()


def test_dry_run(tmp_path, capsys):
    assert cli.main(["--preset", "test", "--model", "tiny", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    n = len(jobs.build_jobs(config.config_for("test", "tiny")))
    assert f"{n} jobs (0 stored" in out
    assert "gradient evaluations ≈" in out and "ms per gradient" in out  # the cost and the time it predicts


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
    cfg = config.config_for("test", "tiny", images=[str(folder)], seeds=1)
    assert cfg.images == (str(a), str(b))
    from rrs.models import load_tiny
    tiny = load_tiny()
    assert torch.equal(inputs.get_image(tiny, str(b)), to_tensor(load_image(b), tiny.input_size))
    out = tmp_path / "r"
    assert cli.main(["--preset", "test", "--model", "tiny", "--images", str(folder), "--seeds", "1",
                     "--experiments", "accuracy", "--T", "2", "3", "--out", str(out), "--quiet"]) == 0
    rows = pd.read_csv(out / "rows.csv")
    assert set(rows["image"]) == {str(a), str(b)}
    assert set(rows[rows["metric"] == "intersection_vs_reference"]["T"]) == {2, 3}
    acc = rows[rows["metric"] == "intersection_vs_reference"]["value"]
    assert len(acc) and acc.between(0, 1).all()
    # a damaged file in the folder is named in a one-line error
    (folder / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    capsys.readouterr()
    assert cli.main(["--preset", "test", "--model", "tiny", "--images", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "c.png" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert cli.main(["--model", "tiny", "--images", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "holds no image files" in capsys.readouterr().err
    assert cli.main(["--model", "tiny", "--images", str(tmp_path / "missing.png"), "--out", str(out)]) == 2
    assert "neither a bundled sample" in capsys.readouterr().err


def test_cli_registered_in_rrs_command_line(tmp_path):
    import argparse
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.register_cli(sub)
    args = parser.parse_args(["evaluate", "--quick", "--model", "tiny", "--out", str(tmp_path), "--ray"])
    assert args.func is cli.run_from_args and args.quick and args.ray and args.out == str(tmp_path)


def test_load_summary_missing(tmp_path):
    assert store.load_summary(tmp_path) is None
    assert store.load_summary(tmp_path / "nope") is None
    assert store.load_rows(tmp_path) is None


def test_store_round_trips_non_finite_values(tmp_path):
    result = {"key": "0123456789abcdef", "params": {}, "rows": [{"metric": "radius", "value": math.inf},
                                                                 {"metric": "x", "value": 0.25}]}
    store.save_job(tmp_path, result)
    assert '"inf"' in store.job_path(tmp_path, result["key"]).read_text()  # rrs.jsonio's spelling
    back = store.load_job(tmp_path, result["key"])
    assert back["rows"][0]["value"] == math.inf and back["rows"][1]["value"] == 0.25
    assert store.load_job(tmp_path, "fedcba9876543210") is None


# ------------------------------------------------------------------------ speed

def test_bench_measure_returns_rows():
    """The smoothing benchmark's measure (rrs.benchmarks.smoothing, printed by bench/smoothing.py) returns numbers (no parsing of printed text); the study
    turns every number into a row and keeps the printed table as the note."""
    module = bench.BENCHMARKS["smoothing"]
    result = module.measure(quick=True, model="tiny", repeats=1)
    names = [r["name"] for r in result["rows"]]
    assert names[:5] == ["bare loop", "captum NoiseTunnel", "rrs smoothgrad", "rrs sparsified", "rrs rrs"]
    bare = result["rows"][0]
    assert bare["ratio_to_bare_loop"] == 1.0 and bare["seconds"] > 0
    cap = result["rows"][1]
    assert cap["ratio_to_captum"] == 1.0
    for r in result["rows"][:5]:
        assert r["ratio_to_bare_loop"] == pytest.approx(r["seconds"] / bare["seconds"])
    assert result["settings"]["T"] == 8 and result["settings"]["model"] == "tiny"
    text = module.table(result)
    assert "rrs rrs" in text and "s with per-cell radii" in text
    rows = bench.rows_from_measure({"kind": "speed", "model": "tiny"}, "smoothing", result)
    got = {(r["certificate"], r["metric"]): r["value"] for r in rows}
    assert got[("smoothing: rrs rrs", "ratio_to_captum")] == result["rows"][4]["ratio_to_captum"]
    assert ("smoothing: certify one map, with per-cell radii", "certify_seconds") in got
    assert all(r["experiment"] == "speed" for r in rows)
    assert len(rows) == sum(len(r) - 1 for r in result["rows"])


def test_bench_attack_rows_use_the_study_metric_names():
    """bench/attack.py's measure rows (cpu_s, wall_s, ratio) become the metrics the report shows."""
    result = {"rows": [{"name": "plain vanilla gradient (batch 1)", "cpu_s": 0.05, "wall_s": 0.06, "ratio": 1.0},
                       {"name": "  RRS EOT-4 surrogate [after]", "cpu_s": 0.4, "wall_s": 0.5, "ratio": 8.0}]}
    rows = bench.rows_from_measure({"kind": "speed"}, "attack", result)
    got = {(r["certificate"], r["metric"]): r["value"] for r in rows}
    assert got == {("attack: plain vanilla gradient (batch 1)", "cpu_seconds"): 0.05,
                   ("attack: plain vanilla gradient (batch 1)", "wall_seconds"): 0.06,
                   ("attack: plain vanilla gradient (batch 1)", "ratio_to_gradient_cpu"): 1.0,
                   ("attack: RRS EOT-4 surrogate [after]", "cpu_seconds"): 0.4,
                   ("attack: RRS EOT-4 surrogate [after]", "wall_seconds"): 0.5,
                   ("attack: RRS EOT-4 surrogate [after]", "ratio_to_gradient_cpu"): 8.0}


def test_speed_job_runs_the_smoothing_benchmark(monkeypatch):
    """speed_rows runs the smoothing benchmark's measure in-process and keeps its printed table."""
    module = bench.BENCHMARKS["smoothing"]
    real = module.measure
    monkeypatch.setattr(module, "measure", lambda quick=False: real(quick=True, model="tiny", repeats=1))
    rows = bench.speed_rows({"kind": "speed", "model": "tiny"}, scripts=("smoothing",))
    metrics = {r["metric"] for r in rows}
    assert {"seconds", "ratio_to_bare_loop", "ratio_to_captum", "certify_seconds", "bench_seconds"} <= metrics
    note = next(r["note"] for r in rows if r["metric"] == "bench_seconds")
    assert "rrs rrs" in note and "× captum" in note


def test_an_unreachable_ray_cluster_fails_in_seconds_with_one_line(tmp_path):
    import socket

    from rrs.compute.cluster import ClusterError, check_reachable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match=f"127.0.0.1:{port} is unreachable") as info:
        runner.run_grid(jobs.build_jobs(config.config_for("test", "tiny", images=["1"], seeds=1))[:1],
                        tmp_path, ray_address=f"127.0.0.1:{port}", show_progress=False)
    assert "\n" not in str(info.value)
    check_reachable("auto")  # left to Ray


def test_a_local_ray_head_that_cannot_start_is_retried_once_then_explained(tmp_path, monkeypatch, caplog):
    """A real failed start: Ray's own GCS port wait set to 0 s (the knob connect lengthens) makes
    ``ray.init`` time out at once. connect cleans up, tries once more, then says what to do; no
    half-started Ray process of this one is left running."""
    import logging
    import os
    import ray

    from rrs.compute import cluster

    if ray.is_initialized():
        pytest.skip("another Ray session is active in this process")
    monkeypatch.setenv("RAY_gcs_server_port_wait_time_s", "0")
    caplog.set_level(logging.INFO, logger="rrs.compute.cluster")
    with pytest.raises(cluster.ClusterError) as info:
        runner.run_grid(jobs.build_jobs(config.config_for("test", "tiny", images=["1"], seeds=1))[:1],
                        tmp_path, ray=True, show_progress=False)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("Ray's local head did not start, 2 times") and "machine may be busy" in msg
    assert "`ray start --head`" in msg and "--ray-address auto" in msg
    starts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("starting a local Ray head")]
    assert starts == ["starting a local Ray head (attempt 1 of 2)", "starting a local Ray head (attempt 2 of 2)"]
    assert not ray.is_initialized()
    assert cluster._ray_children(ray) == set()           # the half-started GCS servers were ended
    assert os.environ["RAY_gcs_server_port_wait_time_s"] == "0"  # the user's setting is restored


def test_connect_lengthens_the_local_start_wait_only_while_starting(monkeypatch):
    """Without a user setting, the GCS wait is START_WAIT_S during ray.init and unset afterwards."""
    import os
    import ray

    from rrs.compute import cluster

    if ray.is_initialized():
        pytest.skip("another Ray session is active in this process")
    monkeypatch.delenv("RAY_gcs_server_port_wait_time_s", raising=False)
    seen = []
    real = ray.init
    monkeypatch.setattr(ray, "init", lambda *a, **k: (seen.append(os.environ.get("RAY_gcs_server_port_wait_time_s")),
                                                      real(*a, **k))[1])
    ray_, started = cluster.connect(None, num_cpus=1)
    try:
        assert started and seen == [str(cluster.START_WAIT_S)]
        assert "RAY_gcs_server_port_wait_time_s" not in os.environ
    finally:
        ray_.shutdown()


def test_report_scale_sentence_uses_finite_sample_radii_only():
    """The "for scale" sentence compares the attack budgets with the largest *certified* radius:
    a plug-in radius (an estimate) larger than every finite-sample one must not be quoted."""
    cfg = config.config_for("test", "tiny")
    base = {k: None for k in stats.KEYS}
    rows_ = [dict(base, experiment="certificates", metric="radius", method="rrs-topk", cell=1, beta=1.0,
                  certificate=name, mean=value)
             for name, value in (("rdp-plugin", 0.5), ("rdp-finite", 0.01), ("cdf-plugin", 0.4),
                                 ("cdf-finite", 0.02))]
    summary = pd.DataFrame(rows_)
    text = " ".join(report._findings(summary, pd.DataFrame(columns=list(summary.columns)), cfg))
    assert "largest mean finite-sample certified radius (0.02)" in text
    assert "(0.5)" not in text


def test_certify_job_honours_its_scheme(tmp_path):
    """A certify job whose settings ask for the selection scheme is not silently run as Bonferroni."""
    cfg = config.config_for("test", "tiny")
    job = next(j for j in jobs.build_jobs(cfg) if j["kind"] == "certify")
    assert job["certify"]["scheme"] == "bonferroni"
    job = dict(job, certify=dict(job["certify"], scheme="selection"))
    with pytest.raises(config.EvaluationError, match="Bonferroni scheme only"):
        jobs.run_job(job, device="cpu")
