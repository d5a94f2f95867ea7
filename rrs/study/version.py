"""The code version stamped on every stored job, so rows computed by older code are never
mixed into a report.

:func:`code_version` is ``"<rrs.__version__>+<12 hex digits>"``: a SHA-256 over the ``rrs``
package's ``*.py`` files (each file's path relative to the package, then its bytes, in sorted
path order), less :data:`PRESENTATION` — modules that only read, print or draw stored rows and
cannot change a number in them. Not hashed: model weights and images (a job names them), the
installed libraries (torch, numpy: the report lists their versions), ``ui/`` and the docs.
Any other edit under ``rrs/`` — a comment included — makes the stored rows stale: simple and
deterministic, at the price of sometimes recomputing a row that would not have changed.

The runner (:func:`rrs.study.runner.run_grid`) reuses only jobs of the current version; the
report (:func:`rrs.study.report.write_outputs`) refuses rows of any other
(:func:`check_current`).
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from .config import EvaluationError

__all__ = ["PACKAGE", "PRESENTATION", "code_version", "hashed_files", "stale_count", "check_current"]

#: The ``rrs`` package directory.
PACKAGE = Path(__file__).resolve().parents[1]
#: Paths (relative to the package) left out of the hash: they only present stored rows.
PRESENTATION = frozenset({"__main__.py", "cli/__init__.py", "cli/attack.py", "cli/certify.py", "cli/common.py",
                          "cli/maps.py", "cli/robustness.py", "cliargs.py", "figures.py", "study/__main__.py",
                          "study/cli.py", "study/decisive.py", "study/matched.py", "study/plan.py", "study/plots.py",
                          "study/report.py", "study/sections.py", "study/stats.py",
                          "study/version.py"})


def hashed_files(package: Path = PACKAGE) -> list[Path]:
    """The files :func:`code_version` hashes, in hashing order."""
    return sorted((p for p in package.rglob("*.py")
                   if p.relative_to(package).as_posix() not in PRESENTATION and "__pycache__" not in p.parts),
                  key=lambda p: p.relative_to(package).as_posix())


@functools.lru_cache(maxsize=None)
def code_version(package: Path = PACKAGE) -> str:
    """``"<rrs version>+<hash of the result-determining sources>"`` (computed once per process)."""
    from .. import __version__
    h = hashlib.sha256()
    for p in hashed_files(package):
        h.update(p.relative_to(package).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return f"{__version__}+{h.hexdigest()[:12]}"


def stale_count(rows, current: str | None = None) -> int:
    """How many rows (a DataFrame with a ``code`` column) were not computed by ``current``
    (default :func:`code_version`); rows without the column or the value count as stale."""
    current = code_version() if current is None else current
    if rows is None or len(rows) == 0:
        return 0
    if "code" not in rows:
        return len(rows)
    return int((rows["code"] != current).sum())


def check_current(rows, command: str = "evaluate", current: str | None = None) -> None:
    """Raise :class:`~rrs.study.config.EvaluationError` unless every row was computed by the
    current code version; the message says how many are stale and the command that recomputes them."""
    current = code_version() if current is None else current
    n = stale_count(rows, current)
    if n:
        old = sorted({str(v) for v in rows["code"].dropna()} - {current}) if "code" in rows else []
        raise EvaluationError(
            f"{n} of {len(rows)} result rows were computed by another code version "
            f"({', '.join(old) if old else 'unrecorded'}; this code is {current}), and a report never mixes "
            f"versions: recompute them with `python -m rrs {command}` (resuming recomputes exactly the stale "
            "jobs and reuses the rest).")
