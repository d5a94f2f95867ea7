"""Smoothing and base attributions against hand loops, Captum and exact identities."""
import math

import numpy as np
import pytest
import torch

from rrs import attributions as A
from rrs.methods import rank_transform, sparsify
from rrs.noise import Gaussian
from rrs.scoring import exponential, topk_uniform
from rrs.settings import MapSettings
from rrs.smoothing import smooth, smooth_stream


def hand_noisy_maps(model, x, target, sigma, t, seed):
    """Noisy |gradient| maps drawn exactly as the library documents (one draw per sample)."""
    g = torch.Generator().manual_seed(seed)
    maps = []
    for _ in range(t):
        delta = torch.randn((1, *x.shape), generator=g, dtype=x.dtype) * sigma
        inp = (x[None] + delta).requires_grad_(True)
        model(inp)[0, target].backward()
        maps.append(inp.grad[0].abs().sum(0).reshape(-1).detach().numpy())
    return np.array(maps)


def test_smoothgrad_equals_hand_loop(tiny_model64, tiny_input):
    x = tiny_input.double()
    res = smooth(tiny_model64, x, MapSettings(method="smoothgrad", sigma=0.2, samples=7, seed=5),
                 target=1, batch_size=3)
    maps = hand_noisy_maps(tiny_model64, x, 1, 0.2, 7, 5)
    np.testing.assert_allclose(res.flat(), maps.mean(0), rtol=1e-5)
    np.testing.assert_allclose(res.sq_mean[0].reshape(-1).numpy(), (maps ** 2).mean(0), rtol=1e-5)
    assert res.value_bound is None


def test_rrs_equals_hand_loop_and_sums_to_one(tiny_model64, tiny_input):
    x = tiny_input.double()
    v = exponential(64, 5.0)
    res = smooth(tiny_model64, x, MapSettings(method="rrs", sigma=0.3, samples=9, scoring="custom",
                                              scoring_values=tuple(v), seed=2), target=0, batch_size=4)
    maps = hand_noisy_maps(tiny_model64, x, 0, 0.3, 9, 2)
    want = np.zeros(64)
    for m in maps:
        ranks = np.empty(64, dtype=int)
        ranks[np.lexsort((np.arange(64), -m))] = np.arange(64)
        want += v[ranks]
    np.testing.assert_allclose(res.flat(), want / 9, rtol=1e-6, atol=1e-9)
    assert res.map.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert res.value_bound == pytest.approx(v[0]) and not res.binary
    st = res.stats()
    assert st.mean.sum() == pytest.approx(1.0) and st.samples == 9


def test_sparsified_equals_independent_implementation(tiny_model64, tiny_input):
    x = tiny_input.double()
    tau, phi = 0.25, 0.05
    res = smooth(tiny_model64, x, MapSettings(method="sparsified", sigma=0.2, samples=5, tau=tau, phi=phi,
                                              seed=9), target=2)
    maps = hand_noisy_maps(tiny_model64, x, 2, 0.2, 5, 9)
    want = []
    for m in maps:
        srt = np.sort(m)[::-1]
        clip = srt[math.ceil(phi * 64) - 1]
        keep = np.argsort(-m, kind="stable")[:math.ceil(tau * 64)]
        out = np.zeros(64)
        out[keep] = np.minimum(m[keep], clip) / clip
        want.append(out)
    np.testing.assert_allclose(res.flat(), np.mean(want, 0), rtol=1e-6)
    assert res.map.max() <= 1.0 and res.value_bound == 1.0


@pytest.mark.parametrize("method", ["smoothgrad", "sparsified", "rrs"])
def test_batch_size_never_changes_the_result(tiny_model64, tiny_input, method, device):
    x = tiny_input.double().to(device)
    model = tiny_model64.to(device)
    out = [smooth(model, x, MapSettings(method=method, samples=10, cell=2, seed=1), batch_size=bs).map
           for bs in (1, 3, 10, 64)]
    assert out[0].device.type == device.type
    for m in out[1:]:
        torch.testing.assert_close(m, out[0], rtol=1e-10, atol=1e-12)


def test_batch_of_images_equals_images_one_by_one(tiny_model64):
    xs = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    both = smooth(tiny_model64, xs, MapSettings(method="smoothgrad", samples=4, seed=0))
    assert both.map.shape == (2, 8, 8)
    # noise for sample t is one draw of the whole batch: image 0 then image 1
    g = torch.Generator().manual_seed(0)
    deltas = [Gaussian(0.15).sample((2, 3, 8, 8), generator=g, dtype=torch.float64) for _ in range(4)]
    for i in range(2):
        grads = [A.vanilla_gradient(tiny_model64, (xs[i] + d[i])[None], both.target[i:i + 1]) for d in deltas]
        want = torch.stack([A.to_cells(gr)[0] for gr in grads]).mean(0)
        torch.testing.assert_close(both.map[i].double(), want, rtol=1e-5, atol=1e-8)


def test_laplace_noise_and_progress(tiny_model, tiny_input):
    calls = []
    res = smooth(tiny_model, tiny_input, MapSettings(method="rrs", noise="laplace", sigma=0.1, samples=10,
                                                     scoring_param=6, seed=0),
                 batch_size=4, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(4, 10), (8, 10), (10, 10)]
    # σ is the standard deviation for every family: Laplace scale b = σ/√2
    assert res.noise.scale == pytest.approx(0.1 / math.sqrt(2))
    assert res.binary and res.value_bound == pytest.approx(1 / 6)
    vals = res.flat() * 10 * 6  # counts of top-6 membership
    np.testing.assert_allclose(vals, np.round(vals), atol=1e-4)


def test_patch_cells_sum_pixels():
    g = torch.randn(2, 3, 7, 9, generator=torch.Generator().manual_seed(0))
    cells = A.to_cells(g, cell=4)
    assert cells.shape == (2, 2, 3)
    a = g.abs().sum(1).numpy()
    for i in range(2):
        for r in range(2):
            for c in range(3):
                assert cells[1, r, c].item() == pytest.approx(a[1, r * 4:(r + 1) * 4, c * 4:(c + 1) * 4].sum(), rel=1e-5)
    assert torch.allclose(A.to_cells(g, 3, "max")[0, 0, 0], g[0, :, :3, :3].abs().max())
    assert torch.allclose(A.to_cells(g, 1, "sq"), (g * g).sum(1))


def test_attributions_agree_with_captum(tiny_model64, tiny_input):
    from captum.attr import InputXGradient, IntegratedGradients, Saliency
    x = tiny_input.double()[None]
    t = torch.tensor([1])
    torch.testing.assert_close(A.vanilla_gradient(tiny_model64, x, t),
                               Saliency(tiny_model64).attribute(x.clone(), target=1, abs=False))
    torch.testing.assert_close(A.input_x_gradient(tiny_model64, x, t),
                               InputXGradient(tiny_model64).attribute(x.clone(), target=1))
    ours = A.integrated_gradients(tiny_model64, x, t, steps=20)
    theirs = IntegratedGradients(tiny_model64).attribute(x.clone(), target=1, n_steps=20, method="riemann_middle")
    torch.testing.assert_close(ours, theirs)


def test_integrated_gradients_completeness(tiny_model64, tiny_input):
    x = tiny_input.double()[None]
    ig = A.integrated_gradients(tiny_model64, x, torch.tensor([0]), steps=400)
    with torch.no_grad():
        gap = tiny_model64(x)[0, 0] - tiny_model64(torch.zeros_like(x))[0, 0]
    assert ig.sum().item() == pytest.approx(gap.item(), rel=1e-3, abs=1e-4)


def test_grad_cam_by_hand(tiny_model64, tiny_input):
    x = tiny_input.double()[None]
    m = tiny_model64
    cam = A.grad_cam(m, x, torch.tensor([2]))
    act = torch.relu(m.conv1(x))
    feat = m.conv2(act).detach().requires_grad_(True)  # cam_layer = conv2 (pre-ReLU output)
    score = m.fc(torch.relu(feat).mean((2, 3)))[0, 2]
    score.backward()
    w = feat.grad.mean((2, 3), keepdim=True)
    want = torch.relu((w * feat).sum(1, keepdim=True)).detach()
    torch.testing.assert_close(cam, want)
    assert cam.shape == (1, 1, 8, 8)


def test_keep_graph_allows_second_order(tiny_model64, tiny_input):
    x = tiny_input.double()[None].requires_grad_(True)
    g = A.vanilla_gradient(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2).double(), torch.nn.Softplus()),
                           x, torch.tensor([0]), create_graph=True)
    (hess_vec,) = torch.autograd.grad(g.pow(2).sum(), x)
    assert hess_vec.abs().sum() > 0


def test_rank_transform_and_sparsify_shapes():
    a = torch.tensor([[0.1, 0.5, 0.5, 0.2]])
    v = torch.tensor([0.4, 0.3, 0.2, 0.1])
    torch.testing.assert_close(rank_transform(a, v), torch.tensor([[0.1, 0.4, 0.3, 0.2]]))
    s = sparsify(torch.tensor([[4.0, 1.0, 2.0, 3.0]]), tau=0.5, phi=0.25)
    torch.testing.assert_close(s, torch.tensor([[1.0, 0.0, 0.0, 0.75]]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rank_transform_fast_top_k_path_matches_an_index_tie_break_sort(dtype):
    """The top-k' uniform fast path (topk + index tie-break) against a numpy lexsort on maps
    full of ties, for k' everywhere from 1 to n-1; other scoring vectors take the full sort."""
    rng = np.random.default_rng(0)
    n = 40
    a = np.concatenate([rng.integers(0, 4, (30, n)), np.zeros((1, n)), np.ones((1, n)),
                        rng.random((8, n))]).astype(np.float64)
    want_ranks = np.empty_like(a, dtype=int)
    for i, row in enumerate(a):
        want_ranks[i, np.lexsort((np.arange(n), -row))] = np.arange(n)
    at = torch.as_tensor(a, dtype=dtype)
    for kp in range(1, n):
        v = topk_uniform(n, kp)
        got = rank_transform(at, torch.as_tensor(v)).double().numpy()
        np.testing.assert_allclose(got, v[want_ranks], rtol=1e-6, atol=0)
        assert (np.count_nonzero(got, axis=1) == kp).all()
    v = exponential(n, 3.0)
    np.testing.assert_allclose(rank_transform(at, torch.as_tensor(v)).double().numpy(), v[want_ranks],
                               rtol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(samples=0), "samples"),
    (dict(samples=2.5), "samples"),
    (dict(method="magic"), "method"),
    (dict(base="magic"), "base"),
    (dict(noise="cauchy"), "noise"),
    (dict(sigma=0), "sigma"),
    (dict(cell=0), "cell"),
    (dict(tau=0), "tau"),
    (dict(scoring="custom"), "scoring_values"),
    (dict(precision="fp8"), "precision"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MapSettings(**kwargs)


def test_bad_inputs(tiny_model, tiny_input):
    with pytest.raises(ValueError, match="shape"):
        smooth(tiny_model, torch.rand(8, 8))
    with pytest.raises(ValueError, match="non-finite"):
        smooth(tiny_model, torch.full((3, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="target"):
        smooth(tiny_model, torch.rand(3, 8, 8), target=[0, 1])
    with pytest.raises(ValueError, match="batch_size"):
        smooth(tiny_model, tiny_input, batch_size=0)
    with pytest.raises(ValueError, match="cells"):
        smooth(tiny_model, tiny_input, MapSettings(scoring="custom", scoring_values=(0.5, 0.5)))
    with pytest.raises(ValueError, match="not a smoothing method"):
        smooth(tiny_model, tiny_input, MapSettings(method="vanilla"))


def test_non_finite_attribution_is_a_clear_error(tiny_model, tiny_input):
    """A NaN gradient must not be ranked or renormalised silently (method.md, numerical traps)."""
    class NaNGrad(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x) * torch.sqrt(x.sum() * 0 - 1)  # NaN logits and gradients

    with pytest.raises(ValueError, match="non-finite"):
        smooth(NaNGrad(tiny_model), tiny_input, MapSettings(samples=2))


def test_stream_checkpoints_equal_fresh_runs(tiny_model64, tiny_input):
    """Each checkpoint of smooth_stream is exactly smooth() with that many samples (anytime use)."""
    s = MapSettings(method="rrs", samples=12, cell=2, seed=3)
    got = list(smooth_stream(tiny_model64, tiny_input.double(), s, checkpoints=[3, 6], batch_size=5))
    assert [r.samples for r in got] == [3, 6, 12]
    for r in got:
        fresh = smooth(tiny_model64, tiny_input.double(), s.replace(samples=r.samples), batch_size=4)
        torch.testing.assert_close(r.map, fresh.map, rtol=1e-12, atol=1e-12)


def test_settings_round_trip_and_scoring_resolution():
    s = MapSettings(method="rrs", noise="laplace", sigma=0.3, k=0.1, scoring="exponential", scoring_param=0.05)
    assert MapSettings.from_dict(s.to_dict()) == s
    assert s.k_for(49) == 5 and MapSettings(k=3).k_for(49) == 3
    v = s.scoring_vector(100)
    np.testing.assert_allclose(v, exponential(100, 5.0))
    np.testing.assert_allclose(MapSettings(scoring_param=0.1).scoring_vector(49), topk_uniform(49, 5))
    with pytest.raises(ValueError, match="unknown MapSettings"):
        MapSettings.from_dict({"sigma": 0.1, "noise_scale": 2})
    with pytest.raises(ValueError, match="sigma"):
        Gaussian(0.0)


def test_grad_cam_builds_no_graph_below_its_layer(tiny_model64, tiny_input):
    """First-order Grad-CAM needs no input gradient: nothing below the CAM layer is recorded,
    and the map is the same as with the full graph (second-order mode)."""
    x = tiny_input.double()[None]
    cheap = A.grad_cam(tiny_model64, x, torch.tensor([1]))
    full = A.grad_cam(tiny_model64, x, torch.tensor([1]), create_graph=True)
    torch.testing.assert_close(cheap, full.detach())
    below = torch.autograd.grad(cheap.sum(), tiny_model64.conv1.weight, allow_unused=True)[0]
    assert below is None
    assert torch.autograd.grad(full.sum(), tiny_model64.conv1.weight, allow_unused=True)[0] is not None
    assert torch.is_grad_enabled()  # the grad mode is restored after the cut forward


def test_smoothing_records_the_measured_sample_rate(tiny_model, tiny_input):
    """Predicted times come from rates measured on this device: smooth records its own."""
    from rrs.timing import RATES, format_seconds, sample_key

    s = MapSettings(method="rrs", samples=6)
    key = sample_key(tiny_model, tiny_input, s)
    RATES.clear()
    assert RATES.predict(key, 100) is None
    smooth(tiny_model, tiny_input, s, batch_size=2)
    rate = RATES.rate(key)
    assert rate is not None and rate > 0
    assert RATES.predict(key, 100) == pytest.approx(100 / rate)
    assert format_seconds(None) == "unknown" and format_seconds(150) == "about 2 min"
