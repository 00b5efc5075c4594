"""Per-level clinical assessment of the spine for vertebroplasty planning.

Fractures (body heights, Genant grade and shape, retropulsion, intravertebral cleft,
endplate disruption) and the cement-leakage risk flags that follow from them and from the
planned needle tips. Everything is measured in each vertebra's own frame and returned in
LPS millimetres.
"""

from __future__ import annotations

from planning.assessment.fracture import (
    BodyHeights,
    FractureAssessment,
    HeightLoss,
    assess_fractures,
    fractured_levels_first,
    genant_grade,
)
from planning.assessment.fracture_findings import Cleft, EndplateDisruption, Retropulsion
from planning.assessment.leakage import LeakageFlag, leakage_flags, present_flags

__all__ = [
    "BodyHeights",
    "Cleft",
    "EndplateDisruption",
    "FractureAssessment",
    "HeightLoss",
    "LeakageFlag",
    "Retropulsion",
    "assess_fractures",
    "fractured_levels_first",
    "genant_grade",
    "leakage_flags",
    "present_flags",
]
