"""What the checks and the planner need to know about the spine, in one value.

`Anatomy` holds label masks on a crop (region of interest) of the CT grid around the spine,
with that crop's own index→LPS affine, plus per-level geometry in LPS mm. Every source —
the demo CT's ground truth, an imported label map (TotalSegmentator, VerSe) and the
automatic segmentation — builds the same `Anatomy`, so the checks do not care which one
it came from.

Array order is the project's: ``array[k, j, i]`` (slice, row, column).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.vessels import VesselMap
from planning.volume import inverse_affine, validate_affine

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class VertebraGeometry:
    """One vertebra's label code and local frame (unit LPS vectors), body centroid in LPS mm.

    The local frame follows the spine's own curve and rotation: ``superior_lps`` along the
    spine towards the head, ``anterior_lps`` from the canal towards the body,
    ``left_lps`` = superior × anterior (the patient's left).
    """

    name: str
    code: int
    centroid_lps: FloatArray
    superior_lps: FloatArray
    anterior_lps: FloatArray
    left_lps: FloatArray
    confidence: float = 1.0

    def to_local(self, point_lps: FloatArray) -> FloatArray:
        """(left, anterior, superior) mm of LPS point(s) relative to the body centroid."""
        d = np.asarray(point_lps, dtype=np.float64) - self.centroid_lps
        return d @ self.frame_rows.T

    @cached_property
    def frame_rows(self) -> FloatArray:
        """The local axes as rows (left, anterior, superior): one product maps many points."""
        return np.array([self.left_lps, self.anterior_lps, self.superior_lps], dtype=np.float64)


@dataclass(eq=False)
class Anatomy:
    """Spine masks on a crop of the CT grid and per-level geometry.

    Parameters
    ----------
    affine_lps
        index→LPS of the crop: ``(i, j, k, 1)`` of these arrays → LPS mm.
    labels
        int16 ``[k, j, i]``: a vertebra's code (see ``levels``) or 0.
    canal
        bool ``[k, j, i]``: the spinal canal (dural sac and epidural space).
    bodies
        bool ``[k, j, i]``: vertebral bodies (without posterior elements).
    levels
        geometry per level name, cranial to caudal.
    discs
        bool ``[k, j, i]`` or None: intervertebral discs where known.
    vessels
        see the attribute.
    """

    affine_lps: FloatArray
    labels: NDArray[np.int16]
    canal: BoolArray
    bodies: BoolArray
    levels: dict[str, VertebraGeometry]
    discs: BoolArray | None = None
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    vessels: VesselMap | None = None
    """Contrast-filled vessels found in *this CT's image* on the way to this anatomy (the
    automatic path finds them anyway), kept so the checks need not search again; None for
    anatomies from label maps, whose checks look for them themselves."""

    def __post_init__(self) -> None:
        self.affine_lps = validate_affine(self.affine_lps)
        self._index_from_lps = inverse_affine(self.affine_lps)
        # contiguous, so that flat look-ups (ravel) are views, never copies
        self.labels = np.ascontiguousarray(self.labels)
        self.canal = np.ascontiguousarray(self.canal)
        self.bodies = np.ascontiguousarray(self.bodies)
        if self.discs is not None:
            self.discs = np.ascontiguousarray(self.discs)
        shape = self.labels.shape
        for name, arr in (("canal", self.canal), ("bodies", self.bodies), ("discs", self.discs)):
            if arr is not None and arr.shape != shape:
                raise ValueError(f"Anatomy.{name} has shape {arr.shape}, labels {shape}")

    @property
    def index_from_lps(self) -> FloatArray:
        """4×4: LPS mm → continuous (i, j, k) of the crop."""
        return self._index_from_lps

    @property
    def spacing_mm(self) -> FloatArray:
        return np.linalg.norm(self.affine_lps[:3, :3], axis=0)

    def to_index(self, point_lps: FloatArray) -> FloatArray:
        """LPS mm → continuous (i, j, k) of the crop."""
        inv = self._index_from_lps
        p = np.asarray(point_lps, dtype=np.float64)
        return p @ inv[:3, :3].T + inv[:3, 3]

    def to_lps(self, index_ijk: FloatArray) -> FloatArray:
        ijk = np.asarray(index_ijk, dtype=np.float64)
        return ijk @ self.affine_lps[:3, :3].T + self.affine_lps[:3, 3]

    def vertebra_mask(self, level: str) -> BoolArray:
        return self.labels == self.levels[level].code

    def level_boxes(self) -> dict[str, tuple[slice, slice, slice]]:
        """Each level's ``[k, j, i]`` bounding box in ``labels`` (levels without a voxel
        are left out), found in one pass.

        Why: a crop of a fine CT holds tens of millions of voxels; comparing all of them
        with each level's code, level after level, cost most of a second per step that
        works vertebra by vertebra.
        """
        found = ndimage.find_objects(np.clip(self.labels, 0, None))
        boxes = {}
        for name, g in self.levels.items():
            if 0 < g.code <= len(found) and found[g.code - 1] is not None:
                boxes[name] = found[g.code - 1]
        return boxes

    def level_names(self) -> list[str]:
        return list(self.levels)


LOW_NAME_CONFIDENCE = 0.6
"""Below this a level's name is uncertain: no cue in view (0.3) or the ribs and the sacrum
disagree (0.5), times the frame's own confidence; one cue alone gives 0.7, both 1.0."""


def names_uncertain(anatomy: Anatomy) -> bool:
    """True when any level's name is uncertain (`LOW_NAME_CONFIDENCE`): the screen, the
    report and the SR say so, and no level is picked by its name."""
    return any(g.confidence < LOW_NAME_CONFIDENCE for g in anatomy.levels.values())


LEVEL_NEAR_MM = 15.0
"""Half a lumbar vertebra and its disc: a plane farther than this from every body centre
lies between levels, and no level is "here"."""


def level_at(centres_lps: Mapping[str, FloatArray], point_lps: FloatArray,
             normal_lps: FloatArray, within_mm: float = LEVEL_NEAR_MM) -> str | None:
    """Which vertebra is here: the level whose body centre lies nearest the plane through
    ``point_lps`` with unit normal ``normal_lps`` (an axial slice: its crosshair and the
    superior axis), within ``within_mm``; None between levels or without levels."""
    if not centres_lps:
        return None
    n = np.asarray(normal_lps, dtype=np.float64)
    p = np.asarray(point_lps, dtype=np.float64)
    dist = {k: abs(float((np.asarray(c, dtype=np.float64) - p) @ n))
            for k, c in centres_lps.items()}
    name = min(dist, key=lambda k: dist[k])
    return name if dist[name] <= within_mm else None


UNCERTAIN_NAMES_TEXT = ("Level names are UNCERTAIN (the warnings say why: no landmark seen, "
                        "landmarks that disagree, or a CT too coarse). Count the vertebrae on "
                        "the images before treating a level by its name.")


def crop_box(
    masks: list[BoolArray], margin_vox: tuple[int, int, int], shape: tuple[int, ...]
) -> tuple[slice, slice, slice]:
    """The [k, j, i] slices of the bounding box of all ``masks`` plus a margin, clipped."""
    union = np.zeros(shape, dtype=bool)
    for m in masks:
        union |= m
    if not union.any():
        return (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    out = []
    for axis, margin in enumerate(margin_vox):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(union.any(axis=other))
        out.append(slice(max(0, idx[0] - margin), min(shape[axis], idx[-1] + margin + 1)))
    return (out[0], out[1], out[2])


def crop_affine(affine_lps: FloatArray, box: tuple[slice, slice, slice]) -> FloatArray:
    """The affine of a crop starting at ``box`` (k, j, i slices) of a grid."""
    k0, j0, i0 = (s.start or 0 for s in box)
    shift = np.eye(4)
    shift[:3, 3] = [i0, j0, k0]
    return np.asarray(affine_lps @ shift, dtype=np.float64)
