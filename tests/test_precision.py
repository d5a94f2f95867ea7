"""The device's precision choice (rrs.compute.device): bf16 where the hardware computes it
natively and a measured check on the real model says it agrees with fp32 within the no-attack
floor; RRS_PRECISION forces; the choice is recorded in the result's settings; fp32 is the old
path bit for bit; bf16 maps agree with fp32 within the floor (tiny model, and the default model
as a slow test)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rrs.attributions import to_cells, vanilla_gradient
from rrs.compute import device as D
from rrs.floor import no_attack_floor
from rrs.metrics import spearman, tie_aware_intersection
from rrs.settings import MapSettings
from rrs.smoothing import generator_for, smooth


@pytest.fixture
def auto(monkeypatch):
    """No RRS_PRECISION (the suite's conftest pins fp32 for its exact comparisons)."""
    monkeypatch.delenv("RRS_PRECISION", raising=False)


def _check(topk, sp, floor_topk, floor_sp) -> D.PrecisionCheck:
    return D.PrecisionCheck("m", "cpu", MapSettings(), topk, sp, floor_topk, floor_sp, 0.2, 0.1)


def test_the_check_needs_both_topk_and_rank_agreement_within_the_floor():
    assert _check(0.9, 0.95, 0.8, 0.9).precision == "bf16"
    assert _check(0.8, 0.9, 0.8, 0.9).precision == "bf16"          # equal to the floor is within it
    assert _check(0.7, 0.99, 0.8, 0.9).precision == "fp32"         # top-k moved more than fresh noise
    assert _check(0.9, 0.85, 0.8, 0.9).precision == "fp32"         # ranking moved more than fresh noise
    assert _check(0.9, 0.95, 0.8, 0.9).speedup == pytest.approx(2.0)


def test_cpu_hardware_detection_matches_the_cpu_flags():
    """AMX or AVX-512 BF16 in /proc/cpuinfo ⇔ cpu_bf16_fast (on Linux)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    native = " amx_bf16" in flags or " avx512_bf16" in flags
    assert D.cpu_bf16_fast() == native


def test_cpu_chooses_bf16_where_native_and_the_measured_check_agrees(tiny, x32, auto):
    chosen = D.precision(tiny, x32)
    check = D.last_check(tiny)
    if not D.cpu_bf16_fast():
        assert chosen == "fp32" and check is None
        return
    assert check is not None and chosen == check.precision
    # the check's numbers are real: recompute them independently
    s = check.settings
    a = smooth(tiny, x32, s).map[0]
    b = smooth(tiny, x32, s.replace(precision="bf16")).map[0]
    k = s.k_for(a.numel())
    floor = no_attack_floor(tiny, x32, s, map_a=a)
    assert check.topk == pytest.approx(tie_aware_intersection(a, b, k))
    assert check.spearman == pytest.approx(spearman(a, b))
    assert (check.floor_topk, check.floor_spearman) == pytest.approx((floor.topk_intersection, floor.spearman))
    assert check.agrees and chosen == "bf16"
    assert check.fp32_seconds > 0 and check.bf16_seconds > 0
    assert D.precision(tiny) == "bf16"                       # cached per model: no image needed now


def test_rrs_precision_forces_either_way(tiny, x32, monkeypatch):
    s = MapSettings(method="rrs", samples=4, cell=4)
    for forced in ("fp32", "bf16"):
        monkeypatch.setenv("RRS_PRECISION", forced)
        assert D.precision(tiny, x32) == forced
        assert D.resolve(tiny, x32, s).precision == forced
        assert D.resolve(tiny, x32, s.replace(precision="bf16")).precision == forced
    monkeypatch.setenv("RRS_PRECISION", "fp64")                 # not a precision: ignored
    assert D.forced_precision() is None


def test_resolve_keeps_explicit_bf16_and_raw_maps(tiny, x32, auto):
    s = MapSettings(method="rrs", samples=4, cell=4)
    assert D.resolve(tiny, x32, s.replace(precision="bf16")).precision == "bf16"
    assert D.resolve(tiny, x32, s).precision == D.precision(tiny, x32)
    raw = MapSettings(method="vanilla", cell=4)
    assert D.resolve(tiny, x32, raw) is raw


def test_the_app_records_the_precision_it_used(tiny, x32, auto):
    """A map through the app's job path is computed at the device's precision and its settings
    (what the exports and the provenance carry) say which; it equals the library's map for
    those settings."""
    from ui import compute as C
    from ui import jobs

    settings = MapSettings(method="rrs", samples=8, cell=4, seed=3)
    res = jobs.run("map", C.compute_map, tiny, x32, settings)
    assert res.settings.precision == D.precision(tiny, x32)
    assert res.settings.replace(precision="fp32") == settings
    direct = C.compute_map(tiny, x32, res.settings)
    assert np.array_equal(direct.map, res.map)


def test_fp32_forced_is_the_old_path_bit_for_bit(tiny, x32, monkeypatch):
    """RRS_PRECISION=fp32 through the app's job path gives exactly the library's fp32 map (the
    path before the device policy), which is an independent per-sample computation."""
    from ui import compute as C
    from ui import jobs

    monkeypatch.setenv("RRS_PRECISION", "fp32")
    settings = MapSettings(method="smoothgrad", samples=6, cell=4, seed=2)
    res = jobs.run("map", C.compute_map, tiny, x32, settings)
    assert res.settings == settings
    lib = smooth(tiny, x32, settings, batch_size=3)
    assert np.array_equal(res.map, lib.map[0].numpy())
    # independently: noise of sample t from one generator, one gradient per sample, mean |g| per cell
    gen = generator_for(tiny, settings.seed)
    noise = settings.noise_model()
    target = tiny(x32[None]).argmax(1)
    cells = [to_cells(vanilla_gradient(tiny, (x32 + noise.sample(x32.shape, generator=gen))[None], target), 4)[0]
             for _ in range(settings.samples)]
    assert torch.allclose(lib.map[0], torch.stack(cells).double().mean(0).float(), rtol=1e-5, atol=1e-7)


def _agreement(model, x, settings):
    a = smooth(model, x, settings).map[0]
    b = smooth(model, x, settings.replace(precision="bf16")).map[0]
    floor = no_attack_floor(model, x, settings, map_a=a)
    k = settings.k_for(a.numel())
    return tie_aware_intersection(a, b, k), spearman(a, b), floor


def test_bf16_maps_agree_with_fp32_within_the_floor_on_the_tiny_model(tiny, x32):
    for settings in (MapSettings(method="rrs", samples=32, cell=2, k=0.1, seed=0),
                     MapSettings(method="rrs", samples=32, cell=4, k=0.1, sigma=0.25, seed=1)):
        topk, sp, floor = _agreement(tiny, x32, settings)
        assert topk >= floor.topk_intersection and sp >= floor.spearman


@pytest.mark.slow
def test_bf16_maps_agree_with_fp32_within_the_floor_on_the_default_model(auto):
    """EfficientNet-Lite0, coffee: the device check and the Certify defaults' map (32-px cells,
    k = 10%, σ = 0.25) — bf16 with the same noise moves the map less than fresh noise does."""
    from rrs.images import load_sample
    from rrs.models import load_default

    model = load_default("cpu")
    x = model.prepare(load_sample("coffee"))
    check = D.check_precision(model, x)
    assert check.agrees, check.to_dict()
    topk, sp, floor = _agreement(model, x, MapSettings(method="rrs", samples=64, cell=32, k=0.1, sigma=0.25))
    assert topk >= floor.topk_intersection and sp >= floor.spearman
