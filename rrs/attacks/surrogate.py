"""The smooth surrogate of a classifier that attacks differentiate (method.md §7).

ReLU networks have zero second derivatives almost everywhere, so the gradient of a gradient
map with respect to the input is zero; an interpretation attack needs a copy of the model
whose ReLU/ReLU6/Hardtanh kinks are softplus-smoothed (Dombrowski et al. 2019). This module
holds that copy and what makes its double backward fast:

* :func:`smooth_clamp` / :class:`SmoothClamp` — softplus-smoothed ``clamp(x, lo, hi)`` as
  custom autograd functions with analytic first and second derivatives;
* :class:`_SurrogateMode` — a ``TorchFunctionMode`` that smooths functional activation calls
  (``F.relu``, ``Tensor.relu_`` …) and routes frozen 2-D convolutions through
  :class:`_FrozenConv2d` (one call per layer in the double backward, also for depthwise
  convolutions);
* :func:`_fold_batchnorm` — eval-mode BatchNorm folded into the convolution feeding it;
* :class:`SurrogateModel` and the cached constructor :func:`surrogate_model`.
"""
from __future__ import annotations

import copy
import math
import threading
import weakref

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .. import checks
from ..attributions import find_cam_layer

__all__ = ["smooth_clamp", "SmoothClamp", "SurrogateModel", "surrogate_model"]

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
        kind = x.device.type
        if torch.is_autocast_enabled(kind):
            # under autocast (bf16 attacks) F.conv2d would cast here and the backward would see
            # the fp32 weight: cast once, so both backward passes run in the autocast dtype
            dtype = torch.get_autocast_dtype(kind)
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
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
        beta = checks.positive("surrogate_beta", beta)
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
