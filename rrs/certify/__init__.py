"""Certified robustness of smoothed interpretation maps (method.md §4–§6b).

``rrs.certify`` is a package; every public name lives in a submodule and is re-exported here:

* ``core`` — exact ``D*_α`` (method.md §4), RDP and Gaussian-CDF top-k certificates, per-cell
  radii, confidence intervals, the all-in-one :func:`certify` (Bonferroni or separate
  selection batch, method.md §5);
* ``stable`` — Rényi divergences without cancellation near ``α → 1``;
* ``important`` — the per-cell "stays important" certificate (method.md §6b);
* ``anytime`` — checkpointed, anytime-valid certification (method.md §5).
"""
from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all
from .core import _Threshold, _cell_divergences, _cell_radius_search  # noqa: F401  (tests)

__all__ = list(_core_all)
from .important import ImportanceCertificate, stays_important  # noqa: E402
from .anytime import AnytimeBest, AnytimeCertifier  # noqa: E402

__all__ += ["ImportanceCertificate", "stays_important", "AnytimeBest", "AnytimeCertifier"]
