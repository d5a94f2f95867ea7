"""The cheap single-budget version of the profile for the pages: every method attacked once at
one budget (e.g. the certified radius), one :class:`Panel` each (which top cells fell, the
clean and attacked maps, the attacked image, the label)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ... import checks
from ...settings import MapSettings, Norm
from ...smoothing import model_device
from .profile import _Method
from .settings import _TOL, RobustnessSettings

__all__ = ["Panel", "contrast"]


@dataclass(frozen=True)
class Panel:
    """One method attacked at one budget (:func:`contrast`): the image, the maps, the cells.

    ``top_cells``: the clean map's top-k; ``fallen``: those pushed out of the attacked map's
    top-k (smoothed maps: among the cells the clean map keeps under the same noise);
    ``overlap``/``floor``: attacked and no-attack top-k overlap; ``held``: no cell fell
    beyond the floor with the label kept."""

    settings: MapSettings
    epsilon: float
    norm: Norm
    k: int
    top_cells: tuple
    fallen: tuple
    clean_map: torch.Tensor
    attacked_map: torch.Tensor
    attacked_image: torch.Tensor
    label_kept: bool
    overlap: float
    floor: float
    spearman: float
    elapsed: float

    @property
    def lost(self) -> int:
        return len(self.fallen)

    @property
    def held(self) -> bool:
        return not (self.label_kept and self.overlap < self.floor - _TOL)


def contrast(model, x, methods, epsilon: float, settings: RobustnessSettings | None = None, *, target=None,
             references: dict | None = None, batch_size: int = 16, progress=None) -> tuple:
    """Every method attacked once at ``epsilon`` (the page's "raw vs certified" contrast).

    Raw maps stop as soon as every top-k cell is out. ``references``: optional
    ``{method: map}`` of clean maps already computed (e.g. the certified map at its ``T``),
    whose top-k cells are attacked. Returns one :class:`Panel` per method."""
    settings = RobustnessSettings() if settings is None else settings
    device = model_device(model)
    x = checks.image(x).detach().to(device)
    if target is None:
        with torch.no_grad():
            target = int(model(x).argmax(1))
    panels = []
    for i, s in enumerate(methods):
        t0 = time.perf_counter()
        ref = None if references is None else references.get(s.method)
        st = _Method(model, x, s, settings, int(target), batch_size, ref)
        r, overlap, fallen = st.run(float(epsilon), None, until_all=True)
        panels.append(Panel(s, float(epsilon), settings.norm, st.k, tuple(int(c) for c in st.top), fallen,
                            st.reference, r.attacked_map, r.x_adv, bool(r.label_preserved), overlap,
                            float(st.floor.topk_intersection), float(r.spearman), time.perf_counter() - t0))
        if progress is not None:
            progress(i + 1, len(methods))
    return tuple(panels)
