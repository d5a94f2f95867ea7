"""The app's export files (plain Python, no streamlit): JSON and CSV through :mod:`rrs.jsonio`.

A JSON export holds the page, the settings objects' ``to_dict()`` (read back with
``MapSettings.from_dict`` etc. they recompute the result), the provenance and the numbers.
"""
from __future__ import annotations

import csv
import io
import json

from rrs import jsonio

__all__ = ["to_json", "to_csv"]


def to_json(page: str, settings: dict, results: dict, provenance: dict) -> str:
    """A self-describing JSON export: page, settings (enough to recompute), numbers, provenance.

    ``settings`` values may be settings objects (written with their ``to_dict``)."""
    return jsonio.dumps({"rrs_export": 1, "page": page, "settings": settings, "provenance": provenance,
                         "results": results}, indent=2)


def to_csv(rows: list[dict], header: dict | None = None) -> str:
    """Rows as CSV; ``header`` entries become leading ``# key: value`` comment lines (JSON values)."""
    buf = io.StringIO()
    for key, value in (header or {}).items():
        buf.write(f"# {key}: {json.dumps(jsonio.plain(value), ensure_ascii=False)}\n")
    if rows:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: jsonio.plain(v) for k, v in r.items()})
    return buf.getvalue()
