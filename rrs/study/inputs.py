"""The study's models and images, loaded once per process (also inside Ray workers)."""
from __future__ import annotations

import functools

import numpy as np
import torch

from .config import is_image_file

__all__ = ["get_model", "get_image", "resolve_device"]


def resolve_device(device) -> str:
    """``device``, or CUDA when available and CPU otherwise."""
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


@functools.lru_cache(maxsize=4)
def get_model(name: str, device: str = "cpu"):
    """The classifier ``name`` (``rrs.models`` registry) on ``device``."""
    from .. import models
    return models.load_model(name, device=device)


@functools.lru_cache(maxsize=64)
def _image_array(image: str, size: int, resize: int) -> np.ndarray:
    """The model input of ``image``: shorter side resized to ``resize``, centre ``size`` crop."""
    from ..images import load_image, load_sample, to_tensor
    if image.startswith("shape-"):
        return _shape_image(int(image.split("-", 1)[1]), size)
    loaded = load_image(image) if is_image_file(image) else load_sample(image)
    return to_tensor(loaded, size, resize_size=resize).numpy()


def _shape_image(index: int, size: int) -> np.ndarray:
    """Synthetic shape image number ``index`` for the tiny model (``rrs.tiny.make_shapes``)."""
    from .. import tiny
    # One fixed draw (generator seed 2022) of at least 12 images, so image i is the same
    # whatever else is evaluated.
    count = max(12, index + 1)
    x, _ = tiny.make_shapes(count, size=size, generator=torch.Generator().manual_seed(2022))
    return x[index].detach().float().cpu().numpy()


def get_image(model, image: str) -> torch.Tensor:
    """The image ``(3, S, S)`` in ``[0, 1]`` at the model's input size, by the model's reference
    preprocessing (:meth:`rrs.models.Classifier.prepare`)."""
    size = int(model.input_size)
    return torch.from_numpy(_image_array(image, size, model.resize_for(size)).copy())
