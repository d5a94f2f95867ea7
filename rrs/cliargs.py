"""Value parsers for ``argparse`` options shared by the command lines (``rrs.cli`` and
``rrs.study.cli``): each returns the clean value or raises ``argparse.ArgumentTypeError`` with a
one-line message naming what the value must be."""
from __future__ import annotations

import argparse
import math
from fractions import Fraction

__all__ = ["positive_int", "positive_float", "count_or_fraction", "probability", "betas"]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def count_or_fraction(text: str) -> float:
    """``k``-like values: an integer count ≥ 1, or a fraction in (0, 1) of the cells."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a count ≥ 1 or a fraction in (0, 1), got {text!r}") from None
    if not math.isfinite(value) or value <= 0 or (value >= 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError(f"must be a count ≥ 1 or a fraction in (0, 1), got {text!r}")
    return value


def probability(text: str) -> float:
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def betas(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(b) for b in str(text).replace(" ", "").split(",") if b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers in (0, 1], got {text!r}") from None
    if not values or any(not (0 < b <= 1) for b in values):
        raise argparse.ArgumentTypeError(f"every β must be in (0, 1], got {text!r}")
    return values
