"""What a robustness profile returns: one method's :class:`MethodProfile` (the sweep, the break
radius, the certified radii, cost and timings), every method's :class:`RobustnessProfile`
(JSON round trip), and a smoothed map's certificate :class:`Certified`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...settings import CertifySettings, MapSettings
from .settings import RobustnessSettings

__all__ = ["Certified", "MethodProfile", "RobustnessProfile"]


@dataclass(frozen=True)
class Certified:
    """A smoothed map's finite-sample certificate (:func:`certify_method`).

    ``reference``: the map at the certificate's ``T`` (seed ``s``), whose top-k cells are
    attacked; ``selected``: the certified top-k set ``K̂``; ``radius``: the whole-set β = 1
    radius (best of RDP and Gaussian-CDF, 0 when none); ``cell_radii``: ``(n,)`` per-cell
    radii (best of both; 0 outside ``K̂``). ``radius`` is ``None`` when the method has no
    certificate (plain SmoothGrad: unbounded values)."""

    reference: torch.Tensor
    selected: tuple
    radius: float | None
    cell_radii: np.ndarray | None
    samples: int
    elapsed: float

    @property
    def cell_radius(self) -> float | None:
        """The largest per-cell radius."""
        return None if self.cell_radii is None else float(np.max(self.cell_radii, initial=0.0))

    def provably_kept(self, epsilon: float) -> int:
        """Top-k cells certified to stay for every change of norm ``< radius`` with radius > ``epsilon``."""
        return 0 if self.cell_radii is None else int(np.sum(self.cell_radii > epsilon))


@dataclass(frozen=True)
class MethodProfile:
    """One method's robustness profile (see :mod:`rrs.workflows.robustness.profile`).

    Per budget (``budgets``, ascending): ``overlap`` (tie-aware top-k intersection of the
    attacked map with the reference map), ``spearman``, ``label_kept``, ``fallen`` (top-k
    cells pushed out) and ``candidate`` (the budget looked broken before confirmation).
    ``floor``: the overlap without attack at the sweep's ``T`` (1 for raw maps).
    ``broken``: a confirmed break was found; then ``break_radius`` is the smallest budget
    (sweep and bisection) with a confirmed break and ``held_radius`` the largest tested budget
    below it that held (0 when the first budget broke); otherwise ``break_radius`` is ``None``
    and ``held_radius`` the largest budget ("not broken up to ``held_radius``").
    ``fallen_at_break``: cells out at the break (confirmed ones for smoothed maps).
    ``certified_radius`` (whole set, β = 1) and ``certified_cell_radius`` (largest per cell):
    finite-sample radii of smoothed maps (``None`` for raw maps or without certificate);
    ``cell_radii``: ``(cell, radius)`` for the certified top-k set. ``cost``: gradient
    evaluations by kind (``map`` — real-model attributions; ``attack`` — surrogate double
    backward samples); ``timings``: seconds by phase.
    """

    settings: MapSettings
    k: int
    top_cells: tuple
    budgets: tuple
    overlap: tuple
    spearman: tuple
    label_kept: tuple
    fallen: tuple
    candidate: tuple
    floor: float
    sweep_samples: int
    broken: bool
    break_radius: float | None
    held_radius: float
    fallen_at_break: tuple
    bisection: tuple = ()            # (budget, broken) per bisection step
    confirmations: tuple = ()        # (budget, overlap, floor, confirmed) per confirmation
    certified_radius: float | None = None
    certified_cell_radius: float | None = None
    cell_radii: tuple = ()
    selected: tuple = ()
    cost: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.settings.method

    @property
    def gap(self) -> float | None:
        """Break radius ÷ whole-set certified radius (the certificate's tightness; ≥ 1 when sound)."""
        if not self.broken or not self.certified_radius:
            return None
        return self.break_radius / self.certified_radius

    @property
    def cell_gap(self) -> float | None:
        """Break radius (first cell out) ÷ the largest per-cell certified radius."""
        if not self.broken or not self.certified_cell_radius:
            return None
        return self.break_radius / self.certified_cell_radius

    def contradictions(self) -> tuple:
        """Certified claims that the confirmed break contradicts (a soundness failure; empty
        when sound): the whole-set radius above the break radius, or a cell pushed out at the
        break whose per-cell radius is above the break radius."""
        if not self.broken:
            return ()
        b, out = self.break_radius, []
        if self.certified_radius is not None and self.certified_radius > b:
            out.append(f"whole-set radius {self.certified_radius:.4g} > break radius {b:.4g}")
        radii = dict(self.cell_radii)
        out += [f"cell {c}: certified radius {radii[c]:.4g} > break radius {b:.4g}"
                for c in self.fallen_at_break if radii.get(c, 0.0) > b]
        return tuple(out)

    def to_dict(self) -> dict:
        from ...jsonio import plain

        out = plain({f: getattr(self, f) for f in self.__dataclass_fields__})
        out["gap"], out["cell_gap"] = plain(self.gap), plain(self.cell_gap)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "MethodProfile":
        data = dict(data)
        data.pop("gap", None)
        data.pop("cell_gap", None)
        data["settings"] = MapSettings.from_dict(data["settings"])

        def tup(v):
            return tuple(tup(i) for i in v) if isinstance(v, list) else v
        for name in ("top_cells", "budgets", "overlap", "spearman", "label_kept", "fallen", "candidate",
                     "fallen_at_break", "bisection", "confirmations", "cell_radii", "selected"):
            data[name] = tup(data.get(name, []))
        for name in ("certified_radius", "certified_cell_radius", "break_radius"):
            if isinstance(data.get(name), str):
                data[name] = float(data[name])
        return cls(**data)


@dataclass(frozen=True)
class RobustnessProfile:
    """The profile of every method on one image: ``methods`` in the order asked, with the
    settings that made them (``settings``, ``certify``), the explained class and timings."""

    settings: RobustnessSettings
    certify: CertifySettings | None
    methods: tuple
    target: int
    elapsed: float

    def method(self, name: str) -> MethodProfile:
        for m in self.methods:
            if m.method == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"settings": self.settings.to_dict(),
                "certify": None if self.certify is None else self.certify.to_dict(),
                "methods": [m.to_dict() for m in self.methods], "target": self.target, "elapsed": self.elapsed}

    @classmethod
    def from_dict(cls, data: dict) -> "RobustnessProfile":
        cert = data.get("certify")
        return cls(RobustnessSettings.from_dict(data["settings"]),
                   None if cert is None else CertifySettings.from_dict(cert),
                   tuple(MethodProfile.from_dict(m) for m in data["methods"]), int(data["target"]),
                   float(data["elapsed"]))

