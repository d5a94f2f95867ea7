"""Interpretation attacks (rrs.attacks): budgets, labels, reproducibility, the surrogate's
second derivatives, every method, and that certified claims survive the strongest attack."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import TinyConvNet
from rrs import attacks
from rrs.attacks import (AttackResult, attack, no_attack_floor, smooth_clamp, surrogate_model)
from rrs.certify import cell_radii_from_bounds, probability_bounds
from rrs.metrics import topk_indices
from rrs.models import Classifier
from rrs.noise import Gaussian
from rrs.scoring import exponential, topk_uniform
from rrs.smoothing import rank_transform, smooth


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine
    OpenMP spinning made these tests up to 10× slower with 2 threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def net():
    return TinyConvNet(channels=3, classes=3, width=6, seed=0).eval()


@pytest.fixture(scope="module")
def img():
    return torch.rand(3, 8, 8, generator=gen(1))


# ------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_never_exceeds_budget_and_stays_in_unit_box(norm):
    g = gen(3)
    for trial in range(300):
        eps = float(torch.rand(1, generator=g)) * (0.5 if norm == "linf" else 4.0) + 1e-4
        x0 = torch.rand(1, 3, 6, 6, generator=g)
        if trial % 3 == 0:
            x0 = (x0 > 0.5).float()  # pixels on the box faces: clipping binds
        far = x0 + torch.randn(1, 3, 6, 6, generator=g) * float(torch.rand(1, generator=g)) * 3
        for x in (attacks._project(x0, far, norm, eps), attacks._random_start(x0, norm, eps, g)):
            d = (x - x0).flatten()
            size = d.abs().max() if norm == "linf" else d.norm()
            assert size <= eps * (1 + 1e-5) + 1e-7
            assert x.min() >= 0 and x.max() <= 1
    # projection is the identity inside the feasible set
    x0 = torch.full((1, 3, 4, 4), 0.5)
    inside = x0 + 0.001
    assert torch.equal(attacks._project(x0, inside, norm, 0.1), inside)


@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.3)])
def test_attack_result_within_budget_every_method(net, img, norm, eps):
    for method in attacks.ATTACK_METHODS:
        r = attack(net, img, method, norm=norm, epsilon=eps, steps=3, step_size=eps, samples=4,
                   eot_samples=2, random_start=True, generator=gen(0),
                   base_kwargs={"steps": 4} if method == "integrated_gradients" else None)
        assert isinstance(r, AttackResult)
        d = (r.x_adv - img).flatten()
        assert (r.linf if norm == "linf" else r.l2) <= eps * (1 + 1e-5)
        assert r.linf == pytest.approx(float(d.abs().max()), abs=1e-6)
        assert r.l2 == pytest.approx(float(d.norm()), rel=1e-5)
        assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
        assert r.label_preserved and r.adv_label == r.clean_label and r.message == ""
        assert r.clean_map.shape == r.attacked_map.shape and r.clean_map.dim() == 2
        assert 0 <= r.topk_intersection <= 1 and -1 <= r.spearman <= 1 and -1 <= r.kendall <= 1
        assert len(r.history) == 3 and all(math.isfinite(h) for h in r.history)
        assert r.accepted_steps + r.rejected_steps == 3


# ------------------------------------------------------------------- reproducibility

def test_attack_is_reproducible_with_a_fixed_generator(img, device):
    net = TinyConvNet(channels=3, classes=3, width=6, seed=0).eval().to(device)
    img = img.to(device)
    kw = dict(method="rrs", steps=4, samples=8, eot_samples=4, random_start=True,
              scoring=topk_uniform(64, 6))

    def g(seed):
        return torch.Generator(device=device).manual_seed(seed)
    a = attack(net, img, generator=g(5), **kw)
    b = attack(net, img, generator=g(5), **kw)
    c = attack(net, img, generator=g(6), **kw)
    assert a.x_adv.device.type == device.type
    assert torch.equal(a.x_adv, b.x_adv)
    assert a.history == b.history
    assert torch.equal(a.attacked_map, b.attacked_map)
    assert not torch.equal(a.x_adv, c.x_adv)


def test_progress_callback_counts_every_step(net, img):
    calls = []
    attack(net, img, "vanilla", steps=3, restarts=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]


# ------------------------------------------------------------------------ surrogate

def test_smooth_clamp_matches_softplus_with_exact_second_derivative():
    x = (torch.randn(300, dtype=torch.float64) * 3).requires_grad_(True)
    for lo, hi in [(0.0, math.inf), (0.0, 6.0), (-1.0, 1.0)]:
        ref = lo + F.softplus(x - lo, 4.0) - (F.softplus(x - hi, 4.0) if math.isfinite(hi) else 0)
        assert torch.allclose(smooth_clamp(x, 4.0, lo, hi), ref, atol=1e-10)
        f = lambda t: smooth_clamp(t, 4.0, lo, hi)  # noqa: E731
        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))
    # no overflow for large inputs; tends to the clamp for large β
    big = torch.tensor([-1e4, -50.0, 0.0, 3.0, 50.0, 1e4])
    assert torch.isfinite(smooth_clamp(big, 10.0, 0.0, 6.0)).all()
    assert torch.allclose(smooth_clamp(big, 1e4, 0.0, 6.0), big.clamp(0, 6), atol=1e-3)


class ModuleNet(nn.Module):
    """ReLU / ReLU6 modules (inplace, like torchvision) plus a functional relu6."""

    def __init__(self):
        super().__init__()
        g = gen(2)
        self.fc1, self.fc2, self.fc3 = nn.Linear(12, 16), nn.Linear(16, 16), nn.Linear(16, 3)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g))
        self.act1, self.act2 = nn.ReLU(inplace=True), nn.ReLU6(inplace=True)

    def forward(self, x):
        h = self.act1(self.fc1(x.flatten(1)))
        h = self.act2(self.fc2(h))
        return self.fc3(F.relu6(h - 1.0))


class InplaceNet(nn.Module):
    """Functional in-place activations whose return value is ignored (``x.relu_()``)."""

    def __init__(self):
        super().__init__()
        g = gen(21)
        self.fc1, self.fc2, self.fc3 = nn.Linear(12, 16), nn.Linear(16, 16), nn.Linear(16, 16)
        self.fc4 = nn.Linear(16, 3)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x):
        h = self.fc1(x.flatten(1))
        h.relu_()
        h = self.fc2(h)
        F.hardtanh(h, -2.0, 2.0, True)
        h = F.relu(self.fc3(h), inplace=True)
        return self.fc4(h)


def _hvp(model, x, v):
    """Hessian-vector product of the class-0 logit with respect to the input."""
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x)[:, 0].sum(), x, create_graph=True)
    (h,) = torch.autograd.grad((g * v).sum(), x, allow_unused=True)
    return torch.zeros_like(x) if h is None else h


@pytest.mark.parametrize("make", [lambda: ModuleNet().eval(), lambda: TinyConvNet(seed=3).eval(),
                                  lambda: InplaceNet().eval()])
def test_surrogate_has_second_derivatives_where_relu_net_has_none(make):
    model = make()
    small = isinstance(model, (ModuleNet, InplaceNet))
    x = torch.rand(2, 3, 2, 2, generator=gen(4)) if small else torch.rand(2, 3, 8, 8, generator=gen(4))
    v = torch.randn(x.shape, generator=gen(5))
    assert _hvp(model, x, v).abs().max() == 0          # piecewise linear: zero almost everywhere
    sur = surrogate_model(model, 10.0)
    assert sur.replaced + 0 >= (2 if isinstance(model, ModuleNet) else 0)
    assert _hvp(sur, x, v).abs().max() > 1e-3
    # close to the real network, and closer for larger β
    with torch.no_grad():
        err10 = (sur(x) - model(x)).abs().max()
        err200 = (surrogate_model(model, 200.0)(x) - model(x)).abs().max()
    assert err200 < err10 and err200 < 0.05
    # the real model is untouched
    if isinstance(model, ModuleNet):
        assert isinstance(model.act1, nn.ReLU) and isinstance(model.act2, nn.ReLU6)


def test_surrogate_is_cached_per_model_and_beta(net):
    a, b = surrogate_model(net, 10.0), surrogate_model(net, 10.0)
    assert a is b
    assert surrogate_model(net, 20.0) is not a
    assert surrogate_model(TinyConvNet(seed=0).eval(), 10.0) is not a
    assert all(not p.requires_grad for p in a.parameters())
    with pytest.raises(ValueError, match="surrogate_beta"):
        surrogate_model(TinyConvNet(seed=1).eval(), 0.0)


class BNNet(nn.Module):
    """conv→BN pairs (foldable), a conv whose output is also used elsewhere (not foldable),
    a grouped strided conv, and a Grad-CAM layer followed by BN (must stay unfolded)."""

    def __init__(self):
        super().__init__()
        g = gen(7)
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.BatchNorm2d(8)
        self.c3, self.b3 = nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8)
        self.c4, self.b4 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)
        for m in self.modules():
            for p in m.parameters(recurse=False):
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if isinstance(m, nn.BatchNorm2d) else 0))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        self.cam_layer = self.c4

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = nn.functional.relu6(self.b2(self.c2(h)))
        t = self.c3(h)
        h = F.relu(self.b3(t)) + 0.1 * t                # c3's output has two users
        h = F.relu(self.b4(self.c4(h)))
        return self.fc(h.mean((2, 3)))


def test_batchnorm_folding_and_fast_conv_keep_the_function_and_its_derivatives():
    model = BNNet().eval()
    fast = surrogate_model(model, 10.0)
    plain = surrogate_model(model, 10.0, fold_bn=False, fast_conv=False)
    assert fast.folded == 2 and plain.folded == 0  # c1/b1 and c2/b2 only
    x = torch.rand(3, 3, 8, 8, generator=gen(8))
    with torch.no_grad():
        assert torch.allclose(fast(x), plain(x), atol=1e-5)
    # second-order: gradient of a map objective through both surrogates
    def objective_grad(m):
        inp = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(m(inp)[:, 0].sum(), inp, create_graph=True)
        (gg,) = torch.autograd.grad((g.abs() * torch.linspace(0, 1, g.numel()).view_as(g)).sum(), inp)
        return gg
    ref = objective_grad(plain)
    assert torch.allclose(objective_grad(fast), ref, atol=1e-4 * ref.abs().max())
    # Grad-CAM uses the unfolded layer in both
    from rrs.attributions import grad_cam
    y = torch.zeros(3, dtype=torch.long)
    assert torch.allclose(grad_cam(fast, x, y), grad_cam(plain, x, y), atol=1e-5)


def test_torchvision_resnet18_attack_runs_quickly():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=5).eval()
    model = Classifier(net, "resnet18", 64, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225],
                       [str(i) for i in range(5)]).eval()
    sur = surrogate_model(model, 10.0)
    assert sur.replaced >= 1 and sur.folded >= 10
    assert not any(isinstance(m, nn.ReLU) for m in sur.modules())
    x = torch.rand(3, 64, 64, generator=gen(9))
    small = x[:, :32, :32]
    with torch.no_grad():
        assert torch.allclose(sur(small[None]), model(small[None]), atol=0.2)
    r = attack(model, small, "vanilla", steps=2, generator=gen(0))
    assert r.label_preserved and r.linf <= 8 / 255 + 1e-6
    assert r.adv_objective < r.clean_objective
    r = attack(model, x, "gradcam", steps=1, generator=gen(0))
    assert r.clean_map.shape == (2, 2) and r.k == 1 and r.label_preserved
    with pytest.raises(ValueError, match="only 1 cell"):
        attack(model, small, "gradcam", steps=1)


# ---------------------------------------------------------------- what gets batched

def test_eot_samples_go_through_the_surrogate_in_one_batch(net, img):
    sur = surrogate_model(net, 10.0)
    batches = []
    handle = sur.model.register_forward_hook(lambda m, i, o: batches.append(i[0].shape[0]))
    try:
        attack(net, img, "rrs", steps=3, eot_samples=8, samples=4, generator=gen(0))
    finally:
        handle.remove()
    assert batches == [8, 8, 8]


def test_soft_rank_surrogate_tends_to_the_real_rank_transform():
    # float64 and a tiny temperature: the nearest value pairs differ by ~1e-4 relative
    a = torch.rand(3, 200, generator=gen(11), dtype=torch.float64) ** 3
    for v in (topk_uniform(200, 20), exponential(200, 15.0)):
        tr = attacks._Transform("rrs", 200, v, 0.1, 0.01, False, 1e-9, 400)
        hard = rank_transform(a, torch.as_tensor(v, dtype=a.dtype))
        assert torch.allclose(tr.soft(a), hard, atol=1e-9)
        # with few levels the compressed vector still sums to v_1 at the top
        tr16 = attacks._Transform("rrs", 200, v, 0.1, 0.01, False, 0.2, 16)
        assert float(tr16.weights.sum()) == pytest.approx(v[0], rel=1e-9)
    from rrs.smoothing import sparsify
    tr = attacks._Transform("sparsified", 200, None, 0.1, 0.01, False, 1e-9, 16)
    assert torch.allclose(tr.soft(a), sparsify(a, 0.1, 0.01), atol=1e-9)


# ------------------------------------------------------------------------- objectives

def test_each_objective_improves_its_real_value(net, img):
    rows, cols = 8, 8
    target = torch.zeros(rows, cols)
    target[:3, :3] = 1.0
    for objective in ("topk", "mass_center", "targeted"):
        r = attack(net, img, "vanilla", objective=objective, steps=8, epsilon=16 / 255,
                   target_map=target if objective == "targeted" else None, generator=gen(0))
        assert r.adv_objective < r.clean_objective - 1e-3, objective
        if objective == "targeted":
            inside = lambda m: float(m[:3, :3].sum() / m.sum())  # noqa: E731
            assert inside(r.attacked_map) > inside(r.clean_map)
        if objective == "mass_center":
            assert r.clean_objective == 0.0 and r.adv_objective < 0  # −displacement in cells


# -------------------------------------------------------------------- the label rule

class Boundary(nn.Module):
    """Class 0 while ‖x − x0‖∞ < 3/255, class 1 beyond; a quadratic term gives the
    gradient map curvature so the attack has something to follow."""

    def __init__(self, x0):
        super().__init__()
        self.register_buffer("x0", x0.clone())
        self.register_buffer("w", torch.rand(x0.shape, generator=gen(12)))

    def forward(self, x):
        q = (self.w * x * x).flatten(1).sum(1)
        dist = (x - self.x0).abs().flatten(1).amax(1)
        return torch.stack([1.0 + 0.01 * q - dist / (3 / 255), 0.01 * q], 1)


@pytest.mark.parametrize("label_margin,label_weight", [(1.0, 1.0), (1e-3, 1.0), (1.0, 0.0)])
def test_steps_that_flip_the_label_are_shortened_or_rejected(label_margin, label_weight):
    # (1e-3, 1): the margin term only starts after a rejection; (1, 0): halving alone
    x0 = torch.rand(3, 8, 8, generator=gen(13))
    model = Boundary(x0).eval()
    r = attack(model, x0, "vanilla", epsilon=8 / 255, steps=10, generator=gen(0),
               label_margin=label_margin, label_weight=label_weight)
    assert r.label_preserved and r.adv_label == 0
    assert 0 < r.linf < 3 / 255
    assert r.shortened_steps + r.rejected_steps > 0      # the constraint was active
    assert r.accepted_steps > 0
    # without enforcement the same attack crosses the boundary
    free = attack(model, x0, "vanilla", epsilon=8 / 255, steps=10, keep_label=False, generator=gen(0))
    assert free.linf > 3 / 255 and not free.label_preserved


class Fragile(nn.Module):
    """Class 0 only within ~1e-4 of x0: every real step changes the label."""

    def __init__(self, x0):
        super().__init__()
        self.register_buffer("x0", x0.clone())

    def forward(self, x):
        d = ((x - self.x0) ** 2).flatten(1).sum(1)
        s = (x * x).flatten(1).sum(1)
        return torch.stack([1.0 + 0.01 * s - 1e8 * d, 0.5 + 0.01 * s], 1)


def test_no_label_preserving_step_is_reported_clearly():
    x0 = torch.rand(3, 8, 8, generator=gen(14))
    r = attack(Fragile(x0).eval(), x0, "vanilla", steps=3, generator=gen(0))
    assert not r.label_preserved and r.adv_label != r.clean_label
    assert r.accepted_steps == 0 and r.rejected_steps == 3
    assert "label" in r.message


def test_work_size_and_eval_every_options(net):
    x = torch.rand(3, 32, 32, generator=gen(15))
    r = attack(net, x, "vanilla", steps=4, work_size=16, generator=gen(0))
    assert r.clean_map.shape == (32, 32)           # measured at full resolution
    assert r.adv_objective < r.clean_objective and r.label_preserved
    r = attack(net, x, "rrs", steps=2, samples=4, eot_samples=2, work_size=16,
               scoring=topk_uniform(32 * 32, 51), generator=gen(0))  # vector for the full grid
    assert r.clean_map.shape == (32, 32) and r.accepted_steps == 2
    assert float(attacks._resample_scoring(topk_uniform(1024, 51), 256).max()) == pytest.approx(1 / 13)
    r = attack(net, x, "smoothgrad", steps=4, samples=4, eot_samples=2, eval_every=1, generator=gen(0))
    assert r.accepted_steps == 4 and r.label_preserved
    table = dict(r.rows())
    assert table["method"] == "smoothgrad" and table["topk_intersection"] == r.topk_intersection


# --------------------------------------------------------------------------- floor

def test_no_attack_floor(net, img):
    raw = no_attack_floor(net, img, "vanilla")
    assert raw.topk_intersection == 1.0 and raw.spearman == pytest.approx(1.0)
    fl = no_attack_floor(net, img, "rrs", samples=4, seeds=(0, 1), scoring=topk_uniform(64, 6), k=6)
    a = smooth(net, img, method="rrs", samples=4, scoring=topk_uniform(64, 6), generator=gen(0)).map[0]
    b = smooth(net, img, method="rrs", samples=4, scoring=topk_uniform(64, 6), generator=gen(1)).map[0]
    from rrs.metrics import topk_intersection
    assert fl.topk_intersection == topk_intersection(a, b, 6) and fl.k == 6
    assert torch.equal(fl.map_a, a) and torch.equal(fl.map_b, b)
    with pytest.raises(ValueError, match="seeds"):
        no_attack_floor(net, img, "rrs", seeds=(3, 3))


# ------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("kwargs,match", [
    (dict(method="lime"), "method"),
    (dict(objective="fool"), "objective"),
    (dict(norm="l3"), "norm"),
    (dict(epsilon=0.0), "epsilon"),
    (dict(epsilon=float("nan")), "epsilon"),
    (dict(steps=0), "steps"),
    (dict(step_size=-1.0), "step_size"),
    (dict(eot_samples=0), "eot_samples"),
    (dict(k=64), "k must be"),
    (dict(objective="targeted"), "target_map"),
    (dict(objective="targeted", target_map=torch.ones(4, 4)), "target_map"),
    (dict(objective="targeted", target_map=torch.zeros(8, 8)), "target_map"),
    (dict(base="saliency", method="rrs"), "base"),
    (dict(surrogate_beta=-1.0), "surrogate_beta"),
    (dict(noise=0.1, method="rrs"), "noise"),
])
def test_bad_arguments_give_clear_value_errors(net, img, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attack(net, img, **{"steps": 1, **kwargs})


def test_bad_images_give_clear_value_errors(net, img):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack(net, img * 3, steps=1)
    with pytest.raises(ValueError, match="one image"):
        attack(net, torch.stack([img, img]), steps=1)
    with pytest.raises(ValueError, match="non-finite"):
        attack(net, img.masked_fill(img > 0.5, float("nan")), steps=1)
    with pytest.raises(ValueError, match="tensor"):
        attack(net, img.numpy(), steps=1)


# ------------------------------------------------- certified claims survive attacks

def test_certified_cells_survive_the_strongest_attack_within_the_radius():
    """A finite-sample per-cell certificate (Gaussian noise, ℓ2) from rrs.certify is not
    broken by the strongest attack here, run inside the certified radius against RRS.

    Monte Carlo error: maps are estimated with T = 4000 samples. With top-k' uniform
    scoring every per-sample value is 0 or v_1, so each cell's estimate has standard
    deviation ≤ v_1/(2√T), and a difference of two cells ≤ v_1/√T. A certified cell i
    counts as pushed out only if at least k other cells exceed it by more than
    tol = 4.5·v_1/√T (a 4.5-sigma margin: a false alarm from sampling alone has probability
    < 1e-5 per comparison). The same check does flag the attack at a radius far beyond the
    certificate, so it can fail.
    """
    sigma, k, t = 0.25, 6, 4000
    model = TinyConvNet(channels=1, classes=3, width=6, seed=0).eval()
    x = torch.rand(1, 8, 8, generator=gen(1))
    v = topk_uniform(64, 6)
    y = int(model(x[None]).argmax())
    clean = smooth(model, x, target=y, method="rrs", noise=Gaussian(sigma), samples=t,
                   batch_size=t, scoring=v, generator=gen(0))
    stats = clean.stats(0)
    lower, upper = probability_bounds(stats, 1e-3)
    selected = topk_indices(clean.map[0], k)
    cert = cell_radii_from_bounds(lower, upper, selected, k, Gaussian(sigma), norm=2)
    radii = np.sort(cert.radii[selected])[::-1]
    radius = 0.95 * radii[1]
    certified = selected[cert.radii[selected] > radius]
    assert radius > 0.01 and certified.size >= 2
    tol = 4.5 * v[0] / math.sqrt(t)

    def pushed_out(m):
        m = m.reshape(-1).numpy()
        return [int(np.sum(np.delete(m, i) > m[i] + tol)) >= k for i in certified]

    common = dict(objective="topk", norm="l2", k=k, noise=Gaussian(sigma), samples=t,
                  batch_size=t, scoring=v, keep_label=False, eot_samples=32, steps=20,
                  restarts=2, random_start=True, generator=gen(0), target=y)
    r = attack(model, x, "rrs", epsilon=radius, **common)
    assert r.l2 <= radius * (1 + 1e-5)
    assert r.adv_objective < r.clean_objective      # the attack did move the map
    assert not any(pushed_out(r.attacked_map))
    # per certified cell: pull all mass away from that cell
    for i in certified:
        away = torch.ones(8, 8)
        away.view(-1)[i] = 0.0
        r = attack(model, x, "rrs", epsilon=radius, target_map=away,
                   **{**common, "objective": "targeted", "restarts": 1})
        assert not any(pushed_out(r.attacked_map))
    # far outside the certificate the same attack and check do find a violation
    big = attack(model, x, "rrs", epsilon=40 * radius, **{**common, "restarts": 1})
    assert all(pushed_out(big.attacked_map))


# ---------------------------------------------------------------------- real model

@pytest.fixture(scope="module")
def default_model():
    from rrs.models import load_default
    return load_default()


@pytest.fixture(scope="module")
def coffee(default_model):
    from rrs.images import load_sample
    return load_sample("coffee").to_tensor(default_model.input_size)


@pytest.mark.slow
def test_topk_attack_on_default_model_moves_vanilla_map_and_keeps_label(default_model, coffee):
    r = attack(default_model, coffee, "vanilla", objective="topk", norm="linf", epsilon=8 / 255,
               steps=10, generator=gen(0))
    assert r.clean_class_name in ("espresso", "cup")
    assert r.label_preserved and r.adv_label == r.clean_label
    assert r.topk_intersection < 0.5
    assert r.linf <= 8 / 255 + 1e-6 and 0 <= float(r.x_adv.min()) and float(r.x_adv.max()) <= 1
    assert r.adv_objective < r.clean_objective


@pytest.mark.slow
def test_rrs_attack_on_default_model_runs_with_eot(default_model, coffee):
    sur = surrogate_model(default_model)
    assert sur.folded > 0 and not any(isinstance(m, nn.ReLU6) for m in sur.modules())
    with torch.no_grad():
        assert int(sur(coffee[None]).argmax()) == int(default_model(coffee[None]).argmax())
    r = attack(default_model, coffee, "rrs", steps=2, eot_samples=2, samples=4, epsilon=4 / 255,
               cell=16, generator=gen(0))
    assert r.clean_map.shape == (14, 14) and r.label_preserved
    assert r.attacked_map.sum().item() == pytest.approx(1.0, abs=1e-4)
