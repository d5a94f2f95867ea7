"""``python -m rrs``: help for every command, real runs, and one-line errors for bad input."""
from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rrs.settings import AttackSettings, CertifySettings, MapSettings

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("explain", "certify", "attack", "evaluate", "samples", "models")


def run(*args, timeout=600, cwd=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("RRS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "rrs", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, env=env)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "error:" in lines[0]
    for frag in fragments:
        assert frag in lines[0], lines[0]


def main_in_process(capsys, *args) -> tuple[int, str, str]:
    """The same entry point as ``python -m rrs`` (used for the cheap checks: a subprocess costs
    several seconds of torch import on a loaded machine)."""
    from rrs.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error_in_process(result, *fragments):
    code, out, err = result
    assert code not in (0, None), out
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "error:" in lines[0]
    for frag in fragments:
        assert frag in lines[0], lines[0]


def test_help_as_subprocess():
    top = run("--help")
    assert top.returncode == 0
    for cmd in COMMANDS:
        assert cmd in top.stdout
    proc = run("explain", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m rrs explain")


def test_help_for_every_command(capsys):
    helps = {}
    for cmd in COMMANDS:
        code, out, err = main_in_process(capsys, cmd, "--help")
        assert code == 0, err
        assert out.startswith(f"usage: python -m rrs {cmd}")
        helps[cmd] = out
    for option in ("--method", "--base", "--sigma", "--samples", "-T", "--cell", "--scoring", "--k",
                   "--seed", "--device", "--out", "--json"):
        assert option in helps["explain"]
    for option in ("--betas", "--norm", "--eta", "--radius", "--csv"):
        assert option in helps["certify"]
    for option in ("--objective", "--epsilon", "--steps", "--eot-samples", "--methods"):
        assert option in helps["attack"]


def test_no_command_prints_help_and_fails(capsys):
    code, out, err = main_in_process(capsys)
    assert code == 2 and "usage:" in err


def test_samples_command_from_another_directory(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, out, err = main_in_process(capsys, "samples")
    assert code == 0, err
    names = [ln.split()[0] for ln in out.splitlines()]
    assert {"coffee", "chelsea", "astronaut"} <= set(names)


# ------------------------------------------------------------------- bad input

def _corrupt_files(tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "half.jpg"
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return corrupt, truncated


def test_bad_inputs_as_subprocess(tmp_path):
    corrupt, _ = _corrupt_files(tmp_path)
    assert_one_line_error(run("explain", tmp_path / "missing.png"), "No file at")
    assert_one_line_error(run("explain", corrupt), "not an image file")


def test_bad_inputs_in_process(tmp_path, capsys):
    corrupt, truncated = _corrupt_files(tmp_path)
    cases = [
        (("certify", corrupt), ("not an image file",)),
        (("explain", "coffee", "-T", "0"), ("--samples/-T", "≥ 1")),
        (("certify", truncated), ("truncated or corrupt",)),
        (("explain", tmp_path), ("is a folder",)),
        (("explain", "unicorn"), ("no sample image of that name",)),
        (("explain", "coffee", "--method", "magic"), ("invalid choice: 'magic'",)),
        (("explain", "coffee", "--sigma", "-1"), ("--sigma",)),
        (("explain", "coffee", "--k", "2.5"), ("--k",)),
        (("certify", "coffee", "--betas", "1,1.5"), ("β",)),
        (("certify", "coffee", "--norm", "0.5"), ("--norm",)),
        (("certify", "coffee", "--eta", "1.5"), ("--eta",)),
        (("certify", "coffee", "--radius", "-1"), ("--radius",)),
        (("attack", "coffee", "--epsilon", "8/0"), ("--epsilon",)),
        (("attack", "coffee", "--norm", "l7"), ("--norm",)),
        (("attack", "coffee", "--methods", "vanilla,nope"), ("unknown method 'nope'",)),
        (("explain", "coffee", "--device", "nonsense"), ("device",)),
        (("explain", "coffee", "--opacity", "3"), ("--opacity",)),
    ]
    for args, fragments in cases:
        assert_one_line_error_in_process(main_in_process(capsys, *args), *fragments)


def test_k_too_big_fails_cleanly(capsys):
    # tiny model: 32×32 input, 8-px cells -> 16 cells, so k must be in 1..15
    result = main_in_process(capsys, "explain", "coffee", "--model", "tiny", "--cell", "8", "--k", "16", "-q")
    assert_one_line_error_in_process(result, "k = 16", "1..15")
    result = main_in_process(capsys, "certify", "coffee", "--model", "tiny", "--cell", "8", "--k", "400", "-q")
    assert_one_line_error_in_process(result, "k = 400")


def test_evaluate_registered(capsys):
    code, out, _ = main_in_process(capsys, "evaluate", "--help")
    assert code == 0 and "usage: python -m rrs evaluate" in out


# ------------------------------------------------------------- real-model runs

def _png_ok(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(io.BytesIO(data))
    im.load()
    return im.size


@pytest.mark.slow
def test_explain_writes_png_and_json(tmp_path):
    out, js = tmp_path / "map.png", tmp_path / "map.json"
    proc = run("explain", "coffee", "--method", "rrs", "-T", "2", "--cell", "16", "--seed", "7",
               "--k", "10", "--out", out, "--json", js)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "prediction: espresso" in proc.stdout or "prediction: cup" in proc.stdout
    w, h = _png_ok(out)
    assert w > 300 and h > 200
    rec = json.loads(js.read_text())
    s = rec["settings"]
    assert (s["method"], s["samples"], s["cell"], s["seed"], s["k"], s["sigma"]) == ("rrs", 2, 16, 7, 10, 0.15)
    assert MapSettings.from_dict(s) == MapSettings(samples=2, cell=16, seed=7, k=10)
    assert rec["seed"] == 7 and rec["device"] == "cpu" and rec["elapsed_s"] > 0
    assert rec["model"] == "efficientnet-lite0" and rec["grid"] == [14, 14] and rec["k"] == 10
    assert (s["scoring"], s["scoring_param"]) == ("topk", 0.1) and np.count_nonzero(rec["scoring_vector"]) == 20
    m = np.asarray(rec["map"])
    assert m.shape == (14, 14) and abs(m.sum() - 1) < 1e-5  # an RRS map is a probability vector
    assert sorted(rec["topk_cells"]) == sorted(np.argsort(-m.reshape(-1), kind="stable")[:10].tolist())
    assert rec["argv"][:4] == ["python", "-m", "rrs", "explain"]


@pytest.mark.slow
def test_certify_matches_library(tmp_path):
    import torch

    from rrs.certify import certify
    from rrs.images import load_sample
    from rrs.models import load_default
    from rrs.noise import Gaussian
    from rrs.smoothing import smooth

    js, csv_path, png = tmp_path / "c.json", tmp_path / "c.csv", tmp_path / "c.png"
    proc = run("certify", "coffee", "-T", "4", "--cell", "32", "--k", "3", "--seed", "11",
               "--betas", "1,0.5", "--json", js, "--csv", csv_path, "--out", png, "-q")
    assert proc.returncode == 0, proc.stderr
    _png_ok(png)
    rec = json.loads(js.read_text())

    model = load_default("cpu")
    x = model.prepare(load_sample("coffee"))
    res = smooth(model, x, MapSettings(samples=4, cell=32, seed=11))
    np.testing.assert_allclose(np.asarray(rec["map"]), res.map[0].numpy(), rtol=1e-6, atol=1e-9)
    report = certify(res.stats(0), 3, res.noise, CertifySettings(betas=(1.0, 0.5), norm=2, eta=0.05), dim=res.dim)
    want = report.rows()
    got = rec["certificates"]
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        assert (g["certificate"], g["beta"]) == (w["certificate"], w["beta"])
        assert math.isclose(g["radius"], w["radius"], rel_tol=1e-6, abs_tol=1e-12)
    # The printed table shows the same radii under the certificate labels.
    betas = [1.0, 0.5]
    for w in want:
        label = w["certificate"].replace(" (not a certificate for β<1)", "")
        line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith(label + " "))
        shown = f"{w['radius']:.4g}" if w["radius"] > 0 else "0"
        assert line.split()[-len(betas) + betas.index(w["beta"])] == shown, (line, shown)
    assert "RDP (exact) plug-in" in proc.stdout and "Gaussian-CDF finite-sample" in proc.stdout
    assert "(not a certificate for β<1)" in proc.stdout
    assert csv_path.read_text().splitlines()[0].startswith("certificate,")
    np.testing.assert_allclose(rec["cell_radii"]["plugin"], report.cells_plugin.radii, rtol=1e-6, atol=1e-12)


def test_interrupt_exits_130(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "rrs", "explain", "coffee", "--model", "tiny",
                             "-T", "100000000", "-q"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # the prediction line: the model is loaded, smoothing runs
        assert line.startswith("prediction:"), line
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err


@pytest.mark.slow
def test_attack_writes_table_png_and_json(tmp_path):
    out, js = tmp_path / "attack.png", tmp_path / "attack.json"
    proc = run("attack", "coffee", "--methods", "vanilla", "--steps", "2", "--cell", "16", "--k", "10",
               "--epsilon", "8/255", "--seed", "3", "--out", out, "--json", js, "-q")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    _png_ok(out)
    rec = json.loads(js.read_text())
    assert rec["command"] == "attack" and rec["seed"] == 3 and rec["elapsed_s"] > 0
    assert rec["epsilon_text"] == "8/255" and math.isclose(rec["attack_settings"]["epsilon"], 8 / 255)
    assert AttackSettings.from_dict(rec["attack_settings"]).steps == 2
    r = rec["results"]["vanilla"]
    assert r["k"] == 10
    assert 0.0 <= r["topk_intersection"] <= 1.0 and r["no_attack_floor"] == 1.0
    assert r["linf"] <= 8 / 255 + 1e-6 and r["l2"] > 0
    assert isinstance(r["label_preserved"], bool) and len(r["history"]) >= 1
    assert np.asarray(r["clean_map"]).shape == (14, 14) == np.asarray(r["attacked_map"]).shape
    line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith("vanilla gradient"))
    assert f"{r['topk_intersection']:.3f}" in line.split() and "1.000" in line.split()


# --------------------------------------------------- the tiny model: every option, fast

def test_explain_every_method_on_the_tiny_model(tmp_path, capsys):
    for method in ("vanilla", "input_x_gradient", "integrated_gradients", "gradcam", "smoothgrad",
                   "sparsified", "rrs"):
        out, js = tmp_path / f"{method}.png", tmp_path / f"{method}.json"
        code, stdout, err = main_in_process(capsys, "explain", "coffee", "--model", "tiny", "--method", method,
                                            "-T", "2", "--out", out, "--json", js, "-q")
        assert code == 0, err
        _png_ok(out)
        rec = json.loads(js.read_text())
        assert rec["method"] == method and rec["model"] == "tiny" and rec["input_size"] == 32
        assert np.all(np.asarray(rec["map"]) >= 0)
        assert rec["grid"] == ([8, 8] if method == "gradcam" else [32, 32])  # Grad-CAM: feature cells
        if method in ("smoothgrad", "sparsified", "rrs"):
            assert rec["samples"] == 2 and np.asarray(rec["raw_map"]).shape == np.asarray(rec["map"]).shape


def test_explain_settings_reach_the_library(tmp_path, capsys):
    """The JSON map equals rrs.smooth called with the recorded settings (nothing lost on the way)."""
    import torch

    from rrs.images import load_sample
    from rrs.models import load_model
    from rrs.noise import Laplace
    from rrs.scoring import make_scoring
    from rrs.smoothing import smooth

    js = tmp_path / "x.json"
    code, _, err = main_in_process(capsys, "explain", "chelsea", "--model", "tiny", "--method", "rrs",
                                   "--noise", "laplace", "--sigma", "0.2", "-T", "5", "--cell", "4",
                                   "--scoring", "exponential", "--scoring-param", "3", "--seed", "9",
                                   "--target", "2", "--k", "0.25", "--json", js, "-q")
    assert code == 0, err
    rec = json.loads(js.read_text())
    model = load_model("tiny")
    x = model.prepare(load_sample("chelsea"))
    settings = MapSettings.from_dict(rec["settings"])
    assert settings == MapSettings(noise="laplace", sigma=0.2, samples=5, cell=4, scoring="exponential",
                                   scoring_param=3.0, seed=9, k=0.25)
    res = smooth(model, x, settings, target=2)
    np.testing.assert_allclose(np.asarray(rec["map"]), res.map[0].numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(rec["scoring_vector"], make_scoring("exponential", 64, 3.0))
    # σ is the standard deviation for every family: Laplace scale b = σ/√2
    assert res.noise == Laplace(0.2 / math.sqrt(2))
    assert rec["k"] == 16 and rec["target"]["id"] == 2


def test_certify_and_attack_on_the_tiny_model(tmp_path, capsys):
    code, out, err = main_in_process(capsys, "certify", "coffee", "--model", "tiny", "-T", "8", "--cell", "8",
                                     "--norm", "inf", "--radius", "0.001", "--json", tmp_path / "c.json",
                                     "--out", tmp_path / "c.png", "-q")
    assert code == 0, err
    assert "certified ℓ∞ radius" in out
    rec = json.loads((tmp_path / "c.json").read_text())
    assert rec["certify_settings"]["norm"] == "linf" and rec["grid"] == [4, 4]
    assert all(row["norm"] == "inf" for row in rec["certificates"])
    code, out, err = main_in_process(capsys, "attack", "coffee", "--model", "tiny", "--methods", "vanilla,rrs",
                                     "--steps", "2", "-T", "2", "--eot-samples", "2", "--norm", "l2",
                                     "--epsilon", "0.5", "--json", tmp_path / "a.json", "--out", tmp_path / "a.png", "-q")
    assert code == 0, err
    rec = json.loads((tmp_path / "a.json").read_text())
    for method in ("vanilla", "rrs"):
        r = rec["results"][method]
        assert r["l2"] <= 0.5 + 1e-5 and 0 <= r["no_attack_floor"] <= 1
    _png_ok(tmp_path / "a.png")


def test_model_errors_are_one_line(tmp_path, capsys):
    from rrs import cli

    assert cli.resolve_model("tiny").name == "tiny"
    assert_one_line_error_in_process(main_in_process(capsys, "explain", "coffee", "--model", "nosuch"), "nosuch")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"not really weights")
    assert_one_line_error_in_process(main_in_process(capsys, "explain", "coffee", "--model", weights), "--arch")
    assert_one_line_error_in_process(
        main_in_process(capsys, "explain", "coffee", "--model", weights, "--arch", "resnet18"), "w.pth")


def test_certify_selection_scheme_pools_to_the_same_map(tmp_path, capsys):
    """--scheme selection draws T/8 + the rest on one generator: the pooled map is the T-sample
    map of the same seed, the certificates say which scheme made them."""
    runs = {}
    for scheme in ("bonferroni", "selection"):
        js = tmp_path / f"{scheme}.json"
        code, out, err = main_in_process(capsys, "certify", "coffee", "--model", "tiny", "-T", "64", "--cell", "8",
                                         "--k", "3", "--seed", "5", "--scheme", scheme, "--json", js, "-q")
        assert code == 0, err
        runs[scheme] = json.loads(js.read_text())
    sel, bon = runs["selection"], runs["bonferroni"]
    np.testing.assert_allclose(sel["map"], bon["map"], rtol=1e-5, atol=1e-7)
    assert sel["samples"] == bon["samples"] == 64
    assert {row["scheme"] for row in sel["certificates"] if row["finite_sample"]} == {"selection"}
    assert {row["scheme"] for row in bon["certificates"] if row["finite_sample"]} == {"bonferroni"}
    assert sel["certify_settings"]["scheme"] == "selection"
    code, _, err = main_in_process(capsys, "certify", "coffee", "--model", "tiny", "-T", "8", "--scheme", "selection")
    assert code == 2 and "--samples ≥ 16" in err
