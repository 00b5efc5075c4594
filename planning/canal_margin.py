"""How near an automatic proposal may pass the canal: its wall's measured uncertainty there.

An automatically found canal is not equally sure everywhere. Where its wall is the dense
cortex of the pedicle or the lamina, the CT shows the wall and the canal ends there; where
the wall runs on into soft tissue (the lateral recesses beside the dural sac, the entries
of the foramina, epidural fat) the canal may reach as far as that soft tissue does, and the
nerve roots run there. So the margin a proposal keeps is measured where it passes, not one
figure for the whole spine:

    needed clearance(x) = `SAFE_MM` + uncertainty(x), at least the checks' caution distance

    uncertainty(x) = `BONY_WALL_ERROR_MM`          where the wall is bone,
                     soft depth(x) + soft error   where it is soft tissue,
    soft error     = the CT's noise in the canal / `NOISE_HU_PER_MM`, at least
                     `SOFT_WALL_ERROR_MM`,

with soft depth(x) how much nearer ``x`` lies to the canal together with the soft tissue
beside it (`planning.anatomy.canal_border.canal_with_soft_border`, up to 3 mm deep) than to
the canal alone (a wall counts as soft from `SOFT_WALL_MM` on), and the noise measured in
the canal (`planning.anatomy.canal_border.canal_noise_hu`): a noisy CT's thin cortex breaks
up at the bone threshold, and a canal found inside it wanders further into the soft tissue.

Measured (the accuracy harness's CTs, ``bench/accuracy.py``: both labelled CTs as stored,
turned 15° about x on a 2 mm grid, on a 1.5 mm grid, turned 10° about z, mirrored, and the
phantoms painted from their labels; 12 storings, 20,000–30,000 points each): at points 1–7
mm outside the automatic canal whose nearest wall faces a pedicle (outward normal within
53° of left–right), the automatic canal's distance minus the reference canal's — how much
the automatic canal overstates the clearance — had these 99th percentiles per storing:

- bone wall (soft depth < 0.3 mm): 0.15–0.39 mm on every storing, whatever its noise;
- soft wall: the soft depth plus an excess that grows with the noise in the canal:

  noise in the canal (HU) → excess (mm):
  - abdomen as stored and mirrored 31 → 0.03–0.04; turned about z 20 → 0.36; 2 mm
    oblique 16 → 0.07; 1.5 mm 11 → 0.02;
  - VerSe 012 as stored and mirrored 133 → 1.56–1.67; oblique and re-gridded (the
    interpolation quietens it) 68–71 → 0.15–0.88;
  - the phantoms painted from the labels: abdomen 9 → 0.71, VerSe 11 → 0.02.

  `NOISE_HU_PER_MM` (75 HU per mm) puts every noisy storing under its line (133 HU →
  1.8 mm, 70 HU → 0.9 mm); `SOFT_WALL_ERROR_MM` (1 mm) covers the quiet ones, the painted
  abdomen's 0.71 mm included.

`SAFE_MM` is the issue's target (no needle within 1 mm of the true canal). Against the
fixed rule this replaces (3 mm from the canal and 2 mm from its soft border everywhere),
a path may pass a bony wall at the checks' own caution distance (2 mm); beside a soft wall
a quiet CT asks what that rule asked and a noisy one up to a millimetre more.

An imported canal (label map, the demo's truth) is trusted as drawn: no margin beyond the
checks'. On voxels coarser than those storings (`planning.anatomy.resolution`) these errors
were not measured and do not hold (one needle 0.4 mm into the reference canal where the
checks reported 4.1 mm, abdomen on 4.25 mm slices): nothing is proposed automatically
there, and the checks caution every path on the automatic canal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planning.anatomy.canal_border import canal_noise_hu, canal_with_soft_border
from planning.anatomy.from_ct import SOURCE as AUTOMATIC_SOURCE
from planning.anatomy.model import Anatomy
from planning.anatomy.resolution import coarse_voxels
from planning.clearance import COARSE_ERROR_MM, SignedDistance, segment_points
from planning.volume import Volume

FloatArray = NDArray[np.float64]

SAFE_MM = 1.0  # the true canal stays at least this far from a proposed needle's surface
BONY_WALL_ERROR_MM = 0.5  # worst storing's 99th percentile 0.39 mm, rounded up
SOFT_WALL_ERROR_MM = 1.0  # beyond the soft depth, on a quiet CT (painted abdomen 0.71 mm)
NOISE_HU_PER_MM = 75.0  # beyond the soft depth on a noisy CT: its noise / this
SOFT_WALL_MM = 0.3  # a soft depth from this on is a soft wall
EXACT_STEP_MM = 0.5  # sampling of one trajectory when it is measured exactly


@dataclass(frozen=True)
class CanalMarginAt:
    """One path's tightest point: its clearance from the automatic canal there, the wall's
    uncertainty there, and the clearance needed (mm, from the needle's surface)."""

    clearance_mm: float
    uncertainty_mm: float
    needed_mm: float
    soft_wall: bool

    @property
    def kept(self) -> bool:
        return self.clearance_mm >= self.needed_mm

    def describe(self) -> str:
        wall = ("soft tissue: the canal may reach further" if self.soft_wall
                else "bone")
        return (f"{self.clearance_mm:.1f} mm from the automatically found canal where "
                f"{self.needed_mm:.1f} mm are needed (its wall there is {wall}; "
                f"uncertain by {self.uncertainty_mm:.1f} mm)")


@dataclass(frozen=True, eq=False)
class CanalMargin:
    """The clearance automatic proposals keep from an automatically found canal, measured
    where each path passes (module docstring)."""

    canal: SignedDistance
    with_soft: SignedDistance
    floor_mm: float  # never less than the checks' caution distance
    soft_error_mm: float = SOFT_WALL_ERROR_MM  # beyond the soft depth (module docstring)
    coarse: str | None = None
    """Why these errors do not hold on this CT, whose voxels are coarser than the storings
    they were measured on (`planning.anatomy.resolution`); None when they hold."""

    @classmethod
    def build(cls, volume: Volume, anatomy: Anatomy, canal: SignedDistance,
              caution_mm: float) -> CanalMargin | None:
        """The margin for ``anatomy``'s canal (``canal`` its signed distance), or None when
        the canal was not found automatically (an imported one is trusted as drawn)."""
        if anatomy.source != AUTOMATIC_SOURCE:
            return None
        mask, affine = canal_with_soft_border(volume, anatomy)
        if not mask.any():
            return None
        soft_error = max(SOFT_WALL_ERROR_MM, canal_noise_hu(volume, anatomy) / NOISE_HU_PER_MM)
        return cls(canal, SignedDistance.build(mask, affine), caution_mm, soft_error,
                   coarse_voxels(volume.spacing_mm))

    def uncertainty_mm(self, canal_mm: FloatArray, soft_mm: FloatArray) -> FloatArray:
        """The wall's uncertainty at points ``canal_mm`` from the canal and ``soft_mm`` from
        the canal with its soft border."""
        depth = np.clip(canal_mm - soft_mm, 0.0, None)
        return np.where(depth < SOFT_WALL_MM, BONY_WALL_ERROR_MM, depth + self.soft_error_mm)

    def needed_mm(self, uncertainty_mm: FloatArray) -> FloatArray:
        return np.maximum(SAFE_MM + uncertainty_mm, self.floor_mm)

    def slack_rough(self, points_lps: FloatArray) -> FloatArray:
        """Clearance minus the clearance needed, at points, from the coarse grids (about
        1.5 mm); for ranking many candidates."""
        c = self.canal.approximate(points_lps).astype(np.float64)
        s = self.with_soft.approximate(points_lps).astype(np.float64)
        return c - self.needed_mm(self.uncertainty_mm(c, s))

    def slack_paths(self, paths_lps: FloatArray, radius_mm: float) -> FloatArray:
        """Per sampled path ``(N, S, 3)``: the smallest clearance from the needle's surface
        minus the clearance needed there (≥ 0: the margin is kept). Exact at the samples
        where the coarse grids say the smallest can be."""
        n, m, _ = paths_lps.shape
        flat = paths_lps.reshape(-1, 3)
        rough = self.slack_rough(flat).reshape(n, m)
        # both grids err by up to `COARSE_ERROR_MM`, and the needed clearance follows them
        near = rough <= rough.min(axis=1, keepdims=True) + 3.0 * COARSE_ERROR_MM
        exact = np.full((n, m), np.inf)
        pts = flat[near.ravel()]
        c = self.canal.refined_many(pts)[0]
        s = self.with_soft.refined_many(pts)[0]
        exact[near] = c - self.needed_mm(self.uncertainty_mm(c, s))
        return np.asarray(exact.min(axis=1) - radius_mm, dtype=np.float64)

    def at(self, entry_lps: FloatArray, tip_lps: FloatArray, radius_mm: float
           ) -> CanalMarginAt:
        """The tightest point of one needle (exact, every `EXACT_STEP_MM`)."""
        pts, _ = segment_points(np.asarray(entry_lps, np.float64),
                                np.asarray(tip_lps, np.float64), EXACT_STEP_MM)
        c = self.canal.refined_many(pts)[0]
        s = self.with_soft.refined_many(pts)[0]
        u = self.uncertainty_mm(c, s)
        need = self.needed_mm(u)
        i = int(np.argmin(c - need))
        return CanalMarginAt(float(c[i] - radius_mm), float(u[i]), float(need[i]),
                             bool(c[i] - s[i] >= SOFT_WALL_MM))
