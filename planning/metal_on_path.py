"""Metal on a needle's way: a pedicle screw, a rod, a wire, a stent, read from the CT.

Why: a vertebra that fractures next to a fusion (an adjacent-segment fracture) or under
instrumentation has screws in its neighbours' pedicles, sometimes in its own, and rods
behind them. A needle cannot pass a screw (it glances off, or the cement follows the
screw's track), and its line from the skin must not run into a rod or a screw head. The
checks read the vessels and the bone around the tip from the image (`image_evidence`), but
the anatomy, automatic or imported, knows nothing of metal. So the image is asked along the
whole needle: the axis and six lines on its surface, from the tip back through the entry
and on to the skin (which the checks find, `planning.checks._skin_to_tip`; at most
`APPROACH_MM` behind the entry), every `planning.checks` sample step. A run of at least
`MIN_RUN_MM` at `METAL_HU` or brighter on one line is metal. Cortical bone stays under
~2000 HU, and contrast in vessels under ~1000 HU; metal reads 2500–3071 HU (or more) on
every scanner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planning.image_evidence import METAL_HU

FloatArray = NDArray[np.float64]

APPROACH_MM = 100.0  # behind the entry, towards the skin: the needle's way in, at most
MIN_RUN_MM = 1.0  # a single bright voxel (a streak's speck) is not a screw
SURFACE_LINES = 6


@dataclass(frozen=True)
class MetalOnPath:
    """Where the needle meets metal: from ``from_mm`` to ``to_mm`` along it, measured from
    the entry towards the tip (negative: on the approach, behind the entry)."""

    from_mm: float
    to_mm: float

    def describe(self) -> str:
        where = (f"{-self.to_mm:.0f} mm behind the entry, on the way in" if self.to_mm < 0
                 else f"{max(self.from_mm, 0.0):.0f} mm beyond the entry")
        return (f"the needle's path runs into metal (a screw, rod or wire: ≥ {METAL_HU:.0f} "
                f"HU) {where}, over {self.to_mm - self.from_mm:.1f} mm")


def metal_on_path(hu_at: Callable[[FloatArray], NDArray[np.integer] | FloatArray],
                  entry_lps: FloatArray, tip_lps: FloatArray, radius_mm: float,
                  step_mm: float, approach_mm: float = APPROACH_MM) -> MetalOnPath | None:
    """The metal the needle from ``entry_lps`` to ``tip_lps`` meets, or on its way in over
    ``approach_mm`` behind the entry (to the skin), or None. ``hu_at`` gives the CT's HU at
    (N, 3) LPS points (air outside the CT)."""
    entry = np.asarray(entry_lps, dtype=np.float64)
    tip = np.asarray(tip_lps, dtype=np.float64)
    length = float(np.linalg.norm(tip - entry))
    if length < 1e-6:
        return None
    d = (tip - entry) / length
    back = max(0.0, approach_mm)
    s = np.arange(-back, length + 1e-9, step_mm)  # along the needle, from the entry
    axis = entry + s[:, None] * d
    # six lines on the needle's surface
    u = np.cross(d, [0.0, 0.0, 1.0] if abs(d[2]) < 0.9 else [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    angles = np.linspace(0.0, 2.0 * np.pi, SURFACE_LINES, endpoint=False)
    offsets = np.vstack([np.zeros(3), radius_mm * (np.cos(angles)[:, None] * u
                                                   + np.sin(angles)[:, None] * v)])
    pts = axis[None, :, :] + offsets[:, None, :]
    hu = np.asarray(hu_at(pts.reshape(-1, 3)), dtype=np.float64).reshape(len(offsets), -1)
    hot = hu >= METAL_HU
    need = max(1, int(np.ceil(MIN_RUN_MM / step_mm)))
    # the samples in a run of `need` on one line: ones where a window of `need` is all metal,
    # spread back over the window
    box = np.ones(need, dtype=np.int32)
    along = np.zeros(hot.shape[1], dtype=bool)
    for line in hot.astype(np.int32):
        starts = (np.convolve(line, box, "valid") >= need).astype(np.int32)
        along |= np.convolve(starts, box, "full")[: len(along)] > 0
    if not along.any():
        return None
    where = np.flatnonzero(along)
    return MetalOnPath(float(s[where.min()]), float(s[where.max()]))
