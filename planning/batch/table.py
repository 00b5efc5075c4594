"""The results table of a batch: every study's rows, written as Parquet and CSV together.

Written from the per-study result files each time, so a rerun that adds studies rewrites the
whole table, and a table is never half written (each file is replaced whole).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from planning.atomic_file import atomic_open
from planning.batch.rows import COLUMNS

DONE_DIR = "done"


def done_keys(outdir: Path) -> set[str]:
    """The studies planned already, for a resumed batch (a failed study is tried again)."""
    return {str(r["task"]["key"]) for r in read_results(outdir) if r.get("status") == "done"}


def write_result(outdir: Path, key: str, result: dict[str, Any]) -> Path:
    """One study's result, written whole or not at all (so a killed worker leaves none)."""
    final = outdir / DONE_DIR / f"{key}.json"
    with atomic_open(final, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(result, indent=1))
    return final


def read_results(outdir: Path) -> list[dict[str, Any]]:
    folder = outdir / DONE_DIR
    results = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        results.append(json.loads(path.read_text(encoding="utf-8")))
    return results


def write_tables(outdir: Path) -> tuple[Path, Path, int]:
    """``results.parquet`` and ``results.csv`` from every finished study; returns both paths
    and the number of rows."""
    import pandas as pd

    rows = [row for result in read_results(outdir) for row in result.get("rows", [])]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("genant_grade", "needles_planned"):
        frame[column] = frame[column].astype("Int64")
    for column in ("names_uncertain", "fractured"):
        frame[column] = frame[column].astype("boolean")
    parquet, csv = outdir / "results.parquet", outdir / "results.csv"
    with atomic_open(parquet) as handle:
        frame.to_parquet(handle, index=False)
    with atomic_open(csv, "w", encoding="utf-8") as handle:
        frame.to_csv(handle, index=False)
    return parquet, csv, len(frame)
