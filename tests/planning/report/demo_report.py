"""Test helper: the plan report's demo case — the automatic plan for T12–L2 on the demo CT
with L2's right needle re-aimed into the canal (one unsafe verdict), and what the report is
told besides (planner, version, a warning, a stand-in 3-D picture)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from PIL import Image

from planning.anatomy import Anatomy
from planning.checks import CheckResult
from planning.plan import Plan, Side
from planning.volume import Volume

LEVELS = ["T12", "L1", "L2"]
VERSION = "0.1.0-test"
PLANNER = "Dr Test Planner"
WARNING = "The anatomy comes from the demo CT's ground truth."


class DemoPlan(NamedTuple):
    volume: Volume
    anatomy: Anatomy
    plan: Plan
    results: Mapping[tuple[str, Side], CheckResult]


def unsafe_into_canal(plan: Plan, anatomy: Anatomy, level: str) -> Plan:
    """The right needle of ``level`` re-aimed from its entry to the canal's centre."""
    geo = anatomy.levels[level]
    k, j, i = np.nonzero(anatomy.canal)
    canal_lps = anatomy.to_lps(np.stack([i, j, k], 1).astype(np.float64))
    local = geo.to_local(canal_lps)
    near = canal_lps[(np.abs(local[:, 2]) < 3.0) & (np.abs(local[:, 0]) < 15.0)]
    t = plan.get(level, Side.RIGHT)
    assert t is not None and len(near)
    return plan.with_trajectory(t.moved(target_lps=near.mean(axis=0)))


def demo_plan(volume: Volume, truth: object) -> DemoPlan:
    """The demo CT's proposal for `LEVELS`, L2 right into the canal, and every check."""
    from planning.anatomy import anatomy_from_demo_truth
    from planning.autoplan import propose
    from planning.checks import CheckContext, check

    anatomy = anatomy_from_demo_truth(truth)
    ctx = CheckContext.build(volume, anatomy)
    proposal = propose(volume, anatomy, ctx, LEVELS)
    assert proposal.plan.levels == tuple(LEVELS)
    plan = unsafe_into_canal(proposal.plan, anatomy, "L2")
    results = {t.key: check(t, ctx, plan) for t in plan.trajectories}
    return DemoPlan(volume, anatomy, plan, MappingProxyType(results))


def stand_in_snapshot() -> bytes:
    """A plain PNG where the 3-D picture goes: the page layout with a snapshot."""
    out = io.BytesIO()
    Image.new("RGB", (600, 450), (40, 60, 90)).save(out, format="PNG")
    return out.getvalue()
