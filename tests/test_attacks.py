"""Interpretation attacks (rrs.attacks): budgets, labels, reproducibility, the surrogate's
second derivatives, every method, the seeds of the reported maps and the floor, and that
certified claims survive the strongest attack."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import TinyConvNet
from rrs.attacks import AttackResult, attack, smooth_clamp, surrogate_model
from rrs.attacks import pgd
from rrs.certify import cell_radii_from_bounds, probability_bounds
from rrs.floor import no_attack_floor
from rrs.methods import METHODS, RankScore, rank_transform, sparsify
from rrs.metrics import tie_aware_intersection, topk_indices
from rrs.models import Classifier
from rrs.noise import Gaussian
from rrs.scoring import exponential, topk_uniform
from rrs.settings import AttackSettings, MapSettings, Norm
from rrs.smoothing import interpretation_map, smooth


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


pytestmark = pytest.mark.usefixtures("one_thread")     # conftest: one torch thread per module


def maps(method="vanilla", **kw):
    return MapSettings(method=method, **kw)


def opts(**kw):
    return AttackSettings(**kw)


# ------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_never_exceeds_budget_and_stays_in_unit_box(norm):
    g = gen(3)
    d_norm = Norm.parse(norm)
    for trial in range(300):
        eps = float(torch.rand(1, generator=g)) * (0.5 if norm == "linf" else 4.0) + 1e-4
        x0 = torch.rand(1, 3, 6, 6, generator=g)
        if trial % 3 == 0:
            x0 = (x0 > 0.5).float()  # pixels on the box faces: clipping binds
        far = x0 + torch.randn(1, 3, 6, 6, generator=g) * float(torch.rand(1, generator=g)) * 3
        for x in (pgd.project(x0, far, d_norm, eps), pgd.random_start(x0, d_norm, eps, g)):
            d = (x - x0).flatten()
            size = d.abs().max() if norm == "linf" else d.norm()
            assert size <= eps * (1 + 1e-5) + 1e-7
            assert x.min() >= 0 and x.max() <= 1
    # projection is the identity inside the feasible set
    x0 = torch.full((1, 3, 4, 4), 0.5)
    inside = x0 + 0.001
    assert torch.equal(pgd.project(x0, inside, d_norm, 0.1), inside)
    # unit steps have unit norm (ℓ2) or are signs (ℓ∞)
    step = pgd.unit_step(torch.randn(1, 3, 4, 4, generator=g), d_norm)
    if d_norm.is_inf:
        assert set(step.unique().tolist()) <= {-1.0, 0.0, 1.0}
    else:
        assert float(step.norm()) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.3)])
def test_attack_result_within_budget_every_method(net, img, norm, eps):
    for method in METHODS:
        settings = maps(method, samples=4, ig_steps=4)
        a = opts(norm=norm, epsilon=eps, steps=3, step_size=eps, eot=2, random_start=True)
        r = attack(net, img, settings, a)
        assert isinstance(r, AttackResult)
        assert r.map_settings == settings and r.attack_settings == a and r.method == method
        d = (r.x_adv - img).flatten()
        assert (r.linf if norm == "linf" else r.l2) <= eps * (1 + 1e-5)
        assert r.linf == pytest.approx(float(d.abs().max()), abs=1e-6)
        assert r.l2 == pytest.approx(float(d.norm()), rel=1e-5)
        assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
        assert r.label_preserved and r.adv_label == r.clean_label and r.message == ""
        assert r.clean_map.shape == r.attacked_map.shape == r.attacked_map_same_noise.shape
        assert r.clean_map.dim() == 2
        assert 0 <= r.topk_intersection <= 1 and -1 <= r.spearman <= 1 and -1 <= r.kendall <= 1
        assert 0 <= r.floor.topk_intersection <= 1
        assert len(r.history) == 3 and all(math.isfinite(h) for h in r.history)
        assert r.accepted_steps + r.rejected_steps == 3


# ------------------------------------------------------------------- reproducibility

def test_attack_is_reproducible_with_a_fixed_seed(img, device):
    net = TinyConvNet(channels=3, classes=3, width=6, seed=0).eval().to(device)
    img = img.to(device)
    settings = maps("rrs", samples=8, scoring="topk", scoring_param=6)
    a = attack(net, img, settings, opts(steps=4, eot=4, random_start=True, seed=5))
    b = attack(net, img, settings, opts(steps=4, eot=4, random_start=True, seed=5))
    c = attack(net, img, settings, opts(steps=4, eot=4, random_start=True, seed=6))
    assert a.x_adv.device.type == "cpu"
    assert torch.equal(a.x_adv, b.x_adv)
    assert a.history == b.history
    assert torch.equal(a.attacked_map, b.attacked_map)
    assert not torch.equal(a.x_adv, c.x_adv)


def test_progress_callback_counts_every_step(net, img):
    calls = []
    attack(net, img, maps("vanilla"), opts(steps=3, restarts=2), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]


# --------------------------------------------------- the reported maps and the floor

@pytest.mark.parametrize("method", ["rrs", "smoothgrad", "vanilla"])
def test_reported_maps_use_seeds_s_and_s_plus_1_and_the_floor_is_rrs_floor(net, img, method):
    """The attacker sees the map at seed s; the attacked map is measured at s + 1, like the
    floor's second run, and at s; the floor is exactly rrs.floor.no_attack_floor."""
    settings = maps(method, samples=4, k=6, seed=3)
    r = attack(net, img, settings, opts(steps=2, eot=2))
    assert r.label_preserved
    x_adv = r.x_adv
    assert torch.equal(r.clean_map, interpretation_map(net, img, settings))
    assert torch.equal(r.attacked_map, interpretation_map(net, x_adv, settings.replace(seed=4)))
    assert torch.equal(r.attacked_map_same_noise, interpretation_map(net, x_adv, settings))
    floor = no_attack_floor(net, img, settings)
    assert r.floor.seeds == floor.seeds == (3, 4)
    assert r.floor.topk_intersection == floor.topk_intersection and r.floor.k == floor.k == r.k == 6
    assert r.floor.spearman == floor.spearman and r.floor.kendall == floor.kendall
    assert torch.equal(r.floor.map_a, floor.map_a) and torch.equal(r.floor.map_b, floor.map_b)
    assert r.topk_intersection == tie_aware_intersection(r.clean_map, r.attacked_map, 6)
    table = dict(r.rows())
    assert table["no_attack_floor"] == floor.topk_intersection and table["norm"] == "linf"
    if method == "vanilla":   # deterministic: both seeds give the same map, the floor is 1
        assert torch.equal(r.attacked_map, r.attacked_map_same_noise) and floor.topk_intersection == 1.0
    else:                     # the two seeds do differ
        assert not torch.equal(r.attacked_map, r.attacked_map_same_noise)


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
    r = attack(model, small, maps("vanilla"), opts(steps=2))
    assert r.label_preserved and r.linf <= 8 / 255 + 1e-6
    assert r.adv_objective < r.clean_objective
    r = attack(model, x, maps("gradcam"), opts(steps=1))
    assert r.clean_map.shape == (2, 2) and r.k == 1 and r.label_preserved
    with pytest.raises(ValueError, match="only 1 cell"):
        attack(model, small, maps("gradcam"), opts(steps=1))


# ---------------------------------------------------------------- what gets batched

def test_eot_samples_go_through_the_surrogate_in_one_batch(net, img):
    sur = surrogate_model(net, 10.0)
    batches = []
    handle = sur.model.register_forward_hook(lambda m, i, o: batches.append(i[0].shape[0]))
    try:
        attack(net, img, maps("rrs", samples=4), opts(steps=3, eot=8))
    finally:
        handle.remove()
    assert batches == [8, 8, 8]


def test_soft_transforms_the_attack_uses_tend_to_the_real_ones():
    # float64 and a tiny temperature: the nearest value pairs differ by ~1e-4 relative
    a = torch.rand(3, 200, generator=gen(11), dtype=torch.float64) ** 3
    for v in (topk_uniform(200, 20), exponential(200, 15.0)):
        hard = rank_transform(a, torch.as_tensor(v, dtype=a.dtype))
        assert torch.allclose(RankScore(v, max_levels=400).soft(a, 1e-9), hard, atol=1e-9)
        # with few levels the compressed vector still sums to v_1 at the top
        assert float(RankScore(v, max_levels=16).weights.sum()) == pytest.approx(v[0], rel=1e-9)
    sp = MapSettings(method="sparsified", tau=0.1, phi=0.01).transform(200)
    assert torch.allclose(sp.soft(a, 1e-9), sparsify(a, 0.1, 0.01), atol=1e-9)
    # what the attack builds: the settings' transform, with rank_levels
    tr = pgd._work_transform(maps("rrs", scoring="exponential", scoring_param=15.0), 200, 200, 400)
    assert torch.allclose(tr.soft(a, 1e-9), rank_transform(a, torch.as_tensor(exponential(200, 15.0))), atol=1e-9)
    # on a lower work grid a count of the full grid's cells keeps its fraction: 51 of 1024 → 13 of 256
    tr = pgd._work_transform(maps("rrs", scoring="topk", scoring_param=51), 1024, 256, 16)
    assert float(tr.v.max()) == pytest.approx(1 / 13) and tr.v.size == 256
    tr = pgd._work_transform(maps("rrs", scoring="topk", scoring_param=0.05), 1024, 256, 16)
    assert float(tr.v.max()) == pytest.approx(1 / 13)


# ------------------------------------------------------------------------- objectives

def test_each_objective_improves_its_real_value(net, img):
    rows, cols = 8, 8
    target = torch.zeros(rows, cols)
    target[:3, :3] = 1.0
    for objective in ("topk", "mass_center", "targeted"):
        r = attack(net, img, maps("vanilla"), opts(objective=objective, steps=8, epsilon=16 / 255),
                   target_map=target if objective == "targeted" else None)
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
    # (1e-3, 1): the margin term only starts after a rejection (forced margin gradient);
    # (1, 0): halving alone
    x0 = torch.rand(3, 8, 8, generator=gen(13))
    model = Boundary(x0).eval()
    r = attack(model, x0, maps("vanilla"), opts(epsilon=8 / 255, steps=10, label_margin=label_margin,
                                                 label_weight=label_weight))
    assert r.label_preserved and r.adv_label == 0
    assert 0 < r.linf < 3 / 255
    assert r.shortened_steps + r.rejected_steps > 0      # the constraint was active
    assert r.accepted_steps > 0
    # without enforcement the same attack crosses the boundary
    free = attack(model, x0, maps("vanilla"), opts(epsilon=8 / 255, steps=10, keep_label=False))
    assert free.linf > 3 / 255 and not free.label_preserved
    assert "keep_label=False" in free.message


def test_a_forced_margin_gradient_follows_a_rejected_step():
    """With a tiny label_margin no margin gradient is computed until a step is rejected;
    then the check is redone with the margin gradient, and the next step uses it."""
    x0 = torch.rand(3, 8, 8, generator=gen(13))
    model = Boundary(x0).eval()
    st = pgd._Attack(model, x0[None], torch.tensor([0]), maps("vanilla"),
                     opts(epsilon=8 / 255, label_margin=1e-3), None, 16)
    xc = pgd.project(x0[None], x0[None] + 1 / 255, Norm.parse("linf"), 8 / 255)  # off the kink of |x − x0|
    chk = st.check(xc, need_map=True)
    assert chk.margin_grad is None and chk.label == 0
    forced = st.check(xc, need_map=True, force_margin=True)
    assert forced.margin_grad is not None and float(forced.margin_grad.abs().max()) > 0
    assert torch.equal(forced.cell_map, chk.cell_map)
    g = torch.randn(1, 3, 8, 8, generator=gen(2))
    assert torch.equal(st.direction(g, chk, boost=2.0), g / g.norm())
    assert not torch.allclose(st.direction(g, forced, boost=2.0), g / g.norm())


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
    r = attack(Fragile(x0).eval(), x0, maps("vanilla"), opts(steps=3))
    assert not r.label_preserved and r.adv_label != r.clean_label
    assert r.accepted_steps == 0 and r.rejected_steps == 3
    assert "label" in r.message


def test_work_size_and_eval_every_options(net):
    x = torch.rand(3, 32, 32, generator=gen(15))
    r = attack(net, x, maps("vanilla"), opts(steps=4, work_size=16))
    assert r.clean_map.shape == (32, 32)           # measured at full resolution
    assert r.adv_objective < r.clean_objective and r.label_preserved
    sur = surrogate_model(net, 10.0)
    sizes = []
    handle = sur.model.register_forward_hook(lambda m, i, o: sizes.append(tuple(i[0].shape[-2:])))
    try:   # a count of the full grid's cells (51 of 1024) for the scoring
        r = attack(net, x, maps("rrs", samples=4, scoring="topk", scoring_param=51), opts(steps=2, eot=2, work_size=16))
    finally:
        handle.remove()
    assert sizes == [(16, 16), (16, 16)]
    assert r.clean_map.shape == (32, 32) and r.accepted_steps == 2
    r = attack(net, x, maps("smoothgrad", samples=4), opts(steps=4, eot=2, eval_every=1))
    assert r.accepted_steps == 4 and r.label_preserved
    table = dict(r.rows())
    assert table["method"] == "smoothgrad" and table["topk_intersection"] == r.topk_intersection


# ------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("make,match", [
    (lambda: (maps("lime"), opts()), "method"),
    (lambda: (maps(), opts(objective="fool")), "objective"),
    (lambda: (maps(), opts(norm="l3")), "ℓ2 and ℓ∞"),
    (lambda: (maps(), opts(norm="l1")), "ℓ2 and ℓ∞"),
    (lambda: (maps(), opts(epsilon=0.0)), "epsilon"),
    (lambda: (maps(), opts(epsilon=float("nan"))), "epsilon"),
    (lambda: (maps(), opts(epsilon=2.0)), "covers all"),
    (lambda: (maps(), opts(steps=0)), "steps"),
    (lambda: (maps(), opts(step_size=-1.0)), "step_size"),
    (lambda: (maps(), opts(eot=0)), "eot"),
    (lambda: (maps(k=64), opts()), "k = 64 is out of range"),
    (lambda: (maps("rrs", base="saliency"), opts()), "base"),
    (lambda: (maps(), opts(surrogate_beta=-1.0)), "surrogate_beta"),
    (lambda: (maps("rrs", noise="uniform"), opts()), "noise"),
    (lambda: ({"method": "rrs"}, opts()), "settings must be rrs.MapSettings"),
    (lambda: (maps(), {"steps": 1}), "attack must be rrs.AttackSettings"),
    (lambda: (maps("rrs", scoring="custom", scoring_values=(1.0,) + (0.0,) * 63), opts(work_size=8)),
     "work_size needs"),
])
def test_bad_settings_give_clear_value_errors(net, img, make, match):
    with pytest.raises(ValueError, match=match):
        attack(net, img, *make())


@pytest.mark.parametrize("kwargs,match", [
    (dict(), "target_map"),
    (dict(target_map=torch.ones(4, 4)), "target_map"),
    (dict(target_map=torch.zeros(8, 8)), "target_map"),
    (dict(target_map=torch.ones(8)), "target_map"),
    (dict(target_map=torch.ones(8, 8), batch_size=0), "batch_size"),
])
def test_bad_call_arguments_give_clear_value_errors(net, img, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attack(net, img, maps(), opts(objective="targeted", steps=1), **kwargs)


def test_bad_images_give_clear_value_errors(net, img):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack(net, img * 3, maps(), opts(steps=1))
    with pytest.raises(ValueError, match="one image"):
        attack(net, torch.stack([img, img]), maps(), opts(steps=1))
    with pytest.raises(ValueError, match="non-finite"):
        attack(net, img.masked_fill(img > 0.5, float("nan")), maps(), opts(steps=1))
    with pytest.raises(ValueError, match="tensor"):
        attack(net, img.numpy(), maps(), opts(steps=1))


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
    settings = maps("rrs", noise="gaussian", sigma=sigma, samples=t, k=k, scoring="topk", scoring_param=6)
    y = int(model(x[None]).argmax())
    clean = smooth(model, x, settings, target=y, batch_size=t)
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

    strong = opts(objective="topk", norm="l2", epsilon=radius, keep_label=False, eot=32, steps=20,
                  restarts=2, random_start=True)
    r = attack(model, x, settings, strong, target=y, batch_size=t)
    assert torch.equal(r.clean_map, clean.map[0])   # the attacker saw the certified map
    assert r.l2 <= radius * (1 + 1e-5)
    assert r.adv_objective < r.clean_objective      # the attack did move the map
    assert not any(pushed_out(r.attacked_map)) and not any(pushed_out(r.attacked_map_same_noise))
    # per certified cell: pull all mass away from that cell
    for i in certified:
        away = torch.ones(8, 8)
        away.view(-1)[i] = 0.0
        r = attack(model, x, settings, strong.replace(objective="targeted", restarts=1), target=y,
                   target_map=away, batch_size=t)
        assert not any(pushed_out(r.attacked_map))
    # far outside the certificate the same attack and check do find a violation
    big = attack(model, x, settings, strong.replace(epsilon=40 * radius, restarts=1), target=y, batch_size=t)
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
    r = attack(default_model, coffee, maps("vanilla"), opts(objective="topk", norm="linf", epsilon=8 / 255,
                                                            steps=10))
    assert r.clean_class_name in ("espresso", "cup")
    assert r.label_preserved and r.adv_label == r.clean_label
    assert r.topk_intersection < 0.5 and r.floor.topk_intersection == 1.0
    assert r.linf <= 8 / 255 + 1e-6 and 0 <= float(r.x_adv.min()) and float(r.x_adv.max()) <= 1
    assert r.adv_objective < r.clean_objective


@pytest.mark.slow
def test_rrs_attack_on_default_model_runs_with_eot(default_model, coffee):
    sur = surrogate_model(default_model)
    assert sur.folded > 0 and not any(isinstance(m, nn.ReLU6) for m in sur.modules())
    with torch.no_grad():
        assert int(sur(coffee[None]).argmax()) == int(default_model(coffee[None]).argmax())
    r = attack(default_model, coffee, maps("rrs", samples=4, cell=16), opts(steps=2, eot=2, epsilon=4 / 255))
    assert r.clean_map.shape == (14, 14) and r.label_preserved
    assert r.attacked_map.sum().item() == pytest.approx(1.0, abs=1e-4)
    assert r.floor.seeds == (0, 1) and 0 <= r.floor.topk_intersection <= 1


def test_bf16_attack_takes_its_surrogate_gradient_under_autocast_close_to_fp32(tiny, x32):
    """A smoothed map computed in bf16 (the device's precision) is attacked with bf16 surrogate
    gradients (forward and double backward under autocast, through the frozen-conv function):
    the EOT gradient points where the fp32 one does (same noise), but is not the fp32 one. Raw
    maps' attacks stay fp32."""
    x0 = x32[None]
    with torch.no_grad():
        y = tiny(x0).argmax(1)
    o = opts(objective="topk", norm="linf", epsilon=4 / 255, eot=4, seed=0)

    def grad(settings, seed=0):
        return pgd._Attack(tiny, x0, y, settings, o.replace(seed=seed), None, 16).surrogate_grad(x0)[0]

    def cos(a, b):
        return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))

    for method in ("rrs", "smoothgrad"):
        s = maps(method, sigma=0.15, samples=8, cell=4, k=0.1, seed=0)
        g32, g16 = grad(s), grad(s.replace(precision="bf16"))
        assert g16.dtype == torch.float32 and torch.isfinite(g16).all()
        assert not torch.allclose(g32, g16), method                    # bf16 really was used
        # bf16 moves the EOT gradient less than other EOT noise draws do (the estimate's own spread)
        spread = min(cos(g32, grad(s, seed)) for seed in (1, 2))
        print(f"{method}: cos(fp32, bf16) {cos(g32, g16):.3f}, cos(fp32, other EOT draws) ≥ {spread:.3f}")
        assert cos(g32, g16) > max(spread, 0.5), method
    raw = maps("vanilla", cell=4, k=0.1)
    torch.testing.assert_close(grad(raw.replace(precision="bf16")), grad(raw), rtol=0, atol=0)
