"""Models are :class:`Classifier` objects: pixel-space inputs in ``[0, 1]`` with the normalisation
inside ``forward``; their ImageNet class names; a top-k prediction; :class:`ModelError`."""
from __future__ import annotations

import functools

import torch
from torch import nn


class ModelError(ValueError):
    """A model cannot be loaded; the message says why in plain words and what would help."""


class Classifier(nn.Module):
    """A classifier on pixel-space inputs.

    Args:
        net: the network on normalised inputs, returning logits.
        name: registry name.
        input_size: square input side in pixels.
        mean, std: per-channel normalisation applied inside ``forward``.
        categories: class names (index = class id).
        cam_layer: module inside ``net`` whose output Grad-CAM uses (the last convolutional
            block). Kept as a plain reference, not a second registered child, so the
            ``state_dict`` lists each parameter once.
        channels: input channels (default 3).
        resize_size: shorter side a picture is resized to before the centre ``input_size``
            crop in the model's reference preprocessing (default ``input_size``: no margin).
    """

    def __init__(self, net: nn.Module, name: str, input_size: int, mean, std, categories,
                 cam_layer: nn.Module | None = None, channels: int = 3, resize_size: int | None = None):
        super().__init__()
        self.net = net
        self.name = name
        self.input_size = int(input_size)
        self.resize_size = self.input_size if resize_size is None else int(resize_size)
        if self.resize_size < self.input_size:
            raise ValueError(f"resize_size ({self.resize_size}) must be at least input_size ({self.input_size})")
        self.channels = int(channels)
        self.categories = list(categories)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        object.__setattr__(self, "cam_layer", cam_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def prepare(self, image, size: int | None = None) -> torch.Tensor:
        """The model input of a picture by the reference preprocessing: resize the shorter side
        to ``resize_size``, centre-crop ``input_size`` (at a working ``size``, both scaled by
        ``size / input_size``). A ``(3, S, S)`` tensor in ``[0, 1]`` on the model's device."""
        from ..images import to_tensor
        from ..smoothing import model_device

        size = self.input_size if size is None else int(size)
        return to_tensor(image, size, resize_size=self.resize_for(size)).to(model_device(self))

    def resize_for(self, size: int) -> int:
        """The shorter side to resize to before a centre ``size`` crop (``resize_size`` scaled)."""
        return max(int(size), round(int(size) * self.resize_size / self.input_size))

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, input_size={self.input_size}, resize_size={self.resize_size}, "
                f"classes={self.num_classes}")


@functools.lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class names shipped in torchvision's weight metadata (offline)."""
    from torchvision.models import ResNet18_Weights
    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def predict_topk(model: Classifier, x: torch.Tensor, k: int = 5) -> list[tuple[int, str, float]]:
    """Top-``k`` ``(class id, name, probability)`` for a single image ``(C, H, W)``."""
    if x.dim() == 3:
        x = x[None]
    with torch.no_grad():
        probs = model(x.to(next(model.parameters()).device)).softmax(1)[0]
    vals, idx = probs.topk(min(k, probs.numel()))
    return [(int(i), model.categories[int(i)], float(v)) for v, i in zip(vals, idx)]
