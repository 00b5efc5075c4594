"""The fracture findings that change the procedure: retropulsion, cleft, endplate disruption.

Why apart from `planning.assessment.fracture` (heights, Genant grade and shape): each
finding is its own measurement with its own threshold and source, and the leakage flags
(`planning.assessment.leakage`) read them without the grading. Everything is measured in
the vertebra's own frame and returned in LPS mm.

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

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.model import Anatomy, VertebraGeometry
from planning.assessment.body_profile import BodyProfile
from planning.assessment.body_sampling import GRID_STEP_MM, Box, boxed_body
from planning.volume import Volume

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

RETROPULSION_MIN_MM = 2.0
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
                "wall_point_lps": point_json(self.wall_point_lps),
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
                "centre_lps": None if self.centre_lps is None else point_json(self.centre_lps),
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
                                    else point_json(self.worst_point_lps))}


def point_json(v: FloatArray) -> list[float]:
    """A point's coordinates for JSON, rounded to 0.001 mm."""
    return [round(float(x), 3) for x in v]


def retropulsion(geo: VertebraGeometry, wall_point_lps: FloatArray,
                 above: tuple[str, FloatArray] | None, below: tuple[str, FloatArray] | None
                 ) -> Retropulsion:
    """A level's posterior wall against the line of its neighbours' (see module doc).

    ``wall_point_lps``: the most posterior point of the level's posterior wall;
    ``above``/``below``: the neighbour's name and its wall corner facing this level (the
    lower end of the wall above, the upper end of the wall below), None when not measured.
    """
    if above is None and below is None:
        return Retropulsion(False, None, wall_point_lps)
    # the neighbours' wall corners facing this level, in this level's frame
    pts = [geo.to_local(n[1]) for n in (above, below) if n is not None]
    mine = geo.to_local(wall_point_lps)
    if len(pts) == 2:
        (_, a0, s0), (_, a1, s1) = pts
        t = (mine[2] - s0) / (s1 - s0) if abs(s1 - s0) > 1e-6 else 0.5
        ref_a = a0 + t * (a1 - a0)
    else:
        ref_a = pts[0][1]
    shift = float(ref_a - mine[1])
    refs = tuple(n[0] for n in (above, below) if n is not None)
    return Retropulsion(shift >= RETROPULSION_MIN_MM, shift, wall_point_lps, refs)


def _hu_on_crop(volume: Volume, anatomy: Anatomy, box: Box) -> NDArray[np.float32]:
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
    box, m = boxed_body(anatomy, level)
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
