"""Automatic anatomy from CT alone on a 512 × 512 × 300 CT, with a per-stage breakdown.

The demo CT resampled as in `bench_checks` (0.49 mm pixels). Target (issue): ≤ 5 s on this
2-core machine. The reference in the same run is the label-map path on the demo's true
vertebra labels, which `anatomy_from_ct` ends with.
"""

from __future__ import annotations

import time

import numpy as np

from bench.bench_checks import TARGET_SHAPE, _resampled
from planning.anatomy import DEMO, LabelTable, anatomy_from_label_map
from planning.anatomy.from_ct import anatomy_from_ct
from planning.demo import LABEL_CODES
from planning.plan import LEVEL_NAMES
from planning.volume import Volume

TARGET_S = 5.0


def run() -> dict[str, float]:
    volume, truth = _resampled()
    stages: dict[str, float] = {}
    t = time.perf_counter()
    anatomy = anatomy_from_ct(volume, timings=stages)
    total = time.perf_counter() - t
    codes = [c for n, c in LABEL_CODES.items() if n in LEVEL_NAMES or n == "sacrum"]
    labels = Volume(np.where(np.isin(truth.labels, codes), truth.labels, 0).astype(np.int16),
                    truth.affine_lps)
    t = time.perf_counter()
    anatomy_from_label_map(volume, labels, LabelTable("demo vertebrae", DEMO.levels))
    reference = time.perf_counter() - t
    errors = {lv.name: float(np.linalg.norm(anatomy.levels[lv.name].centroid_lps
                                            - lv.centroid_lps))
              for lv in truth.levels if lv.name in anatomy.levels}
    print(f"\n## Anatomy from CT on {TARGET_SHAPE[2]} × {TARGET_SHAPE[1]} × {TARGET_SHAPE[0]}")
    print("| stage | s |\n|---|---|")
    for stage, seconds in stages.items():
        print(f"| {stage} | {seconds:.2f} |")
    print(f"| **total** | **{total:.2f}** (target ≤ {TARGET_S:.0f}) |")
    print(f"| reference: label-map path on true labels | {reference:.2f} |")
    print("level errors (mm): " + ", ".join(f"{k} {v:.1f}" for k, v in errors.items()))
    return {"anatomy_from_ct_s": total, "label_map_reference_s": reference}


if __name__ == "__main__":
    run()
