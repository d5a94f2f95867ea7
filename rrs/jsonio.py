"""One JSON encoding for exports, command-line records and study jobs.

:func:`plain` turns what rrs produces (settings objects, norms, tensors, numpy values, paths,
dataclasses) into JSON values; non-finite floats become the strings ``"inf"``, ``"-inf"`` and
``"nan"`` (JSON has no such numbers). :func:`dumps` writes indented JSON with lists of numbers
on one line, so a map reads as one line per row.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import torch

from .settings import Norm, _Settings

__all__ = ["plain", "dumps", "write"]


def plain(obj):
    """A JSON-ready copy of ``obj``."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, Norm):
        return obj.key
    if isinstance(obj, _Settings):
        return plain(obj.to_dict())
    if isinstance(obj, torch.Tensor):
        return plain(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if obj is None or isinstance(obj, (int, str)):
        return obj
    return str(obj)


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[0-9][0-9.eE+-]*|\"-?inf\"|\"nan\"|true|false|null)"
                          r"(?:,\s*(?:-?[0-9][0-9.eE+-]*|\"-?inf\"|\"nan\"|true|false|null))*)\s*\]")


def dumps(obj, indent: int | None = 1) -> str:
    """Indented JSON of :func:`plain` ``(obj)`` with lists of numbers kept on one line."""
    text = json.dumps(plain(obj), indent=indent, ensure_ascii=False)
    if indent is None:
        return text
    return _NUMBER_LIST.sub(lambda mo: "[" + ", ".join(v.strip() for v in mo.group(1).split(",")) + "]", text)


def write(path, obj) -> None:
    """Write :func:`dumps` ``(obj)`` to ``path`` atomically (a crash never leaves half a file)."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(dumps(obj) + "\n", encoding="utf-8")
    os.replace(tmp, path)
