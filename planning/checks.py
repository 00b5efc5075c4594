"""Safety checks of one needle trajectory against the spinal canal and its vertebra's walls.

The needle is a cylinder of its gauge's outer radius from entry to tip. Distances are
between the needle's outer surface and the structure, in mm; negative means the needle is
inside it by that depth. Every check gives a number and, where it matters, a sentence a
surgeon reads: "Left L2: the needle enters the spinal canal by 2.4 mm (grade C)".

`CheckContext.build` does the per-CT work once (surfaces, KD-trees, per-level landmarks);
`check` then runs in well under a millisecond, so the GUI can call it on every mouse move.
The result and the limits are values of their own (`planning.check_result`), and the plain
geometry of the path (angles, samples, distance between needles) is in
`planning.needle_geometry`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import find_objects

from planning.anatomy.model import Anatomy, VertebraGeometry, crop_affine
from planning.assessment.pedicle_norms import norm_for
from planning.canal_margin import CanalMargin
from planning.check_result import (
    GRADE_LIMITS_MM,
    CheckResult,
    SafetyLimits,
    Status,
    WallBreach,
    breach_grade,
)
from planning.clearance import (
    COARSE_ERROR_MM,
    SignedDistance,
    min_along_segment,
    segment_points,
)
from planning.grid_lookup import nearest_voxels
from planning.image_evidence import (
    CANCELLOUS_HU,
    RAY_DIRECTIONS_LOCAL,
    ImageEvidence,
    TipEvidence,
)
from planning.metal_on_path import APPROACH_MM, metal_on_path
from planning.needle_geometry import (
    PATIENT_AXES,
    angles,
    line_samples,
    segment_distance,
    wall_name,
)
from planning.plan import Plan, Side, Trajectory
from planning.result_memo import MEMO
from planning.volume import Volume, inverse_affine

FloatArray = NDArray[np.float64]

WALL_CANDIDATES = 6  # pedicle points measured exactly: those the coarse grid puts outermost
SKIN_HU = -400.0  # below this, behind the entry, is air outside the body
WALL_STEP_VOX = 2  # vertebra wall surfaces: vertices two voxels apart (see SignedDistance)
CANAL_STEP_VOX = 1  # the canal surface: every voxel (its clearance is the headline number)
WALL_STEP_MM = 1.0  # pedicle wall samples
SKIN_SEARCH_S = np.arange(251, dtype=np.float64)  # mm behind the entry, 1 mm apart


@dataclass(frozen=True, eq=False)
class LevelLandmarks:
    """Per-level numbers the checks use, measured once from the anatomy (LPS mm)."""

    geometry: VertebraGeometry
    canal_ap_range_mm: tuple[float, float]  # local anterior coordinate of the canal (min, max)
    body_ap_range_mm: tuple[float, float]  # local anterior coordinate of the body (min, max)
    walls: SignedDistance  # the whole vertebra


@dataclass(eq=False)
class CheckContext:
    """Per-CT precomputation shared by every check (built once, then read-only)."""

    anatomy: Anatomy
    canal: SignedDistance
    landmarks: dict[str, LevelLandmarks]
    code_to_level: dict[int, str]
    hu: NDArray[np.int16]
    hu_index_from_lps: FloatArray
    limits: SafetyLimits
    evidence: ImageEvidence | None = None
    canal_margin: CanalMargin | None = None  # on an automatically found canal

    @classmethod
    def build(
        cls, volume: Volume, anatomy: Anatomy, limits: SafetyLimits | None = None
    ) -> CheckContext:
        """The context of ``anatomy`` on ``volume`` (~1 s on the demo CT; once per content
        in a process, `result_memo`: the window, the export and a second window share it)."""
        limits = limits or SafetyLimits()
        canal, landmarks, evidence, margin = MEMO.remembered(
            "check context", (volume.array, volume.affine_lps, anatomy, limits),
            lambda: _measured_from_image(volume, anatomy, limits))
        return cls(
            anatomy=anatomy,
            canal=canal,
            landmarks=landmarks,
            code_to_level={g.code: n for n, g in anatomy.levels.items()},
            hu=np.ascontiguousarray(volume.array),
            hu_index_from_lps=inverse_affine(volume.affine_lps),
            limits=limits,
            evidence=evidence,
            canal_margin=margin,
        )

    def voxel_lookup(self, points_lps: FloatArray) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Flat indices into the anatomy arrays of the voxels nearest to the points, and
        which points fall inside the crop (computed once, used for every mask)."""
        return nearest_voxels(self.anatomy.index_from_lps, self.anatomy.labels.shape, points_lps)

    def label_at(self, points_lps: FloatArray) -> NDArray[np.int16]:
        """Vertebra code at each point (nearest voxel; 0 outside any vertebra or the crop)."""
        flat, ok = self.voxel_lookup(points_lps)
        return np.where(ok, self.anatomy.labels.ravel()[flat], 0).astype(np.int16)

    def hu_along(self, points_lps: FloatArray) -> NDArray[np.int16]:
        """HU of the nearest CT voxel at each point (air outside the CT)."""
        flat, ok = nearest_voxels(self.hu_index_from_lps, self.hu.shape, points_lps)
        return np.where(ok, self.hu.reshape(-1)[flat], -1024).astype(np.int16)


def _measured_from_image(volume: Volume, anatomy: Anatomy, limits: SafetyLimits
                         ) -> tuple[SignedDistance, dict[str, LevelLandmarks], ImageEvidence,
                                    CanalMargin | None]:
    """The slow part of `CheckContext.build`: the canal's and walls' surfaces, each level's
    landmarks, the image's own evidence and the canal's margin."""
    canal = SignedDistance.build(anatomy.canal, anatomy.affine_lps, step_vox=CANAL_STEP_VOX)
    _ = canal.sparse  # built now, not on the first mouse move
    k, j, i = np.nonzero(anatomy.canal)
    canal_lps = anatomy.to_lps(np.stack([i, j, k], 1).astype(np.float64))
    boxes = find_objects(anatomy.labels)  # one pass: each vertebra's bounding box
    landmarks = {}
    for name, geo in anatomy.levels.items():
        box = boxes[geo.code - 1] if 0 < geo.code <= len(boxes) else None
        if box is not None:
            landmarks[name] = _landmarks(anatomy, geo, box, canal_lps)
    return (canal, landmarks, ImageEvidence.build(volume, anatomy),
            CanalMargin.build(volume, anatomy, canal, limits.canal_caution_mm))


def _landmarks(
    anatomy: Anatomy, geo: VertebraGeometry, box: tuple[slice, ...], canal_lps: FloatArray
) -> LevelLandmarks:
    vert = anatomy.labels[box] == geo.code
    box_affine = crop_affine(anatomy.affine_lps, (box[0], box[1], box[2]))
    walls = SignedDistance.build(vert, box_affine, step_vox=WALL_STEP_VOX)
    local_canal = geo.to_local(canal_lps)
    k, j, i = np.nonzero(vert & anatomy.bodies[box])
    ijk = np.stack([i, j, k], 1).astype(np.float64)
    body_local = geo.to_local(ijk @ box_affine[:3, :3].T + box_affine[:3, 3])
    if len(body_local):
        half_height = max(3.0, float(np.percentile(np.abs(body_local[:, 2]), 90)))
        central = np.abs(body_local[:, 0]) < 5.0  # a mid-sagittal slab of the body
        ap = body_local[central, 1] if central.any() else body_local[:, 1]
        body_range = (float(ap.min()), float(ap.max()))
    else:
        half_height, body_range = 12.0, (-15.0, 15.0)
    near = local_canal[np.abs(local_canal[:, 2]) < half_height]
    near = near[np.abs(near[:, 0]) < 15.0]
    if len(near):
        canal_range = (float(near[:, 1].min()), float(near[:, 1].max()))
    else:
        canal_range = (body_range[0] - 18.0, body_range[0])
    return LevelLandmarks(geo, canal_range, body_range, walls)


def _skin_to_tip(
    ctx: CheckContext, entry: FloatArray, direction: FloatArray, length_mm: float
) -> float | None:
    """Length from the skin (where the body ends behind the entry, HU > −400) to the tip.

    HU is sampled every millimetre back along the needle; the crossing is interpolated
    between the last sample in the body and the first in the air.
    """
    s = SKIN_SEARCH_S
    hu = ctx.hu_along(entry - s[:, None] * direction)
    outside = np.flatnonzero(hu < SKIN_HU)
    if not len(outside):
        return None
    n = int(outside[0])
    if n == 0:
        return length_mm
    h0, h1 = float(hu[n - 1]), float(hu[n])
    frac = (h0 - SKIN_HU) / (h0 - h1) if h0 != h1 else 0.0
    return length_mm + float(s[n - 1] + frac * (s[n] - s[n - 1]))


def check(t: Trajectory, ctx: CheckContext, plan: Plan | None = None) -> CheckResult:
    """Check one trajectory; ``plan`` (if given) supplies the other needle of its level."""
    lim = ctx.limits
    r = t.radius_mm
    reasons: list[str] = []
    unsafe = caution = False
    lm = ctx.landmarks.get(t.level)
    entry, tip = t.entry, t.target
    length = t.length_mm
    direction = (tip - entry) / max(length, 1e-9)
    unit = (float(direction[0]), float(direction[1]), float(direction[2]))

    # --- canal ----------------------------------------------------------------------------
    canal_d, canal_pt, _ = min_along_segment(ctx.canal, entry, tip, lim.sample_step_mm)
    clearance = canal_d - r
    grade = breach_grade(clearance)
    if grade != "A":
        unsafe = True
        reasons.append(f"the needle enters the spinal canal by {-clearance:.1f} mm (grade {grade})")
    elif clearance < lim.canal_caution_mm:
        caution = True
        reasons.append(
            f"only {clearance:.1f} mm from the spinal canal "
            f"(keep at least {lim.canal_caution_mm:.1f} mm)"
        )
    tight = None
    if ctx.canal_margin is not None and grade == "A":
        tight = ctx.canal_margin.at(entry, tip, r)
        if not tight.kept and clearance >= lim.canal_caution_mm:
            caution = True
            reasons.append(tight.describe())
        if ctx.canal_margin.coarse is not None:  # outside the margin's measured envelope
            caution = True
            reasons.append(f"{ctx.canal_margin.coarse}: the clearance to the automatically "
                           "found canal may be overstated; check it on the images")

    # --- sides, frame ---------------------------------------------------------------------
    if lm is None:
        geo = None
        left, anterior, superior = PATIENT_AXES
        unsafe = True
        reasons.append(f"{t.level} is not a vertebra found in this CT's anatomy")
    else:
        geo = lm.geometry
        left, anterior, superior = geo.left_lps, geo.anterior_lps, geo.superior_lps
    medial_p, cc_p = angles(unit, *PATIENT_AXES, t.side)
    medial_v, cc_v = angles(unit, left, anterior, superior, t.side)

    wall_breaches: list[WallBreach] = []
    tip_in_body = False
    ant_cortex: float | None = None
    depth_fraction: float | None = None
    midline = 0.0
    crossings: list[str] = []
    line, s_line, n_path = line_samples(entry, direction, length)
    flat, ok = ctx.voxel_lookup(line)  # one lookup serves the labels, discs and cortex
    line_codes = np.where(ok, ctx.anatomy.labels.ravel()[flat], 0)
    pts, codes = line[:n_path], line_codes[:n_path]
    tip_code = int(codes[-1])
    tip_level = ctx.code_to_level.get(tip_code)

    if lm is not None and geo is not None:
        loc = geo.to_local(pts)
        loc_entry, loc_tip = loc[0], loc[-1]
        if np.sign(loc_entry[0]) != t.side.lps_sign and abs(loc_entry[0]) > 2.0:
            unsafe = True
            other = "right" if t.side is Side.LEFT else "left"
            reasons.append(f"the entry lies on the patient's {other}: left and right swapped?")
        midline = abs(float(loc_tip[0]))
        # pedicle walls: the part of the path within the canal's front-to-back span
        lo, hi = lm.canal_ap_range_mm
        in_pedicle = (loc[:, 1] >= lo) & (loc[:, 1] <= hi)
        seg = pts[in_pedicle][:: max(1, round(WALL_STEP_MM / (s_line[1] or 1.0)))]
        if len(seg):
            approx = lm.walls.approximate(seg)
            close = np.flatnonzero(approx > -(r + COARSE_ERROR_MM))  # only these can breach
            close = close[np.argsort(approx[close])[-WALL_CANDIDATES:]]  # the likeliest
            depth = -np.inf
            if len(close):
                d, normals = lm.walls.refined_many(seg[close])
                worst = int(np.argmax(d))
                depth, normal = float(d[worst]) + r, normals[worst]
            if depth > lim.wall_breach_caution_mm:
                wall = wall_name(normal, geo, t.side)
                wall_breaches.append(WallBreach(wall, depth))
                if wall == "medial":
                    unsafe = True
                    reasons.append(
                        f"the needle breaches the medial pedicle wall by "
                        f"{depth:.1f} mm (towards the canal)"
                    )
                else:
                    caution = True
                    reasons.append(f"the needle breaches the {wall} pedicle wall by {depth:.1f} mm")
        # tip
        tip_in_body = tip_code == geo.code and bool(ok[n_path - 1]) and bool(
            ctx.anatomy.bodies.ravel()[flat[n_path - 1]]
        )
        b_lo, b_hi = lm.body_ap_range_mm
        depth_fraction = float((loc_tip[1] - b_lo) / max(b_hi - b_lo, 1e-6))
        if tip_code != geo.code:
            if loc_tip[1] > 0.0 and depth_fraction > 0.5:
                unsafe = True
                reasons.append("the tip is through the anterior cortex of the body")
                ant_cortex = -_distance_back_to_bone(ctx, tip, direction, geo.code)
            else:
                unsafe = True
                where = f"in {tip_level}" if tip_level else "outside the vertebra"
                reasons.append(f"the tip is not in the body of {t.level} ({where})")
        else:
            out = np.flatnonzero(line_codes[n_path:] != geo.code)
            ant_cortex = float(s_line[n_path + out[0]] - length) - r if len(out) else None
            if ant_cortex is not None and ant_cortex < lim.anterior_cortex_warn_mm:
                caution = True
                reasons.append(
                    f"the tip is {ant_cortex:.1f} mm from the anterior cortex "
                    f"(keep {lim.anterior_cortex_warn_mm:.0f} mm)"
                )
            if not tip_in_body:
                caution = True
                reasons.append(
                    f"the tip is in the posterior elements of {t.level}, not in the body"
                )
            elif depth_fraction < lim.target_depth_min:
                caution = True
                reasons.append(
                    f"the tip is in the posterior half of the body "
                    f"({depth_fraction:.0%} deep; aim for the anterior third)"
                )
        if midline > lim.midline_max_mm:
            caution = True
            reasons.append(f"the tip is {midline:.1f} mm from the midline")
        # endplates: the path must not run into a disc or another vertebra
        others = sorted(
            {
                ctx.code_to_level.get(c, "another vertebra")
                for c in set(codes.tolist())
                if c not in (0, geo.code)
            }
        )
        for name in others:
            crossings.append(name)
            unsafe = True
            reasons.append(f"the path crosses into {name} (through an endplate)")
        discs = ctx.anatomy.discs
        if discs is not None and (ok[:n_path] & discs.ravel()[flat[:n_path]]).any():
            crossings.append("disc")
            unsafe = True
            reasons.append("the path crosses into an intervertebral disc")

    # --- what the image itself shows: vessels, bone around the tip, the approach ------------
    vessel_mm: float | None = None
    walled: int | None = None
    tip_hu: float | None = None
    bone_ahead: float | None = None
    behind_hu: float | None = None
    dense = False
    plates_gap: float | None = None
    rays = len(RAY_DIRECTIONS_LOCAL)
    approach = "transpedicular"
    ev = ctx.evidence
    frame = np.array([left, anterior, superior], dtype=np.float64)
    skin_to_tip = _skin_to_tip(ctx, entry, direction, length)
    way_in_mm = APPROACH_MM if skin_to_tip is None else min(APPROACH_MM, skin_to_tip - length)
    if (metal := metal_on_path(ctx.hu_along, entry, tip, r, lim.sample_step_mm,
                               way_in_mm)) is not None:
        unsafe = True
        reasons.append(metal.describe())
    if ev is not None:
        if ev.vessel_field is not None:
            vd, vpt, _ = min_along_segment(ev.vessel_field, entry, tip, lim.sample_step_mm)
            vessel_mm = vd - r
            where = _where(vpt, geo.centroid_lps if geo is not None else tip, frame)
            if vessel_mm <= 0.0:
                unsafe = True
                reasons.append(f"the needle enters a contrast-filled vessel ({where}) by "
                               f"{-vessel_mm:.1f} mm")
            elif vessel_mm < lim.vessel_min_mm:
                unsafe = True
                reasons.append(f"the needle passes {vessel_mm:.1f} mm from a contrast-filled "
                               f"vessel ({where}; keep {lim.vessel_min_mm:.0f} mm)")
            elif vessel_mm < lim.vessel_caution_mm:
                caution = True
                reasons.append(f"the needle passes {vessel_mm:.1f} mm from a contrast-filled "
                               f"vessel ({where})")
        te = ev.tip(tip, frame, direction)
        walled, tip_hu, rays, bone_ahead = te.walled, te.tip_hu, te.rays, te.cortex_ahead_mm
        behind_hu, dense, plates_gap = te.behind_hu, te.dense, te.plates_gap_mm
        reasons_tip = _tip_reasons(te, lim, ant_cortex)
        if reasons_tip:
            if not te.enclosed:
                unsafe = True
            else:
                caution = True
            reasons.extend(reasons_tip)
    if geo is not None:
        text, approach = _approach(t, medial_v, cc_v, wall_breaches, r, lim)
        if text:
            caution = True
            reasons.append(text)

    # --- the other needle of the level -------------------------------------------------
    pair = None
    if plan is not None:
        other_side = Side.RIGHT if t.side is Side.LEFT else Side.LEFT
        o = next(
            (x for x in plan.trajectories if x.side is other_side and x.level == t.level), None
        )
        if o is not None:
            gap = segment_distance(t.entry_lps, t.target_lps, o.entry_lps, o.target_lps)
            pair = gap - r - o.radius_mm
            if pair <= 0.0:
                unsafe = True
                reasons.append("the left and right needles touch")
            elif pair < lim.pair_min_distance_mm:
                caution = True
                reasons.append(f"the left and right needles are only {pair:.1f} mm apart")

    status = Status.UNSAFE if unsafe else Status.CAUTION if caution else Status.SAFE
    label = t.label
    return CheckResult(
        level=t.level,
        side=t.side,
        status=status,
        canal_clearance_mm=float(clearance),
        breach_grade=grade,
        closest_canal_point_lps=(float(canal_pt[0]), float(canal_pt[1]), float(canal_pt[2])),
        wall_breaches=tuple(wall_breaches),
        tip_in_body=tip_in_body,
        tip_level=tip_level,
        tip_to_anterior_cortex_mm=ant_cortex,
        tip_depth_fraction=depth_fraction,
        tip_to_midline_mm=midline,
        crossings=tuple(crossings),
        pair_distance_mm=pair,
        length_mm=length,
        skin_to_tip_mm=skin_to_tip,
        medial_angle_deg=medial_p,
        craniocaudal_angle_deg=cc_p,
        medial_angle_vertebra_deg=medial_v,
        craniocaudal_angle_vertebra_deg=cc_v,
        reasons=tuple(f"{label}: {text}" for text in reasons),
        vessel_clearance_mm=vessel_mm,
        tip_walled_directions=walled,
        tip_rays=rays,
        tip_hu=tip_hu,
        tip_bone_ahead_mm=bone_ahead,
        tip_behind_hu=behind_hu,
        tip_dense=dense,
        tip_plates_gap_mm=plates_gap,
        canal_margin=tight,
        approach=approach,
    )


def _where(point_lps: FloatArray, origin_lps: FloatArray, frame: FloatArray) -> str:
    """Where a point lies from the vertebra's centre, in the patient's words."""
    left, ant, _ = frame @ (np.asarray(point_lps) - origin_lps)
    side = "on the patient's left" if left > 0 else "on the patient's right"
    front = "in front of the body" if ant > 0 else "beside the body" if ant > -20 else \
        "behind the body"
    return f"{front}, {side}"


def _tip_reasons(te: TipEvidence, lim: SafetyLimits,
                 anatomy_cortex_mm: float | None) -> list[str]:
    """Words for what the image says around the tip (empty when all is well)."""
    if te.tip_hu > CANCELLOUS_HU[1]:
        return [f"the CT shows dense bone or metal at the tip ({te.tip_hu:.0f} HU), not "
                "cancellous bone"]
    if te.tip_hu < CANCELLOUS_HU[0]:
        return [f"the CT shows fat or air at the tip ({te.tip_hu:.0f} HU), not bone"]
    if not te.enclosed:
        towards = ", ".join(te.open_towards[:4])
        return [f"the CT shows the tip at the edge of the bone: no bone around it on "
                f"{te.rays - te.walled} of {te.rays} sides (towards {towards}); the tip may "
                "be outside the vertebral body"]
    if te.dense:
        return [f"the CT shows dense bone at the tip ({te.tip_hu:.0f} HU against "
                f"{te.behind_hu:.0f} HU in the body behind it): an endplate, the cortex or "
                "an osteophyte, not the cancellous body that takes the cement"]
    if te.between_plates:
        return [f"the CT shows dense plates {te.plates_gap_mm:.1f} mm apart above and below "
                "the tip: a disc between two endplates, or a body crushed flat, not the "
                "cancellous body that takes the cement"]
    ahead = te.cortex_ahead_mm
    if ahead is not None and ahead < lim.anterior_cortex_warn_mm and (
            anatomy_cortex_mm is None or anatomy_cortex_mm >= lim.anterior_cortex_warn_mm):
        return [f"the CT shows the cortex {ahead:.1f} mm ahead of the tip (keep "
                f"{lim.anterior_cortex_warn_mm:.0f} mm)"]
    return []


def _approach(t: Trajectory, medial_deg: float, cc_deg: float,
              breaches: list[WallBreach], radius_mm: float, lim: SafetyLimits
              ) -> tuple[str, str]:
    """(words, approach): a path lateral to its pedicle (its axis outside the pedicle's
    lateral wall) is parapedicular; one whose angles are far from the level's pedicle axis
    is atypical. Words are empty for a typical transpedicular path."""
    norm = norm_for(t.level)
    if norm is not None:
        m, c = norm.transverse_angle_deg.mean, norm.sagittal_angle_deg.mean
        if (abs(medial_deg - m) > lim.atypical_medial_deg
                or abs(cc_deg - c) > lim.atypical_craniocaudal_deg):
            cc_word = "caudal" if cc_deg >= 0 else "cranial"
            return (f"atypical path: {medial_deg:.0f}° medial, {abs(cc_deg):.0f}° {cc_word}; a "
                    f"{t.level} pedicle runs about {m:.0f}° medial, {c:.0f}° caudal (Zindrick "
                    "1987, Panjabi 1991/92)", "atypical")
    lateral = next((b for b in breaches if b.wall == "lateral"), None)
    if lateral is not None and lateral.depth_mm > radius_mm:
        where = ("through the costovertebral junction" if t.level.startswith("T")
                 else "outside the pedicle")
        return (f"parapedicular path: the needle's axis passes {lateral.depth_mm - radius_mm:.1f}"
                f" mm lateral to the pedicle ({where})", "parapedicular")
    return "", "transpedicular"


def _distance_back_to_bone(
    ctx: CheckContext, tip: FloatArray, direction: FloatArray, code: int
) -> float:
    """How far behind the tip (along the needle) the vertebra is still found (mm)."""
    back, s = segment_points(tip, tip - 60.0 * direction, 0.25)
    hit = np.flatnonzero(ctx.label_at(back) == code)
    return float(s[hit[0]]) if len(hit) else 60.0


def check_plan(plan: Plan, ctx: CheckContext) -> list[CheckResult]:
    """Check every trajectory of a plan (pairs included)."""
    return [check(t, ctx, plan) for t in plan.trajectories]


# ---- words for the numbers (panels, report) ----------------------------------------
def grade_meaning(grade: str) -> str:
    """What a Gertzbein–Robbins style grade means, from the limits the checks use.

    Derived from `planning.check_result.GRADE_LIMITS_MM` so the words can never disagree
    with the grading itself.
    """
    limits = [limit for _, limit in GRADE_LIMITS_MM]
    names = [name for name, _ in GRADE_LIMITS_MM]
    if grade == "A":
        return "no breach of the canal"
    if grade in names:
        i = names.index(grade)
        lo, hi = limits[i - 1], limits[i]
        if lo <= 0.0:
            return f"into the canal by < {hi:g} mm"
        return f"into the canal by {lo:g}–{hi:g} mm"
    if grade == "E":
        return f"into the canal by > {limits[-1]:g} mm"
    return "unknown grade"


def reason_text(result: CheckResult, reason: str) -> str:
    """A reason without the "Left L2: " prefix the checks add (the heading already says
    which needle it is), starting with a capital letter."""
    prefix = f"{result.side.value.capitalize()} {result.level}: "
    text = reason[len(prefix):] if reason.startswith(prefix) else reason
    return text[:1].upper() + text[1:]


def canal_wall_words(result: CheckResult) -> str | None:
    """"± u mm" and what the canal's wall is where the needle passes it most tightly, in
    words (None for an imported canal, trusted as drawn, or a needle inside the canal)."""
    m = result.canal_margin
    if m is None:
        return None
    wall = "soft tissue: the automatic canal may reach further" if m.soft_wall else "bone"
    text = f"± {m.uncertainty_mm:.1f} mm ({wall})"
    if not result.canal_margin_kept:
        text += "; the needle passes nearer than that allows"
    return text
