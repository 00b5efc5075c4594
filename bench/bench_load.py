"""CT series loading: VertebroPlan's loader against SimpleITK's ImageSeriesReader.

Same files, same run, alternating order, page cache warm for both (a first untimed read of
each). Target (issue 2): our wall time at most 0.8 × SimpleITK's on 512 × 512 × 300.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np

from bench.make_series import make_bench_series
from planning.io import load_path

TARGET_RATIO = 0.8
REPEATS = 5


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "vertebroplan" / "bench-series-512x512x300"


def _load_ours(folder: Path) -> np.ndarray:
    return load_path(folder).array


def _load_sitk(folder: Path) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def run() -> dict[str, float]:
    folder = make_bench_series(_cache_dir())
    ours_arr, sitk_arr = _load_ours(folder), _load_sitk(folder)  # warm-up, and a check
    same = np.array_equal(ours_arr, sitk_arr.astype(np.int16))
    ours, ref = [], []
    for _ in range(REPEATS):
        t = time.perf_counter()
        _load_ours(folder)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        _load_sitk(folder)
        ref.append(time.perf_counter() - t)
    m_ours, m_ref = statistics.median(ours), statistics.median(ref)
    ratio = m_ours / m_ref
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print("\n## Load a 512 × 512 × 300 CT series (median of 5, warm page cache)")
    print("| reader | median s | min s | max s |")
    print("|---|---|---|---|")
    print(f"| VertebroPlan (pydicom) | {m_ours:.3f} | {min(ours):.3f} | {max(ours):.3f} |")
    print(f"| SimpleITK ImageSeriesReader | {m_ref:.3f} | {min(ref):.3f} | {max(ref):.3f} |")
    print(f"ratio {ratio:.2f} (target ≤ {TARGET_RATIO}: {verdict}); identical voxels: {same}")
    return {"ours_s": m_ours, "sitk_s": m_ref, "ratio": ratio}
