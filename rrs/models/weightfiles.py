"""Reading weight files, the registry's and a user's: a ``state_dict`` read with
``torch.load(weights_only=True)`` or as safetensors, never by unpickling arbitrary objects; a
clear :class:`ModelError` for anything else."""
from __future__ import annotations

import io
import os
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from .classifier import ModelError


def _names(keys, limit: int = 4) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")


# ------------------------------------------------------------- reading weight files

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
