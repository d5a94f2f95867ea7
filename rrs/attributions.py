"""Batched base attributions on a target class, and their reduction to cell maps.

Every attribution takes ``(model, x, target, create_graph=False)`` with ``x`` a batch
``(B, C, H, W)`` in pixel space and ``target`` a ``(B,)`` long tensor, and returns a batch of
attributions. With ``create_graph=True`` the graph is kept, so an attack can differentiate the
attribution with respect to ``x`` (second order).

* ``vanilla``: ``∇_x f_y(x)`` (Simonyan et al. 2014).
* ``input_x_gradient``: ``x ⊙ ∇_x f_y(x)`` (Shrikumar et al. 2016).
* ``integrated_gradients``: Sundararajan et al. 2017, Riemann midpoint rule, black baseline.
* ``gradcam``: Selvaraju et al. 2017 on the model's last convolutional block; a coarse
  ``(B, 1, h, w)`` map whose cells are the feature-map grid.

Plain autograd is used (Captum's wrappers add overhead for the same numbers; see
``bench/smoothing.py``).
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager

import torch
import torch.nn.functional as F

__all__ = ["vanilla_gradient", "input_x_gradient", "integrated_gradients", "grad_cam",
           "ATTRIBUTIONS", "get_attribution", "to_cells", "cell_grid", "REDUCTIONS",
           "capture_features", "find_cam_layer"]

_CAPTURE = threading.local()
_HOOKED: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()


def _capture_hook(module, inputs, output):
    # Only the thread that asked for this module's activation records it: a cached model
    # shared by several app sessions stays safe to use from many threads at once.
    if getattr(_CAPTURE, "module", None) is module:
        if getattr(_CAPTURE, "cut", False):
            # Grad-CAM without second order needs gradients from the score down to this layer
            # only: the forward ran without autograd so far; from here on it records a graph
            # whose leaf is this activation.
            # (A clone of the leaf is returned, so in-place ops after the layer, e.g. DenseNet's
            # ReLU, act on the recorded activation exactly as without the cut.)
            torch.set_grad_enabled(True)
            output = output.detach().requires_grad_(True).clone()
        _CAPTURE.activation = output
        return output


def find_cam_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The module whose output Grad-CAM uses: ``model.cam_layer`` if set, else the last
    ``Conv2d`` in registration order."""
    layer = getattr(model, "cam_layer", None)
    if layer is not None:
        return layer
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional layer; this model has none")
    return convs[-1]


@contextmanager
def capture_features(layer: torch.nn.Module, cut: bool = False):
    """Record ``layer``'s output during forward passes made inside the block (this thread).

    ``cut``: build no autograd graph below ``layer`` (the forward starts without autograd and
    the activation becomes a leaf), for gradients of the output with respect to it only.
    """
    if layer not in _HOOKED:
        layer.register_forward_hook(_capture_hook)
        _HOOKED.add(layer)
    _CAPTURE.module, _CAPTURE.activation, _CAPTURE.cut = layer, None, cut
    grad_before = torch.is_grad_enabled()
    if cut:
        torch.set_grad_enabled(False)
    try:
        yield _CAPTURE
    finally:
        _CAPTURE.module, _CAPTURE.cut = None, False
        torch.set_grad_enabled(grad_before)


def _prepare(x: torch.Tensor, target) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a (B, C, H, W) tensor, got {getattr(x, 'shape', type(x))}")
    target = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if target.numel() == 1 and x.shape[0] > 1:
        target = target.expand(x.shape[0])
    if target.numel() != x.shape[0]:
        raise ValueError(f"target must have one class per input ({x.shape[0]}), got {target.numel()}")
    inp = x if x.requires_grad else x.detach().requires_grad_(True)
    return inp, target


def _target_score(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if target.min() < 0 or target.max() >= logits.shape[1]:
        raise ValueError(f"target class must be in 0..{logits.shape[1] - 1}")
    return logits.gather(1, target[:, None]).sum()


def vanilla_gradient(model, x, target, create_graph: bool = False) -> torch.Tensor:
    """``∇_x f_y(x)`` for each input of the batch; shape ``(B, C, H, W)``."""
    with torch.enable_grad():
        inp, target = _prepare(x, target)
        score = _target_score(model(inp), target)
        (grad,) = torch.autograd.grad(score, inp, create_graph=create_graph)
    return grad


def input_x_gradient(model, x, target, create_graph: bool = False) -> torch.Tensor:
    """``x ⊙ ∇_x f_y(x)``; shape ``(B, C, H, W)``."""
    return x * vanilla_gradient(model, x, target, create_graph)


def integrated_gradients(model, x, target, create_graph: bool = False, steps: int = 16,
                         baseline: torch.Tensor | None = None) -> torch.Tensor:
    """Integrated gradients from ``baseline`` (default black) with ``steps`` midpoints.

    All ``B × steps`` interpolants go through the model in one batch.
    """
    if int(steps) < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps!r}")
    steps = int(steps)
    base = torch.zeros_like(x) if baseline is None else baseline.expand_as(x)
    alphas = (torch.arange(steps, device=x.device, dtype=x.dtype) + 0.5) / steps
    path = base[:, None] + alphas.view(1, steps, 1, 1, 1) * (x - base)[:, None]
    b = x.shape[0]
    flat = path.reshape(b * steps, *x.shape[1:])
    tgt = torch.as_tensor(target, device=x.device).long().reshape(-1)
    tgt = tgt.expand(b) if tgt.numel() == 1 else tgt
    grads = vanilla_gradient(model, flat, tgt.repeat_interleave(steps), create_graph)
    return (x - base) * grads.reshape(b, steps, *x.shape[1:]).mean(1)


def grad_cam(model, x, target, create_graph: bool = False, layer=None) -> torch.Tensor:
    """Grad-CAM on ``layer`` (default: :func:`find_cam_layer`); shape ``(B, 1, h, w)``, ≥ 0."""
    layer = find_cam_layer(model) if layer is None else layer
    with torch.enable_grad():
        # Without second order no input gradient is needed: no graph below the layer.
        inp, target = _prepare(x, target) if create_graph else (x.detach(), _prepare(x, target)[1])
        with capture_features(layer, cut=not create_graph) as store:
            logits = model(inp)
            act = store.activation
        if act is None:
            raise ValueError("Grad-CAM layer was not used by the model's forward pass")
        score = _target_score(logits, target)
        (grad,) = torch.autograd.grad(score, act, create_graph=create_graph)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    return F.relu((weights * act).sum(1, keepdim=True))


ATTRIBUTIONS = {
    "vanilla": vanilla_gradient,
    "input_x_gradient": input_x_gradient,
    "integrated_gradients": integrated_gradients,
    "gradcam": grad_cam,
}


def get_attribution(name: str):
    """The attribution function registered under ``name``."""
    if name not in ATTRIBUTIONS:
        raise ValueError(f"attribution must be one of {sorted(ATTRIBUTIONS)}, got {name!r}")
    return ATTRIBUTIONS[name]


REDUCTIONS = ("sum", "max", "sq")


def cell_grid(height: int, width: int, cell: int) -> tuple[int, int]:
    """Rows and columns of the cell grid (ragged border cells count as cells)."""
    return -(-height // cell), -(-width // cell)


def to_cells(attr: torch.Tensor, cell: int = 1, reduction: str = "sum") -> torch.Tensor:
    """Reduce ``(B, C, H, W)`` attributions to ``(B, rows, cols)`` non-negative cell values.

    ``a_i = Σ_{c, (h,w) ∈ cell i} |g|`` (``"sum"``), or the max of ``|g|`` (``"max"``), or the
    sum of ``g²`` (``"sq"``). Cells are ``cell × cell`` patches; border cells may be smaller.
    """
    if attr.dim() != 4:
        raise ValueError(f"attributions must be (B, C, H, W), got {tuple(attr.shape)}")
    if isinstance(cell, bool) or int(cell) != cell or cell < 1:
        raise ValueError(f"cell must be a positive integer, got {cell!r}")
    cell = int(cell)
    if reduction == "sum":
        a = attr.abs().sum(1, keepdim=True)
    elif reduction == "max":
        a = attr.abs().amax(1, keepdim=True)
    elif reduction == "sq":
        a = (attr * attr).sum(1, keepdim=True)
    else:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if cell == 1:
        return a[:, 0]
    h, w = a.shape[-2:]
    pad_h, pad_w = (-h) % cell, (-w) % cell
    if pad_h or pad_w:
        a = F.pad(a, (0, pad_w, 0, pad_h))
    if reduction == "max":
        return F.max_pool2d(a, cell)[:, 0]
    return F.avg_pool2d(a, cell)[:, 0] * (cell * cell)
