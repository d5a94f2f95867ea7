"""A tiny CNN and the synthetic "shapes" data it is trained on.

The tiny model gives tests, the evaluation pipeline and slow machines a classifier that
answers in microseconds: three 3×3 convolutions with ReLU, global average pooling and a
linear layer (≈ 3.9 k parameters, ≈ 16 KB in float32) on ``(B, 3, 32, 32)`` images in
``[0, 1]``. Its data are generated, never downloaded: one coloured shape (circle, square,
triangle, cross or a striped disc) at a random position, size and rotation on a noisy
background of another colour. ``scripts/train_tiny.py`` trains it with :func:`train_tiny`
and writes ``assets/models/tiny_cnn.safetensors``; :func:`rrs.models.load_tiny` loads it.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CLASSES", "INPUT_SIZE", "MEAN", "STD", "TinyCNN", "make_shapes", "train_tiny",
           "evaluate_accuracy", "TrainResult", "Normalize"]

CLASSES = ("circle", "square", "triangle", "cross", "stripes")
INPUT_SIZE = 32
# Inputs stay in [0, 1]; this fixed normalisation (applied inside the Classifier) just
# centres them for training.
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


class TinyCNN(nn.Module):
    """Three conv blocks (3×3 conv + ReLU, the first two followed by 2×2 max-pooling),
    global average pooling and a linear layer.

    Args:
        num_classes: number of outputs (default 5, :data:`CLASSES`).
        widths: channels of the three conv layers (default ``(8, 16, 16)``).

    ``features[2]`` (the last block; its output is the ReLU after the last conv, an ``8×8``
    map at 32×32 input) is the layer Grad-CAM uses: the post-activation output of the last
    convolutional block. It is a container, not the ReLU itself, so a surrogate copy that
    swaps each ReLU for a softplus still has it in its forward pass.
    """

    def __init__(self, num_classes: int = len(CLASSES), widths: tuple[int, int, int] = (8, 16, 16)):
        super().__init__()
        c1, c2, c3 = (int(w) for w in widths)
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU()),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c3, int(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class Normalize(nn.Module):
    """``(x − MEAN) / STD`` per channel (training and evaluation outside a Classifier)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _shape_mask(name: str, u: torch.Tensor, v: torch.Tensor, r: torch.Tensor,
                period: torch.Tensor) -> torch.Tensor:
    """Boolean mask of shape ``name`` in its own rotated frame ``(u, v)`` with size ``r``."""
    if name == "circle":
        return u ** 2 + v ** 2 <= r ** 2
    if name == "square":
        return (u.abs() <= 0.8 * r) & (v.abs() <= 0.8 * r)
    if name == "triangle":
        # Equilateral, circumradius 1.15 r: inside all three edges, each at the inradius
        # (half the circumradius) along its outward normal.
        m = torch.ones(u.shape, dtype=torch.bool)
        for j in range(3):
            phi = math.pi / 2 + 2 * math.pi * j / 3
            m &= u * math.cos(phi) + v * math.sin(phi) <= 0.575 * r
        return m
    if name == "cross":
        w = 0.28 * r
        return ((u.abs() <= w) & (v.abs() <= r)) | ((v.abs() <= w) & (u.abs() <= r))
    # stripes: a disc filled with parallel bars
    return (u ** 2 + v ** 2 <= r ** 2) & (torch.sin(2 * math.pi * u / period) > 0)


def make_shapes(n: int, size: int = INPUT_SIZE, generator: torch.Generator | None = None,
                noise: float = 0.06) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic images of coloured shapes on noisy backgrounds, with their labels.

    Args:
        n: number of images (≥ 1); each image's class is drawn uniformly from :data:`CLASSES`.
        size: square side in pixels (default 32, the tiny model's input size; ≥ 16).
        generator: CPU ``torch.Generator`` making the set reproducible; ``None`` uses the
            global RNG.
        noise: standard deviation of the per-pixel Gaussian noise (default 0.06).

    Returns:
        ``(images, labels)``: ``(n, 3, size, size)`` float32 in ``[0, 1]`` and ``(n,)`` long,
        ``labels[i]`` indexing :data:`CLASSES`. Image ``i`` depends only on the generator's
        state and ``i`` (not on ``n``): ``make_shapes(m)`` is a prefix of ``make_shapes(n)``
        for ``m ≤ n`` from equally seeded generators, so "image ``i`` of seed ``s``" is
        well defined.
    """
    n, size = int(n), int(size)
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    if size < 16:
        raise ValueError(f"size must be ≥ 16 pixels, got {size}")
    # All per-image parameters come from one (n, 13) draw, row i for image i, so a row does
    # not depend on n; the pixel noise of image i comes from its own generator seeded by
    # that row.
    u = torch.rand((n, 13), generator=generator, dtype=torch.float64)
    labels = (u[:, 0] * len(CLASSES)).long().clamp_(max=len(CLASSES) - 1)
    bg = u[:, 1:4].float()
    # Shapes on dark backgrounds are brighter, on bright backgrounds darker, by 0.3–0.6 per
    # channel: every shape has a clear edge in the same direction in all channels.
    sign = torch.where(bg.mean(1, keepdim=True) < 0.5, 1.0, -1.0)
    fg = (bg + sign * (0.3 + 0.3 * u[:, 4:7].float())).clamp(0.0, 1.0)
    radius = (0.25 + 0.11 * u[:, 7].float()) * size
    cx = radius + 1 + u[:, 8].float() * (size - 2 * radius - 2)
    cy = radius + 1 + u[:, 9].float() * (size - 2 * radius - 2)
    theta = u[:, 10].float() * 2 * math.pi
    period = (3.5 + 1.5 * u[:, 11].float()) * size / 32
    seeds = (u[:, 12] * 2 ** 52).long().tolist()
    pixel_noise = torch.empty((n, 3, size, size))
    noise_gen = torch.Generator()
    for i, seed in enumerate(seeds):
        noise_gen.manual_seed(seed)
        torch.randn((3, size, size), generator=noise_gen, out=pixel_noise[i])
    pixel_noise *= noise

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = coords.view(1, size, 1), coords.view(1, 1, size)
    masks = torch.zeros((n, size, size), dtype=torch.bool)
    for c, name in enumerate(CLASSES):
        sel = (labels == c).nonzero().flatten()
        if sel.numel():
            m = len(sel)
            dx, dy = xx - cx[sel].view(m, 1, 1), yy - cy[sel].view(m, 1, 1)
            cos, sin = theta[sel].cos().view(m, 1, 1), theta[sel].sin().view(m, 1, 1)
            u, v = cos * dx + sin * dy, -sin * dx + cos * dy   # the shape's own frame
            masks[sel] = _shape_mask(name, u, v, radius[sel].view(m, 1, 1),
                                     period[sel].view(m, 1, 1))

    images = torch.where(masks[:, None], fg.view(n, 3, 1, 1), bg.view(n, 3, 1, 1))
    images = (images + pixel_noise).clamp_(0.0, 1.0)
    return images.float(), labels.long()


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      batch_size: int = 1024) -> float:
    """Fraction of ``images`` ``(N, 3, S, S)`` that ``model`` classifies as ``labels``."""
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = model(images[i:i + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == labels[i:i + batch_size]).sum())
    return correct / len(images)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_tiny` did: the trained network (on normalised inputs, see
    :data:`MEAN`/:data:`STD`) and its numbers."""

    net: TinyCNN
    test_accuracy: float
    epochs: int
    seed: int
    seconds: float
    losses: tuple[float, ...]


def train_tiny(epochs: int = 10, seed: int = 0, train_size: int = 4000, test_size: int = 2000,
               batch_size: int = 64, lr: float = 2e-2, widths: tuple[int, int, int] = (8, 16, 16),
               progress: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train :class:`TinyCNN` on freshly generated shapes (a new set each epoch).

    Args:
        epochs: passes, each over ``train_size`` new images (default 10).
        seed: seeds initialisation, data and shuffling (default 0); the held-out test set
            comes from a separate generator seeded ``seed + 1``. The global RNG is untouched.
        train_size, test_size: images per epoch (default 4000) / in the test set (2000).
        batch_size, lr: Adam mini-batch size (64) and peak learning rate (0.02) of a
            one-cycle schedule.
        widths: channels of the three conv layers (default ``(8, 16, 16)``).
        progress: optional ``callback(epoch, mean_loss)`` after each epoch.

    On one CPU thread the defaults take ≈ 10–25 s and reach ≈ 98% test accuracy.

    Returns:
        :class:`TrainResult`; ``net`` expects normalised inputs ``(x − MEAN) / STD``.
    """
    if int(epochs) < 1:
        raise ValueError(f"epochs must be ≥ 1, got {epochs}")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)   # default initialisation, reproducibly, without side effects
        net = TinyCNN(widths=widths)
    normalize = Normalize()
    steps_per_epoch = math.ceil(train_size / batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    net.train()
    for epoch in range(int(epochs)):
        x, y = make_shapes(train_size, generator=gen)
        x = normalize(x)
        order = torch.randperm(train_size, generator=gen)
        total = 0.0
        for i in range(0, train_size, batch_size):
            idx = order[i:i + batch_size]
            loss = loss_fn(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(total / train_size)
        if progress is not None:
            progress(epoch + 1, losses[-1])
    net.eval()
    norm_net = nn.Sequential(Normalize(), net)   # sees [0, 1] inputs, as the Classifier does
    test_gen = torch.Generator().manual_seed(seed + 1)
    xt, yt = make_shapes(test_size, generator=test_gen)
    test_acc = evaluate_accuracy(norm_net, xt, yt)
    return TrainResult(net=net, test_accuracy=test_acc, epochs=int(epochs),
                       seed=int(seed), seconds=time.perf_counter() - start, losses=tuple(losses))
