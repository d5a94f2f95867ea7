"""Agreement between two interpretation maps: top-k intersection and rank correlations."""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats as _stats

__all__ = ["topk_intersection", "tie_aware_intersection", "topk_membership", "spearman", "kendall",
           "topk_indices"]


def _flat(m, name) -> np.ndarray:
    if isinstance(m, torch.Tensor):
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


def topk_membership(m, k: int) -> np.ndarray:
    """Probability that each cell is in the top-k of ``m`` when ties are broken uniformly at random.

    Cells above the k-th value have probability 1; the ``t`` cells equal to it share the
    ``r`` remaining places (probability ``r/t`` each); cells below have 0.
    """
    v = _flat(m, "map")
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= v.size:
        raise ValueError(f"k must be an integer in 1..{v.size}, got {k!r}")
    kth = np.partition(v, v.size - k)[v.size - k]
    above, tied = v > kth, v == kth
    return above + tied * ((k - above.sum()) / tied.sum())


def tie_aware_intersection(a, b, k: int) -> float:
    """Expected ``|top_k(a) ∩ top_k(b)| / k`` with ties broken uniformly at random, independently.

    Equals :func:`topk_intersection` when neither map has a tie at its k-th value. Smoothed
    maps with few samples have many ties (an RRS map with top-k' uniform scoring and T=1
    takes two values), and breaking them by index would make two unrelated maps agree on the
    low-index cells. The agreement measure of every comparison in rrs (method.md §7).
    """
    a, b = _pair(a, b)
    return float(np.dot(topk_membership(a, k), topk_membership(b, k)) / k)


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
