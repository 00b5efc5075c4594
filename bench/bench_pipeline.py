"""Open a CT to a proposed plan: automatic anatomy, fracture assessment, check context and
proposals for every level of a 512 × 512 × 300 CT, stage by stage. Target (issues 4 and
21): at most 10 s in all, the assessment included.

The CT is the demo resampled to 512 × 512 × 300 (see `bench_checks._resampled`); the
figures are what a user waits for after the CT is loaded.
"""

from __future__ import annotations

import time

from bench.bench_checks import _resampled
from planning.anatomy.from_ct import anatomy_from_ct
from planning.assessment.fracture import assess_fractures
from planning.autoplan import propose
from planning.checks import CheckContext

TARGET_S = 10.0


def run() -> dict[str, float]:
    volume, _ = _resampled()
    stages: list[tuple[str, float]] = []
    t = time.perf_counter()
    anatomy = anatomy_from_ct(volume)
    stages.append(("anatomy from CT (canal, vertebrae, levels)", time.perf_counter() - t))
    t = time.perf_counter()
    grades = assess_fractures(volume, anatomy)
    stages.append((f"fracture assessment ({len(grades)} levels graded or not, with reasons)",
                   time.perf_counter() - t))
    t = time.perf_counter()
    ctx = CheckContext.build(volume, anatomy)
    stages.append(("check context (surfaces, distance grids)", time.perf_counter() - t))
    t = time.perf_counter()
    proposal = propose(volume, anatomy, ctx)
    stages.append(
        (f"proposals ({len(proposal.plan.trajectories)} needles)", time.perf_counter() - t)
    )
    total = sum(s for _, s in stages)
    print(
        f"\n## CT to proposed plan on {volume.size[0]} × {volume.size[1]} × {volume.size[2]}"
        f" ({len(anatomy.levels)} levels: {', '.join(anatomy.levels)})"
    )
    print("| stage | time |")
    print("|---|---|")
    for name, seconds in stages:
        print(f"| {name} | {seconds:.2f} s |")
    verdict = "meets" if total <= TARGET_S else "MISSES"
    print(f"| **total** | **{total:.2f} s** (≤ {TARGET_S:.0f} s: {verdict}) |")
    return {"pipeline_s": total}
