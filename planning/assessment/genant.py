"""Genant's semi-quantitative fracture grades (Genant et al., J Bone Miner Res 1993).

In a module of their own because both the fracture assessment (`assessment.fracture`) and
the plausibility of its measurements (`assessment.body_plausibility`, which the assessment
imports) read the same thresholds.
"""

from __future__ import annotations

GENANT_MILD = 0.20
GENANT_MODERATE = 0.25
GENANT_SEVERE = 0.40
GENANT_CITATION = ("Genant HK, Wu CY, van Kuijk C, Nevitt MC. Vertebral fracture assessment "
                   "using a semiquantitative technique. J Bone Miner Res 1993;8:1137–1148.")
GRADE_NAMES = {0: "normal", 1: "mild", 2: "moderate", 3: "severe"}


def genant_grade(loss: float) -> int:
    """Genant's semi-quantitative grade of a fractional height loss (0.35 → 2)."""
    if loss > GENANT_SEVERE:
        return 3
    if loss >= GENANT_MODERATE:
        return 2
    if loss >= GENANT_MILD:
        return 1
    return 0
