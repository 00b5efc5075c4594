"""Implicit shapes of a vertebral body, a disc and a stretch of the spinal canal.

All three are stated in a vertebra's (or disc's) local frame: x = left, y = posterior,
z = superior, mm, origin at the body centre. The disc is bounded exactly by the endplate
surfaces of the two bodies around it, so discs and bodies meet without gaps or overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planning.demo.shapes import Axes, BoolArray, F32Array, FloatArray, Frame


@dataclass(frozen=True, eq=False)
class VertebralBody:
    """A vertebral body: a kidney-shaped cross-section between two endplates.

    The cross-section is a superellipse with a shallow posterior notch (the canal side),
    an optional narrower front (thoracic "heart" shape) and a waist at mid-height. The
    endplates are planes tilted by ±wedge/2 (so anterior and posterior heights differ), each
    dipping by ``endplate_dip_mm`` in its centre as real endplates do.
    """

    frame: Frame
    width_mm: float
    depth_mm: float
    height_mm: float  # central height
    wedge_rad: float  # positive: anterior wall shorter (kyphotic wedge)
    posterior_notch_mm: float
    exponent: float
    waist: float
    endplate_dip_mm: float
    anterior_taper: float
    posterior_exponent: float = 2.0  # higher: squarer posterolateral corners
    extra_below_mm: float = 0.0  # the sacrum continues below the scan

    def _dip(self, lx: F32Array, ly: F32Array) -> F32Array:
        r2 = (lx * np.float32(2.0 / self.width_mm)) ** 2 + (ly * np.float32(
            2.0 / self.depth_mm)) ** 2
        return (np.float32(self.endplate_dip_mm) * np.clip(1.0 - r2, 0.0, 1.0)).astype(np.float32)

    def top_z(self, lx: F32Array, ly: F32Array) -> F32Array:
        """Local z of the superior endplate surface above (lx, ly)."""
        half = np.float32(0.5 * self.height_mm) + ly * np.float32(np.tan(0.5 * self.wedge_rad))
        return half - self._dip(lx, ly)

    def bottom_z(self, lx: F32Array, ly: F32Array) -> F32Array:
        """Local z of the inferior endplate surface below (lx, ly)."""
        half = np.float32(0.5 * self.height_mm) + ly * np.float32(np.tan(0.5 * self.wedge_rad))
        return -half + self._dip(lx, ly) - np.float32(self.extra_below_mm)

    def section(self, lx: F32Array, ly: F32Array, lz: F32Array | None = None,
                grow_mm: float = 0.0) -> F32Array:
        """Cross-section implicit value (≤ 1 inside) at local height ``lz``."""
        a0 = 0.5 * self.width_mm + grow_mm
        b0 = 0.5 * self.depth_mm + grow_mm
        if lz is None:
            scale: F32Array | np.float32 = np.float32(1.0)
        else:
            zz = np.clip(lz * np.float32(2.0 / self.height_mm), -1.0, 1.0)
            scale = np.float32(1.0) - np.float32(self.waist) * (np.float32(1.0) - zz * zz)
        front = np.clip(-ly / np.float32(b0), 0.0, 1.0)
        a = np.float32(a0) * scale * (np.float32(1.0) - np.float32(self.anterior_taper) * front**2)
        notch = np.float32(self.posterior_notch_mm) * np.exp(
            -((lx / np.float32(0.28 * self.width_mm)) ** 2))
        back = ly >= 0
        b = np.where(back, np.float32(b0) - notch, np.float32(b0) * scale)
        p = np.where(back, np.float32(self.posterior_exponent), np.float32(self.exponent))
        return np.abs(lx / a) ** p + np.abs(ly / b) ** p

    def inside_local(self, lx: F32Array, ly: F32Array, lz: F32Array) -> BoolArray:
        return ((self.section(lx, ly, lz) <= 1.0) & (lz <= self.top_z(lx, ly))
                & (lz >= self.bottom_z(lx, ly)))

    def inside(self, axes: Axes) -> BoolArray:
        return self.inside_local(*self.frame.local_axes(axes))

    def bounds_lps(self) -> tuple[FloatArray, FloatArray]:
        h = 0.5 * self.height_mm + 0.5 * self.depth_mm * abs(np.tan(0.5 * self.wedge_rad)) + 1
        lo = (-0.5 * self.width_mm, -0.5 * self.depth_mm, -h - self.extra_below_mm)
        hi = (0.5 * self.width_mm, 0.5 * self.depth_mm, h)
        c = self.frame.corners_lps(lo, hi)
        return c.min(axis=0), c.max(axis=0)


@dataclass(frozen=True, eq=False)
class Disc:
    """The disc between two bodies: a bulging cross-section between their endplates."""

    frame: Frame
    upper: VertebralBody
    lower: VertebralBody
    outline: VertebralBody  # used only for its cross-section (mean of the two, bulging)
    height_mm: float

    def section_value(self, axes: Axes) -> F32Array:
        lx, ly, _ = self.frame.local_axes(axes)
        return self.outline.section(lx, ly, None, grow_mm=1.0)

    def inside(self, axes: Axes) -> BoolArray:
        ux, uy, uz = self.upper.frame.local_axes(axes)
        below_upper = uz < self.upper.bottom_z(ux, uy)
        del ux, uy, uz
        lx, ly, lz = self.lower.frame.local_axes(axes)
        above_lower = lz > self.lower.top_z(lx, ly)
        return below_upper & above_lower & (self.section_value(axes) <= 1.0)

    def bounds_lps(self) -> tuple[FloatArray, FloatArray]:
        h = 0.5 * self.height_mm + 6.0
        a, b = 0.5 * self.outline.width_mm + 1.5, 0.5 * self.outline.depth_mm + 1.5
        c = self.frame.corners_lps((-a, -b, -h), (a, b, h))
        return c.min(axis=0), c.max(axis=0)


@dataclass(frozen=True, eq=False)
class Plane:
    """A half-space boundary: points with (p − point)·normal ≥ 0 are on its positive side."""

    point_lps: FloatArray
    normal_lps: FloatArray

    def side(self, axes: Axes) -> F32Array:
        x, y, z = axes
        p, n = self.point_lps.astype(np.float32), self.normal_lps.astype(np.float32)
        return (x - p[0]) * n[0] + (y - p[1]) * n[1] + (z - p[2]) * n[2]


@dataclass(frozen=True, eq=False)
class CanalSegment:
    """The stretch of the spinal canal (or of a tube inside it) that belongs to one vertebra.

    Cross-section in the vertebra's frame: an ellipse centred at ``centre_y`` whose width
    shrinks posteriorly by ``posterior_taper`` (the triangular lumbar canal). It is cut by
    the mid-disc planes above and below, so consecutive segments meet without gaps.
    ``end_z_mm`` (local) tapers the tube to nothing below that height (the conus of the cord).
    """

    frame: Frame
    centre_y_mm: float
    half_width_mm: float
    half_depth_mm: float
    posterior_taper: float
    above: Plane  # tube lies on the negative side
    below: Plane  # tube lies on the positive side
    z_extent_mm: tuple[float, float]  # local z range used only for the bounding box
    end_z_mm: float | None = None
    posterior_only_from_mm: float | None = None  # keep only ly > this (ligamentum flavum)

    def section_value(self, lx: F32Array, ly: F32Array, lz: F32Array) -> F32Array:
        dy = ly - np.float32(self.centre_y_mm)
        back = np.clip(dy / np.float32(self.half_depth_mm), 0.0, 1.0)
        a = np.float32(self.half_width_mm) * (np.float32(1.0)
                                              - np.float32(self.posterior_taper) * back)
        if self.end_z_mm is not None:
            a = a * np.sqrt(np.clip((lz - np.float32(self.end_z_mm)) / np.float32(12.0),
                                    1e-4, 1.0))
        return (lx / a) ** 2 + (dy / np.float32(self.half_depth_mm)) ** 2

    def inside(self, axes: Axes) -> BoolArray:
        lx, ly, lz = self.frame.local_axes(axes)
        m = self.section_value(lx, ly, lz) <= 1.0
        if self.posterior_only_from_mm is not None:
            m &= ly > np.float32(self.posterior_only_from_mm)
        if self.end_z_mm is not None:
            m &= lz > np.float32(self.end_z_mm)
        return m & (self.above.side(axes) < 0) & (self.below.side(axes) >= 0)

    def bounds_lps(self) -> tuple[FloatArray, FloatArray]:
        a, b = self.half_width_mm, self.half_depth_mm
        z0, z1 = self.z_extent_mm
        c = self.frame.corners_lps((-a, self.centre_y_mm - b, z0), (a, self.centre_y_mm + b, z1))
        return c.min(axis=0), c.max(axis=0)
