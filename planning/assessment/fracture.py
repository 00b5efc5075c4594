"""Vertebral compression fractures, level by level: heights, Genant grade and shape, flags.

Why: vertebroplasty treats a fractured body, and how it is fractured decides how it is
filled. The planner needs, per level, how much height the body has lost, where (front,
middle, back), and the findings that change the procedure — a posterior wall pushed into
the canal, a cleft that will take the cement, a broken endplate through which cement
reaches the disc.

The findings (retropulsion, cleft, endplate disruption) are measured in
`planning.assessment.fracture_findings`, the body is sampled in
`planning.assessment.body_sampling`; this module measures the heights, grades them and
brings the findings of every level together (`assess_fractures`).

Frame and method
----------------
Everything is measured in the vertebra's own frame (`VertebraGeometry`: ``left``,
``anterior``, ``superior`` unit vectors, origin at the body centroid), on the level's body
mask (``anatomy.bodies`` ∩ ``anatomy.vertebra_mask(level)``), and returned in LPS mm.

The body is sampled on lines parallel to the vertebra's superior axis (`body_sampling`);
each line gives the height of the body there. Heights are read in the mid-sagittal strip
(``|left| ≤ 3 mm``), where radiologists measure them:

- the anterior and posterior walls are the most anterior and most posterior positions of
  the strip where the body is at least half its tallest (so a rounded corner or a
  rim osteophyte does not move the wall);
- anterior height: median height of the strip lines between 0.5 and 2 mm behind the
  anterior wall; posterior height: the same in front of the posterior wall; middle
  height: median of the lines within ±2 mm of halfway between the walls. The medians of
  dozens of lines make the heights robust to single voxels and to noise in the mask.

Height loss and grade
---------------------
- against the same vertebra's posterior height: wedge ``1 − Ha/Hp``, biconcave
  ``1 − Hm/Hp``;
- against the neighbours: ``1 − H/Href`` for each height, where ``Href`` is the median
  posterior height of the levels up to two places above and below that are not
  fractured themselves (judged by their own wedge and biconcave ratios) and whose
  segmentation is plausible (`body_plausibility`). Two places, not one: a single
  neighbour whose mask ran into its disc made its neighbour a false crush; the median
  of up to four lets one bad measurement pass, and the level-to-level growth (about
  1 mm) cancels between the two sides. The crush ratio is the smallest of
  the three: a crush lowers the whole body, so a body whose posterior height alone lies
  below the neighbours' (a reverse wedge, which the segmentation makes far more often
  than a fracture does: four of the harness's false crushes had an anterior height at
  or above the neighbours') is not crushed.

Genant semi-quantitative grade (Genant HK, Wu CY, van Kuijk C, Nevitt MC. Vertebral
fracture assessment using a semiquantitative technique. J Bone Miner Res
1993;8:1137–1148) from the largest of the wedge, biconcave and crush ratios: 0 normal
(< 20 %), 1 mild (20–25 %), 2 moderate (25–40 %), 3 severe (> 40 %). The shape is the
deformity that explains the loss best: wedge (``1 − Ha/Hp``), biconcave (the middle below
the mean of the two walls, ``1 − 2 Hm/(Ha + Hp)``, so a wedge's sloping endplates are not
read as concavity) or crush (every height below the neighbours').
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.model import Anatomy
from planning.anatomy.resolution import coarse_along_spine
from planning.assessment.body_plausibility import (
    EndplateSteps,
    Plausibility,
    band_limits,
    depth_plausible,
    endplate_steps,
    judge,
    reference_depth,
)
from planning.assessment.body_profile import BodyNotMeasurable, BodyProfile
from planning.assessment.body_sampling import body_profile, boxed_body
from planning.assessment.fracture_findings import (
    Cleft,
    EndplateDisruption,
    Retropulsion,
    endplate_disruption,
    find_cleft,
    point_json,
    retropulsion,
)
from planning.assessment.genant import GENANT_CITATION, GRADE_NAMES, genant_grade
from planning.plan import LEVEL_NAMES
from planning.progress import Progress
from planning.result_memo import MEMO
from planning.volume import Volume

FloatArray = NDArray[np.float64]

# ---- heights ---------------------------------------------------------------------------
WALL_INSET_MM = 0.5  # anterior/posterior bands start this far inside the wall …
WALL_BAND_MM = 1.5  # … and are this deep
MIDDLE_BAND_HALF_MM = 2.0
WALL_CENTRAL_FRACTION = 0.70  # the part of the posterior wall's height searched

SHAPE_NORMAL, SHAPE_WEDGE, SHAPE_BICONCAVE, SHAPE_CRUSH = "normal", "wedge", "biconcave", "crush"
SHAPE_NOT_ASSESSED = "not assessed"
NOT_GRADED_LEVELS = frozenset({"S1"})  # the sacrum has no vertebral body to grade


NEAR_END_CRUSH = 0.2  # a body near the scan's end (`BodyProfile.near_scan_end`) this much
# shorter than its neighbours is not graded: a cut cannot be told from a crush (a Genant 2
# "crush" of 30 % was the last vertebra of VerSe 012 turned 15°, its lower endplate 2 mm
# from the scan's end)
REFERENCE_REACH = 2  # intact levels this many places above and below make the reference


# ---- the level's assessment -------------------------------------------------------------
@dataclass(frozen=True)
class BodyHeights:
    """Heights of a body along its superior axis in the mid-sagittal strip, mm."""

    anterior_mm: float
    middle_mm: float
    posterior_mm: float

    def to_json(self) -> dict[str, float]:
        return {"anterior": round(self.anterior_mm, 2), "middle": round(self.middle_mm, 2),
                "posterior": round(self.posterior_mm, 2)}


@dataclass(frozen=True)
class HeightLoss:
    """Fractional height losses (0.35 = 35 % lost); None where there is no reference.

    ``wedge`` = 1 − Ha/Hp, ``biconcave`` = 1 − Hm/Hp, ``concavity`` = 1 − 2 Hm/(Ha + Hp);
    ``*_vs_neighbours`` = 1 − H/Href with Href the median posterior height of
    ``reference_levels``; ``crush`` is the smallest of the three (the whole body lower).
    """

    wedge: float
    biconcave: float
    concavity: float
    anterior_vs_neighbours: float | None = None
    middle_vs_neighbours: float | None = None
    posterior_vs_neighbours: float | None = None
    reference_height_mm: float | None = None
    reference_levels: tuple[str, ...] = ()

    @property
    def crush(self) -> float | None:
        vs = (self.anterior_vs_neighbours, self.middle_vs_neighbours,
              self.posterior_vs_neighbours)
        return None if any(v is None for v in vs) else min(v for v in vs if v is not None)

    @property
    def worst(self) -> float:
        """The loss that grades the level: the largest of wedge, biconcave and crush."""
        return max(self.wedge, self.biconcave,
                   self.crush if self.crush is not None else -math.inf)

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "wedge": r(self.wedge), "biconcave": r(self.biconcave),
            "concavity": r(self.concavity), "crush": r(self.crush),
            "vs_neighbours": {"anterior": r(self.anterior_vs_neighbours),
                              "middle": r(self.middle_vs_neighbours),
                              "posterior": r(self.posterior_vs_neighbours)},
            "reference_height_mm": r(self.reference_height_mm),
            "reference_levels": list(self.reference_levels),
        }


@dataclass(frozen=True, eq=False)
class FractureAssessment:
    """One level's fracture assessment, LPS mm (see the module docstring for methods)."""

    level: str
    heights: BodyHeights
    height_loss: HeightLoss
    genant_grade: int | None  # None: not gradable (see ``notes``)
    shape: str
    retropulsion: Retropulsion
    cleft: Cleft
    endplate: EndplateDisruption
    posterior_wall_mm: float  # wall positions along the anterior axis from the centroid
    anterior_wall_mm: float
    foramen_lps: FloatArray  # posterior wall, midline, mid-height: the basivertebral foramen
    body_centre_lps: FloatArray  # centre of the body in the mid-sagittal strip
    notes: tuple[str, ...] = field(default=())
    plausibility: Plausibility | None = None  # the checks before grading (body_plausibility)

    @property
    def fractured(self) -> bool:
        return self.genant_grade is not None and self.genant_grade > 0

    @property
    def worst_loss(self) -> float:
        return self.height_loss.worst

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "heights_mm": self.heights.to_json(),
            "height_loss": self.height_loss.to_json(),
            "genant_grade": self.genant_grade,
            "genant_name": (None if self.genant_grade is None
                            else GRADE_NAMES[self.genant_grade]),
            "shape": self.shape,
            "fractured": self.fractured,
            "flags": {
                "retropulsion": self.retropulsion.to_json(),
                "intravertebral_cleft": self.cleft.to_json(),
                "endplate_disruption": self.endplate.to_json(),
            },
            "foramen_lps": point_json(self.foramen_lps),
            "body_centre_lps": point_json(self.body_centre_lps),
            "notes": list(self.notes),
            "plausibility": (None if self.plausibility is None
                             else self.plausibility.to_json()),
            "source": GENANT_CITATION,
        }


# ---- per-level measurement -----------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Measured:
    """What a level gives on its own, before the neighbours are compared."""

    profile: BodyProfile
    heights: BodyHeights
    posterior_wall_mm: float
    anterior_wall_mm: float
    wall_point_lps: FloatArray  # most posterior point of the posterior wall (strip)
    wall_upper_lps: FloatArray  # the wall's upper and lower ends (central part)
    wall_lower_lps: FloatArray
    foramen_lps: FloatArray
    body_centre_lps: FloatArray
    endplates: EndplateSteps  # bone-to-disc steps beyond the band ends (body_plausibility)

    @property
    def depth_mm(self) -> float:
        return self.anterior_wall_mm - self.posterior_wall_mm

    @property
    def own_loss(self) -> float:
        h = self.heights
        return max(1.0 - h.anterior_mm / h.posterior_mm, 1.0 - h.middle_mm / h.posterior_mm)


def _measure(volume: Volume, anatomy: Anatomy, level: str) -> _Measured:
    prof = body_profile(anatomy, level, volume=volume)
    back, front = prof.walls_mm()
    bands = band_limits(back, front, WALL_INSET_MM, WALL_BAND_MM, MIDDLE_BAND_HALF_MM)
    ha = prof.band_height(*bands["anterior"])
    hp = prof.band_height(*bands["posterior"])
    hm = prof.band_height(*bands["middle"])
    mid = 0.5 * (back + front)
    ws, wa = _wall_profile(prof, back)
    w = int(np.argmin(wa))
    # the basivertebral foramen: midline of the posterior wall, halfway up the wall
    cols = (prof.anterior_mm >= back + WALL_INSET_MM - 1e-9) & (
        prof.anterior_mm <= back + WALL_INSET_MM + WALL_BAND_MM + 1e-9)
    s_mid = float(np.nanmedian(0.5 * (prof.top_mm + prof.bottom_mm)[np.ix_(prof.strip, cols)]))
    foramen = prof.to_lps(0.0, _wall_at(prof, s_mid), s_mid)
    c_cols = np.abs(prof.anterior_mm - mid) <= MIDDLE_BAND_HALF_MM + 1e-9
    s_c = float(np.nanmedian(0.5 * (prof.top_mm + prof.bottom_mm)[np.ix_(prof.strip, c_cols)]))
    return _Measured(prof, BodyHeights(ha, hm, hp), back, front,
                     prof.to_lps(0.0, wa[w], ws[w]), prof.to_lps(0.0, wa[-1], ws[-1]),
                     prof.to_lps(0.0, wa[0], ws[0]), foramen, prof.to_lps(0.0, mid, s_c),
                     endplate_steps(volume, prof, bands))


def _wall_at(prof: BodyProfile, s_mm: float) -> float:
    """The posterior wall's anterior coordinate in the strip at height ``s_mm``."""
    si = int(np.argmin(np.abs(prof.superior_mm - s_mm)))
    rows = prof.inside[prof.strip][:, :, si]
    backs = [float(prof.anterior_mm[np.argmax(r)]) for r in rows if r.any()]
    return float(np.median(backs)) if backs else math.nan


def _wall_profile(prof: BodyProfile, back_mm: float) -> tuple[FloatArray, FloatArray]:
    """The posterior wall in the strip over the central heights: (superior, anterior) mm.

    Per height, the median over the strip lines of the most posterior inside point; the
    central `WALL_CENTRAL_FRACTION` of the wall's height, so rounded corners and the
    endplate rims do not count as wall.
    """
    cols = (prof.anterior_mm >= back_mm + WALL_INSET_MM - 1e-9) & (
        prof.anterior_mm <= back_mm + WALL_INSET_MM + WALL_BAND_MM + 1e-9)
    top = float(np.nanmedian(prof.top_mm[np.ix_(prof.strip, cols)]))
    bottom = float(np.nanmedian(prof.bottom_mm[np.ix_(prof.strip, cols)]))
    half = 0.5 * WALL_CENTRAL_FRACTION * (top - bottom)
    centre = 0.5 * (top + bottom)
    rows = prof.inside[prof.strip]  # [strip l, a, s]
    s_out, a_out = [], []
    for si in np.flatnonzero(np.abs(prof.superior_mm - centre) <= half):
        plane = rows[:, :, si]
        has = plane.any(axis=1)
        if has.sum() * 2 <= plane.shape[0]:
            continue
        s_out.append(float(prof.superior_mm[si]))
        a_out.append(float(np.median(prof.anterior_mm[np.argmax(plane[has], axis=1)])))
    if not s_out:
        return np.array([centre]), np.array([back_mm])
    a = ndimage.median_filter(np.asarray(a_out), size=5, mode="nearest")
    return np.asarray(s_out), np.asarray(a, dtype=np.float64)


def _retropulsion(level: str, measured: Mapping[str, _Measured], order: list[str]
                  ) -> Retropulsion:
    """The level's posterior wall against the line of its neighbours' (`retropulsion`)."""
    me = measured[level]
    i = order.index(level)
    above = order[i - 1] if i > 0 and order[i - 1] in measured else None
    below = order[i + 1] if i + 1 < len(order) and order[i + 1] in measured else None
    return retropulsion(
        me.profile.geometry, me.wall_point_lps,
        None if above is None else (above, measured[above].wall_lower_lps),
        None if below is None else (below, measured[below].wall_upper_lps))


# ---- all levels ------------------------------------------------------------------------
def _spine_order(names: Iterable[str]) -> list[str]:
    index = {n: i for i, n in enumerate(LEVEL_NAMES)}
    return sorted(names, key=lambda n: index.get(n, len(index)))


def assess_fractures(volume: Volume, anatomy: Anatomy, progress: Progress | None = None
                     ) -> dict[str, FractureAssessment]:
    """Assess every level of ``anatomy`` (cranial to caudal).

    A level without body voxels, or whose body has no mid-sagittal strip to measure
    (`BodyNotMeasurable`), is left out: it shows as not assessed, never with a grade. Neighbours are
    the levels up to `REFERENCE_REACH` places away in the spine (T11, T12, L2 and L3 for
    L1) that are present in the anatomy. Once per content in a process (`result_memo`):
    the window's assessment, the export's and the CLI's are one.
    """
    return MEMO.remembered("fractures", (volume.array, volume.affine_lps, anatomy),
                           lambda: _assessed(volume, anatomy, progress))


def _assessed(volume: Volume, anatomy: Anatomy, progress: Progress | None
              ) -> dict[str, FractureAssessment]:
    """`assess_fractures`, made (not remembered)."""
    order = _spine_order(anatomy.levels)
    total = 2 * len(order) + 1
    measured: dict[str, _Measured] = {}
    for n, level in enumerate(order):
        if progress is not None:
            progress.report(n, total, f"Measuring the body of {level}")
        if level not in NOT_GRADED_LEVELS and boxed_body(anatomy, level)[1].any():
            try:
                measured[level] = _measure(volume, anatomy, level)
            except BodyNotMeasurable:
                continue  # "not assessed" for this level; the others are still graded
    depths = {lv: m.depth_mm for lv, m in measured.items() if not m.profile.truncated}
    ref_depth = {lv: reference_depth(depths, order, lv) for lv in measured}
    intact = {lv for lv, m in measured.items()
              if not m.profile.truncated and genant_grade(m.own_loss) == 0
              and depth_plausible(m.depth_mm, ref_depth[lv])}
    out: dict[str, FractureAssessment] = {}
    coarse = coarse_along_spine(volume.affine_lps)  # `planning.anatomy.resolution`
    for n, level in enumerate(order):
        if progress is not None:
            progress.report(len(order) + n, total, f"Assessing {level}")
        if level not in measured:
            continue
        me = measured[level]
        i = order.index(level)
        refs = tuple(order[j] for j in range(i - REFERENCE_REACH, i + REFERENCE_REACH + 1)
                     if j != i and 0 <= j < len(order) and order[j] in intact)
        loss = _height_loss(me.heights, [measured[r].heights.posterior_mm for r in refs], refs)
        notes = [] if refs else ["no unfractured neighbour to compare with"]
        grade: int | None = genant_grade(loss.worst)
        if coarse is not None:
            grade = None
            notes.insert(0, coarse)
        elif me.profile.truncated:
            grade = None
            notes.insert(0, "the body reaches the edge of the scan: heights not graded")
        elif (me.profile.near_scan_end and loss.crush is not None
              and loss.crush >= NEAR_END_CRUSH):
            grade = None  # an implausible measurement, not a fracture to act on
            notes.insert(0, f"the body lies at the end of the scan and is {loss.crush:.0%} "
                            "shorter than its neighbours: its end may be cut; not graded")
        plausible = judge(me.depth_mm, ref_depth[level], me.endplates,
                          grade is not None and grade >= 1,
                          (me.heights.anterior_mm, me.heights.middle_mm,
                           me.heights.posterior_mm))
        if grade is not None and plausible.reasons:
            grade = None  # a failed measurement gives no grade (issue 21)
            notes[:0] = plausible.reasons
        out[level] = FractureAssessment(
            level=level, heights=me.heights, height_loss=loss, genant_grade=grade,
            shape=(SHAPE_NOT_ASSESSED if grade is None
                   else _shape(loss) if grade > 0 else SHAPE_NORMAL),
            retropulsion=_retropulsion(level, measured, order),
            cleft=find_cleft(volume, anatomy, level),
            endplate=endplate_disruption(me.profile),
            posterior_wall_mm=me.posterior_wall_mm, anterior_wall_mm=me.anterior_wall_mm,
            foramen_lps=me.foramen_lps, body_centre_lps=me.body_centre_lps,
            notes=tuple(notes), plausibility=plausible,
        )
    if progress is not None:
        progress.report(total, total, "Fracture assessment done")
    return out


def _height_loss(h: BodyHeights, neighbour_posterior_mm: list[float], refs: tuple[str, ...]
                 ) -> HeightLoss:
    wedge = 1.0 - h.anterior_mm / h.posterior_mm
    biconcave = 1.0 - h.middle_mm / h.posterior_mm
    concavity = 1.0 - 2.0 * h.middle_mm / (h.anterior_mm + h.posterior_mm)
    if not neighbour_posterior_mm:
        return HeightLoss(wedge, biconcave, concavity)
    ref = float(np.median(neighbour_posterior_mm))
    return HeightLoss(wedge, biconcave, concavity, 1.0 - h.anterior_mm / ref,
                      1.0 - h.middle_mm / ref, 1.0 - h.posterior_mm / ref, ref, refs)


def _shape(loss: HeightLoss) -> str:
    """The deformity that explains the loss best (see the module docstring)."""
    candidates = {SHAPE_WEDGE: loss.wedge, SHAPE_BICONCAVE: loss.concavity,
                  SHAPE_CRUSH: loss.crush if loss.crush is not None else -math.inf}
    return max(candidates, key=lambda k: candidates[k])


def fractured_levels_first(assessments: Mapping[str, FractureAssessment]) -> list[str]:
    """Level names: fractured first (highest grade, then largest loss), then spine order."""
    order = _spine_order(assessments)
    rank = {n: i for i, n in enumerate(order)}

    def key(name: str) -> tuple[int, int, float, int]:
        a = assessments[name]
        if a.fractured:
            return (0, -(a.genant_grade or 0), -a.worst_loss, rank[name])
        return (1, 0, 0.0, rank[name])

    return sorted(order, key=key)
