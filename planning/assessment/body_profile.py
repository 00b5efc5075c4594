"""One level's body sampled in its own frame: the heights the fracture grades are read from.

Apart from `planning.assessment.body_sampling` (which builds it),
`planning.assessment.fracture` (which grades it) and `planning.assessment.body_plausibility`
(which judges whether it can be graded), so that none of those imports another for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.model import VertebraGeometry
from planning.errors import VertebroPlanError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

STRIP_HALF_WIDTH_MM = 3.0  # the mid-sagittal strip, |left| ≤ this
WALL_FRACTION = 0.5  # a wall is where the strip is at least this fraction of its tallest
WALL_BREAK_FRACTION = 0.25  # …of one run of lines above this fraction (see `walls_mm`)


@dataclass(frozen=True, eq=False)
class BodyProfile:
    """One level's body mask sampled on a grid in the vertebra's frame.

    ``inside[l, a, s]`` is the mask (trilinear ≥ 0.5) at local (left ``left_mm[l]``,
    anterior ``anterior_mm[a]``, superior ``superior_mm[s]``) mm from the centroid.
    ``top_mm``/``bottom_mm`` are the highest/lowest inside point of each (l, a) line,
    interpolated to the 0.5 crossing, NaN where the line misses the body.
    """

    geometry: VertebraGeometry
    left_mm: FloatArray
    anterior_mm: FloatArray
    superior_mm: FloatArray
    inside: BoolArray
    top_mm: FloatArray
    bottom_mm: FloatArray
    slice_spacing_mm: float  # the crop's voxel size along the superior axis
    in_plane_spacing_mm: float  # the largest voxel size across it
    truncated: bool  # the body reaches the edge of the scan
    near_scan_end: bool = False  # the scan ends within a disc and a half of the body

    @property
    def height_mm(self) -> FloatArray:
        return self.top_mm - self.bottom_mm

    def to_lps(self, left: float, anterior: float, superior: float) -> FloatArray:
        g = self.geometry
        return np.asarray(g.centroid_lps + left * g.left_lps + anterior * g.anterior_lps
                          + superior * g.superior_lps, dtype=np.float64)

    @property
    def strip(self) -> BoolArray:
        """The lines of the mid-sagittal strip (a mask over ``left_mm``)."""
        return np.asarray(np.abs(self.left_mm) <= STRIP_HALF_WIDTH_MM + 1e-9)

    def strip_height(self) -> FloatArray:
        """Median height over the strip per anterior position (NaN where mostly absent)."""
        h = self.height_mm[self.strip]
        present = np.isfinite(h).sum(axis=0)
        out = np.full(h.shape[1], np.nan)
        ok = present * 2 > h.shape[0]
        if ok.any():
            out[ok] = np.nanmedian(h[:, ok], axis=0)
        return out

    def walls_mm(self) -> tuple[float, float]:
        """(posterior, anterior) wall positions along the anterior axis, mm: the outermost
        strip lines at least `WALL_FRACTION` of the tallest, within the run of lines above
        `WALL_BREAK_FRACTION` that holds the body's middle (a hysteresis threshold).

        Why one run: bone joined to the body in front of it but apart from it in the strip
        (an osteophyte, a calcified aortic wall at L3–L5, speckle of a low-dose CT) is not
        its anterior wall; taken as the wall, its few millimetres of height made a normal
        L3 of VerSe 012 a Genant 2 wedge; the gap to it was 1 mm wide but almost the full
        height deep. The taper of a wedge's front, lines at 40 % of the tallest, does not
        end the run.
        """
        h = self.strip_height()
        if not np.isfinite(h).any():
            raise BodyNotMeasurable(f"{self.geometry.name}: no body in the mid-sagittal strip")
        h0, tallest = np.nan_to_num(h, nan=0.0), float(np.nanmax(h))
        runs, _ = ndimage.label(h0 >= WALL_BREAK_FRACTION * tallest)
        middle = runs[int(np.argmin(np.abs(self.anterior_mm)))]  # the centroid's line
        if middle == 0:  # the centroid's line is short: the longest run
            middle = int(np.argmax(np.bincount(runs.ravel())[1:])) + 1
        run = np.flatnonzero((runs == middle) & (h0 >= WALL_FRACTION * tallest))
        return float(self.anterior_mm[run[0]]), float(self.anterior_mm[run[-1]])

    def band_height(self, lo_mm: float, hi_mm: float) -> float:
        """Median height of the strip lines with anterior position in [lo, hi] mm."""
        cols = (self.anterior_mm >= lo_mm - 1e-9) & (self.anterior_mm <= hi_mm + 1e-9)
        h = self.height_mm[np.ix_(self.strip, cols)]
        return float(np.nanmedian(h)) if np.isfinite(h).any() else math.nan


class BodyNotMeasurable(VertebroPlanError, ValueError):
    """A level's body cannot be measured (no body in its mid-sagittal strip): it is left
    ungraded, never given a grade from a failed measurement."""
