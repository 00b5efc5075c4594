"""Vertebral compression fractures, level by level: heights, Genant grade and shape, flags.

Why: vertebroplasty treats a fractured body, and how it is fractured decides how it is
filled. The planner needs, per level, how much height the body has lost, where (front,
middle, back), and the findings that change the procedure — a posterior wall pushed into
the canal, a cleft that will take the cement, a broken endplate through which cement
reaches the disc.

Frame and method
----------------
Everything is measured in the vertebra's own frame (`VertebraGeometry`: ``left``,
``anterior``, ``superior`` unit vectors, origin at the body centroid), on the level's body
mask (``anatomy.bodies`` ∩ ``anatomy.vertebra_mask(level)``), and returned in LPS mm.

The body mask is sampled (trilinear, so a mask edge lands between voxels) on lines parallel
to the vertebra's superior axis, on a 0.5 mm grid of (left, anterior) positions, every
0.25 mm along the line. Each line gives the height of the body there: from the lowest to
the highest point inside the mask (an internal hole does not shorten it). Heights are read
in the mid-sagittal strip (``|left| ≤ 3 mm``), where radiologists measure them:

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

Flags
-----
- Retropulsion: the most posterior point of the posterior wall in the mid-sagittal
  strip (central 70 % of its height, 1.25 mm median-smoothed) against the line through
  the adjacent levels' wall ends that face it (the lower end of the level above, the
  upper end of the level below; one of them when only one neighbour exists), measured
  along the vertebra's anterior axis; positive mm = into the canal. Using the nearest
  wall ends keeps the spine's own curve out of the figure (well under 1 mm over one
  level). Flagged at ≥ 2 mm: the intact demo spine measures −2.1 … +1.4 mm, and any
  posterior wall involvement is a relative contraindication to vertebroplasty. The canal
  itself is not measured here.
- Intravertebral cleft (Kümmel disease): a connected region of gas (< −300 HU) or
  fluid density (−20 … 40 HU) inside the body, at least 2 mm from its surface, of at
  least 0.1 ml, after a 3-voxel median filter of the CT. Clefts fill with cement
  preferentially and are opacified first during injection (Lane JI, Maus TP, Wald JT,
  Thielen KR, Bobra S, Luetmer PH. Intravertebral clefts opacified during
  vertebroplasty: pathogenesis, technical implications, and prognostic significance.
  AJNR Am J Neuroradiol 2002;23:1642–1646). Gas is specific; fluid density is not
  (fatty or oedematous marrow comes close), so fluid-only clefts are reported as such.
- Endplate disruption: the superior and inferior endplate surfaces (top and bottom of
  the height lines, at least 3 mm inside the body's outline) are fitted with a smooth
  quadratic surface (wedge and normal concavity); a step is where the surface departs
  from that fit, after a 1.5 mm median filter so one noisy line is not a step. Flagged at
  ≥ 2 mm or one slice spacing, whichever is larger (a smaller step cannot be told
  from the staircase of the voxels).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.model import Anatomy, VertebraGeometry
from planning.assessment.body_plausibility import (
    EndplateSteps,
    Plausibility,
    band_limits,
    depth_plausible,
    endplate_steps,
    judge,
    reference_depth,
)
from planning.assessment.body_profile import (
    STRIP_HALF_WIDTH_MM,
    BodyNotMeasurable,
    BodyProfile,
)
from planning.plan import LEVEL_NAMES
from planning.progress import Progress
from planning.volume import Volume

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# ---- sampling -------------------------------------------------------------------------
GRID_STEP_MM = 0.5  # between height lines, along left and anterior
LINE_STEP_MM = 0.25  # along each line
SAMPLE_MARGIN_MM = 3.0
WALL_INSET_MM = 0.5  # anterior/posterior bands start this far inside the wall …
WALL_BAND_MM = 1.5  # … and are this deep
MIDDLE_BAND_HALF_MM = 2.0

# ---- Genant 1993 ----------------------------------------------------------------------
GENANT_MILD = 0.20
GENANT_MODERATE = 0.25
GENANT_SEVERE = 0.40
GENANT_CITATION = ("Genant HK, Wu CY, van Kuijk C, Nevitt MC. Vertebral fracture assessment "
                   "using a semiquantitative technique. J Bone Miner Res 1993;8:1137–1148.")
GRADE_NAMES = {0: "normal", 1: "mild", 2: "moderate", 3: "severe"}

# ---- flags ----------------------------------------------------------------------------
RETROPULSION_MIN_MM = 2.0
WALL_CENTRAL_FRACTION = 0.70  # the part of the posterior wall's height searched
CLEFT_GAS_HU = -300.0
CLEFT_FLUID_HU = (-20.0, 40.0)
CLEFT_MIN_ML = 0.1
CLEFT_MIN_DEPTH_MM = 2.0  # inside the body, past the cortex and its partial volume
CLEFT_CITATION = ("Lane JI et al. Intravertebral clefts opacified during vertebroplasty: "
                  "pathogenesis, technical implications, and prognostic significance. "
                  "AJNR Am J Neuroradiol 2002;23:1642–1646.")
ENDPLATE_STEP_MIN_MM = 2.0
ENDPLATE_STEP_SLICE_FRACTION = 1.0
ENDPLATE_RIM_MM = 3.0
ENDPLATE_FILTER_MM = 1.5

SHAPE_NORMAL, SHAPE_WEDGE, SHAPE_BICONCAVE, SHAPE_CRUSH = "normal", "wedge", "biconcave", "crush"
SHAPE_NOT_ASSESSED = "not assessed"
NOT_GRADED_LEVELS = frozenset({"S1"})  # the sacrum has no vertebral body to grade


def genant_grade(loss: float) -> int:
    """Genant's semi-quantitative grade of a fractional height loss (0.35 → 2)."""
    if loss > GENANT_SEVERE:
        return 3
    if loss >= GENANT_MODERATE:
        return 2
    if loss >= GENANT_MILD:
        return 1
    return 0


# ---- the body on a local grid -----------------------------------------------------------
BOX_MARGIN = 3  # voxels around a level's labels: the sampling and the cleft box need 2–3
Box = tuple[slice, slice, slice]
_boxes_of: dict[int, tuple[weakref.ref[NDArray[np.int16]], list[Box | None]]] = {}


def _level_box(anatomy: Anatomy, level: str) -> Box | None:
    """The box around the level's labels (`BOX_MARGIN`), or None when it has none.

    Why: the anatomy's grid of a 512 × 512 × 300 CT holds ~10 M voxels, and every whole-grid
    pass per level (a mask, its voxels, its bounds) cost ~60 ms: 1.4 s of the 3.4 s the
    assessment took. One `find_objects` over the labels gives every level's box, kept for
    as long as that labels array lives.
    """
    labels = anatomy.labels
    cached = _boxes_of.get(id(labels))
    if cached is None or cached[0]() is not labels:
        _boxes_of.clear()  # one anatomy at a time is assessed; keep no stale arrays' boxes
        cached = (weakref.ref(labels), ndimage.find_objects(labels))
        _boxes_of[id(labels)] = cached
    code = anatomy.levels[level].code
    found = cached[1][code - 1] if 0 < code <= len(cached[1]) else None
    if found is None:
        return None
    return tuple(slice(max(0, s.start - BOX_MARGIN), min(n, s.stop + BOX_MARGIN))
                 for s, n in zip(found, labels.shape, strict=True))  # type: ignore[return-value]


def _whole(mask: BoolArray) -> Box:
    """The box of a whole array."""
    return (slice(0, mask.shape[0]), slice(0, mask.shape[1]), slice(0, mask.shape[2]))


def _boxed_body(anatomy: Anatomy, level: str) -> tuple[Box, BoolArray]:
    """The level's body mask inside its box (`_level_box`), and the box."""
    box = _level_box(anatomy, level)
    if box is None:
        return (slice(0, 0), slice(0, 0), slice(0, 0)), np.zeros((0, 0, 0), dtype=bool)
    code = anatomy.levels[level].code
    return box, np.asarray(anatomy.bodies[box] & (anatomy.labels[box] == code))


def body_profile(anatomy: Anatomy, level: str, mask: BoolArray | None = None,
                 volume: Volume | None = None) -> BodyProfile:
    """Sample one level's body mask on a grid in its own frame (see `BodyProfile`)."""
    geo = anatomy.levels[level]
    box, m = _boxed_body(anatomy, level) if mask is None else (_whole(mask), mask)
    off = np.array([b.start for b in box])
    k, j, i = np.nonzero(m) + off[:, None]
    if k.size == 0:
        raise BodyNotMeasurable(f"{level}: the anatomy has no vertebral body voxels for "
                                "this level")
    lo = np.array([k.min(), j.min(), i.min()]) - 2
    hi = np.array([k.max(), j.max(), i.max()]) + 3
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, anatomy.labels.shape)
    sub = m[lo[0] - off[0]:hi[0] - off[0], lo[1] - off[1]:hi[1] - off[1],
            lo[2] - off[2]:hi[2] - off[2]].astype(np.float32)
    local = geo.to_local(anatomy.to_lps(np.stack([i, j, k], 1).astype(np.float64)))
    ext_lo = local.min(axis=0) - SAMPLE_MARGIN_MM
    ext_hi = local.max(axis=0) + SAMPLE_MARGIN_MM
    axes = [np.arange(ext_lo[d], ext_hi[d] + 1e-9, step)
            for d, step in enumerate((GRID_STEP_MM, GRID_STEP_MM, LINE_STEP_MM))]
    # sampled a few left–right planes at a time: the whole grid's coordinates at once
    # would take ~130 MB on a 0.7 mm CT
    shape = tuple(len(a) for a in axes)
    vals = np.empty(shape, dtype=np.float32)
    inv = anatomy.index_from_lps
    frame = np.stack([geo.left_lps, geo.anterior_lps, geo.superior_lps])  # local → LPS rows
    m_idx = frame @ inv[:3, :3].T  # local mm → index steps
    origin = geo.centroid_lps @ inv[:3, :3].T + inv[:3, 3] - lo[::-1]
    aa, ss = np.meshgrid(axes[1], axes[2], indexing="ij")
    plane = origin + aa[..., None] * m_idx[1] + ss[..., None] * m_idx[2]
    for n, left in enumerate(axes[0]):
        ijk = (plane + left * m_idx[0]).reshape(-1, 3)
        vals[n] = ndimage.map_coordinates(sub, [ijk[:, 2], ijk[:, 1], ijk[:, 0]], order=1,
                                          cval=0.0, output=np.float32).reshape(shape[1:])
    inside = vals >= 0.5
    top, bottom = _line_ends(vals, axes[2])
    truncated = _touches_edge(anatomy, np.stack([k, j, i]), volume) or (
        volume is not None
        and _ends_in_air(volume, geo, axes[0], axes[1], top, bottom, EDGE_PROBE_MM))
    near_end = truncated or (
        volume is not None
        and _ends_in_air(volume, geo, axes[0], axes[1], top, bottom, NEAR_END_PROBE_MM))
    return BodyProfile(geo, axes[0], axes[1], axes[2], inside, top, bottom,
                       _spacing_along(anatomy, geo.superior_lps),
                       max(_spacing_along(anatomy, geo.left_lps),
                           _spacing_along(anatomy, geo.anterior_lps)),
                       truncated, near_end)


EDGE_AIR_HU = -900.0  # beyond a body's endplate lies a disc or a vertebra, never air…
EDGE_PROBE_MM = (2.0, 5.0, 8.0)  # …looked for this far beyond its top and bottom (a disc)
NEAR_END_PROBE_MM = (12.0, 16.0, 20.0, 25.0)  # the scan ends within about a disc and a half
NEAR_END_CRUSH = 0.2  # there, a body this much shorter than its neighbours is not graded:
# a cut cannot be told from a crush (a Genant 2 "crush" of 30 % was the last vertebra of
# VerSe 012 turned 15°, its lower endplate 2 mm from the scan's end)
REFERENCE_REACH = 2  # intact levels this many places above and below make the reference


def _ends_in_air(volume: Volume, geo: VertebraGeometry, left_mm: FloatArray,
                 anterior_mm: FloatArray, top_mm: FloatArray, bottom_mm: FloatArray,
                 probes_mm: tuple[float, ...]) -> bool:
    """True when, beyond the body's top or bottom (mid-sagittal lines, ``probes_mm``), the
    CT holds air: the scan's data ends there. A re-gridded or oblique storing pads the space outside
    the scanned slab with air inside its array, so the body is cut by the scan although it
    does not touch the array's edge (false "crush fractures" of the top vertebra)."""
    strip = np.abs(left_mm) <= STRIP_HALF_WIDTH_MM + 1e-9
    for ends, sign in ((top_mm, 1.0), (bottom_mm, -1.0)):
        lines = ends[strip]
        ok = np.isfinite(lines)
        if not ok.any():
            continue
        ant = np.broadcast_to(anterior_mm[None, :], lines.shape)[ok]
        sup = lines[ok]
        for d in probes_mm:
            pts = [geo.centroid_lps + a * geo.anterior_lps + (z + sign * d) * geo.superior_lps
                   for a, z in zip(ant[::4], sup[::4], strict=True)]
            ijk = volume.to_index(np.array(pts))
            hu = ndimage.map_coordinates(volume.array, [ijk[:, 2], ijk[:, 1], ijk[:, 0]],
                                         order=1, cval=-1024.0, output=np.float32)
            if np.mean(hu < EDGE_AIR_HU) > 0.5:
                return True
    return False


def _spacing_along(anatomy: Anatomy, direction_lps: FloatArray) -> float:
    """The voxel's extent along a unit LPS direction (mm): 1 / |index step per mm|."""
    step = np.linalg.solve(anatomy.affine_lps[:3, :3], direction_lps)
    return float(1.0 / np.abs(step).max())


def _touches_edge(anatomy: Anatomy, kji: NDArray[np.intp], volume: Volume | None) -> bool:
    """True when the mask's voxels (``kji``: their [k, j, i] rows on the anatomy's grid)
    reach the crop's border or the CT's first or last voxels."""
    for axis in range(3):
        if kji[axis].min() == 0 or kji[axis].max() == anatomy.labels.shape[axis] - 1:
            return True
    if volume is None:
        return False
    k, j, i = kji
    ijk = volume.to_index(anatomy.to_lps(np.stack([i, j, k], 1).astype(np.float64)))
    last = np.asarray(volume.size, dtype=np.float64) - 1.0
    return bool(np.any(ijk < 0.5) or np.any(ijk > last - 0.5))


def _line_ends(vals: NDArray[np.float32], s_mm: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Highest and lowest 0.5 crossings along the last axis (NaN where never inside)."""
    inside = vals >= 0.5
    any_in = inside.any(axis=-1)
    n = inside.shape[-1]
    first = np.argmax(inside, axis=-1)
    last = n - 1 - np.argmax(inside[..., ::-1], axis=-1)
    step = float(s_mm[1] - s_mm[0])

    def crossing(idx: NDArray[np.intp], outward: int) -> FloatArray:
        nxt = np.clip(idx + outward, 0, n - 1)
        v0 = np.take_along_axis(vals, idx[..., None], -1)[..., 0].astype(np.float64)
        v1 = np.take_along_axis(vals, nxt[..., None], -1)[..., 0].astype(np.float64)
        frac = np.where(v0 - v1 > 1e-6, (v0 - 0.5) / np.maximum(v0 - v1, 1e-6), 0.0)
        return np.asarray(s_mm[idx] + outward * step * np.clip(frac, 0.0, 1.0))

    top = np.where(any_in, crossing(last, +1), np.nan)
    bottom = np.where(any_in, crossing(first, -1), np.nan)
    return top, bottom


# ---- findings -------------------------------------------------------------------------
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
class Retropulsion:
    """Posterior wall displacement into the canal against the neighbours' walls.

    ``displacement_mm`` > 0: the wall lies that far posterior (towards the canal) of the
    line of the adjacent posterior walls; None when no neighbour could be measured.
    """

    present: bool
    displacement_mm: float | None
    wall_point_lps: FloatArray
    reference_levels: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"present": self.present,
                "displacement_mm": (None if self.displacement_mm is None
                                    else round(self.displacement_mm, 2)),
                "wall_point_lps": _list(self.wall_point_lps),
                "reference_levels": list(self.reference_levels)}


@dataclass(frozen=True, eq=False)
class Cleft:
    """The largest gas or fluid-density region inside the body (or none)."""

    present: bool
    kind: str = ""  # "gas" or "fluid"
    volume_ml: float = 0.0
    centre_lps: FloatArray | None = None
    mean_hu: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"present": self.present, "kind": self.kind or None,
                "volume_ml": round(self.volume_ml, 3),
                "centre_lps": None if self.centre_lps is None else _list(self.centre_lps),
                "mean_hu": None if self.mean_hu is None else round(self.mean_hu, 1)}


@dataclass(frozen=True, eq=False)
class EndplateDisruption:
    """Largest local departure of each endplate from its smooth fitted surface, mm."""

    present: bool
    superior_step_mm: float
    inferior_step_mm: float
    threshold_mm: float
    worst_point_lps: FloatArray | None = None
    worst_endplate: str = ""  # "superior" or "inferior"

    def to_json(self) -> dict[str, Any]:
        return {"present": self.present,
                "superior_step_mm": round(self.superior_step_mm, 2),
                "inferior_step_mm": round(self.inferior_step_mm, 2),
                "threshold_mm": round(self.threshold_mm, 2),
                "worst_endplate": self.worst_endplate or None,
                "worst_point_lps": (None if self.worst_point_lps is None
                                    else _list(self.worst_point_lps))}


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
            "foramen_lps": _list(self.foramen_lps),
            "body_centre_lps": _list(self.body_centre_lps),
            "notes": list(self.notes),
            "plausibility": (None if self.plausibility is None
                             else self.plausibility.to_json()),
            "source": GENANT_CITATION,
        }


def _list(v: FloatArray) -> list[float]:
    return [round(float(x), 3) for x in v]


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
    """The level's posterior wall against the line of its neighbours' (see module doc)."""
    me = measured[level]
    geo = me.profile.geometry
    i = order.index(level)
    above = order[i - 1] if i > 0 and order[i - 1] in measured else None
    below = order[i + 1] if i + 1 < len(order) and order[i + 1] in measured else None
    if above is None and below is None:
        return Retropulsion(False, None, me.wall_point_lps)
    pts = []  # the neighbours' wall corners facing this level, in this level's frame
    if above is not None:
        pts.append(geo.to_local(measured[above].wall_lower_lps))
    if below is not None:
        pts.append(geo.to_local(measured[below].wall_upper_lps))
    mine = geo.to_local(me.wall_point_lps)
    if len(pts) == 2:
        (_, a0, s0), (_, a1, s1) = pts
        t = (mine[2] - s0) / (s1 - s0) if abs(s1 - s0) > 1e-6 else 0.5
        ref_a = a0 + t * (a1 - a0)
    else:
        ref_a = pts[0][1]
    shift = float(ref_a - mine[1])
    refs = tuple(r for r in (above, below) if r is not None)
    return Retropulsion(shift >= RETROPULSION_MIN_MM, shift, me.wall_point_lps, refs)


def _hu_on_crop(volume: Volume, anatomy: Anatomy, box: tuple[slice, slice, slice]
                ) -> NDArray[np.float32]:
    """CT HU at the anatomy-crop voxels of ``box`` (nearest CT voxel; −1024 outside)."""
    kk, jj, ii = np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij")
    ijk = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], 1).astype(np.float64)
    ct_ijk = np.rint(volume.to_index(anatomy.to_lps(ijk))).astype(np.intp)
    size = np.array(volume.size)
    ok = np.all((ct_ijk >= 0) & (ct_ijk < size), axis=1)
    out = np.full(ijk.shape[0], -1024.0, dtype=np.float32)
    c = ct_ijk[ok]
    out[ok] = volume.array[c[:, 2], c[:, 1], c[:, 0]]
    return out.reshape(kk.shape)


def _body_only(box: Box, m: BoolArray, margin: int = 2) -> tuple[Box, BoolArray]:
    """The box narrowed to the body's voxels in it (``margin`` around them): a level's box
    holds its whole vertebra, and the cleft's filters cost by the voxel."""
    idx = np.nonzero(m)
    inner = [slice(max(0, int(a.min()) - margin), min(n, int(a.max()) + margin + 1))
             for a, n in zip(idx, m.shape, strict=True)]
    outer = tuple(slice(b.start + s.start, b.start + s.stop)
                  for b, s in zip(box, inner, strict=True))
    return outer, m[inner[0], inner[1], inner[2]]  # type: ignore[return-value]


def _median3_where_dark(hu: NDArray[np.float32], where: BoolArray, dark_hu: float
                        ) -> NDArray[np.float32]:
    """``median_filter(hu, size=3)`` (edges reflected) at the voxels of ``where`` whose median
    can be at most ``dark_hu``; elsewhere +inf.

    Why: the 3 × 3 × 3 median of a body's box was most of the assessment's time on a fine
    CT (0.8 s of 2 s at 512 × 512 × 300), yet a cleft is only sought where the median is
    dark, and a median is at most ``dark_hu`` only where 14 of the 27 voxels are; bone has
    few such voxels. Exact where it matters: the same gas and fluid voxels and HU.
    """
    out = np.full(hu.shape, np.inf, dtype=np.float32)
    dark = ndimage.uniform_filter((hu <= dark_hu).astype(np.float32), size=3, mode="reflect")
    k, j, i = np.nonzero(where & (dark * 27.0 >= 13.5))
    if k.size == 0:
        return out
    padded = np.pad(hu, 1, mode="symmetric")  # scipy's "reflect"
    around = np.stack([padded[k + dk, j + dj, i + di] for dk in range(3) for dj in range(3)
                       for di in range(3)])
    out[k, j, i] = np.median(around, axis=0)
    return out


def find_cleft(volume: Volume, anatomy: Anatomy, level: str) -> Cleft:
    """The largest intravertebral cleft of a level (gas or fluid density), or none."""
    box, m = _boxed_body(anatomy, level)
    if not m.any():
        return Cleft(False)
    box, m = _body_only(box, m)
    sp = anatomy.spacing_mm  # (i, j, k)
    depth = ndimage.distance_transform_edt(m, sampling=(sp[2], sp[1], sp[0]))
    interior = depth >= CLEFT_MIN_DEPTH_MM
    hu = _median3_where_dark(_hu_on_crop(volume, anatomy, box), interior, CLEFT_FLUID_HU[1])
    gas = interior & (hu < CLEFT_GAS_HU)
    fluid = interior & (hu >= CLEFT_FLUID_HU[0]) & (hu <= CLEFT_FLUID_HU[1])
    lab, n = ndimage.label(gas | fluid)
    if n == 0:
        return Cleft(False)
    voxel_ml = float(np.prod(sp)) / 1000.0
    sizes = np.bincount(lab.ravel())[1:]
    best = int(np.argmax(sizes)) + 1
    volume_ml = float(sizes[best - 1]) * voxel_ml
    if volume_ml < CLEFT_MIN_ML:
        return Cleft(False, volume_ml=volume_ml)
    comp = lab == best
    kind = "gas" if gas[comp].mean() >= 0.2 else "fluid"
    k, j, i = np.nonzero(comp)
    offset = np.array([box[2].start, box[1].start, box[0].start], dtype=np.float64)
    centre = anatomy.to_lps(np.stack([i, j, k], 1).mean(axis=0) + offset)
    return Cleft(True, kind, volume_ml, centre, float(hu[comp].mean()))


def endplate_disruption(prof: BodyProfile) -> EndplateDisruption:
    """Steps of the superior and inferior endplates against their smooth fitted surfaces."""
    core = _endplate_core(prof)
    threshold = max(ENDPLATE_STEP_MIN_MM, ENDPLATE_STEP_SLICE_FRACTION * prof.slice_spacing_mm)
    ll, aa = np.meshgrid(prof.left_mm, prof.anterior_mm, indexing="ij")
    steps: dict[str, tuple[float, FloatArray | None]] = {}
    for name, surface in (("superior", prof.top_mm), ("inferior", prof.bottom_mm)):
        if core.sum() < 12:
            steps[name] = (0.0, None)
            continue
        res = _robust_quadratic_residual(ll[core], aa[core], surface[core])
        full = np.zeros_like(surface)
        full[core] = res
        size = max(3, round(2 * ENDPLATE_FILTER_MM / GRID_STEP_MM) | 1)
        filt = ndimage.median_filter(np.where(core, full, 0.0), size=size)
        filt[~core] = 0.0
        at = np.unravel_index(int(np.argmax(np.abs(filt))), filt.shape)
        step = float(abs(filt[at]))
        point = prof.to_lps(float(prof.left_mm[at[0]]), float(prof.anterior_mm[at[1]]),
                            float(surface[at]))
        steps[name] = (step, point)
    sup, inf = steps["superior"], steps["inferior"]
    worst = "superior" if sup[0] >= inf[0] else "inferior"
    return EndplateDisruption(max(sup[0], inf[0]) >= threshold, sup[0], inf[0], threshold,
                              steps[worst][1], worst)


def _endplate_core(prof: BodyProfile) -> BoolArray:
    """The lines that cross both endplates well inside the body's outline.

    Lines at the edge graze the waisted walls and stop short of the endplates, so only
    lines of at least 70 % of the median height count, in their largest connected piece,
    eroded by `ENDPLATE_RIM_MM` (at least 1.5 voxels).
    """
    h = prof.height_mm
    present = np.isfinite(h)
    if not present.any():
        return present
    full = present & (np.nan_to_num(h, nan=0.0) >= 0.7 * float(np.nanmedian(h)))
    lab, n = ndimage.label(full)
    if n == 0:
        return full
    biggest = lab == (int(np.argmax(np.bincount(lab.ravel())[1:])) + 1)
    rim = max(ENDPLATE_RIM_MM, 1.5 * prof.in_plane_spacing_mm)
    return np.asarray(ndimage.distance_transform_edt(biggest) * GRID_STEP_MM > rim)


def _robust_quadratic_residual(x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
    """Residual of z after a quadratic surface fit in (x, y), refitted without outliers."""
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    keep = np.ones(z.shape, dtype=bool)
    res = z - z.mean()
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(design[keep], z[keep], rcond=None)
        res = z - design @ coef
        mad = float(np.median(np.abs(res[keep]))) * 1.4826
        keep = np.abs(res) <= max(3.0 * mad, 0.5)
    return np.asarray(res)


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
    L1) that are present in the anatomy.
    """
    order = _spine_order(anatomy.levels)
    total = 2 * len(order) + 1
    measured: dict[str, _Measured] = {}
    for n, level in enumerate(order):
        if progress is not None:
            progress.report(n, total, f"Measuring the body of {level}")
        if level not in NOT_GRADED_LEVELS and _boxed_body(anatomy, level)[1].any():
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
        if me.profile.truncated:
            grade = None
            notes.insert(0, "the body reaches the edge of the scan: heights not graded")
        elif (me.profile.near_scan_end and loss.crush is not None
              and loss.crush >= NEAR_END_CRUSH):
            grade = None  # an implausible measurement, not a fracture to act on
            notes.insert(0, f"the body lies at the end of the scan and is {loss.crush:.0%} "
                            "shorter than its neighbours: its end may be cut; not graded")
        plausible = judge(me.depth_mm, ref_depth[level], me.endplates,
                          grade is not None and grade >= 1)
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
