"""Automatic trajectories: time to propose every demo level given a built check context.

Runs on the demo CT (0.78 mm pixels) and on the same anatomy resampled to 512 × 512 × 300
(`bench.bench_checks._resampled`). Target: all 8 levels in ≤ 2 s. The reference in the
same run is the pedicle measurement alone, the part of the work every planner needs.
"""

from __future__ import annotations

import time

from bench.bench_checks import _resampled
from planning.anatomy.from_demo import anatomy_from_demo_truth
from planning.anatomy.pedicles import measure_pedicles
from planning.autoplan import propose
from planning.checks import CheckContext, Status
from planning.demo import generate_demo_ct

TARGET_S = 2.0


def _one(name: str, volume, truth) -> dict[str, float]:  # type: ignore[no-untyped-def]
    anatomy = anatomy_from_demo_truth(truth)
    ctx = CheckContext.build(volume, anatomy)
    t = time.perf_counter()
    measure_pedicles(anatomy)
    t_ped = time.perf_counter() - t
    t = time.perf_counter()
    proposal = propose(volume, anatomy, ctx)
    t_prop = time.perf_counter() - t
    statuses = [r.status for r in proposal.results.values()]
    safe = sum(s is Status.SAFE for s in statuses)
    worst = min(r.canal_clearance_mm for r in proposal.results.values())
    print(f"| {name} | {t_ped:.2f} s | {t_prop:.2f} s | "
          f"{'meets' if t_prop <= TARGET_S else 'MISSES'} | {len(statuses)} ({safe} safe) | "
          f"{worst:.1f} mm |")
    return {f"{name}_pedicles_s": t_ped, f"{name}_propose_s": t_prop}


def run() -> dict[str, float]:
    print("\n## Automatic trajectories (demo anatomy, 8 levels, given a built context)")
    print("| grid | pedicles only | propose (all) | ≤ 2 s | needles | min canal clearance |")
    print("|---|---|---|---|---|---|")
    out = _one("demo", *generate_demo_ct())
    out |= _one("512x512x300", *_resampled())
    return out


if __name__ == "__main__":
    run()
