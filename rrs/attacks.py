"""Attacks on interpretation maps: move the map, keep the label (method.md §7).

Ghorbani, Abid, Zou (2019), *Interpretation of Neural Networks is Fragile*: find ``x'`` with
``‖x' − x‖_d ≤ ε`` and ``argmax f(x') = argmax f(x)`` that changes the interpretation map.
Objectives (all written as a loss to *minimise* on the normalised map ``p = m / Σ m``):

* ``"topk"``: ``Σ_{i∈K} p_i``, the mass left on the clean map's top-``k`` cells ``K``;
* ``"mass_center"``: ``−‖c(p) − c(p_clean)‖₂``, moving the map's centre of mass (in cells);
* ``"targeted"`` (Dombrowski et al. 2019): ``n·Σ_i (p_i − t_i)²``, pulling the map toward a
  normalised target map ``t`` (e.g. a region the user draws).

Projected gradient descent with sign steps (ℓ∞) or normalised steps (ℓ2), projection onto the
ball and clipping to ``[0, 1]``. ReLU networks have zero second derivatives almost everywhere,
so the gradient of the map is taken on :func:`surrogate_model`, a copy whose ReLU/ReLU6 are
softplus (Dombrowski et al. 2019); the label check, the choice of the best iterate and the
final measurement use the real model. Every candidate step that flips the real model's label
is shortened (step halving) or rejected, and a margin term keeps the clean class once its
logit margin gets small; the result says clearly when no label-preserving step was found.

Smoothed maps (SmoothGrad, Sparsified SmoothGrad, RRS) are attacked with expectation over
transformation: each step draws fresh noise, and its ``eot_samples`` noisy inputs go through
the surrogate in one batched forward/double-backward pass. RRS's rank re-scaling and
Sparsified SmoothGrad's top-τ mask are step functions; the attack differentiates a smooth
surrogate (a sigmoid of the log cell value around the current rank thresholds) while the
measurement always uses the real :func:`rrs.smoothing.smooth`.
"""
from __future__ import annotations

import copy
import math
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .attributions import ATTRIBUTIONS, find_cam_layer, get_attribution, to_cells
from .metrics import kendall, spearman, topk_indices, topk_intersection
from .noise import Gaussian, Noise
from .checks import positive as _check_positive
from .methods import SMOOTH_METHODS
from .scoring import default_scoring, validate_scoring
from .smoothing import model_device, smooth

__all__ = ["attack", "AttackResult", "no_attack_floor", "NoAttackFloor", "surrogate_model",
           "SurrogateModel", "SmoothClamp", "smooth_clamp", "OBJECTIVES", "NORMS",
           "ATTACK_METHODS", "default_k"]

OBJECTIVES = ("topk", "mass_center", "targeted")
NORMS = ("linf", "l2")
RAW_METHODS = tuple(ATTRIBUTIONS)
ATTACK_METHODS = RAW_METHODS + tuple(SMOOTH_METHODS)


# =========================================================================== surrogate model
#
# Softplus with the same kinks as ReLU/ReLU6/Hardtanh: f(x) = lo + sp(x − lo) − sp(x − hi),
# sp(z) = log(1 + e^{βz})/β. Written as custom autograd functions with analytic first and
# second derivatives because aten's softplus is slow on CPU (log1p is not vectorised here:
# ~15× a clamp), and an attack step runs it forward, backward and double-backward.

def _clamp_derivatives(x, beta, lo, hi, second: bool):
    """``f'(x)`` and, if asked, ``f''(x)`` of the smooth clamp, with few allocations.

    ``f' = σ(β(x − lo)) − σ(β(x − hi))`` and ``f''/β = s1(1 − s1) − s2(1 − s2)
    = (s1 − s2)(1 − s1 − s2)``. In-place arithmetic keeps freshly allocated activation-sized
    tensors few: at EOT batch sizes those allocations (page faults) cost as much as the
    arithmetic.
    """
    t = torch.mul(x, beta)
    s1 = torch.sigmoid(t) if lo == 0 else torch.sub(t, beta * lo).sigmoid_()
    if math.isinf(hi):
        dd = torch.mul(s1, s1).sub_(s1).mul_(-beta) if second else None
        return s1, dd
    s2 = t.sub_(beta * hi).sigmoid_()
    d = torch.sub(s1, s2)
    dd = s1.add_(s2).sub_(1.0).mul_(d).mul_(-beta) if second else None
    return d, dd


class _SmoothClampBackward(torch.autograd.Function):
    """``grad ↦ grad·f'(x)`` as one differentiable node (used when the graph is kept).

    Its backward gives ``gg·f'(x)`` for ``grad`` and ``gg·grad·f''(x)`` for ``x``: one node
    and three multiplications instead of a multiplication node plus a derivative node.
    """

    @staticmethod
    def forward(ctx, grad, x, beta, lo, hi):
        d, dd = _clamp_derivatives(x, beta, lo, hi, second=ctx.needs_input_grad[1])
        ctx.save_for_backward(grad, d, dd)
        return grad * d

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gg):
        grad, d, dd = ctx.saved_tensors
        g_grad = gg * d if ctx.needs_input_grad[0] else None
        g_x = torch.mul(gg, grad).mul_(dd) if ctx.needs_input_grad[1] else None
        return g_grad, g_x, None, None, None


class _SmoothClampFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, lo, hi):
        ctx.save_for_backward(x)
        ctx.conf = (beta, lo, hi)
        # sp(z) = relu(z) − log σ(β|z|)/β (σ ∈ [½, 1]: no overflow, no log1p)
        if math.isinf(hi):
            corr = (torch.abs(x) if lo == 0 else torch.sub(x, lo).abs_()).mul_(beta).sigmoid_()
            return torch.clamp(x, min=lo).sub_(corr.log_().div_(beta))
        up = torch.sub(x, hi).abs_().mul_(beta).sigmoid_()
        down = (torch.abs(x) if lo == 0 else torch.sub(x, lo).abs_()).mul_(beta).sigmoid_()
        up.div_(down).log_().div_(beta)
        return torch.clamp(x, lo, hi, out=down).add_(up)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        beta, lo, hi = ctx.conf
        if torch.is_grad_enabled():  # create_graph=True: second derivatives will be asked
            return _SmoothClampBackward.apply(grad, x, beta, lo, hi), None, None, None
        return grad * _clamp_derivatives(x, beta, lo, hi, second=False)[0], None, None, None


def smooth_clamp(x: torch.Tensor, beta: float, lo: float = 0.0, hi: float = math.inf) -> torch.Tensor:
    """Softplus-smoothed ``clamp(x, lo, hi)``: ``lo + sp_β(x − lo) − sp_β(x − hi)``.

    ``hi = inf`` gives softplus (smooth ReLU); ``(0, 6)`` a smooth ReLU6. Twice differentiable
    with analytic derivatives; tends to the clamp as ``β → ∞``.
    """
    return _SmoothClampFn.apply(x, float(beta), float(lo), float(hi))


class SmoothClamp(nn.Module):
    """Module form of :func:`smooth_clamp` (replaces ReLU, ReLU6 and Hardtanh)."""

    def __init__(self, beta: float, lo: float = 0.0, hi: float = math.inf):
        super().__init__()
        self.beta, self.lo, self.hi = float(beta), float(lo), float(hi)

    def forward(self, x):
        return smooth_clamp(x, self.beta, self.lo, self.hi)

    def extra_repr(self):
        return f"beta={self.beta:g}, lo={self.lo:g}, hi={self.hi:g}"


class _SmoothHardsigmoid(nn.Module):
    def __init__(self, beta):
        super().__init__()
        self.beta = float(beta)

    def forward(self, x):
        return smooth_clamp(x + 3.0, self.beta, 0.0, 6.0) / 6.0


class _SmoothHardswish(_SmoothHardsigmoid):
    def forward(self, x):
        return x * super().forward(x)


class _SmoothLeakyReLU(nn.Module):
    def __init__(self, beta, slope):
        super().__init__()
        self.beta, self.slope = float(beta), float(slope)

    def forward(self, x):
        return self.slope * x + (1.0 - self.slope) * smooth_clamp(x, self.beta)


def _smooth_module(module: nn.Module, beta: float):
    if isinstance(module, nn.ReLU):
        return SmoothClamp(beta)
    if isinstance(module, nn.Hardtanh):  # includes ReLU6
        return SmoothClamp(beta, module.min_val, module.max_val)
    if isinstance(module, nn.Hardsigmoid):
        return _SmoothHardsigmoid(beta)
    if isinstance(module, nn.Hardswish):
        return _SmoothHardswish(beta)
    if isinstance(module, nn.LeakyReLU):
        return _SmoothLeakyReLU(beta, module.negative_slope)
    return None


class _ConvInputGrad(torch.autograd.Function):
    """``grad_output ↦ grad_input`` of a frozen-weight conv; its own backward is the conv."""

    @staticmethod
    def forward(ctx, grad_out, x, weight, stride, padding, dilation, groups):
        ctx.save_for_backward(weight)
        ctx.conf = (stride, padding, dilation, groups)
        return torch.ops.aten.convolution_backward(
            grad_out, x, weight, None, stride, padding, dilation, False, [0, 0], groups,
            [True, False, False])[0]

    @staticmethod
    def backward(ctx, gg):
        (weight,) = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        return F.conv2d(gg, weight, None, stride, padding, dilation, groups), None, None, None, None, None, None


class _FrozenConv2d(torch.autograd.Function):
    """Conv2d with frozen weights whose double backward avoids aten's per-group loop.

    aten's ``_convolution_double_backward`` splits grouped (depthwise) convolutions into one
    convolution per group — thousands of calls per EfficientNet pass, ~55% of an attack step.
    Here the input gradient is a linear map of ``grad_output`` whose adjoint is the plain
    grouped convolution, so the second backward stays one call per layer.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, groups)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        gi = _ConvInputGrad.apply(grad_out, x.detach(), weight, stride, padding, dilation, groups)
        return gi, None, None, None, None, None, None


def _pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(i) for i in v]


_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
_CLAMP_FUNCS = {F.relu6: (0.0, 6.0)}
_HARDTANH_FUNCS = {F.hardtanh, F.hardtanh_}
_ALWAYS_INPLACE = {torch.relu_, torch.Tensor.relu_, F.hardtanh_}
_ACTIVATIONS = _RELU_FUNCS | set(_CLAMP_FUNCS) | _HARDTANH_FUNCS | {F.hardsigmoid, F.hardswish}
#: position of the ``inplace`` argument of the functional activations
_INPLACE_ARG = {F.relu: 1, F.relu6: 1, F.hardtanh: 3, F.hardsigmoid: 1, F.hardswish: 1}


def _is_inplace(func, args, kwargs) -> bool:
    if func in _ALWAYS_INPLACE:
        return True
    pos = _INPLACE_ARG.get(func)
    if pos is None:
        return False
    return bool(kwargs.get("inplace", args[pos] if len(args) > pos else False))


class _SurrogateMode(TorchFunctionMode):
    """Inside the surrogate's forward: functional ReLU-type calls become softplus, and 2-D
    convolutions with frozen weights use :class:`_FrozenConv2d`."""

    def __init__(self, beta: float, fast_conv: bool):
        super().__init__()
        self.beta, self.fast_conv = beta, fast_conv

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.conv2d and self.fast_conv:
            out = self._conv(*args, **kwargs)
            if out is not None:
                return out
            return func(*args, **kwargs)
        out = self._activation(func, args, kwargs)
        if out is None:
            return func(*args, **kwargs)
        if _is_inplace(func, args, kwargs):
            # the smooth function keeps its input for the backward, so compute it on a copy
            # and then write the result where the caller expects it
            return args[0].copy_(out)
        return out

    def _activation(self, func, args, kwargs):
        if func not in _ACTIVATIONS:
            return None
        x = args[0].clone() if _is_inplace(func, args, kwargs) else args[0]
        if func in _RELU_FUNCS:
            return smooth_clamp(x, self.beta)
        if func in _CLAMP_FUNCS:
            lo, hi = _CLAMP_FUNCS[func]
            return smooth_clamp(x, self.beta, lo, hi)
        if func in _HARDTANH_FUNCS:
            lo = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
            hi = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
            return smooth_clamp(x, self.beta, lo, hi)
        if func is F.hardsigmoid:
            return smooth_clamp(x + 3.0, self.beta, 0.0, 6.0) / 6.0
        return x * smooth_clamp(x + 3.0, self.beta, 0.0, 6.0) / 6.0   # hardswish

    @staticmethod
    def _conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if (isinstance(padding, str) or input.dim() != 4 or weight.requires_grad
                or (bias is not None and bias.requires_grad)):
            return None
        return _FrozenConv2d.apply(input, weight, bias, _pair(stride), _pair(padding),
                                   _pair(dilation), int(groups))


class _LeafTracer(torch.fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) or super().is_leaf_module(m, qualname)


def _fold_batchnorm(model: nn.Module, keep: set) -> int:
    """Fold eval-mode BatchNorm2d into the Conv2d feeding it (exactly the same function).

    Pairs are found on a ``torch.fx`` trace: the conv's output must go to that BatchNorm and
    nowhere else, and each module must be used once. Untraceable models are left as they
    are. Saves the BatchNorm's forward, backward and double backward in every attack step.
    """
    try:
        graph = _LeafTracer().trace(model)
    except Exception:  # noqa: BLE001 — tracing is an optimisation; any failure means "skip"
        return 0
    modules = dict(model.named_modules())
    uses: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            uses[node.target] = uses.get(node.target, 0) + 1
    folded = 0
    for node in graph.nodes:
        bn = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(bn, nn.BatchNorm2d) or bn.training or bn.running_mean is None:
            continue
        if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], torch.fx.Node):
            continue
        prev = node.args[0]
        conv = modules.get(prev.target) if prev.op == "call_module" else None
        if (not isinstance(conv, nn.Conv2d) or conv in keep or len(prev.users) != 1
                or uses[prev.target] != 1 or uses[node.target] != 1
                or conv.out_channels != bn.num_features):
            continue
        with torch.no_grad():
            scale = bn.running_var.add(bn.eps).rsqrt()
            if bn.weight is not None:
                scale = scale * bn.weight
            bias = -bn.running_mean * scale
            if bn.bias is not None:
                bias = bias + bn.bias
            if conv.bias is not None:
                bias = bias + conv.bias * scale
            conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
            conv.bias = nn.Parameter(bias, requires_grad=False)
        parent_name, _, child = node.target.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, nn.Identity())
        folded += 1
    return folded


class SurrogateModel(nn.Module):
    """A smooth copy of a classifier for second-order attacks (method.md §7).

    ReLU, ReLU6, Hardtanh, Hardsigmoid, Hardswish and LeakyReLU modules are replaced by
    softplus-smoothed versions with sharpness ``beta``; functional calls (``F.relu``,
    ``torch.relu``, ``Tensor.relu``, ``F.relu6``, ``F.hardtanh`` …) are smoothed while the
    forward runs. Eval-mode BatchNorm is folded into the preceding convolution (the same
    function). Parameters are frozen. Attributes of the wrapped model (``categories``,
    ``input_size`` …) are reachable on the surrogate.
    """

    def __init__(self, model: nn.Module, beta: float = 10.0, fold_bn: bool = True,
                 fast_conv: bool = True):
        super().__init__()
        beta = float(beta)
        if not math.isfinite(beta) or beta <= 0:
            raise ValueError(f"surrogate_beta must be a finite number > 0, got {beta!r}")
        try:
            cam_name = _module_name(model, find_cam_layer(model))
        except ValueError:
            cam_name = None
        inner = copy.deepcopy(model).eval()
        for p in inner.parameters():
            p.requires_grad_(False)
        replaced = 0
        for parent in list(inner.modules()):
            for name, child in list(parent.named_children()):
                new = _smooth_module(child, beta)
                if new is not None:
                    setattr(parent, name, new)
                    replaced += 1
        cam = inner.get_submodule(cam_name) if cam_name is not None else None
        self.folded = _fold_batchnorm(inner, {cam} if cam is not None else set()) if fold_bn else 0
        self.model = inner
        self.beta = beta
        self.fast_conv = bool(fast_conv)
        self.replaced = replaced
        if cam is not None:
            object.__setattr__(self, "_cam", cam)  # not a second registration of the module

    @property
    def cam_layer(self):
        return getattr(self, "_cam", None)

    def forward(self, x):
        with _SurrogateMode(self.beta, self.fast_conv):
            return self.model(x)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("model"), name)


def _module_name(model: nn.Module, target: nn.Module) -> str:
    for name, mod in model.named_modules():
        if mod is target:
            return name
    raise ValueError("Grad-CAM layer is not a submodule of the model")


_SURROGATES: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_SURROGATE_LOCK = threading.Lock()


def surrogate_model(model: nn.Module, beta: float = 10.0, fold_bn: bool = True,
                    fast_conv: bool = True) -> SurrogateModel:
    """A softplus surrogate of ``model`` (see :class:`SurrogateModel`), cached per
    ``(model, beta, options)`` so repeated attacks do not copy the model again.

    Args:
        model: the real classifier (left untouched).
        beta: softplus sharpness β (default 10; larger = closer to ReLU, rougher gradients).
        fold_bn: fold eval-mode BatchNorm2d into the preceding conv (same function, faster).
        fast_conv: route frozen 2-D convolutions through a double-backward-friendly function.
    """
    if isinstance(model, SurrogateModel):
        return model
    key = (float(beta), bool(fold_bn), bool(fast_conv))
    with _SURROGATE_LOCK:
        per_model = _SURROGATES.setdefault(model, {})
        sur = per_model.get(key)
        if sur is None:
            sur = SurrogateModel(model, beta, fold_bn, fast_conv)
            per_model[key] = sur
        return sur


# ============================================================================ results

@dataclass(frozen=True)
class AttackResult:
    """Outcome of one interpretation attack (method.md §7).

    Maps are ``(rows, cols)`` CPU tensors measured on the *real* model; for smoothed methods
    both were computed by :func:`rrs.smoothing.smooth` with ``samples`` draws and the same
    seed (``eval_seed``), so the comparison is fair. ``l2``/``linf`` are perturbation norms in
    pixel units. ``history`` holds the surrogate objective at every step (the quantity
    minimised; for ``mass_center`` the negated displacement in cells), ``clean_objective`` /
    ``adv_objective`` the same objective on the real measured maps. ``label_preserved`` is
    False only when no step kept the label (then ``x_adv`` is the first candidate step, which
    changes the label, and ``message`` says so) or when ``keep_label=False`` was asked.
    ``accepted_steps``/``rejected_steps`` count PGD steps (a step is rejected when even
    ``max_backtracks`` halvings change the label), ``shortened_steps`` the accepted ones that
    needed halving.
    """

    x_adv: torch.Tensor
    clean_map: torch.Tensor
    attacked_map: torch.Tensor
    k: int
    topk_intersection: float
    spearman: float
    kendall: float
    l2: float
    linf: float
    clean_label: int
    adv_label: int
    clean_confidence: float
    adv_confidence: float
    label_preserved: bool
    message: str
    history: tuple
    method: str
    objective: str
    norm: str
    epsilon: float
    steps: int
    elapsed: float
    base: str = "vanilla"
    step_size: float = 0.0
    eot_samples: int = 1
    samples: int = 0
    cell: int = 1
    restarts: int = 1
    accepted_steps: int = 0
    rejected_steps: int = 0
    shortened_steps: int = 0
    clean_objective: float = float("nan")
    adv_objective: float = float("nan")
    clean_class_name: str = ""
    adv_class_name: str = ""
    surrogate_beta: float = 10.0

    def rows(self) -> list[tuple[str, object]]:
        """(name, value) pairs for a results table or CSV."""
        keys = ("method", "base", "objective", "norm", "epsilon", "steps", "step_size",
                "eot_samples", "samples", "k", "topk_intersection", "spearman", "kendall",
                "l2", "linf", "clean_label", "adv_label", "clean_confidence", "adv_confidence",
                "label_preserved", "accepted_steps", "rejected_steps", "shortened_steps", "clean_objective",
                "adv_objective", "elapsed", "message")
        return [(k, getattr(self, k)) for k in keys]


@dataclass(frozen=True)
class NoAttackFloor:
    """Agreement between two clean runs of one method with different seeds.

    The floor an attacked number must be compared with: finite-sample smoothed maps differ
    from run to run by themselves (method.md §7). Raw methods are deterministic (floor 1).
    """

    method: str
    k: int
    topk_intersection: float
    spearman: float
    kendall: float
    seeds: tuple
    samples: int
    map_a: torch.Tensor
    map_b: torch.Tensor


# ======================================================================== validation

def default_k(n: int) -> int:
    """Default ``k`` for a map of ``n`` cells: 5% of the cells, at least 1, at most n − 1."""
    return int(min(max(1, math.ceil(0.05 * n)), n - 1))


def _check_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    value = int(value)
    if value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value}")
    return value


def _check_image(x, device, dtype=torch.float32) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch tensor (C, H, W) in [0, 1], got {type(x).__name__}")
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"attack takes one image (C, H, W) or (1, C, H, W), got batch of {x.shape[0]}")
        x = x[0]
    if x.dim() != 3:
        raise ValueError(f"x must be an image (C, H, W), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x has non-finite values")
    if x.min() < 0 or x.max() > 1:
        raise ValueError("x must be in pixel space [0, 1] (normalisation lives inside the model)")
    return x.detach().to(device=device, dtype=dtype)[None]


def _model_dtype(model) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


# ===================================================================== map transforms

def _rank_levels(v: np.ndarray, max_levels: int):
    """Compress ``v_rank = Σ_r Δv_r·1[rank ≤ r]`` to at most ``max_levels`` steps.

    Returns ``(ranks, weights)``: ``v ≈ Σ_j w_j 1[rank ≤ r_j]``; exact when ``v`` has at most
    ``max_levels`` distinct drops (e.g. top-k' uniform: one step at ``k'``).
    """
    drops = v - np.append(v[1:], 0.0)
    nz = np.flatnonzero(drops > 1e-15)
    if nz.size <= max_levels:
        return nz + 1, drops[nz]
    cum = np.cumsum(drops) / drops.sum()
    qs = (np.arange(max_levels) + 0.5) / max_levels
    ranks = np.searchsorted(cum, qs) + 1
    return ranks, np.full(max_levels, drops.sum() / max_levels)


def _resample_scoring(v: np.ndarray, n: int) -> np.ndarray:
    """A scoring vector for ``n`` cells with the same shape over rank fractions (e.g. top
    5% uniform stays top 5% uniform); used when the attack works at a lower resolution."""
    idx = np.minimum(((np.arange(n) + 0.5) * v.size / n).astype(int), v.size - 1)
    w = v[idx]
    return w / w.sum()


def _log_threshold(sorted_desc: torch.Tensor, rank: int) -> torch.Tensor:
    """Log of the midpoint (geometric) between the ``rank``-th and next value, per row."""
    n = sorted_desc.shape[1]
    hi = sorted_desc[:, rank - 1]
    lo = sorted_desc[:, min(rank, n - 1)]
    tiny = torch.finfo(sorted_desc.dtype).tiny
    return 0.5 * (hi.clamp_min(tiny).log() + lo.clamp_min(tiny).log())


class _Transform:
    """The per-sample transform of a method and its smooth surrogate for the attack."""

    def __init__(self, method, n, scoring, tau, phi, normalize, temperature, max_levels):
        self.method = method
        self.temperature = temperature
        self.normalize = normalize
        if method == "rrs":
            vec = scoring(n) if callable(scoring) else (default_scoring(n) if scoring is None else scoring)
            vec = np.asarray(vec, dtype=float)
            if vec.ndim == 1 and vec.size != n:
                vec = _resample_scoring(vec, n)   # a lower working resolution
            vec = validate_scoring(vec, n=n)
            self.ranks, self.weights = _rank_levels(vec, max_levels)
            self.need = int(min(n, self.ranks.max() + 1))
        elif method == "sparsified":
            self.keep = max(1, math.ceil(tau * n))
            self.clip_rank = max(1, math.ceil(phi * n))
            self.need = int(min(n, max(self.keep, self.clip_rank) + 1))

    def soft(self, a: torch.Tensor) -> torch.Tensor:
        """Differentiable per-sample values of ``(E, n)`` cell maps."""
        if self.method in ("smoothgrad", "raw"):
            if self.normalize:
                return a / a.amax(1, keepdim=True).clamp_min(1e-30)
            return a
        top = torch.topk(a.detach(), self.need, dim=1).values
        log_a = a.clamp_min(torch.finfo(a.dtype).tiny).log()
        t = self.temperature
        if self.method == "rrs":
            out = torch.zeros_like(a)
            for r, w in zip(self.ranks.tolist(), self.weights.tolist()):
                if r >= a.shape[1]:
                    out = out + w  # every cell has rank ≤ n
                    continue
                thr = _log_threshold(top, r)[:, None]
                out = out + w * torch.sigmoid((log_a - thr) / t)
            return out
        # sparsified: clip at the top-φ value (differentiable), soft top-τ mask
        clip = torch.topk(a, self.clip_rank, dim=1).values[:, -1:].clamp_min(1e-30)
        scaled = torch.minimum(a, clip) / clip
        if self.keep >= a.shape[1]:
            return scaled
        thr = _log_threshold(top, self.keep)[:, None]
        return scaled * torch.sigmoid((log_a - thr) / t)


# ======================================================================= objectives

class _Objective:
    """The loss to minimise on a normalised map, for the real grid or a work grid."""

    def __init__(self, name, clean_p, grid, k, target_map, device):
        self.name = name
        self.grid = grid
        rows, cols = grid
        self.k = k
        self.topk = torch.zeros(rows * cols, device=device)
        self.topk[torch.as_tensor(topk_indices(clean_p, k).copy(), device=device)] = 1.0
        self.target = None
        if target_map is not None:
            t = target_map.to(device).reshape(-1)
            self.target = t / t.sum()
        self.clean_center = _center(clean_p.to(device).reshape(rows, cols))
        self.direction = None

    def resized(self, grid) -> "_Objective":
        """The same objective on another grid (a lower working resolution)."""
        if tuple(grid) == tuple(self.grid):
            return self
        other = copy.copy(self)
        other.grid = tuple(grid)
        rows, cols = self.grid
        mask = self.topk.reshape(1, 1, rows, cols)
        other.topk = F.interpolate(mask, size=grid, mode="area").reshape(-1)
        if self.target is not None:
            t = F.interpolate(self.target.reshape(1, 1, rows, cols), size=grid, mode="area").reshape(-1)
            other.target = t / t.sum()
        return other

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        """Loss of ``p`` (flat, sums to 1) on this objective's grid."""
        if self.name == "topk":
            return (p * self.topk).sum()
        if self.name == "targeted":
            return ((p - self.target) ** 2).sum() * p.numel()
        rows, cols = self.grid
        scale = torch.tensor([rows, cols], device=p.device, dtype=p.dtype)
        shift = (_center(p.reshape(rows, cols)) - self.clean_center) * scale   # in cells
        if self.direction is None or shift.detach().norm() > 1e-3:
            d = shift.detach()
            if d.norm() <= 1e-3:
                # no displacement yet (raw maps start at the clean map): push away from
                # the image centre, a fixed and reproducible direction
                d = (self.clean_center - 0.5) * scale
                if d.norm() <= 1e-6:
                    d = torch.tensor([0.0, 1.0], device=p.device, dtype=p.dtype)
            self.direction = d / d.norm()
        # −⟨shift, u⟩ with u = shift/‖shift‖ held fixed: the gradient of −‖shift‖ where the
        # shift is non-zero, and a defined one where it is zero
        return -(shift * self.direction.to(p.dtype)).sum()

    def value(self, p: torch.Tensor) -> float:
        """The reported objective: top-k mass, −displacement in cells, or target distance."""
        with torch.no_grad():
            if self.name == "mass_center":
                rows, cols = self.grid
                scale = torch.tensor([rows, cols], device=p.device, dtype=p.dtype)
                return -float(((_center(p.reshape(rows, cols)) - self.clean_center) * scale).norm()) + 0.0
            return float(self(p))


def _center(p2d: torch.Tensor) -> torch.Tensor:
    """Centre of mass of a ``(rows, cols)`` map in unit coordinates (cell centres)."""
    rows, cols = p2d.shape
    r = (torch.arange(rows, device=p2d.device, dtype=p2d.dtype) + 0.5) / rows
    c = (torch.arange(cols, device=p2d.device, dtype=p2d.dtype) + 0.5) / cols
    total = p2d.sum().clamp_min(1e-30)
    return torch.stack([(p2d.sum(1) * r).sum() / total, (p2d.sum(0) * c).sum() / total])


def _normalised(m: torch.Tensor) -> torch.Tensor:
    m = m.reshape(-1).clamp_min(0)
    return m / m.sum().clamp_min(1e-30)


# ============================================================================ geometry

def _project(x0, x, norm, eps):
    """Project ``x`` onto ``{‖x − x0‖ ≤ eps} ∩ [0, 1]``.

    For ℓ∞ the box intersection is exact; for ℓ2 the ball projection comes first and the
    clip can only shrink the perturbation, so the result stays inside both sets.
    """
    delta = x - x0
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        n = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        delta = delta * torch.clamp(eps / n.clamp_min(1e-30), max=1.0)
    return (x0 + delta).clamp(0.0, 1.0)


def _unit(g, norm):
    if norm == "linf":
        return g.sign()
    return g / g.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, 1, 1, 1)


def _random_start(x0, norm, eps, generator):
    shape = x0.shape
    if norm == "linf":
        u = torch.rand(shape, generator=generator, device=x0.device if generator is None else generator.device)
        delta = (2 * u.to(x0.device) - 1) * eps
    else:
        gdev = x0.device if generator is None else generator.device
        d = torch.randn(shape, generator=generator, device=gdev).to(x0.device)
        d = d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        r = torch.rand(1, generator=generator, device=gdev).item() ** (1.0 / d[0].numel())
        delta = d * eps * r
    return _project(x0, x0 + delta, norm, eps)


# =========================================================================== the attack

@dataclass
class _Check:
    label: int
    confidence: float
    margin: float
    margin_grad: torch.Tensor | None
    cell_map: torch.Tensor | None  # real raw map (raw methods only)


class _Attack:
    """State shared by the steps of one attack (see :func:`attack` for the arguments)."""

    def __init__(self, model, sur, x, target, method, base, objective, norm, eps, k, cell,
                 reduction, noise, samples, eot, batch_size, scoring, tau, phi, normalize,
                 target_map, generator, temperature, max_levels, keep_label, label_weight,
                 label_margin, max_backtracks, eval_seed, work_size, base_kwargs):
        self.model, self.sur, self.x0, self.y = model, sur, x, target
        self.method, self.base = method, base
        self.raw = method in RAW_METHODS
        self.attribution = get_attribution(base)
        self.norm, self.eps = norm, eps
        self.cell, self.reduction = cell, reduction
        self.noise, self.samples, self.eot, self.batch_size = noise, samples, eot, batch_size
        self.smooth_kwargs = dict(scoring=scoring, tau=tau, phi=phi, normalize=normalize)
        self.generator = generator
        self.keep_label, self.label_weight, self.label_margin = keep_label, label_weight, label_margin
        self.max_backtracks = max_backtracks
        self.eval_seed = eval_seed
        self.work_size = work_size
        self.base_kwargs = base_kwargs or {}
        self.temperature, self.max_levels = temperature, max_levels
        self.scoring, self.tau, self.phi, self.normalize = scoring, tau, phi, normalize

        clean = self.check(x, need_map=self.raw)
        self.clean = clean
        self.clean_map = self.measure(x, clean)
        self.grid = tuple(self.clean_map.shape)
        n = self.clean_map.numel()
        if n < 2:
            raise ValueError(f"the map has only {n} cell; use a smaller cell size or a larger input")
        self.k = default_k(n) if k is None else k
        if not 1 <= self.k <= n - 1:
            raise ValueError(f"k must be in 1..{n - 1} for a map of {n} cells, got {self.k}")
        if target_map is not None and tuple(target_map.shape) != self.grid:
            raise ValueError(f"target_map must have the map's shape {self.grid}, got {tuple(target_map.shape)}")
        self.objective = _Objective(objective, _normalised(self.clean_map), self.grid, self.k,
                                    target_map, x.device)
        self.clean_objective = self.objective.value(_normalised(self.clean_map).to(x.device))
        self._work_objective = None
        self._transform = None

    # ------------------------------------------------------------------ real model side
    def check(self, xc, need_map: bool, force_margin: bool = False) -> _Check:
        """Label, confidence and logit margin on the real model (+ raw map, + margin grad
        when the margin is below ``label_margin`` or ``force_margin``)."""
        want_margin_grad = self.keep_label and self.label_weight > 0
        with torch.enable_grad():
            inp = xc.detach().requires_grad_(need_map or want_margin_grad)
            fused = need_map and self.base in ("vanilla", "input_x_gradient")
            if need_map and not fused:
                attr = self.attribution(self.model, inp, self.y, **self.base_kwargs)
                cell_map = to_cells(attr.detach(), self.cell, self.reduction)[0]
            logits = self.model(inp) if inp.requires_grad else self.model(inp.detach())
            y = int(self.y)
            probs = logits.detach().softmax(1)[0]
            label = int(probs.argmax())
            others = logits[0].clone()
            others[y] = -math.inf
            margin = logits[0, y] - others.max()
            wanted = []
            if fused:
                wanted.append(logits[0, y])
            active = want_margin_grad and (force_margin or float(margin.detach()) < self.label_margin)
            if active:
                wanted.append(margin)
            if wanted:
                outs = [torch.autograd.grad(w, inp, retain_graph=i + 1 < len(wanted))[0]
                        for i, w in enumerate(wanted)]
            if fused:
                g = outs[0] * inp.detach() if self.base == "input_x_gradient" else outs[0]
                cell_map = to_cells(g, self.cell, self.reduction)[0]
            elif not need_map:
                cell_map = None
            margin_grad = outs[-1] if active else None
        return _Check(label, float(probs[y]), float(margin.detach()), margin_grad,
                      cell_map.detach() if need_map else None)

    def measure(self, xc, chk: _Check | None = None) -> torch.Tensor:
        """The real map: raw attribution, or ``smooth`` with ``samples`` and ``eval_seed``."""
        if self.raw:
            if chk is None or chk.cell_map is None:
                chk = self.check(xc, need_map=True)
            return chk.cell_map
        gen = torch.Generator(device=xc.device).manual_seed(self.eval_seed)
        res = smooth(self.model, xc, target=self.y, method=self.method, base=self.base,
                     noise=self.noise, samples=self.samples, batch_size=self.batch_size,
                     cell=self.cell, reduction=self.reduction, generator=gen,
                     base_kwargs=self.base_kwargs, **self.smooth_kwargs)
        return res.map[0]

    def real_objective(self, cell_map) -> float:
        return self.objective.value(_normalised(cell_map).to(self.x0.device))

    # -------------------------------------------------------------- surrogate gradient
    def surrogate_grad(self, xc):
        """Gradient of the EOT surrogate objective at ``xc`` (one batched double backward)."""
        with torch.enable_grad():
            xb = xc.detach().requires_grad_(True)
            if self.raw:
                inp = xb
            else:
                deltas = torch.stack([
                    self.noise.sample(xc.shape[1:], generator=self.generator, device=xc.device,
                                      dtype=xc.dtype) for _ in range(self.eot)])
                inp = xb + deltas
            if self.work_size is not None:
                inp = F.interpolate(inp, size=(self.work_size, self.work_size), mode="bilinear",
                                    align_corners=False)
            target = self.y.expand(inp.shape[0])
            attr = self.attribution(self.sur, inp, target, create_graph=True, **self.base_kwargs)
            cells = to_cells(attr, self.cell, self.reduction)
            grid = tuple(cells.shape[-2:])
            a = cells.flatten(1)
            if self._transform is None:
                self._transform = _Transform("raw" if self.raw else self.method, a.shape[1],
                                             self.scoring, self.tau, self.phi, self.normalize,
                                             self.temperature, self.max_levels)
            if self._work_objective is None:
                self._work_objective = self.objective.resized(grid)
            vals = self._transform.soft(a)
            p = _normalised(vals.mean(0))
            loss = self._work_objective(p)
            (g,) = torch.autograd.grad(loss, xb)
        return g, self._work_objective.value(p.detach())

    def direction(self, g_obj, chk: _Check, boost: float = 1.0):
        """Descent direction: normalised objective gradient plus the keep-label term.

        The margin term's weight ramps from 0 (margin ≥ ``label_margin``) to
        ``label_weight`` (margin ≤ 0); after rejected steps (``boost`` > 1) it is at least
        ``label_weight·boost``, so the next step leans towards the clean class.
        """
        d = g_obj / g_obj.norm().clamp_min(1e-30)
        if chk.margin_grad is not None and self.keep_label:
            ramp = min(1.0, max(0.0, (self.label_margin - chk.margin) / self.label_margin))
            if boost > 1:
                ramp = max(ramp, 1.0) * boost
            gm = chk.margin_grad
            d = d - self.label_weight * ramp * gm / gm.norm().clamp_min(1e-30)
        return d


def attack(model, x, method: str = "vanilla", objective: str = "topk", norm: str = "linf",
           epsilon: float = 8 / 255, steps: int = 10, step_size: float | None = None,
           k: int | None = None, cell: int = 1, noise: Noise | None = None, samples: int = 16,
           eot_samples: int = 4, random_start: bool = False, target_map=None, scoring=None,
           generator: torch.Generator | None = None, progress=None, surrogate_beta: float = 10.0,
           *, base: str = "vanilla", target=None, reduction: str = "sum", tau: float = 0.1,
           phi: float = 0.01, normalize: bool = False, restarts: int = 1,
           keep_label: bool = True, label_weight: float = 1.0, label_margin: float = 1.0,
           max_backtracks: int = 3, rank_temperature: float = 0.5, rank_levels: int = 16,
           eval_seed: int = 0, eval_every: int = 0, work_size: int | None = None,
           batch_size: int = 16, base_kwargs: dict | None = None) -> AttackResult:
    """Attack the interpretation map of ``x`` while keeping its label (Ghorbani et al. 2019).

    Projected gradient descent on a surrogate objective (see the module docstring), with the
    label enforced on the real model at every step: a candidate that flips the label is
    retried with half the step (``max_backtracks`` times) and then rejected, and once the
    clean class's logit margin falls below ``label_margin`` the step direction also follows
    the margin gradient with relative weight ``label_weight``.

    Args:
        model: classifier on pixel-space inputs in ``[0, 1]`` (e.g. ``rrs.load_default()``).
        x: one image ``(C, H, W)`` (or ``(1, C, H, W)``) in ``[0, 1]``.
        method: a raw base (``"vanilla"``, ``"input_x_gradient"``, ``"integrated_gradients"``,
            ``"gradcam"``) or a smoothed method (``"smoothgrad"``, ``"sparsified"``, ``"rrs"``;
            then ``base`` names the attribution that is smoothed, default ``"vanilla"``).
        objective: ``"topk"``, ``"mass_center"`` or ``"targeted"`` (needs ``target_map``).
        norm: ``"linf"`` (sign steps) or ``"l2"`` (normalised steps); ``epsilon`` its radius in
            pixel units (default 8/255).
        steps: PGD steps per restart; ``step_size`` default ``2.5·ε/steps``.
        k: top-k size (default 5% of the cells); ``cell``/``reduction`` as in ``smooth``.
        noise, samples, scoring, tau, phi, normalize, batch_size: the smoothed method's
            settings; ``samples`` is the T used to *measure* clean and attacked maps (both
            with seed ``eval_seed``).
        eot_samples: fresh noise draws per step for smoothed methods, batched in one
            forward/double-backward pass on the surrogate.
        random_start: start from a uniform point of the ball (restarts after the first
            always do); ``restarts``: independent runs, the best one is kept.
        target_map: ``(rows, cols)`` non-negative map for ``"targeted"``.
        generator: ``torch.Generator`` for the random start and EOT noise (reproducible).
        progress: optional ``progress(done, total)`` called after every step.
        surrogate_beta: softplus β of :func:`surrogate_model`.
        target: class whose map is attacked (default: the predicted class).
        keep_label: enforce the label (default True; False only for soundness tests of
            certificates, which hold for every ``x'`` in the ball).
        rank_temperature, rank_levels: sharpness (in log cell value) and number of steps of
            the smooth surrogate of RRS's rank re-scaling / the sparsified mask.
        eval_every: for smoothed methods, measure the real map every this many steps and
            keep the best iterate (0: only the last accepted iterate is measured).
        work_size: optional lower side length at which the surrogate map is computed
            (faster steps; label checks and the measurement stay at full resolution).
        base_kwargs: extra arguments of the attribution (e.g. ``{"steps": 8}`` for IG).

    Returns:
        :class:`AttackResult`.
    """
    start_time = time.perf_counter()
    if method not in ATTACK_METHODS:
        raise ValueError(f"method must be one of {ATTACK_METHODS}, got {method!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if norm in ("inf", float("inf")):
        norm = "linf"
    if norm in (2, "2"):
        norm = "l2"
    if norm not in NORMS:
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    eps = _check_positive("epsilon", epsilon)
    if norm == "linf" and eps > 1:
        raise ValueError(f"an ℓ∞ budget above 1 covers all of [0, 1]; got epsilon={eps}")
    steps = _check_int("steps", steps)
    restarts = _check_int("restarts", restarts)
    alpha0 = 2.5 * eps / steps if step_size is None else _check_positive("step_size", step_size)
    eot = _check_int("eot_samples", eot_samples)
    samples = _check_int("samples", samples)
    batch_size = _check_int("batch_size", batch_size)
    max_backtracks = _check_int("max_backtracks", max_backtracks, low=0)
    eval_every = _check_int("eval_every", eval_every, low=0)
    beta = _check_positive("surrogate_beta", surrogate_beta)
    temperature = _check_positive("rank_temperature", rank_temperature)
    max_levels = _check_int("rank_levels", rank_levels)
    label_weight = float(label_weight)
    if not math.isfinite(label_weight) or label_weight < 0:
        raise ValueError(f"label_weight must be a finite number ≥ 0, got {label_weight!r}")
    label_margin = _check_positive("label_margin", label_margin)
    if k is not None:
        k = _check_int("k", k)
    if work_size is not None:
        work_size = _check_int("work_size", work_size, low=8)
    if method in RAW_METHODS:
        base = method
    elif base not in ATTRIBUTIONS:
        raise ValueError(f"base must be one of {tuple(ATTRIBUTIONS)}, got {base!r}")
    noise = Gaussian(0.15) if noise is None else noise
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be rrs.Gaussian or rrs.Laplace, got {type(noise).__name__}")
    if objective == "targeted":
        if target_map is None:
            raise ValueError("the targeted objective needs target_map, a (rows, cols) map of the target region")
        target_map = torch.as_tensor(np.asarray(target_map.detach().cpu() if hasattr(target_map, "detach")
                                                else target_map, dtype=np.float32))
        if target_map.dim() != 2:
            raise ValueError(f"target_map must be 2-D (rows, cols), got shape {tuple(target_map.shape)}")
        if not torch.isfinite(target_map).all() or (target_map < 0).any() or target_map.sum() <= 0:
            raise ValueError("target_map must be finite, non-negative and not all zero")
    else:
        target_map = None

    device = model_device(model)
    x0 = _check_image(x, device, _model_dtype(model))
    if target is None:
        with torch.no_grad():
            y = model(x0).argmax(1)
    else:
        y = torch.as_tensor(target, device=device).long().reshape(-1)[:1]
    sur = surrogate_model(model, beta)
    st = _Attack(model, sur, x0, y, method, base, objective, norm, eps, k, int(cell), reduction,
                 noise, samples, eot, batch_size, scoring, tau, phi, normalize, target_map,
                 generator, temperature, max_levels, keep_label, label_weight, label_margin,
                 max_backtracks, int(eval_seed), work_size, base_kwargs)
    clean_label = st.clean.label
    total = steps * restarts
    history: list[float] = []
    accepted = rejected = shortened = 0
    best = None           # (real objective, x, check, map) among label-preserving iterates
    best_flipped = None   # (x, check) of the first rejected candidate
    done = 0

    def consider(xc, chk, cell_map):
        nonlocal best
        val = st.real_objective(cell_map)
        if best is None or val < best[0]:
            best = (val, xc, chk, cell_map)

    for restart in range(restarts):
        xc = x0
        if random_start or restart > 0:
            for shrink in (1.0, 0.5, 0.25):
                cand = _random_start(x0, norm, eps * shrink, generator)
                if not keep_label or st.check(cand, need_map=False).label == clean_label:
                    xc = cand
                    break
        chk = st.check(xc, need_map=st.raw)
        g_cache = None
        boost = 1.0
        last_measured = None
        for step in range(steps):
            if g_cache is None:
                g_obj, sval = st.surrogate_grad(xc)
                history.append(sval)
                if st.raw:
                    g_cache = (g_obj, sval)  # deterministic: reuse after a rejected step
            else:
                g_obj, sval = g_cache
                history.append(sval)
            d = st.direction(g_obj, chk, boost)
            alpha = alpha0
            ok = False
            for attempt in range(max_backtracks + 1):
                cand = _project(x0, xc - alpha * _unit(d, norm), norm, eps)
                cchk = st.check(cand, need_map=st.raw)
                if not keep_label or cchk.label == clean_label:
                    ok = True
                    break
                if best_flipped is None:
                    best_flipped = (cand, cchk)
                alpha /= 2
            if ok:
                accepted += 1
                shortened += attempt > 0
                xc, chk, g_cache, boost = cand, cchk, None, 1.0
                if st.raw:
                    consider(xc, chk, chk.cell_map)
                elif eval_every and (step + 1) % eval_every == 0:
                    m = st.measure(xc)
                    consider(xc, chk, m)
                    last_measured = xc
            else:
                rejected += 1
                boost = min(boost * 2.0, 64.0)  # lean harder on the label next time
                if keep_label and chk.margin_grad is None:
                    chk = st.check(xc, need_map=st.raw, force_margin=True)
            done += 1
            if progress is not None:
                progress(done, total)
        if not st.raw and xc is not x0 and last_measured is not xc:
            consider(xc, chk, st.measure(xc))

    message = ""
    if best is not None:
        _, x_adv, adv_chk, adv_map = best
        label_preserved = adv_chk.label == clean_label
        if not keep_label and not label_preserved:
            message = "label not enforced (keep_label=False) and it changed"
    elif best_flipped is not None:
        x_adv, adv_chk = best_flipped
        adv_map = st.measure(x_adv, adv_chk)
        label_preserved = adv_chk.label == clean_label
        message = ("no step kept the label: every candidate changed the prediction even after "
                   f"{max_backtracks} step halvings; the result shows the first label-changing "
                   "candidate (try a smaller epsilon or step size, or a larger label_weight)")
    else:
        x_adv, adv_chk, adv_map = x0, st.clean, st.clean_map
        label_preserved = True
        message = "no step was taken"

    clean_map, attacked_map = st.clean_map, adv_map
    delta = (x_adv - x0)[0]
    cats = getattr(model, "categories", None)

    def name(i):
        return str(cats[i]) if cats is not None and 0 <= i < len(cats) else ""

    return AttackResult(
        x_adv=x_adv[0].detach().cpu(), clean_map=clean_map.detach().cpu(),
        attacked_map=attacked_map.detach().cpu(), k=st.k,
        topk_intersection=topk_intersection(clean_map, attacked_map, st.k),
        spearman=spearman(clean_map, attacked_map), kendall=kendall(clean_map, attacked_map),
        l2=float(delta.norm()), linf=float(delta.abs().max()),
        clean_label=clean_label, adv_label=adv_chk.label,
        clean_confidence=st.clean.confidence, adv_confidence=adv_chk.confidence,
        label_preserved=bool(label_preserved), message=message, history=tuple(history),
        method=method, objective=objective, norm=norm, epsilon=eps, steps=steps,
        elapsed=time.perf_counter() - start_time, base=base, step_size=alpha0,
        eot_samples=1 if st.raw else eot, samples=0 if st.raw else samples, cell=int(cell),
        restarts=restarts, accepted_steps=accepted, rejected_steps=rejected, shortened_steps=shortened,
        clean_objective=st.clean_objective, adv_objective=st.real_objective(attacked_map),
        clean_class_name=name(clean_label), adv_class_name=name(adv_chk.label),
        surrogate_beta=beta)


def no_attack_floor(model, x, method: str = "rrs", k: int | None = None, cell: int = 1,
                    noise: Noise | None = None, samples: int = 16, seeds=(0, 1), *,
                    base: str = "vanilla", target=None, reduction: str = "sum", scoring=None,
                    tau: float = 0.1, phi: float = 0.01, normalize: bool = False,
                    batch_size: int = 16, base_kwargs: dict | None = None) -> NoAttackFloor:
    """Top-k intersection and rank correlations between two clean runs with different seeds.

    What an attacked number must be compared with (method.md §7): with finite ``samples`` a
    smoothed map differs between runs even without any attack. Raw methods give 1.
    """
    if method not in ATTACK_METHODS:
        raise ValueError(f"method must be one of {ATTACK_METHODS}, got {method!r}")
    seeds = tuple(int(s) for s in seeds)
    if len(seeds) != 2 or seeds[0] == seeds[1]:
        raise ValueError(f"seeds must be two different integers, got {seeds!r}")
    samples = _check_int("samples", samples)
    device = model_device(model)
    x0 = _check_image(x, device, _model_dtype(model))
    if target is None:
        with torch.no_grad():
            target = model(x0).argmax(1)
    maps = []
    for seed in seeds:
        if method in RAW_METHODS:
            attr = get_attribution(method)(model, x0, torch.as_tensor(target, device=device).reshape(-1),
                                           **(base_kwargs or {}))
            maps.append(to_cells(attr.detach(), int(cell), reduction)[0])
        else:
            gen = torch.Generator(device=device).manual_seed(seed)
            res = smooth(model, x0, target=target, method=method, base=base, noise=noise,
                         samples=samples, batch_size=batch_size, cell=cell, reduction=reduction,
                         scoring=scoring, tau=tau, phi=phi, normalize=normalize, generator=gen,
                         base_kwargs=base_kwargs)
            maps.append(res.map[0])
    n = maps[0].numel()
    k = default_k(n) if k is None else _check_int("k", k)
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be in 1..{n - 1} for a map of {n} cells, got {k}")
    a, b = maps
    return NoAttackFloor(method, k, topk_intersection(a, b, k), spearman(a, b), kendall(a, b),
                         seeds, 0 if method in RAW_METHODS else samples, a.cpu(), b.cpu())
