"""What the CT image itself says around a needle, whatever the anatomy claims.

The checks are the last line of defence: an anatomy can be wrong (the automatic one took a
contrast-filled aorta for vertebral body and the checks then said "tip in the body of T5"
of a tip in the aorta). So every check also asks the image, with no segmentation between:

- **vessels**: the contrast-filled vessels and heart chambers (`planning.vessels`), found in
  this CT; the needle's surface must keep `SafetyLimits.vessel_min_mm` from them.
- **bone all around the tip**: rays from the tip in 14 directions of the vertebra's frame
  (±left, ±anterior, ±superior and the eight diagonals). A ray is closed when it meets a
  wall brighter than the bone around the tip (a cortex, an endplate) before it leaves the
  bone, or when it leaves only `BONE_AROUND_MM` or more from the tip. "Leaving" is a
  vessel's lumen, metal, or a run of tissue much darker than the bone around the tip (fat,
  lung, air; muscle or a disc beside dense bone). Why both: thin cortex partial-volumed at
  1.5–3 mm is often no brighter than the cancellous bone inside it, and porotic cancellous
  bone (~60 HU) is as dark as muscle. A tip in cancellous bone is closed on every side; a
  tip in a vessel, in fat or at the body's surface is open on several.
- **the bone ahead**: along the needle, how far beyond the tip the image shows the next
  wall or the bone's end: a tip on the anterior cortex has it at once.
- **the bone at the tip against the bone behind it**: the median HU of the needle's last
  3–15 mm before the tip (the body it crossed). A tip in an endplate, a cortex or an
  osteophyte sits in bone much denser than that (on VerSe 012 turned 20°, three automatic
  tips outside their vertebra read 442–693 HU against 210–251 HU behind them; tips in the
  body read within 30 % of the bone behind). Cement needs cancellous bone; a body dense
  all through (a blastic metastasis) is dense behind the tip too and is not flagged.
- **the plates above and below the tip**: along the vertebra's superior axis, the first wall
  above and the first below. In a body they are its endplates, 17–56 mm apart on the
  harness's tips inside their vertebra (9.5 mm on a real wedge fracture); a tip in a disc
  has the two endplates that bound the disc 3.5–8 mm apart (VerSe 012 re-stored at 3 mm,
  turned 20° about x, 10° about y, 25° about z: the automatic split put a body's lower
  end in the disc below it). Under `PLATES_MIN_GAP_MM` the tip is in a disc, or in a body
  crushed flat, which takes no needle either.

Everything is sampled from the CT's own voxels (trilinear), in LPS mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import map_coordinates, uniform_filter1d

from planning.anatomy.model import Anatomy
from planning.anatomy.spine_column import SpineNotFoundError, find_column, working_grid
from planning.clearance import SignedDistance
from planning.grid_lookup import nearest_voxels
from planning.vessels import VesselMap, find_vessels
from planning.volume import FloatArray, Volume, inverse_affine

RAY_LENGTH_MM = 40.0  # a lumbar body is ~35 mm deep, ~45 mm wide
RAY_STEP_MM = 0.5
TIP_BALL_MM = 2.5  # the bone "around the tip" is sampled within this radius
WALL_ABOVE_TIP_HU = 90.0  # a wall is this much brighter than the bone around the tip…
WALL_MIN_HU = 200.0  # …and at least this bright (osteoporotic cortex at 3 mm: ~250 HU)…
WALL_MM = 1.5  # …over this length along the ray
EXIT_HU = -30.0  # fat, lung, air: outside any bone…
EXIT_BELOW_TIP_HU = 130.0  # …and anything this much darker than the bone around the tip
# (muscle or a disc beside dense cancellous bone; porotic bone of ~60 HU exits at fat only)
BONE_AROUND_MM = 2.5  # a tip in the body has bone at least this far in (nearly) every way
EXIT_RUN_MM = 1.5  # this much fat in a row, and the ray has left the bone…
DARK_RUN_MM = 4.0  # …or this much of the darker tissue (trabecular bone has dark pockets)
METAL_HU = 2500.0
WALLED_MIN = 12  # of 14 directions: a tip in the body is walled on (nearly) every side
CANCELLOUS_HU = (-80.0, 700.0)  # HU around a tip in cancellous bone (fatty … sclerotic)
BEHIND_MM = (3.0, 15.0)  # the needle's path before the tip that is "the bone behind it"
DENSE_ABOVE_BEHIND_HU = 150.0  # a tip this much denser than the bone behind it…
DENSE_RATIO = 1.6  # …and this many times as dense sits in an endplate or a cortex
PLATES_MIN_GAP_MM = 8.5  # walls above and below the tip nearer together: a disc (see doc)
EVIDENCE_MARGIN_MM = 25.0  # vessels are sought this far around the anatomy's crop

_AXES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
                 dtype=np.float64)
_DIAGONALS = np.array([[a, b, c] for a in (1, -1) for b in (1, -1) for c in (1, -1)],
                      dtype=np.float64) / np.sqrt(3.0)
RAY_DIRECTIONS_LOCAL = np.vstack([_AXES, _DIAGONALS])
_SUPERIOR_RAYS = (4, 5)  # the rows of `_AXES` straight up and straight down
"""(left, anterior, superior) unit vectors of the rays, in the vertebra's frame."""
_STEPS = np.arange(1, int(RAY_LENGTH_MM / RAY_STEP_MM) + 1) * RAY_STEP_MM
_BEHIND_STEPS = np.arange(BEHIND_MM[0], BEHIND_MM[1] + 1e-9, RAY_STEP_MM)


@dataclass(frozen=True)
class TipEvidence:
    """The image around one tip: how many of its rays stayed in bone (`walled`)."""

    walled: int
    rays: int
    tip_hu: float
    open_towards: tuple[str, ...]
    cortex_ahead_mm: float | None  # along the needle, tip to the next wall or the bone's end
    behind_hu: float | None = None  # median HU of the needle's path 3–15 mm before the tip
    plates_gap_mm: float | None = None  # between the first walls above and below the tip

    @property
    def dense(self) -> bool:
        """The tip sits in bone much denser than the body behind it (see module doc)."""
        return (self.behind_hu is not None
                and self.tip_hu >= self.behind_hu + DENSE_ABOVE_BEHIND_HU
                and self.tip_hu >= DENSE_RATIO * max(self.behind_hu, 1.0))

    @property
    def between_plates(self) -> bool:
        """Dense plates above and below the tip closer together than any cancellous body:
        a disc between two endplates, or a body crushed flat (see module doc)."""
        return self.plates_gap_mm is not None and self.plates_gap_mm < PLATES_MIN_GAP_MM

    @property
    def enclosed(self) -> bool:
        return (self.walled >= WALLED_MIN
                and CANCELLOUS_HU[0] <= self.tip_hu <= CANCELLOUS_HU[1])


@dataclass(eq=False)
class ImageEvidence:
    """Per-CT image evidence for the checks (built once with the check context)."""

    vessels: VesselMap
    vessel_mask: NDArray[np.bool_]  # lumen or calcium/metal on a vessel's wall, its grid
    vessel_field: SignedDistance | None
    hu: NDArray[np.int16]
    index_from_lps: FloatArray
    vessel_index_from_lps: FloatArray

    @classmethod
    def build(cls, volume: Volume, anatomy: Anatomy) -> ImageEvidence:
        """Vessels near the anatomy, from the anatomy's own search of this CT when it made
        one (`Anatomy.vessels`), else searched now around the anatomy's crop."""
        vessels = anatomy.vessels if anatomy.vessels is not None else vessels_near(volume,
                                                                                  anatomy)
        mask = vessels.lumen | vessels.wall_calcium  # once: `in_vessel` runs per check
        field = None
        if vessels.found:
            near = _within_crop(mask, vessels.affine_lps, anatomy)
            if near.any():
                field = SignedDistance.build(near, vessels.affine_lps, step_vox=1)
        return cls(vessels, mask, field, np.ascontiguousarray(volume.array),
                   inverse_affine(volume.affine_lps), inverse_affine(vessels.affine_lps))

    # ---- vessels ----------------------------------------------------------------------
    def in_vessel(self, points_lps: FloatArray) -> NDArray[np.bool_]:
        """True where a point lies in a found lumen (or calcium/metal on a vessel's wall)."""
        flat, ok = nearest_voxels(self.vessel_index_from_lps, self.vessel_mask.shape,
                                  points_lps)
        return np.asarray(ok & self.vessel_mask.ravel()[flat])

    # ---- the tip ----------------------------------------------------------------------
    def hu_at(self, points_lps: FloatArray) -> NDArray[np.float32]:
        """Trilinear HU at LPS points (air outside the CT)."""
        p = np.atleast_2d(points_lps)
        ijk = p @ self.index_from_lps[:3, :3].T + self.index_from_lps[:3, 3]
        return np.asarray(map_coordinates(self.hu, ijk[:, ::-1].T, order=1, mode="constant",
                                          cval=-1000.0, output=np.float32))

    def tip(self, tip_lps: FloatArray, frame_rows: FloatArray, direction_lps: FloatArray
            ) -> TipEvidence:
        """Rays from the tip (see the module docstring); ``frame_rows`` are the (left,
        anterior, superior) unit vectors in LPS, ``direction_lps`` the needle's."""
        dirs = np.vstack([RAY_DIRECTIONS_LOCAL @ frame_rows, direction_lps[None, :]])
        pts = tip_lps + _STEPS[None, :, None] * dirs[:, None, :]
        back = tip_lps - _BEHIND_STEPS[:, None] * direction_lps[None, :]
        # one sampling for the rays, the path behind and the tip (this runs on every mouse
        # move)
        sampled = self.hu_at(np.vstack([pts.reshape(-1, 3), back, tip_lps[None, :]]))
        on_rays = len(dirs) * len(_STEPS)
        behind_hu = float(np.median(sampled[on_rays:-1]))
        hu = sampled[:on_rays].reshape(len(dirs), len(_STEPS))
        ball = hu[:-1, _STEPS <= TIP_BALL_MM]
        tip_hu = float(np.median(np.concatenate([ball.ravel(), sampled[-1:]])))
        wall_hu = max(tip_hu + WALL_ABOVE_TIP_HU, WALL_MIN_HU)
        exit_hu = max(tip_hu - EXIT_BELOW_TIP_HU, EXIT_HU)
        vessel = (self.in_vessel(pts.reshape(-1, 3)).reshape(hu.shape) if self.vessels.found
                  else np.zeros(hu.shape, dtype=bool))
        n = hu.shape[1]
        fat_start = _run_start(hu < EXIT_HU, EXIT_RUN_MM)
        run_start = np.minimum(fat_start, _run_start(hu < exit_hu, DARK_RUN_MM))
        hard = vessel | (hu >= METAL_HU)
        hard_at = np.where(hard.any(axis=1), hard.argmax(axis=1), n)
        first_exit = np.minimum(run_start, hard_at)
        # a wall is bright over a millimetre and more, not one dense trabecula or a speck
        # of noise: the profile is averaged over `WALL_MM` first
        smooth = uniform_filter1d(hu, max(1, round(WALL_MM / RAY_STEP_MM)), axis=1,
                                  mode="nearest")
        walls = (smooth >= wall_hu) & ~hard
        first_wall = np.where(walls.any(axis=1), walls.argmax(axis=1), n)
        exit_mm = np.where(first_exit < n, _STEPS[np.minimum(first_exit, n - 1)], np.inf)
        # a ray that meets neither a wall nor the bone's end within its length counts as
        # closed: at 3 mm a body's thin cortex can be no brighter than its inside and muscle
        # beyond it no darker; so a tip in muscle *beside* a porotic body is not caught
        # here (the anatomy's body and the cortex ahead still are)
        closed = (first_wall < first_exit) | (exit_mm >= BONE_AROUND_MM)
        open_towards = tuple(DIRECTION_NAMES[i] for i in np.flatnonzero(~closed[:-1]))
        # ahead: the next wall, or fat, air, a vessel or metal; not a darker pocket of
        # trabecular bone, which lies inside the body
        ahead = min(first_wall[-1], fat_start[-1], hard_at[-1])
        bone_ahead = float(_STEPS[ahead]) if ahead < n else None
        # the walls straight above and below (`_SUPERIOR_RAYS`), met before the bone
        # ends: the body's endplates, or a disc's
        up, down = (float(_STEPS[first_wall[r]]) if first_wall[r] < min(first_exit[r], n)
                    else None for r in _SUPERIOR_RAYS)
        gap = None if up is None or down is None else up + down
        return TipEvidence(int(closed[:-1].sum()), len(dirs) - 1, tip_hu, open_towards,
                           bone_ahead, behind_hu, gap)


def _run_start(low: NDArray[np.bool_], run_mm: float) -> NDArray[np.intp]:
    """Per ray, the first sample of the first run of ``run_mm`` of ``low`` samples (the
    number of samples where there is none): cumulative sums, no loop."""
    run = max(1, round(run_mm / RAY_STEP_MM))
    c = np.cumsum(low, axis=1)
    before = np.zeros_like(c)  # the count `run` samples earlier (np.pad costs more here)
    before[:, run:] = c[:, :-run]
    full: NDArray[np.bool_] = np.asarray(c - before >= run)
    n = low.shape[1]
    return np.asarray(np.where(full.any(axis=1), full.argmax(axis=1) - (run - 1), n),
                      dtype=np.intp)


def vessels_near(volume: Volume, anatomy: Anatomy) -> VesselMap:
    """Contrast-filled vessels in the CT around the anatomy's crop (its search of its own,
    from the image only: the spinal canal is found again to protect the bodies)."""
    corners = _crop_corners_lps(anatomy)
    lo = corners.min(axis=0) - EVIDENCE_MARGIN_MM
    hi = corners.max(axis=0) + EVIDENCE_MARGIN_MM
    grid = working_grid(volume, bounds_lps=(lo, hi))
    try:
        return find_column(grid).vessels
    except SpineNotFoundError:
        return find_vessels(grid.hu, grid.affine_lps, grid.spacing_mm)


def _crop_corners_lps(anatomy: Anatomy) -> FloatArray:
    """The 8 corner voxel centres of the anatomy's crop, LPS mm."""
    k, j, i = (np.array([0, n - 1]) for n in anatomy.labels.shape)
    return anatomy.to_lps(np.array([[a, b, c] for a in i for b in j for c in k], float))


def _within_crop(mask: NDArray[np.bool_], affine_lps: FloatArray, anatomy: Anatomy
                 ) -> NDArray[np.bool_]:
    """The vessel mask (on the grid of ``affine_lps``) limited to the anatomy's crop plus a
    margin: what a needle can come near, and a surface small enough to build in a moment."""
    inv = inverse_affine(affine_lps)
    ijk = _crop_corners_lps(anatomy) @ inv[:3, :3].T + inv[:3, 3]
    margin = EVIDENCE_MARGIN_MM / float(np.linalg.norm(affine_lps[:3, 0]))
    lo = np.maximum(np.floor(ijk.min(axis=0) - margin).astype(int), 0)
    hi = np.ceil(ijk.max(axis=0) + margin).astype(int) + 1
    out = np.zeros_like(mask)
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    out[box] = mask[box]
    return out


def _direction_names() -> tuple[str, ...]:
    """Words for the ray directions: "left", "anterior-left-superior", …"""
    words = (("left", "right"), ("anterior", "posterior"), ("superior", "inferior"))
    out = []
    for d in RAY_DIRECTIONS_LOCAL:
        parts = [words[a][0] if d[a] > 0 else words[a][1] for a in (1, 0, 2) if abs(d[a]) > 0.1]
        out.append("-".join(parts))
    return tuple(out)


DIRECTION_NAMES = _direction_names()
