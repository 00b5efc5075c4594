"""Child of `bench memory`: plans a CT from its DICOM folder in a fresh process and prints
its resident memory (baseline after the imports, peak) as JSON. A fresh process, because
the peak resident size of one that has done other work says nothing."""

from __future__ import annotations

import json
import sys
import time


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> int:
    from planning.anatomy.from_ct import anatomy_from_ct
    from planning.assessment.levels import assess_levels
    from planning.autoplan import propose
    from planning.checks import CheckContext, check
    from planning.drr import AttenuationVolume
    from planning.io import load_path
    from planning.surface import extract_bone_surface

    baseline = _status_kb("VmRSS")
    stages = {}
    t = time.perf_counter()
    volume = load_path(sys.argv[1])
    stages["load"] = _status_kb("VmHWM")
    anatomy = anatomy_from_ct(volume)
    stages["anatomy"] = _status_kb("VmHWM")
    ctx = CheckContext.build(volume, anatomy)
    stages["check context"] = _status_kb("VmHWM")
    proposal = propose(volume, anatomy, ctx)
    for t_ in proposal.plan.trajectories:
        check(t_, ctx, proposal.plan)
    stages["proposals and checks"] = _status_kb("VmHWM")
    assess_levels(volume, anatomy, proposal.plan.trajectories)
    stages["level assessment"] = _status_kb("VmHWM")
    extract_bone_surface(volume)
    stages["bone surface"] = _status_kb("VmHWM")
    AttenuationVolume.from_volume(volume)
    stages["DRR attenuation volume"] = _status_kb("VmHWM")
    print(json.dumps({"baseline_kb": baseline, "peak_kb": _status_kb("VmHWM"),
                      "stages_kb": stages, "volume_bytes": int(volume.array.nbytes),
                      "shape": list(volume.array.shape),
                      "needles": len(proposal.plan.trajectories),
                      "seconds": time.perf_counter() - t}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
