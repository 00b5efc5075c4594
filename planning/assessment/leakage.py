"""Cement-leakage risk flags per level, from the fracture assessment and the planned tips.

Why: cement leaves the body along three routes (Yeom JS et al. Leakage of cement in
percutaneous transpedicular vertebroplasty for painful osteoporotic compression fractures.
J Bone Joint Surg Br 2003;85:83–89): type B through the basivertebral vein (the foramen in
the middle of the posterior wall, towards the epidural veins and the canal), type S
through the segmental veins (on the lateral and anterolateral wall), type C through a
defect of the cortex (including the endplates, towards the disc). Each flag below names
its route so the planner can act on it: thicker cement, a tip further from the foramen,
slower injection under fluoroscopy, or no vertebroplasty at all.

Flags (``LeakageFlag.kind``) and how they are found, all in LPS mm:

- ``cortical_disruption`` (type C): rays from the body's centre in its axial plane at
  25 %, 50 % and 75 % of its height, every 3°. On each ray the body's surface is the
  edge of its mask; the cortex is the brightest CT value within 3 mm inside to 1.5 mm
  outside that edge. Where that peak is less than 40 % of the level's median cortical
  contrast (and less than 150 HU above the cancellous bone), the shell is missing; an
  arc of at least 4 mm (or 4 in-plane voxels on coarser CT, where a 1 mm cortex fades
  into its neighbours) of missing shell is a disruption. Rays through pedicle bases
  (vertebra outside the body) and through the basivertebral foramen (posterior midline
  at mid-height, where the shell is normally open) are not judged.
- ``posterior_wall_defect`` (type B/C towards the canal): the same gap on the posterior
  wall (within 45° of posterior), or a retropulsed wall (`fracture_findings.Retropulsion`).
- ``intravertebral_cleft``: `fracture_findings.find_cleft` (gas or fluid in the body).
- ``endplate_break`` (intradiscal leakage): `fracture_findings.endplate_disruption`.
- ``basivertebral_foramen`` (type B): a planned tip of the level within 10 mm of the
  foramen (the posterior wall, midline, mid-height: `FractureAssessment.foramen_lps`).
- ``segmental_vein`` (type S): a planned tip within 5 mm of the lateral wall of the
  body, measured along the vertebra's left–right axis at the tip.

Literature behind the flags (risk direction; odds ratios are not quoted here because
they vary widely between studies and definitions):

- Nieuwenhuijse MJ, Van Erkel AR, Dijkstra PD. Cement leakage in percutaneous
  vertebroplasty for osteoporotic vertebral compression fractures: identification of
  risk factors. Spine J 2011;11:839–848 — cortical disruption and an intravertebral
  cleft were risk factors for leakage through the cortex.
- Risk factors of postoperative bone cement leakage on osteoporotic vertebral compression
  fracture: a retrospective study. J Orthop Surg Res 2021, doi:10.1186/s13018-021-02337-1
  — cortical disruption for type C; a visible basivertebral foramen for types B and S;
  posterior wall intrusion and a cleft for type S.
- Risk factors for cement leakage and nomogram for predicting the intradiscal cement
  leakage after the vertebra augmented surgery. BMC Musculoskelet Disord 2020,
  doi:10.1186/s12891-020-03810-4 — upper endplate disruption for intradiscal leakage.
- Lane JI et al. AJNR Am J Neuroradiol 2002;23:1642–1646 — clefts fill first.

The distance thresholds (10 mm to the foramen, 5 mm to the lateral wall) are this
program's planning margins, not figures from these studies: about the radius of the
cement bolus a single tip fills before it spreads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.model import Anatomy
from planning.assessment.fracture import FractureAssessment
from planning.assessment.fracture_findings import CLEFT_CITATION, RETROPULSION_MIN_MM
from planning.plan import Trajectory
from planning.result_memo import MEMO
from planning.volume import Volume

FloatArray = NDArray[np.float64]

KIND_CORTICAL = "cortical_disruption"
KIND_POSTERIOR_WALL = "posterior_wall_defect"
KIND_CLEFT = "intravertebral_cleft"
KIND_ENDPLATE = "endplate_break"
KIND_BASIVERTEBRAL = "basivertebral_foramen"
KIND_SEGMENTAL = "segmental_vein"
KINDS = (KIND_CORTICAL, KIND_POSTERIOR_WALL, KIND_CLEFT, KIND_ENDPLATE, KIND_BASIVERTEBRAL,
         KIND_SEGMENTAL)

YEOM_2003 = ("Yeom JS et al. Leakage of cement in percutaneous transpedicular vertebroplasty "
             "for painful osteoporotic compression fractures. J Bone Joint Surg Br "
             "2003;85:83–89.")
NIEUWENHUIJSE_2011 = ("Nieuwenhuijse MJ, Van Erkel AR, Dijkstra PD. Cement leakage in "
                      "percutaneous vertebroplasty for osteoporotic vertebral compression "
                      "fractures: identification of risk factors. Spine J 2011;11:839–848.")
JOSR_2021 = ("Risk factors of postoperative bone cement leakage on osteoporotic vertebral "
             "compression fracture: a retrospective study. J Orthop Surg Res 2021, "
             "doi:10.1186/s13018-021-02337-1.")
BMC_2020 = ("Risk factors for cement leakage and nomogram for predicting the intradiscal "
            "cement leakage after the vertebra augmented surgery. BMC Musculoskelet Disord "
            "2020, doi:10.1186/s12891-020-03810-4.")

# ---- cortical shell -------------------------------------------------------------------
RAY_STEP_DEG = 3.0
RAY_STEP_MM = 0.25
RAY_MAX_MM = 45.0
RAY_HEIGHT_FRACTIONS = (-0.5, 0.0, 0.5)  # of the half height: 25 %, 50 %, 75 % of height
CORTEX_INSIDE_MM = 3.0
CORTEX_OUTSIDE_MM = 1.5
CORTEX_RELATIVE = 0.4  # of the level's median contrast
CORTEX_MIN_CONTRAST_HU = 150.0
CORTICAL_GAP_MIN_MM = 4.0
CORTICAL_GAP_VOXELS = 4.0
JUNCTION_PROBE_MM = 2.0  # vertebra this far outside the body: a pedicle base, not a wall
FORAMEN_WINDOW_HALF_MM = 6.0  # posterior midline rays near mid-height are not judged
POSTERIOR_SECTOR_DEG = 45.0

# ---- tips -----------------------------------------------------------------------------
BASIVERTEBRAL_TIP_MM = 10.0
SEGMENTAL_TIP_MM = 5.0


@dataclass(frozen=True, eq=False)
class LeakageFlag:
    """One leakage risk of one level: whether present, how sure, why, and the source.

    ``confidence`` is "low", "moderate" or "high": how far the measurement can be trusted
    on this CT (thick slices, estimated landmarks), not how likely the leakage is.
    ``evidence`` holds the measured numbers (mm, ml, HU) named with their unit.
    ``route`` is Yeom's leakage type the flag points to: "B", "S", "C" or "D" (disc).
    """

    kind: str
    level: str
    present: bool
    confidence: str
    why: str
    evidence: dict[str, float] = field(default_factory=dict)
    source: str = ""
    route: str = ""
    point_lps: FloatArray | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "level": self.level, "present": self.present,
            "confidence": self.confidence, "why": self.why,
            "evidence": {k: round(float(v), 3) for k, v in self.evidence.items()},
            "source": self.source, "route": self.route,
            "point_lps": (None if self.point_lps is None
                          else [round(float(x), 3) for x in self.point_lps]),
        }


@dataclass(frozen=True, eq=False)
class ShellGap:
    """The longest arc of missing cortex found on one wall group, mm."""

    arc_mm: float
    point_lps: FloatArray | None
    rays_judged: int


Boxes = list[tuple[slice, ...] | None]
"""`ndimage.find_objects` of an anatomy's labels: each vertebra's box, found in one pass."""


def cortical_gaps(volume: Volume, anatomy: Anatomy, a: FractureAssessment,
                  boxes: Boxes | None = None) -> tuple[ShellGap, ShellGap]:
    """(anterior and lateral walls, posterior wall): the longest gap in the cortical shell.

    See the module docstring for the method.
    """
    geo = anatomy.levels[a.level]
    body, vert = _level_fields(anatomy, a.level, boxes)
    centre = geo.to_local(a.body_centre_lps)
    half_h = 0.5 * a.heights.middle_mm
    angles = np.deg2rad(np.arange(0.0, 360.0, RAY_STEP_DEG))
    radii = np.arange(0.0, RAY_MAX_MM, RAY_STEP_MM)
    dirs = np.stack([np.sin(angles), np.cos(angles)], 1)  # (left, anterior); 0° = anterior
    records: list[tuple[float, float, float, float, bool, FloatArray]] = []
    cancellous: list[float] = []
    for frac in RAY_HEIGHT_FRACTIONS:
        s = centre[2] + frac * half_h
        local = np.zeros((angles.size, radii.size, 3))
        local[..., 0] = centre[0] + dirs[:, None, 0] * radii[None, :]
        local[..., 1] = centre[1] + dirs[:, None, 1] * radii[None, :]
        local[..., 2] = s
        lps = (geo.centroid_lps + local @ geo.frame_rows).reshape(-1, 3)
        inside = (_sample_crop(anatomy, body, lps) >= 0.5).reshape(angles.size, radii.size)
        hu = _sample_ct(volume, lps).reshape(angles.size, radii.size)
        for n in range(angles.size):
            idx = np.flatnonzero(inside[n])
            if idx.size == 0:
                continue
            r_b = float(radii[idx[-1]])
            cancellous.extend(hu[n][(radii >= 0.3 * r_b) & (radii <= 0.6 * r_b)].tolist())
            ray = dirs[n, 0] * geo.left_lps + dirs[n, 1] * geo.anterior_lps
            probe = lps.reshape(angles.size, radii.size, 3)[n, 0] + (
                r_b + JUNCTION_PROBE_MM) * ray
            if _sample_crop(anatomy, vert, probe[None, :])[0] >= 0.5 and _sample_crop(
                    anatomy, body, probe[None, :])[0] < 0.5:
                continue  # a pedicle base: bone goes on, no wall here
            near = (radii >= r_b - CORTEX_INSIDE_MM) & (radii <= r_b + CORTEX_OUTSIDE_MM)
            wall_lps = geo.centroid_lps + np.array(
                [centre[0] + dirs[n, 0] * r_b, centre[1] + dirs[n, 1] * r_b, s]
            ) @ geo.frame_rows
            posterior = abs(math.degrees(angles[n]) - 180.0) <= POSTERIOR_SECTOR_DEG
            foramen = (posterior and frac == 0.0
                       and abs(centre[0] + dirs[n, 0] * r_b) < FORAMEN_WINDOW_HALF_MM)
            if foramen:
                continue
            records.append((frac, float(angles[n]), r_b, float(hu[n][near].max()), posterior,
                            wall_lps))
    if not records:
        empty = ShellGap(0.0, None, 0)
        return empty, empty
    base = float(np.median(cancellous)) if cancellous else 0.0
    contrast = np.array([r[3] - base for r in records])
    limit = min(CORTEX_RELATIVE * float(np.median(contrast)), CORTEX_MIN_CONTRAST_HU)
    missing = contrast < limit
    return (_longest_gap(records, missing, posterior=False),
            _longest_gap(records, missing, posterior=True))


def _longest_gap(records: list[tuple[float, float, float, float, bool, FloatArray]],
                 missing: NDArray[np.bool_], *, posterior: bool) -> ShellGap:
    """The longest run of consecutive missing rays (same height, adjacent angles)."""
    step = math.radians(RAY_STEP_DEG)
    best, best_point, judged = 0.0, None, 0
    for frac in RAY_HEIGHT_FRACTIONS:
        rows = [(r, m) for r, m in zip(records, missing, strict=True)
                if r[0] == frac and r[4] == posterior]
        judged += len(rows)
        by_angle = {round(math.degrees(r[1]) / RAY_STEP_DEG): (r, m) for r, m in rows}
        n_steps = round(360.0 / RAY_STEP_DEG)
        for start, (_, m0) in by_angle.items():
            if not m0 or by_angle.get((start - 1) % n_steps, (None, False))[1]:
                continue  # not the start of a run
            arc, k = 0.0, start
            pts: list[FloatArray] = []
            while k % n_steps in by_angle and by_angle[k % n_steps][1] and len(pts) < n_steps:
                r, _ = by_angle[k % n_steps]
                arc += r[2] * step
                pts.append(r[5])
                k += 1
            if arc > best:
                best, best_point = arc, np.mean(pts, axis=0)
    return ShellGap(best, best_point, judged)


class _Field(NamedTuple):
    """A mask as float32 on a box of the anatomy's crop (``offset``: the box's first
    [k, j, i]): one vertebra's box, not the whole crop, which is 100 MB per float mask
    on a 512 × 512 × 300 CT."""

    values: NDArray[np.float32]
    offset: tuple[int, int, int]


def _level_fields(anatomy: Anatomy, level: str, boxes: Boxes | None = None
                  ) -> tuple[_Field, _Field]:
    """(body, whole vertebra) of ``level`` as interpolable fields, on the vertebra's box
    and two voxels around it (the box from ``boxes`` when given: a pass over the whole
    crop per level was most of the flags' time on a 512 × 512 CT)."""
    code = anatomy.levels[level].code
    if boxes is None:
        boxes = ndimage.find_objects(anatomy.labels)
    found = boxes[code - 1] if 0 < code <= len(boxes) else None
    if found is None:
        empty = _Field(np.zeros((1, 1, 1), np.float32), (0, 0, 0))
        return empty, empty
    shape = anatomy.labels.shape
    box = tuple(slice(max(0, b.start - 2), min(n, b.stop + 2))
                for b, n in zip(found, shape, strict=True))
    offset = (box[0].start, box[1].start, box[2].start)
    vert = anatomy.labels[box] == code
    body = (anatomy.bodies[box] & vert).astype(np.float32)
    return _Field(body, offset), _Field(vert.astype(np.float32), offset)


def _sample_crop(anatomy: Anatomy, field: _Field, lps: FloatArray) -> NDArray[np.float32]:
    ijk = anatomy.to_index(lps)
    k0, j0, i0 = field.offset
    return np.asarray(ndimage.map_coordinates(
        field.values, [ijk[:, 2] - k0, ijk[:, 1] - j0, ijk[:, 0] - i0],
        order=1, cval=0.0, output=np.float32))


def _sample_ct(volume: Volume, lps: FloatArray) -> NDArray[np.float32]:
    ijk = volume.to_index(lps)
    return np.asarray(ndimage.map_coordinates(volume.array, [ijk[:, 2], ijk[:, 1], ijk[:, 0]],
                                              order=1, cval=-1024.0, output=np.float32))


def lateral_wall_distance_mm(anatomy: Anatomy, level: str, tip_lps: FloatArray,
                             boxes: Boxes | None = None) -> float:
    """Distance from a tip to the body's lateral surface along the vertebra's left axis.

    On the tip's side of the midline (both sides when within 1 mm of it); 0 when the tip
    is outside the body.
    """
    geo = anatomy.levels[level]
    body, _vert = _level_fields(anatomy, level, boxes)
    tip = np.asarray(tip_lps, dtype=np.float64)
    if _sample_crop(anatomy, body, tip[None, :])[0] < 0.5:
        return 0.0
    left = float(geo.to_local(tip)[0])
    signs = [1.0, -1.0] if abs(left) < 1.0 else [math.copysign(1.0, left)]
    radii = np.arange(0.0, RAY_MAX_MM, RAY_STEP_MM)
    best = math.inf
    for sign in signs:
        pts = tip + sign * radii[:, None] * geo.left_lps
        out = np.flatnonzero(_sample_crop(anatomy, body, pts) < 0.5)
        if out.size:
            best = min(best, float(radii[out[0]]))
    return best


# ---- the flags ------------------------------------------------------------------------
def cortical_gap_min_mm(anatomy: Anatomy) -> float:
    """The shortest arc of missing cortex that is flagged on this grid (mm)."""
    in_plane = float(np.max(anatomy.spacing_mm[:2]))
    return max(CORTICAL_GAP_MIN_MM, CORTICAL_GAP_VOXELS * in_plane)


def _confidence_for(spacing_mm: float, fine: str, coarse: str) -> str:
    return fine if spacing_mm <= 1.25 else coarse


def level_flags(volume: Volume, anatomy: Anatomy, a: FractureAssessment,
                tips_lps: Iterable[tuple[str, FloatArray]] = (), *,
                gaps: tuple[ShellGap, ShellGap] | None = None,
                boxes: Boxes | None = None) -> list[LeakageFlag]:
    """All leakage flags of one level; ``tips_lps`` are (label, tip LPS) of its needles,
    ``gaps`` its `cortical_gaps` when the caller has them."""
    level = a.level
    spacing = float(np.max(anatomy.spacing_mm))
    if a.genant_grade is None:  # cut by the scan's edge: the shell is only partly there
        spacing = math.inf
    out: list[LeakageFlag] = []

    shell, back = gaps if gaps is not None else cortical_gaps(volume, anatomy, a, boxes)
    min_gap = cortical_gap_min_mm(anatomy)
    out.append(LeakageFlag(
        KIND_CORTICAL, level, shell.arc_mm >= min_gap,
        _confidence_for(spacing, "moderate", "low"),
        (f"{level}: the cortical shell is missing over {shell.arc_mm:.1f} mm of the "
         f"anterior/lateral wall (flagged from {min_gap:.0f} mm)."),
        {"gap_arc_mm": shell.arc_mm, "gap_min_mm": min_gap,
         "rays_judged": float(shell.rays_judged)},
        f"{NIEUWENHUIJSE_2011} {JOSR_2021}", "C", shell.point_lps))

    retro = a.retropulsion
    retro_mm = retro.displacement_mm if retro.displacement_mm is not None else math.nan
    wall_gap = back.arc_mm >= min_gap
    # say what was found, the finding that raised the flag first
    bulge = (f"the posterior wall bulges {retro_mm:.1f} mm into the canal beyond its "
             f"neighbours' walls (flagged from {RETROPULSION_MIN_MM:.0f} mm)"
             if retro.present else
             "the posterior wall is in line with its neighbours' walls"
             + (f" ({retro_mm:+.1f} mm)" if math.isfinite(retro_mm) else ""))
    gap = (f"its cortex is missing over {back.arc_mm:.1f} mm outside the basivertebral "
           f"foramen (flagged from {min_gap:.0f} mm)" if wall_gap else
           f"no gap of {min_gap:.0f} mm or more in its cortex outside the basivertebral "
           "foramen")
    parts = [bulge, gap] if retro.present or not wall_gap else [gap, bulge]
    why = f"{level}: {parts[0]}; {parts[1]}."
    out.append(LeakageFlag(
        KIND_POSTERIOR_WALL, level, retro.present or wall_gap,
        _confidence_for(spacing, "moderate", "low"), why,
        {"retropulsion_mm": retro_mm, "gap_arc_mm": back.arc_mm},
        f"{JOSR_2021} {YEOM_2003}", "B",
        back.point_lps if wall_gap else retro.wall_point_lps))

    c = a.cleft
    if c.present:
        why = (f"{level}: {c.kind} cleft of {c.volume_ml:.2f} ml in the body "
               f"(mean {c.mean_hu:.0f} HU); cement fills it first and may leave through "
               "its walls.")
    else:
        why = f"{level}: no gas or fluid region of 0.1 ml or more inside the body."
    out.append(LeakageFlag(
        KIND_CLEFT, level, c.present, "high" if c.kind == "gas" else "moderate", why,
        {"volume_ml": c.volume_ml, **({"mean_hu": c.mean_hu} if c.mean_hu is not None else {})},
        f"{CLEFT_CITATION} {NIEUWENHUIJSE_2011}", "C", c.centre_lps))

    e = a.endplate
    step = max(e.superior_step_mm, e.inferior_step_mm)
    out.append(LeakageFlag(
        KIND_ENDPLATE, level, e.present, _confidence_for(spacing, "moderate", "low"),
        (f"{level}: the {e.worst_endplate or 'superior'} endplate departs {step:.1f} mm "
         f"from its smooth surface (flagged from {e.threshold_mm:.1f} mm)."),
        {"superior_step_mm": e.superior_step_mm, "inferior_step_mm": e.inferior_step_mm,
         "threshold_mm": e.threshold_mm},
        BMC_2020, "D", e.worst_point_lps))

    tips = list(tips_lps)
    if tips:
        d, label, tip = _nearest_tip(
            tips, lambda t: float(np.linalg.norm(t - a.foramen_lps)))
        out.append(LeakageFlag(
            KIND_BASIVERTEBRAL, level, d < BASIVERTEBRAL_TIP_MM, "moderate",
            (f"{label}: tip {d:.1f} mm from the basivertebral foramen (posterior wall, "
             f"midline, mid-height; flagged under {BASIVERTEBRAL_TIP_MM:.0f} mm)."),
            {"tip_to_foramen_mm": d}, f"{YEOM_2003} {JOSR_2021}", "B", a.foramen_lps))
        d, label, tip = _nearest_tip(
            tips, lambda t: lateral_wall_distance_mm(anatomy, level, t, boxes))
        out.append(LeakageFlag(
            KIND_SEGMENTAL, level, d < SEGMENTAL_TIP_MM, "moderate",
            (f"{label}: tip {d:.1f} mm from the lateral wall of the body, where the "
             f"segmental veins drain it (flagged under {SEGMENTAL_TIP_MM:.0f} mm)."),
            {"tip_to_lateral_wall_mm": d}, YEOM_2003, "S", np.asarray(tip, dtype=np.float64)))
    return out


def _nearest_tip(tips: list[tuple[str, FloatArray]], distance_mm: Callable[[FloatArray], float]
                 ) -> tuple[float, str, FloatArray]:
    """(distance, label, tip) of the tip nearest by ``distance_mm`` (the first of equals)."""
    return min(((distance_mm(np.asarray(t)), label, t) for label, t in tips),
               key=lambda x: x[0])


def leakage_flags(volume: Volume, anatomy: Anatomy,
                  assessment: Mapping[str, FractureAssessment],
                  trajectories: Iterable[Trajectory] = ()) -> dict[str, list[LeakageFlag]]:
    """Leakage flags for every assessed level (tip flags only where a needle is planned).

    Every flag is returned, present or not, so a report can say what was looked for.
    """
    tips: dict[str, list[tuple[str, FloatArray]]] = {}
    for t in trajectories:
        tips.setdefault(t.level, []).append((t.label, t.target))
    boxes = ndimage.find_objects(anatomy.labels)
    # the shell does not move with the needles: once per CT, anatomy and assessment
    # (`result_memo`), not again on every edit of the plan
    gaps = MEMO.remembered(
        "shell gaps", (volume.array, volume.affine_lps, anatomy, dict(assessment)),
        lambda: {level: cortical_gaps(volume, anatomy, a, boxes)
                 for level, a in assessment.items()})
    return {level: level_flags(volume, anatomy, a, tips.get(level, ()), gaps=gaps[level],
                               boxes=boxes)
            for level, a in assessment.items()}


def present_flags(flags: Mapping[str, list[LeakageFlag]]) -> list[LeakageFlag]:
    """The flags that are present, level by level in the given order."""
    return [f for level_list in flags.values() for f in level_list if f.present]
