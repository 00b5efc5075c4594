"""Where each vertebra and disc of the demo spine lies: a chain of wedges in the sagittal plane.

Why a chain: in a real spine the curvature comes from wedge-shaped discs and bodies stacked
on each other, each endplate tilted against the next. Stacking the wedges from the sacrum up
gives every body and disc its own tilted local frame, the lumbar lordosis, the mild
thoracic kyphosis and the local kyphosis above a wedge fracture, with no gaps between
endplates. The chain is then turned so that the line from the L5 to the T10 body centre is
vertical (the patient lies along the table) and moved to scanner-like LPS coordinates.

Angles: ``alpha`` is the tilt of a part's superior axis from +z towards +y (posterior).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planning.demo.anatomy_specs import (
    DISC_SPECS,
    LEVEL_SPECS,
    SACRAL_SLOPE_DEG,
    DiscSpec,
    LevelSpec,
)
from planning.demo.shapes import FloatArray, Frame, sagittal_rotation

# Where the chain is put in LPS: the mean body centre of T10…L5 (a supine patient whose
# spine lies ~6 cm behind the scanner's isocentre, scanned around table position −380 mm).
SPINE_CENTRE_LPS = np.array([0.0, 62.0, -385.5])
SACRUM_BODY_HEIGHT_MM = 30.0


@dataclass(frozen=True, eq=False)
class VertebraPose:
    """A vertebra placed in LPS: its spec and the frame centred on its body."""

    spec: LevelSpec
    frame: Frame
    alpha_rad: float

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, eq=False)
class DiscPose:
    """A disc placed in LPS: frame centred mid-disc, axes halfway between its endplates."""

    spec: DiscSpec
    frame: Frame
    alpha_rad: float


@dataclass(frozen=True, eq=False)
class SpineLayout:
    """All vertebrae and discs, superior → inferior."""

    vertebrae: tuple[VertebraPose, ...]
    discs: tuple[DiscPose, ...]

    def vertebra(self, name: str) -> VertebraPose:
        for v in self.vertebrae:
            if v.name == name:
                return v
        raise KeyError(name)

    def disc_above(self, name: str) -> DiscPose | None:
        for d in self.discs:
            if d.spec.lower == name:
                return d
        return None

    def disc_below(self, name: str) -> DiscPose | None:
        for d in self.discs:
            if d.spec.upper == name:
                return d
        return None

    def neighbour_above(self, name: str) -> VertebraPose | None:
        names = [v.name for v in self.vertebrae]
        i = names.index(name)
        return self.vertebrae[i - 1] if i > 0 else None

    def _segments(self) -> list[tuple[FloatArray, float]]:
        """(centre, alpha) of every body and disc, sorted by z."""
        segs = [(v.frame.origin_lps, v.alpha_rad) for v in self.vertebrae]
        segs += [(d.frame.origin_lps, d.alpha_rad) for d in self.discs]
        return sorted(segs, key=lambda s: float(s[0][2]))

    def track(self, z_mm: FloatArray, posterior_mm: float) -> tuple[FloatArray, FloatArray]:
        """(y, alpha) along the spine at heights ``z_mm``.

        ``posterior_mm`` offsets the centre line along each segment's posterior axis: 0 is the
        line through the body centres, ~40 the canal, ~70 the spinous tips. Used to lay soft
        tissues along the curve slice by slice.
        """
        segs = self._segments()
        alpha = np.array([a for _, a in segs])
        pts = np.array([c + posterior_mm * np.array([0.0, math.cos(a), -math.sin(a)])
                        for c, a in segs])
        order = np.argsort(pts[:, 2])
        zs, ys, al = pts[order, 2], pts[order, 1], alpha[order]
        return np.interp(z_mm, zs, ys), np.interp(z_mm, zs, al)

    def interp_by_level(self, z_mm: FloatArray, values: dict[str, float]) -> FloatArray:
        """Interpolate a per-level number (e.g. body width) over height, held at the ends."""
        pts = sorted((float(self.vertebra(n).frame.origin_lps[2]), v) for n, v in values.items())
        return np.interp(z_mm, [p[0] for p in pts], [p[1] for p in pts])


def _tangent(alpha: float) -> FloatArray:
    return np.array([0.0, math.sin(alpha), math.cos(alpha)])


def build_spine_layout() -> SpineLayout:
    """Stack the discs and bodies from the sacrum up and place the result in LPS."""
    specs = {s.name: s for s in LEVEL_SPECS}
    discs = {d.lower: d for d in DISC_SPECS}
    sacrum = specs["S1"]
    alpha = -math.radians(SACRAL_SLOPE_DEG)
    bottom = np.zeros(3)  # centre of the S1 superior endplate
    raw_v: list[tuple[LevelSpec, FloatArray, float]] = [
        (sacrum, bottom - 0.5 * SACRUM_BODY_HEIGHT_MM * _tangent(alpha), alpha)]
    raw_d: list[tuple[DiscSpec, FloatArray, float]] = []
    lower = "S1"
    for spec in reversed(LEVEL_SPECS[:-1]):
        disc = discs[lower]
        a1 = alpha - math.radians(disc.wedge_deg)
        mid = 0.5 * (alpha + a1)
        raw_d.append((disc, bottom + 0.5 * disc.height_mm * _tangent(mid), mid))
        bottom = bottom + disc.height_mm * _tangent(mid)
        alpha = a1
        a1 = alpha - spec.wedge_rad
        mid = 0.5 * (alpha + a1)
        h = spec.central_height_mm
        raw_v.append((spec, bottom + 0.5 * h * _tangent(mid), mid))
        bottom = bottom + h * _tangent(mid)
        alpha = a1
        lower = spec.name
    centres = {s.name: c for s, c, _ in raw_v}
    chord = centres["T10"] - centres["L5"]
    phi = math.atan2(chord[1], chord[2])
    rot = sagittal_rotation(-phi)  # columns: images of x, y, z
    planned = [c for s, c, _ in raw_v if s.name not in ("T9", "S1")]
    shift = SPINE_CENTRE_LPS - rot @ np.mean(planned, axis=0)

    def place(c: FloatArray, a: float) -> tuple[Frame, float]:
        return Frame(rot @ c + shift, sagittal_rotation(a - phi)), a - phi

    vertebrae = []
    for spec, c, a in reversed(raw_v):
        frame, al = place(c, a)
        vertebrae.append(VertebraPose(spec, frame, al))
    disc_poses = []
    for dspec, c, a in reversed(raw_d):
        frame, al = place(c, a)
        disc_poses.append(DiscPose(dspec, frame, al))
    return SpineLayout(tuple(vertebrae), tuple(disc_poses))
