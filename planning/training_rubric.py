"""The training rubric, and the score of one needle of an attempt against the reference.

Why apart from `planning.training` (cases, their reference and the attempt's total): how a
single needle earns its points, and why it fails, is the part a trainee and a teacher argue
about; it reads only the two needles, the needle's check and the `Rubric`, so it can be read
and tested without a case, a CT or an anatomy. Safety comes first: a needle the checks call
unsafe, or one that enters the spinal canal at all, scores nothing and fails however close
it is. Every function is pure: the same needles always get the same score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from planning.check_result import CheckResult, Status, breach_grade
from planning.checks import reason_text
from planning.plan import Side, Trajectory

SAFE_GRADE = breach_grade(0.0)
"""The canal breach grade of a needle that stays out of the canal ("A")."""


# ---- the rubric --------------------------------------------------------------------------
@dataclass(frozen=True)
class Rubric:
    """How an attempt is scored: thresholds (mm, degrees) and points, with why.

    Each reference needle is worth ``tip_points + entry_points + angle_points`` (100). A
    part earns its full points up to its ``*_full`` error and nothing from its ``*_zero``
    error, linearly in between: a smooth scale that rewards getting closer without
    punishing the last millimetre of measurement noise.
    """

    tip_points: float = 40.0
    """The tip decides where the cement goes: it weighs most."""
    tip_full_mm: float = 3.0
    """About one needle diameter (11G: 3.05 mm): closer than this is as good as the
    reference, and below the accuracy fluoroscopic guidance can promise."""
    tip_zero_mm: float = 12.0
    """About the width of a lumbar pedicle: a tip this far off is in another place."""
    entry_points: float = 30.0
    entry_full_mm: float = 3.0
    """As for the tip. The entry error is how far the needle, extended back out of the
    patient, passes from the reference entry point: an entry marked on the skin instead of
    on the bone along the same path costs nothing."""
    entry_zero_mm: float = 12.0
    angle_points: float = 30.0
    angle_full_deg: float = 3.0
    """About the precision of a C-arm angle set by hand."""
    angle_zero_deg: float = 15.0
    """The spread of medial angles between levels (≈ 10–25°): beyond this the needle
    follows another path through the pedicle."""
    pass_percent: float = 70.0
    """Roughly every needle within 5–6 mm and 6–7° of the reference."""

    def __post_init__(self) -> None:
        for name, full, zero in (("tip", self.tip_full_mm, self.tip_zero_mm),
                                 ("entry", self.entry_full_mm, self.entry_zero_mm),
                                 ("angle", self.angle_full_deg, self.angle_zero_deg)):
            if not 0.0 <= full < zero:
                raise ValueError(f"Rubric: the {name} error for full points ({full}) must be "
                                 f"below the error for none ({zero})")
        points = (self.tip_points, self.entry_points, self.angle_points)
        if min(points) < 0.0 or sum(points) <= 0.0:
            raise ValueError("Rubric: points must be ≥ 0 and add up to more than 0")
        if not 0.0 <= self.pass_percent <= 100.0:
            raise ValueError(f"Rubric: pass_percent must be 0–100, got {self.pass_percent}")

    @property
    def needle_points(self) -> float:
        """What one reference needle is worth."""
        return self.tip_points + self.entry_points + self.angle_points

    def describe(self) -> list[str]:
        """The rubric as plain sentences, for the training panel and the trainee report."""
        return [
            f"Each needle of the reference plan is worth {self.needle_points:g} points: "
            f"tip position {self.tip_points:g}, entry {self.entry_points:g}, "
            f"angle {self.angle_points:g}.",
            f"Tip: all {self.tip_points:g} points within {self.tip_full_mm:g} mm of the "
            f"reference tip, falling evenly to 0 at {self.tip_zero_mm:g} mm.",
            f"Entry: all {self.entry_points:g} points when the needle, extended back out of "
            f"the patient, passes within {self.entry_full_mm:g} mm of the reference entry "
            f"point, falling evenly to 0 at {self.entry_zero_mm:g} mm.",
            f"Angle: all {self.angle_points:g} points within {self.angle_full_deg:g}° of the "
            f"reference direction, falling evenly to 0 at {self.angle_zero_deg:g}°.",
            "Safety first: a needle the checks find unsafe, or one that enters the spinal "
            f"canal at all (breach grade worse than {SAFE_GRADE}), scores 0 and fails, "
            "however close it is to the reference.",
            "A reference needle that is not placed scores 0 and fails. A needle where the "
            "reference has none earns nothing, and fails the attempt if it is unsafe.",
            f"Pass: at least {self.pass_percent:g} % of the points and no failed needle.",
            "Cautions (e.g. a tip near the anterior cortex) are reported but cost no points. "
            "The time taken is reported, not scored: safety and accuracy come before speed.",
        ]

    def to_json(self) -> dict[str, float]:
        """Every threshold and weight by its field name (the rubric is only numbers)."""
        return asdict(self)


DEFAULT_RUBRIC = Rubric()


def _linear_points(error: float, full: float, zero: float, points: float) -> float:
    """``points`` up to ``full``, 0 from ``zero``, linear in between."""
    if error <= full:
        return points
    if error >= zero:
        return 0.0
    return points * (zero - error) / (zero - full)


# ---- the score ---------------------------------------------------------------------------
@dataclass(frozen=True)
class NeedleScore:
    """One needle of the attempt against the reference (or an extra needle, without one).

    Errors are in mm and degrees; ``clearance_mm``, ``grade`` and ``status`` come from the
    attempt needle's check. ``reasons`` explain the points and a failure in words.
    """

    level: str
    side: Side
    reference: Trajectory | None
    attempt: Trajectory | None
    entry_error_mm: float | None
    tip_error_mm: float | None
    angle_error_deg: float | None
    clearance_mm: float | None
    grade: str | None
    status: Status | None
    points: float
    max_points: float
    failed: bool
    reasons: tuple[str, ...]
    tip_points: float = 0.0
    entry_points: float = 0.0
    angle_points: float = 0.0

    @property
    def label(self) -> str:
        """"Left L2"."""
        return f"{self.side.value.capitalize()} {self.level}"

    @property
    def is_extra(self) -> bool:
        """Placed where the reference has no needle."""
        return self.reference is None

    @property
    def failure(self) -> str:
        """Why the needle failed in two or three words ("canal breach, grade C"), or ""."""
        if not self.failed:
            return ""
        if self.attempt is None:
            return "not placed"
        if self.grade is not None and self.grade != SAFE_GRADE:
            return f"canal breach, grade {self.grade}"
        if self.status is None:
            return "not checked"
        return "unsafe"

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 2)

        def needle(t: Trajectory | None) -> dict[str, Any] | None:
            if t is None:
                return None
            return {"entry_lps": [r(v) for v in t.entry_lps],
                    "target_lps": [r(v) for v in t.target_lps], "gauge": t.gauge}

        return {
            "level": self.level,
            "side": self.side.value,
            "entry_error_mm": r(self.entry_error_mm),
            "tip_error_mm": r(self.tip_error_mm),
            "angle_error_deg": r(self.angle_error_deg),
            "clearance_mm": r(self.clearance_mm),
            "grade": self.grade,
            "status": None if self.status is None else self.status.value,
            "points": self.points,
            "max_points": self.max_points,
            "tip_points": self.tip_points,
            "entry_points": self.entry_points,
            "angle_points": self.angle_points,
            "failed": self.failed,
            "reasons": list(self.reasons),
            "reference": needle(self.reference),
            "attempt": needle(self.attempt),
        }


def angle_between_deg(a: Trajectory, b: Trajectory) -> float:
    """Angle between two needles' directions in degrees (0–180), stable near 0."""
    u, v = a.direction, b.direction
    return math.degrees(math.atan2(float(np.linalg.norm(np.cross(u, v))), float(u @ v)))


def entry_error_mm(reference: Trajectory, attempt: Trajectory) -> float:
    """How far the attempt's needle, extended back out of the patient beyond its entry,
    passes from the reference entry point (mm).

    The ray runs from the attempt's tip back through its entry and on; the nearest point
    of the ray to the reference entry is taken, so an entry marked further out along the
    same path (on the skin instead of the bone) gives no error.
    """
    back = -attempt.direction
    d = reference.entry - attempt.target
    s = max(0.0, float(d @ back))
    return float(np.linalg.norm(d - s * back))


def _safety_failure(result: CheckResult) -> list[str]:
    """Why a checked needle fails on safety, in words (empty when it does not)."""
    breach = result.breach_grade != SAFE_GRADE
    if not breach and result.status is not Status.UNSAFE:
        return []
    if breach:
        head = (f"Enters the spinal canal by {-result.canal_clearance_mm:.1f} mm (grade "
                f"{result.breach_grade}): a canal breach fails the needle whatever else")
    else:
        head = "Unsafe: an unsafe needle fails whatever else"
    others = [reason_text(result, text) for text in result.reasons
              if "enters the spinal canal" not in text]  # said in the first sentence
    return [head, *others]


def score_needle(ref: Trajectory, att: Trajectory | None, result: CheckResult | None,
                  rubric: Rubric) -> NeedleScore:
    max_points = rubric.needle_points
    if att is None:
        return NeedleScore(ref.level, ref.side, ref, None, None, None, None, None, None, None,
                           0.0, max_points, True,
                           ("Not placed: the reference has a needle here",))
    tip_err = math.dist(ref.target_lps, att.target_lps)
    entry_err = entry_error_mm(ref, att)
    angle_err = angle_between_deg(ref, att)
    tip_pts = round(_linear_points(tip_err, rubric.tip_full_mm, rubric.tip_zero_mm,
                                   rubric.tip_points), 1)
    entry_pts = round(_linear_points(entry_err, rubric.entry_full_mm, rubric.entry_zero_mm,
                                     rubric.entry_points), 1)
    angle_pts = round(_linear_points(angle_err, rubric.angle_full_deg, rubric.angle_zero_deg,
                                     rubric.angle_points), 1)
    base = NeedleScore(
        ref.level, ref.side, ref, att, entry_err, tip_err, angle_err,
        clearance_mm=None if result is None else result.canal_clearance_mm,
        grade=None if result is None else result.breach_grade,
        status=None if result is None else result.status,
        points=0.0, max_points=max_points, failed=True, reasons=(),
    )
    if result is None:
        return replace(base, reasons=("Not checked against the anatomy: its safety is "
                                      "unknown, so it cannot score",))
    safety = _safety_failure(result)
    if safety:
        return replace(base, reasons=tuple(safety))
    reasons = []
    for part, err, unit, pts, most in (
        ("tip", tip_err, "mm", tip_pts, rubric.tip_points),
        ("entry", entry_err, "mm", entry_pts, rubric.entry_points),
        ("angle", angle_err, "°", angle_pts, rubric.angle_points),
    ):
        if pts < most:
            off = f"{err:.1f} {unit}" if unit == "mm" else f"{err:.1f}{unit}"
            reasons.append(f"{part.capitalize()} {off} from the reference: {pts:g} of {most:g} "
                           "points")
    if not reasons:
        reasons.append("On the reference: full points")
    if att.gauge != ref.gauge:
        reasons.append(f"Gauge {att.gauge}; the reference uses {ref.gauge} (not scored)")
    if result.status is Status.CAUTION:
        reasons += [f"Caution (no points lost): {reason_text(result, text)}"
                    for text in result.reasons]
    return replace(base, points=round(tip_pts + entry_pts + angle_pts, 1), failed=False,
                   reasons=tuple(reasons), tip_points=tip_pts, entry_points=entry_pts,
                   angle_points=angle_pts)


def score_extra(att: Trajectory, result: CheckResult | None) -> NeedleScore:
    reasons = ["Placed where the reference has no needle: no points"]
    if result is None:
        reasons.append("Not checked against the anatomy")
        return NeedleScore(att.level, att.side, None, att, None, None, None, None, None, None,
                           0.0, 0.0, False, tuple(reasons))
    safety = _safety_failure(result)
    return NeedleScore(att.level, att.side, None, att, None, None, None,
                       result.canal_clearance_mm, result.breach_grade, result.status, 0.0, 0.0,
                       bool(safety), tuple(reasons + safety))
