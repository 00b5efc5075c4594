"""DRR (simulated fluoroscopy) on the 512 × 512 × 300 demo CT: AP and lateral, 512² images.

Target (issue 7): ≤ 1 s per 512 × 512 DRR on 2 cores, no GPU. The attenuation volume
(HU → mu, ~2 mm block mean) is built once per CT and reported separately. Reference: the
same projection by a naive ray march (map_coordinates along every ray) on a 64² detector,
scaled to 512², to show what the plane sweep saves.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from scipy import ndimage

from bench.bench_checks import TARGET_SHAPE, _resampled
from planning.drr import AttenuationVolume, DrrGeometry, render_drr
from planning.volume import inverse_affine

TARGET_S = 1.0
RUNS = 3


def _naive(att: AttenuationVolume, geometry: DrrGeometry, size_px: int) -> float:
    """Seconds for a per-ray march (1 mm steps, map_coordinates) on a size_px² detector."""
    g = DrrGeometry(geometry.source_lps, geometry.detector_centre_lps, geometry.detector_u_lps,
                    geometry.detector_v_lps, size_px, size_px,
                    geometry.pixel_mm * geometry.width_px / size_px)
    t = time.perf_counter()
    yx = np.indices((size_px, size_px)).reshape(2, -1).T[:, ::-1].astype(float)
    ends = g.pixel_to_lps(yx)
    inv = inverse_affine(att.affine_lps)
    steps = np.arange(0.0, 1.0, 1.0 / g.source_to_detector_mm)
    for row in np.array_split(np.arange(len(ends)), 16):
        pts = g.source_lps + steps[None, :, None] * (ends[row] - g.source_lps)[:, None, :]
        ijk = pts @ inv[:3, :3].T + inv[:3, 3]
        ndimage.map_coordinates(att.mu_per_mm, ijk[..., ::-1].reshape(-1, 3).T, order=1,
                                prefilter=False)
    return time.perf_counter() - t


def run() -> dict[str, float]:
    volume, truth = _resampled()
    t = time.perf_counter()
    att = AttenuationVolume.from_volume(volume)
    t_pre = time.perf_counter() - t
    target = np.mean([lv.centroid_lps for lv in truth.levels], axis=0)
    views = {"AP": (0.0, -1.0, 0.0), "lateral": (1.0, 0.0, 0.0)}
    print(f"\n## DRR 512 × 512 from {TARGET_SHAPE[2]} × {TARGET_SHAPE[1]} × {TARGET_SHAPE[0]}"
          f" CT (attenuation grid {att.mu_per_mm.shape[::-1]}, "
          f"{np.round(att.spacing_mm, 2).tolist()} mm)")
    print("| step | time | target |")
    print("|---|---|---|")
    print(f"| attenuation volume (once per CT) | {t_pre:.2f} s | — |")
    out = {"precompute_s": t_pre}
    for name, beam in views.items():
        geometry = DrrGeometry.looking_at(target, beam)
        render_drr(att, geometry)  # warm-up
        times = []
        for _ in range(RUNS):
            t = time.perf_counter()
            render_drr(att, geometry)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        naive = _naive(att, geometry, 64) * (512 / 64) ** 2
        print(f"| {name} DRR, median of {RUNS} | {med:.2f} s | ≤ {TARGET_S} s: "
              f"{'meets' if med <= TARGET_S else 'MISSES'} |")
        print(f"| {name}, naive per-ray march (64² scaled to 512²) | {naive:.1f} s | reference |")
        out[f"{name}_s"] = med
    return out
