"""The job store: one JSON file per finished job under ``<out>/jobs/<key>.json``.

Files are written atomically with :func:`rrs.jsonio.write` (a crash never leaves half a file);
a damaged or foreign file is treated as missing and recomputed. ``rrs.jsonio`` writes
non-finite numbers as the strings ``"inf"``, ``"-inf"`` and ``"nan"``; :func:`load_job` turns
row values back into floats. Each job carries the code version that computed it (``code``,
:mod:`rrs.study.version`); :func:`load_job` returns it whatever it is, the runner and the report
decide what a stale one means. :func:`row` builds one result row (the columns every table uses).
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import jsonio

__all__ = ["job_path", "save_job", "load_job", "append_run", "read_runs", "rows_frame", "load_rows",
           "load_summary", "DEFAULT_RESULTS", "row"]

#: The repository's stored study (docs/results), the default of the readers below.
DEFAULT_RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def job_path(out, key: str) -> Path:
    return Path(out) / "jobs" / f"{key}.json"


def save_job(out, result: dict) -> None:
    path = job_path(out, result["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonio.write(path, result)


def _number(v):
    return float(v) if isinstance(v, str) and v in ("inf", "-inf", "nan") else v


def load_job(out, key: str) -> dict | None:
    """The stored result of job ``key``, or ``None`` (missing, damaged or another job's)."""
    path = job_path(out, key)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("rows"), list):
        return None
    for r in data["rows"]:
        r["value"] = _number(r.get("value"))
    return data


def append_run(out, run: dict) -> None:
    """Append one run record to ``<out>/runs.jsonl``."""
    with open(Path(out) / "runs.jsonl", "a", encoding="utf-8") as fh:
        fh.write(jsonio.dumps(run, indent=None) + "\n")


def read_runs(out) -> list[dict]:
    path = Path(out) / "runs.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def rows_frame(results: list[dict]):
    """All result rows of the given job results as one pandas DataFrame, each with its job's
    ``code`` version (``None`` for jobs stored before versions were recorded)."""
    import pandas as pd
    return pd.DataFrame([dict(r, code=res.get("code")) for res in results for r in res["rows"]])


def load_rows(path=None):
    """Every stored result row under ``path/jobs`` (or ``path/rows.csv``) as a DataFrame
    (default: the repository's ``docs/results``); ``None`` when there are none."""
    import pandas as pd
    path = DEFAULT_RESULTS if path is None else Path(path)
    files = sorted((path / "jobs").glob("*.json")) if (path / "jobs").is_dir() else []
    if files:
        results = [load_job(path, f.stem) for f in files]
        return rows_frame([r for r in results if r is not None])
    if (path / "rows.csv").exists():
        return pd.read_csv(path / "rows.csv")
    return None


def load_summary(path=None):
    """The stored summary table for the app's Compare page, or ``None`` when there is none.

    ``path``: the results directory (or its ``summary.csv``); default the repository's
    ``docs/results``. Columns: experiment, method, cell, T, norm, budget, attack, certificate,
    beta, metric, mean, ci_low, ci_high, n (number of images; the CI is a t-interval over
    per-image means of the seeds, see docs/results.md).
    """
    import pandas as pd
    path = DEFAULT_RESULTS if path is None else Path(path)
    csv = path / "summary.csv" if path.is_dir() else path
    if not csv.exists():
        return None
    try:
        df = pd.read_csv(csv)
    except (OSError, ValueError):
        return None
    return df if len(df) else None


def row(job: dict, experiment: str, metric: str, value, **extra) -> dict:
    """One result row: the setting's columns, the metric and its value (plus ``extra``)."""
    m, a = job.get("map", {}), job.get("attack", {})
    r = {"experiment": experiment, "image": job.get("image"), "method": job.get("method"),
         "cell": m.get("cell"), "T": m.get("samples"), "seed": job.get("seed"), "norm": a.get("norm"),
         "budget": a.get("epsilon"), "attack": job.get("strength"), "certificate": None, "beta": None,
         "metric": metric, "value": None if value is None else float(value)}
    r.update(extra)
    return r
