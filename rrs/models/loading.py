"""Building a registry model's network, loading its checked weights, the per-device model
cache (:func:`load_model`, :func:`load_default`, :func:`load_tiny`) and a user's own weights
(:func:`load_user_model`)."""
from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from .classifier import Classifier, ModelError
from .registry import DEFAULT_MAX_MODEL_BYTES, DEFAULT_MODEL, MODELS, ModelSpec, get_spec, weights_path
from .weightfiles import _as_state_dict, _names, _parse_weights, _read_safetensors_file, _read_source


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
