"""Write a large synthetic CT series (512 × 512 × N) for loading benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from planning.io.dicom_write import write_series
from planning.volume import Volume


def make_bench_series(out_dir: Path, slices: int = 300, size: int = 512) -> Path:
    """A CT-like volume (body ellipse, noise) written as ``slices`` DICOM files; cached."""
    marker = out_dir / ".complete"
    if marker.exists():
        return out_dir
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size]
    body = ((xx - size / 2) / (0.42 * size)) ** 2 + ((yy - size / 2) / (0.32 * size)) ** 2 < 1
    base = np.where(body, 40, -1000).astype(np.int16)
    arr = np.empty((slices, size, size), dtype=np.int16)
    for k in range(slices):
        arr[k] = base + rng.integers(-20, 20, (size, size), dtype=np.int16)
    affine = np.diag([0.7, 0.7, 1.0, 1.0])
    affine[:3, 3] = [-179.0, -179.0, -150.0]
    write_series(Volume(arr, affine), out_dir, series_description="bench")
    marker.touch()
    return out_dir
