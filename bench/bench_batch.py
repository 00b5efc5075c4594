"""Batch planning throughput on Dask: studies per minute with 1 and 2 local workers, and the
memory a worker needs per study, so a reader can size a cluster (issue 24).

Four studies: the demo CT (512 × 512 × 293, 0.7 mm) written twice as separate series and
twice cropped to T11–L3; every level planned (``--levels all``) with the automatic anatomy,
the assessment, proposals and checks; no PDF.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _inputs(base: Path) -> list[Path]:
    from planning.demo import generate_demo_ct
    from planning.io.dicom_write import write_series

    volume, truth = generate_demo_ct()
    folders = []
    for copy in range(2):
        folder = base / f"demo{copy}"
        write_series(replace(volume, series_uid=f"1.2.826.0.1.3680043.10.1389.500.{copy}",
                             source_instances=()), folder)
        folders.append(folder)
    k = sorted(int(np.rint(volume.to_index(truth.level(n).centroid_lps)[2]))
               for n in ("T11", "L3"))
    lo, hi = max(k[0] - 20, 0), min(k[1] + 20, volume.array.shape[0])
    for copy in range(2):
        affine = volume.affine_lps.copy()
        affine[:3, 3] = volume.to_lps((0, 0, lo))
        crop = replace(volume, array=np.ascontiguousarray(volume.array[lo:hi]),
                       affine_lps=affine, source_instances=(),
                       series_uid=f"1.2.826.0.1.3680043.10.1389.501.{copy}")
        folder = base / f"crop{copy}"
        write_series(crop, folder)
        folders.append(folder)
    return folders


def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        inputs = _inputs(tmp)
        rows = []
        for workers in (1, 2):
            out = tmp / f"out{workers}"
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "app.cli", "batch", *map(str, inputs),
                                   "-o", str(out), "--levels", "all", "--workers",
                                   str(workers)], capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - t0
            if done.returncode != 0:
                print(done.stdout, done.stderr)
            results = [json.loads(p.read_text()) for p in (out / "done").glob("*.json")]
            per_study = [r["seconds"] for r in results]
            peak = max(r["worker_peak_rss_mb"] for r in results)
            rate = 60 * len(inputs) / seconds
            rows.append((workers, seconds, rate, float(np.median(per_study)), peak))
            figures[f"studies_per_min_{workers}"] = rate
            figures[f"worker_peak_mb_{workers}"] = peak
    print(f"\n## Batch planning on Dask: {len(inputs)} studies (2 × demo CT 512 × 512 × 293, "
          "2 × T11–L3 crop), every level, LocalCluster")
    print("| workers | wall s (with cluster start) | studies/min | median s per study | "
          "peak worker RSS MB |")
    print("|---|---|---|---|---|")
    for workers, seconds, rate, median, peak in rows:
        print(f"| {workers} | {seconds:.1f} | {rate:.1f} | {median:.1f} | {peak:.0f} |")
    return figures
