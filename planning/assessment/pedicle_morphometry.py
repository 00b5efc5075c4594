"""Per-pedicle morphometry for the planner: size, angles, needle fit, suggestion.

Why: before choosing a gauge and an approach, the surgeon needs to know whether the needle
passes the isthmus and how the pedicle compares with normal for its level. A needle as wide
as the isthmus breaches or fractures its cortex.

The sizes come from `planning.anatomy.pedicles.measure_pedicle` (the isthmus width and
height, cortex included, and the axis). Nothing is re-measured here. What this module
adds is in the vertebra's own frame (`VertebraGeometry`, LPS mm):

- chord length: posterior cortex (entry) to anterior cortex of the body along the axis;
- transverse angle: the axis projected on the vertebra's axial plane, against its
  mid-sagittal plane, positive when converging medially from back to front;
- sagittal angle: the axis projected on the vertebra's sagittal plane, against its axial
  (endplate) plane, positive when running caudally from back to front.

These are the angles read on axial and sagittal CT reformats, as in Zindrick 1987 and
Panjabi 1991/1992 (see `planning.assessment.pedicle_norms`).

Needle fit
----------
``fit_ratio`` = needle outer diameter / isthmus width (outer cortex to outer cortex):

- ratio ≤ 0.8 → "ok";
- 0.8 < ratio < 1.0 → "tight": the needle leaves less than about 10 % of the width on
  each side for the cortical walls, which are 1–2 mm thick in thoracic pedicles. Screws
  wider than about 80 % of the outer pedicle diameter were found to expand or fracture
  the pedicle (Misenhimer GR et al., "Anatomic analysis of pedicle cortical and
  cancellous diameter as related to screw size and placement", Spine 1989;14:367–372).
- ratio ≥ 1.0 → "does not fit": the needle is wider than the pedicle itself.

When the fit is not "ok", the suggestion is, in this order:

1. a thinner needle: the largest gauge in `planning.plan.GAUGES` that is ok (ratio ≤ 0.8);
2. otherwise a unipedicular approach through the other pedicle, if that one takes the
   planned gauge or a thinner one;
3. otherwise, in the thoracic spine, an extrapedicular (parapedicular, costovertebral)
   approach; in the lumbar spine, a posterolateral extrapedicular approach.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from planning.anatomy.model import Anatomy, VertebraGeometry
from planning.anatomy.pedicles import PedicleGeometry, measure_pedicles
from planning.assessment.pedicle_norms import NormComparison, Quantity, compare
from planning.plan import GAUGES, NeedleGauge, Side
from planning.plan import gauge as lookup_gauge

TIGHT_RATIO = 0.8  # above: "tight" (see the module docstring)
IMPLAUSIBLE_Z = 3.0  # farther than this from the level's norm: more likely a measurement
# failure (a wrong axis on coarse voxels) than anatomy, so it is flagged for review
NO_FIT_RATIO = 1.0  # at or above: "does not fit"

FIT_OK, FIT_TIGHT, FIT_NONE = "ok", "tight", "does not fit"
APPROACH_TRANSPEDICULAR = "transpedicular"
APPROACH_UNIPEDICULAR = "unipedicular"
APPROACH_EXTRAPEDICULAR = "extrapedicular"


def fit_of(ratio: float) -> str:
    """"ok", "tight" or "does not fit" for a needle/isthmus width ratio."""
    if ratio >= NO_FIT_RATIO:
        return FIT_NONE
    if ratio > TIGHT_RATIO:
        return FIT_TIGHT
    return FIT_OK


def largest_fitting_gauge(width_mm: float) -> NeedleGauge | None:
    """The widest gauge of `GAUGES` whose fit ratio in a ``width_mm`` isthmus is ok."""
    fitting = [g for g in GAUGES.values() if g.outer_diameter_mm <= TIGHT_RATIO * width_mm]
    return max(fitting, key=lambda g: g.outer_diameter_mm) if fitting else None


@dataclass(frozen=True, eq=False)
class PedicleMorphometry:
    """One pedicle: sizes (mm), angles (deg) in the vertebra's frame, needle fit, norms.

    ``suggested_gauge`` is the thinner gauge to use when the planned one is not ok (None
    otherwise, or when none fits); ``approach`` is "transpedicular", "unipedicular"
    (through the other pedicle only) or "extrapedicular"; ``suggestion`` says it in words
    ("" when the planned needle is ok). ``warnings`` name the quantities more than
    `IMPLAUSIBLE_Z` SDs from their norm: check those on the images before trusting them.
    """

    level: str
    side: Side
    width_mm: float
    height_mm: float
    chord_mm: float
    transverse_angle_deg: float
    sagittal_angle_deg: float
    gauge: NeedleGauge
    fit_ratio: float
    fit: str
    suggestion: str
    suggested_gauge: str | None
    approach: str
    norms: dict[Quantity, NormComparison]
    pedicle: PedicleGeometry
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "side": self.side.value,
            "width_mm": round(self.width_mm, 2),
            "height_mm": round(self.height_mm, 2),
            "chord_mm": round(self.chord_mm, 1),
            "transverse_angle_deg": round(self.transverse_angle_deg, 1),
            "sagittal_angle_deg": round(self.sagittal_angle_deg, 1),
            "gauge": self.gauge.name,
            "needle_outer_diameter_mm": self.gauge.outer_diameter_mm,
            "fit_ratio": round(self.fit_ratio, 3),
            "fit": self.fit,
            "suggestion": self.suggestion,
            "suggested_gauge": self.suggested_gauge,
            "approach": self.approach,
            "norm": {q.value: c.to_json() for q, c in self.norms.items()},
            "warnings": list(self.warnings),
        }


def pedicle_angles_deg(geo: VertebraGeometry, side: Side, axis_lps: np.ndarray
                       ) -> tuple[float, float]:
    """(transverse, sagittal) angles of a posterior→anterior axis in the vertebra's frame.

    Transverse: in the axial plane, against the mid-sagittal plane, medial positive.
    Sagittal: in the sagittal plane, against the axial plane, caudal positive.
    """
    left, anterior, superior = geo.frame_rows @ np.asarray(axis_lps, dtype=np.float64)
    medial = -Side.parse(side).lps_sign * left
    return (math.degrees(math.atan2(medial, anterior)),
            math.degrees(math.atan2(-superior, anterior)))


def assess_pedicle(geo: VertebraGeometry, pedicle: PedicleGeometry,
                   needle: NeedleGauge | str = "11G",
                   other: PedicleGeometry | None = None) -> PedicleMorphometry:
    """Morphometry, norms and needle fit of one measured pedicle.

    ``other`` is the same level's other pedicle, if measured: it decides whether a
    unipedicular approach through it is the suggestion when no thinner gauge fits here.
    """
    g = needle if isinstance(needle, NeedleGauge) else lookup_gauge(needle)
    width = pedicle.isthmus_width_mm
    ratio = g.outer_diameter_mm / width if width > 0 else math.inf
    fit = fit_of(ratio)
    transverse, sagittal = pedicle_angles_deg(geo, pedicle.side, pedicle.axis_lps)
    chord = pedicle.length_mm
    suggestion, suggested, approach = "", None, APPROACH_TRANSPEDICULAR
    if fit != FIT_OK:
        thinner = largest_fitting_gauge(width)
        other_gauge = largest_fitting_gauge(other.isthmus_width_mm) if other else None
        if thinner is not None:
            suggested = thinner.name
            suggestion = (f"use a thinner needle: {thinner.name} "
                          f"({thinner.outer_diameter_mm:.2f} mm, fit ratio "
                          f"{thinner.outer_diameter_mm / width:.2f})")
        elif other is not None and other_gauge is not None:
            approach = APPROACH_UNIPEDICULAR
            use = g if g.outer_diameter_mm <= other_gauge.outer_diameter_mm else other_gauge
            suggestion = (f"no gauge fits this {width:.1f} mm pedicle: unipedicular approach "
                          f"through the {other.side.value} pedicle "
                          f"({other.isthmus_width_mm:.1f} mm) with {use.name}")
        elif pedicle.level.upper().startswith("T"):
            approach = APPROACH_EXTRAPEDICULAR
            suggestion = (f"no gauge fits this {width:.1f} mm pedicle: extrapedicular "
                          "(parapedicular, costovertebral) approach")
        else:
            approach = APPROACH_EXTRAPEDICULAR
            suggestion = (f"no gauge fits this {width:.1f} mm pedicle: posterolateral "
                          "extrapedicular approach")
    values = {
        Quantity.WIDTH: width,
        Quantity.HEIGHT: pedicle.isthmus_height_mm,
        Quantity.CHORD: chord,
        Quantity.TRANSVERSE_ANGLE: transverse,
        Quantity.SAGITTAL_ANGLE: sagittal,
    }
    norms = {}
    for q, v in values.items():
        c = compare(pedicle.level, q, v)
        if c is not None:
            norms[q] = c
    return PedicleMorphometry(
        level=pedicle.level, side=pedicle.side, width_mm=width,
        height_mm=pedicle.isthmus_height_mm, chord_mm=chord,
        transverse_angle_deg=transverse, sagittal_angle_deg=sagittal, gauge=g,
        fit_ratio=ratio, fit=fit, suggestion=suggestion, suggested_gauge=suggested,
        approach=approach, norms=norms, pedicle=pedicle,
        warnings=tuple(
            f"{c.quantity.value} {c.value:.1f} is {c.z:+.1f} SD from the {c.level} norm "
            f"({c.mean:g} ± {c.sd:g}): check the pedicle on the images"
            for c in norms.values() if abs(c.z) > IMPLAUSIBLE_Z
        ),
    )


def pedicle_morphometry(
    anatomy: Anatomy,
    gauge: NeedleGauge | str = "11G",
    levels: list[str] | None = None,
    *,
    pedicles: Mapping[str, Mapping[Side, PedicleGeometry]] | None = None,
) -> dict[str, dict[Side, PedicleMorphometry]]:
    """Morphometry of both pedicles of every level (or of ``levels``) for a ``gauge``.

    ``pedicles`` is a `measure_pedicles` result when the caller has one (the measurement
    is the slow part); otherwise the pedicles are measured here. A side that cannot be
    measured is absent, as in `measure_pedicles`.
    """
    measured = pedicles if pedicles is not None else measure_pedicles(anatomy, levels)
    names = levels if levels is not None else list(measured)
    out: dict[str, dict[Side, PedicleMorphometry]] = {}
    for name in names:
        sides = measured.get(name)
        if not sides or name not in anatomy.levels:
            continue
        geo = anatomy.levels[name]
        out[name] = {
            side: assess_pedicle(geo, p, gauge, sides.get(
                Side.RIGHT if side is Side.LEFT else Side.LEFT))
            for side, p in sides.items()
        }
    return out
