"""Rib roots beside each vertebra: where a rib leaves the spine, slice by slice and side by
side, on the working grid.

Why this and not "bone far from the canal": on a thorax the shoulder blades, on a pelvis the
iliac wings reach as far as any rib, and ribs are often not joined to their vertebra on a
2 mm grid (the costovertebral joint is a gap). A rib is recognised by what it does: a piece
of bone that starts beside the vertebra, where the rib's neck meets the transverse process
(`ROOT_LATERAL_MM`, just behind the canal's centre), and runs out far (`RIB_MIN_REACH_MM`)
within the posterior arc of the chest (`RIB_FRONT_MM`: further forward the costal
cartilages and the sternum, calcified in the old, would join every rib into one piece).
The vertebra's own bone near the canal (`RIB_MEDIAL_MM`) is cut away first, so a
transverse process is a piece of its own and reaches no further than ~50 mm.

The iliac crest behind L4–S2 starts in the same place and reaches as far; but it runs along
the root zone over 10 cm or more (a rib's neck crosses it over 2–5 cm, two ribs joined at a
transverse process over ~5 cm) and holds several times a rib's bone, so a piece whose root
spans more than `PELVIS_ROOT_SPAN_MM` or whose volume exceeds `PELVIS_MIN_ML` is not a rib.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.spine_column import SpineColumn, on_every_slice

RIB_MEDIAL_MM = 20.0  # bone within this of the canal's centre, sideways, is the vertebra's
RIB_FRONT_MM = 20.0  # the posterior arc: bone more than this in front of the canal is left out
ROOT_LATERAL_MM = (20.0, 40.0)  # the rib's neck and tubercle at the transverse process
ROOT_AP_MM = (-10.0, 30.0)  # from in front of the canal's centre to behind it
RIB_MIN_REACH_MM = 65.0  # a lumbar transverse process reaches ~35–50 mm, a rib 80–130 mm
PELVIS_ROOT_SPAN_MM = 70.0  # an iliac crest runs along the root zone this far; a rib does not
PELVIS_MIN_ML = 45.0  # a rib's posterior arc holds ~5–15 ml of bone, an iliac wing 60 ml or more
RIBBED_FRACTION = 0.5  # of a vertebra's core slices with a root on one side at least
RIBLESS_FRACTION = 0.15  # at most, on both sides, where the rib zone is in view
ROOT_CORE = 0.5  # the middle half of a vertebra's slices: rib necks of its own, not the
# neighbour's rib rising to the disc


@dataclass(frozen=True, eq=False)
class RibRoots:
    """Per working-grid slice ``k``: is a rib's root beside the spine on the patient's left
    and on the right."""

    left: NDArray[np.bool_]
    right: NDArray[np.bool_]
    in_view_left: NDArray[np.bool_]
    """Whether the root zone and the reach a rib needs are inside the CT on that slice (a
    narrow field of view cannot show ribs, and then shows no absence of them either)."""
    in_view_right: NDArray[np.bool_]

    def sides(self, first_k: int, last_k: int) -> tuple[float, float, bool]:
        """Fraction of the core slices of a vertebra with a rib root, left and right, and
        whether the rib zone was in view on both sides there."""
        n = last_k - first_k + 1
        margin = round(n * (1.0 - ROOT_CORE) / 2.0)
        a, b = first_k + margin, max(first_k + margin, last_k - margin) + 1
        seen = bool(self.in_view_left[a:b].all() and self.in_view_right[a:b].all())
        return float(self.left[a:b].mean()), float(self.right[a:b].mean()), seen

    def rib_state(self, first_k: int, last_k: int) -> bool | None:
        """True: a rib leaves this vertebra (on one side at least: a 12th rib may be missing
        on the other); False: none does although the rib zone is in view on both sides;
        None: cannot tell."""
        left, right, seen = self.sides(first_k, last_k)
        if max(left, right) >= RIBBED_FRACTION:
            return True
        if seen and max(left, right) <= RIBLESS_FRACTION:
            return False
        return None


def rib_roots(column: SpineColumn) -> RibRoots:
    """Rib roots on each side of the canal, on every working slice where the canal is."""
    grid = column.grid
    s = grid.spacing_mm
    n_k = column.bone.shape[0]
    empty = np.zeros(n_k, dtype=bool)
    if not np.isfinite(column.canal_ij[:, 0]).any():
        return RibRoots(empty, empty.copy(), empty.copy(), empty.copy())
    ci, cj = on_every_slice(column.canal_ij)
    _, jj, ii = np.indices((1, *column.bone.shape[1:]), sparse=True)
    lateral = (ii - ci[:, None, None]) * s  # + towards the patient's left (working i is L)
    behind = (jj - cj[:, None, None]) * s  # + posterior
    arc = column.bone & (np.abs(lateral) >= RIB_MEDIAL_MM) & (behind >= -RIB_FRONT_MM)
    labels, count = ndimage.label(arc, structure=np.ones((3, 3, 3), dtype=bool))
    root = (arc & (np.abs(lateral) <= ROOT_LATERAL_MM[1])
            & (behind >= ROOT_AP_MM[0]) & (behind <= ROOT_AP_MM[1]))
    if count == 0:
        return RibRoots(empty, empty.copy(), *_in_view(column, ci, s))
    # each piece's farthest reach from the midline; per labelled voxel (np.maximum.at):
    # ndimage.maximum sorts the whole grid by value first, 2.7 s on an oblique 1 mm grid
    k, _, i = np.nonzero(labels)
    farthest = np.zeros(count + 1)
    np.maximum.at(farthest, labels[labels > 0], np.abs(lateral[k, 0, i]))
    reach = farthest[1:]
    volume_ml = np.bincount(labels.ravel(), minlength=count + 1)[1:] * s**3 / 1000.0
    root_labels = np.where(root, labels, 0)
    span = np.zeros(count)
    for m, where in enumerate(ndimage.find_objects(root_labels, max_label=count)):
        if where is not None:
            span[m] = (where[0].stop - where[0].start) * s
    pelvis = (span > PELVIS_ROOT_SPAN_MM) | (volume_ml > PELVIS_MIN_ML)
    is_rib = np.concatenate([[False], (reach >= RIB_MIN_REACH_MM) & ~pelvis])
    at_root = is_rib[root_labels]
    left = (at_root & (lateral > 0)).any(axis=(1, 2))
    right = (at_root & (lateral < 0)).any(axis=(1, 2))
    return RibRoots(left, right, *_in_view(column, ci, s))


def _in_view(column: SpineColumn, ci: NDArray[np.float64], s: float
             ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Per slice and side: does the CT reach `RIB_MIN_REACH_MM` beside the canal (not air
    filled in beyond the CT's edge by the working grid, which reads −1000 there)."""
    n_i = column.bone.shape[2]
    reach = RIB_MIN_REACH_MM / s
    left_ok = ci + reach <= n_i - 1
    right_ok = ci - reach >= 0
    # beyond the CT the working grid holds exactly −1000; a body's air is never that flat
    hu = column.grid.hu
    k = np.arange(hu.shape[0])
    j = np.clip(np.rint(np.nanmedian(column.canal_ij[:, 1])).astype(int), 0, hu.shape[1] - 1)
    li = np.clip(np.rint(ci + reach).astype(int), 0, n_i - 1)
    ri = np.clip(np.rint(ci - reach).astype(int), 0, n_i - 1)
    left_ok &= hu[k, j, li] != -1000.0
    right_ok &= hu[k, j, ri] != -1000.0
    # and the root zone behind the canal (a crop that cuts the back off shows no rib necks)
    back = np.rint(column.canal_ij[:, 1] + ROOT_AP_MM[1] / s)
    back = np.where(np.isfinite(back), back, -1)
    behind_ok = (back >= 0) & (back <= hu.shape[1] - 1)
    jb = np.clip(back, 0, hu.shape[1] - 1).astype(int)
    side = ROOT_LATERAL_MM[1] / s
    for ok, i in ((left_ok, ci + side), (right_ok, ci - side)):
        ib = np.clip(np.rint(i).astype(int), 0, n_i - 1)
        ok &= behind_ok & (hu[k, jb, ib] != -1000.0)
    return left_ok, right_ok
