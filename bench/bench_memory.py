"""Peak memory while planning a 512 × 512 × 300 CT, from its DICOM folder to proposals,
checks, the level assessment, the bone surface and the DRR volume. Target (issue 10): at
most 4 × the volume's int16 size above the process's footprint after its imports.

The CT is the demo resampled to 512 × 512 × 300 and written as DICOM once (cached); the
plan is made in a fresh process (`bench.memory_child`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.bench_checks import _resampled
from planning.demo.cache import cache_root
from planning.io.dicom_write import write_series
from planning.result_memo import DEFAULT_BUDGET_MB

FACTOR = 4.0


def series_folder() -> Path:
    folder = cache_root() / "bench-demo-512x512x300"
    marker = folder / ".complete"
    if not marker.exists():
        volume, _ = _resampled()
        write_series(volume, folder, series_description="bench 512")
        marker.touch()
    return folder


def run() -> dict[str, float]:
    folder = series_folder()
    # as the app runs: with the memo of derived results (which `bench` turns off)
    env = {**os.environ, "VERTEBROPLAN_MEMO_MB": str(DEFAULT_BUDGET_MB)}
    out = subprocess.run([sys.executable, "-m", "bench.memory_child", str(folder)],
                         capture_output=True, text=True, check=True, env=env)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    mb = 1024.0
    volume_mb = r["volume_bytes"] / 2**20
    used = (r["peak_kb"] - r["baseline_kb"]) / mb
    limit = FACTOR * volume_mb
    print(f"\n## Peak memory planning a {' × '.join(map(str, r['shape'][::-1]))} CT "
          f"(int16 volume {volume_mb:.0f} MB; {r['needles']} needles; {r['seconds']:.0f} s)")
    print("| after | peak resident above the imports |")
    print("|---|---|")
    for stage, kb in r["stages_kb"].items():
        print(f"| {stage} | {(kb - r['baseline_kb']) / mb:.0f} MB "
              f"({(kb - r['baseline_kb']) / mb / volume_mb:.1f} × the volume) |")
    mark = "" if used <= limit else "  ← above the target"
    print(f"| **peak** | **{used:.0f} MB = {used / volume_mb:.2f} × the volume** "
          f"(target ≤ {FACTOR:.0f} × = {limit:.0f} MB){mark} |")
    print(f"Imports alone: {r['baseline_kb'] / mb:.0f} MB resident.")
    return {"peak_mb": used, "ratio": used / volume_mb}
