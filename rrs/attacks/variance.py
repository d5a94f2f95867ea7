"""How noisy the attack's gradient is, and how many EOT draws tame it (method.md §7).

On a smoothed map the attack follows the gradient of its surrogate objective at ``eot`` fresh
noise draws per step (expectation over transformation). One such gradient ``g`` is a random
vector: mean ``μ`` (the direction the attack wants) and per-draw covariance ``Σ``. Averaging
``E`` independent draws divides the covariance by ``E``, so the *noise-to-signal ratio*

    ρ(E) = tr Σ / (E · ‖μ‖²)

says how much of an EOT step is noise: ρ ≤ 1 means the noise's expected squared length is at
most the signal's (the step's expected cosine with ``μ`` is then about ≥ 1/√2).
:func:`gradient_noise` estimates ``tr Σ`` and ``‖μ‖²`` without bias from ``R`` independent
gradients (``E‖ḡ‖² = ‖μ‖² + tr Σ / R``, so ``‖μ‖² ≈ ‖ḡ‖² − tr Σ̂ / R``) and :func:`eot_for`
gives the smallest power of two ``E`` with ``ρ(1)/E ≤ target``. The attack's EOT average is of
soft maps before the objective (not of gradients), so ``1/E`` is a model: measure ``ρ`` at the
EOT actually used as well (:func:`attack_gradients` with ``attack.eot = E``).
"""
from __future__ import annotations

import math

import torch

from .. import checks
from ..settings import AttackSettings, MapSettings
from ..smoothing import model_device
from .pgd import _Attack, _model_dtype

__all__ = ["attack_gradients", "gradient_noise", "eot_for"]


def attack_gradients(model, x, settings: MapSettings, attack: AttackSettings, draws: int, *, target=None,
                     batch_size: int = 16) -> torch.Tensor:
    """``draws`` independent gradients ``(draws, C, H, W)`` of the attack's surrogate objective
    at the clean image ``x``, each an EOT average over ``attack.eot`` noise draws (the EOT noise
    comes from ``attack.seed``; the clean map is ``settings``' own, seed ``settings.seed``)."""
    if not settings.smoothed:
        raise ValueError("the raw gradient's attack gradient is deterministic: nothing to measure")
    draws = checks.integer("draws", draws, low=2)
    device = model_device(model)
    x0 = checks.image(x).detach().to(device=device, dtype=_model_dtype(model))
    with torch.no_grad():
        y = model(x0).argmax(1) if target is None else torch.as_tensor(target, device=device).long().reshape(-1)[:1]
    st = _Attack(model, x0, y, settings, attack, None, batch_size)
    return torch.stack([st.surrogate_grad(x0)[0][0].detach().cpu() for _ in range(draws)])


def gradient_noise(grads) -> dict:
    """Unbiased estimates from ``R ≥ 2`` independent gradients ``(R, …)``: ``trace`` = tr Σ
    (per-draw), ``signal`` = ‖μ‖² (clipped at 0), ``ratio`` = trace / signal (``inf`` when no
    signal is detectable) and ``draws`` = R."""
    g = torch.as_tensor(grads, dtype=torch.float64).flatten(1)
    r = g.shape[0]
    if r < 2:
        raise ValueError(f"need at least two gradients to estimate a variance, got {r}")
    mean = g.mean(0)
    trace = float(((g - mean) ** 2).sum() / (r - 1))
    signal = max(0.0, float((mean ** 2).sum()) - trace / r)
    ratio = trace / signal if signal > 0 else math.inf
    return {"trace": trace, "signal": signal, "ratio": ratio, "draws": r}


def eot_for(ratio: float, target: float = 1.0, largest: int = 1024) -> int:
    """The smallest power of two ``E`` (≤ ``largest``) with ``ratio / E ≤ target``."""
    if not (target > 0):
        raise ValueError(f"target must be > 0, got {target}")
    e = 1
    while e < largest and not (ratio / e <= target):
        e *= 2
    return e
