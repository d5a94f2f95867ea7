"""The one-line story of a raw-versus-certified contrast, computed from its numbers."""
from __future__ import annotations

__all__ = ["sentence"]


def _cells(n: int) -> str:
    return f"{n} cell" + ("s" if n != 1 else "")


def sentence(raw_lost: int, k: int, provable: int, smoothed_lost: int = 0, *, kept_up_to: float | None = None,
             broken: bool = True) -> str:
    """The one-line story from the numbers, e.g. "At this size of change the raw map lost all 5
    of its top cells; the smoothed map provably keeps 1 and in fact kept all 5 up to 1.3".

    Args:
        raw_lost: top-k cells the raw map lost at this budget; ``k``: the top-k size.
        provable: smoothed map's cells certified at this budget (per-cell radii above it).
        smoothed_lost: the smoothed map's cells pushed out at this budget (confirmed).
        kept_up_to: the largest budget at which the smoothed map kept all its cells (its
            held radius); ``broken``: whether a larger budget broke it (else "not broken up to").
    """
    raw = ("lost all " + str(k) if raw_lost >= k else f"lost {raw_lost} of {k}" if raw_lost else
           f"kept all {k}")
    out = f"At this size of change the raw map {raw} of its top cells; the smoothed map "
    out += (f"provably keeps {provable}" if provable else "has no guarantee for any cell at this size")
    if smoothed_lost:
        out += f" and lost {smoothed_lost} of {k} to the attack"
    elif kept_up_to is not None:
        up = f"{kept_up_to:.2g}"
        out += (f" and in fact kept all {k} up to {up}" if broken else
                f" and in fact kept all {k} up to {up}, the largest change tried")
    else:
        out += f" and in fact kept all {k}"
    return out + "."
