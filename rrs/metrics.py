"""Agreement between two interpretation maps: top-k intersection and rank correlations."""
from __future__ import annotations

import numpy as np
from scipy import stats as _stats

__all__ = ["topk_intersection", "spearman", "kendall", "topk_indices"]


def _flat(m, name) -> np.ndarray:
    if hasattr(m, "detach"):
        m = m.detach().double().cpu().numpy()
    arr = np.asarray(m, dtype=float).reshape(-1)
    if arr.size < 2:
        raise ValueError(f"{name} must have at least 2 cells")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite values")
    return arr


def _pair(a, b):
    a, b = _flat(a, "first map"), _flat(b, "second map")
    if a.size != b.size:
        raise ValueError(f"maps must have the same number of cells, got {a.size} and {b.size}")
    return a, b


def topk_indices(m, k: int) -> np.ndarray:
    """Indices of the ``k`` largest cells (ties broken by index, as everywhere in rrs)."""
    a = _flat(m, "map")
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= a.size:
        raise ValueError(f"k must be an integer in 1..{a.size}, got {k!r}")
    return np.lexsort((np.arange(a.size), -a))[: int(k)]


def topk_intersection(a, b, k: int) -> float:
    """``|top_k(a) ∩ top_k(b)| / k`` in ``[0, 1]``."""
    a, b = _pair(a, b)
    return len(np.intersect1d(topk_indices(a, k), topk_indices(b, k))) / int(k)


def spearman(a, b) -> float:
    """Spearman rank correlation of two maps (cells as observations)."""
    a, b = _pair(a, b)
    r = _stats.spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


def kendall(a, b) -> float:
    """Kendall's tau-b rank correlation of two maps."""
    a, b = _pair(a, b)
    r = _stats.kendalltau(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0
