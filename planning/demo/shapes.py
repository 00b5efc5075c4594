"""Implicit shapes evaluated only on small axis-aligned boxes of the CT grid.

Why boxes: the demo CT has ~30 million voxels; evaluating each of the ~200 shapes of the
phantom over all of them would take minutes. Every shape knows its LPS bounding box, the
grid turns that into a sub-box of voxel indices, and the shape is evaluated there with
broadcast coordinate axes (float32), which keeps the whole phantom within seconds.

All positions are LPS millimetres. A `Frame` is a local anatomical frame whose axes are
x = the patient's left, y = posterior, z = superior, rotated as the part lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
F32Array = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
Axes = tuple[F32Array, F32Array, F32Array]
"""Broadcastable LPS coordinates of a box: x (1, 1, ni), y (1, nj, 1), z (nk, 1, 1)."""


def unit(v: Sequence[float] | FloatArray) -> FloatArray:
    """The vector scaled to length 1 (float64)."""
    a = np.asarray(v, dtype=np.float64)
    return a / float(np.linalg.norm(a))


@dataclass(frozen=True, eq=False)
class Frame:
    """A rigid frame: ``rotation`` columns are the local x, y, z axes in LPS."""

    origin_lps: FloatArray
    rotation: FloatArray

    def to_lps(self, local: Sequence[float] | FloatArray) -> FloatArray:
        """Local mm (a point or an (N, 3) array) → LPS mm."""
        p = np.asarray(local, dtype=np.float64)
        return p @ self.rotation.T + self.origin_lps

    def vector_to_lps(self, local: Sequence[float] | FloatArray) -> FloatArray:
        """Rotate a local direction into LPS (no translation)."""
        return np.asarray(local, dtype=np.float64) @ self.rotation.T

    def to_local(self, point_lps: Sequence[float] | FloatArray) -> FloatArray:
        """LPS mm → local mm."""
        p = np.asarray(point_lps, dtype=np.float64)
        return (p - self.origin_lps) @ self.rotation

    def local_axes(self, axes: Axes) -> Axes:
        """Local coordinates of every voxel of a box, as full float32 arrays."""
        x, y, z = axes
        o = self.origin_lps.astype(np.float32)
        r = self.rotation.astype(np.float32)
        dx, dy, dz = x - o[0], y - o[1], z - o[2]
        return (
            dx * r[0, 0] + dy * r[1, 0] + dz * r[2, 0],
            dx * r[0, 1] + dy * r[1, 1] + dz * r[2, 1],
            dx * r[0, 2] + dy * r[1, 2] + dz * r[2, 2],
        )

    def corners_lps(self, lo: Sequence[float] | FloatArray, hi: Sequence[float] | FloatArray
                    ) -> FloatArray:
        """The 8 LPS corners of a local box ``lo``…``hi``."""
        c = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                      for z in (lo[2], hi[2])])
        return self.to_lps(c)


def sagittal_rotation(alpha_rad: float) -> FloatArray:
    """Frame axes (left, posterior, superior) of a part tilted by ``alpha`` in the
    sagittal plane; positive alpha leans the superior axis towards posterior (+y)."""
    c, s = np.cos(alpha_rad), np.sin(alpha_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


@dataclass(frozen=True)
class Box:
    """A sub-box of voxel indices, ``lo`` inclusive and ``hi`` exclusive, in (k, j, i)."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.hi[0] - self.lo[0], self.hi[1] - self.lo[1], self.hi[2] - self.lo[2])

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.lo, self.hi, strict=True))  # type: ignore[return-value]

    def intersect(self, other: Box) -> Box | None:
        lo = tuple(max(a, b) for a, b in zip(self.lo, other.lo, strict=True))
        hi = tuple(min(a, b) for a, b in zip(self.hi, other.hi, strict=True))
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            return None
        return Box(lo, hi)  # type: ignore[arg-type]

    def union(self, other: Box) -> Box:
        lo = tuple(min(a, b) for a, b in zip(self.lo, other.lo, strict=True))
        hi = tuple(max(a, b) for a, b in zip(self.hi, other.hi, strict=True))
        return Box(lo, hi)  # type: ignore[arg-type]

    def within(self, parent: Box) -> tuple[slice, slice, slice]:
        """Slices that select this box inside an array covering ``parent``."""
        return tuple(
            slice(a - p, b - p) for a, b, p in zip(self.lo, self.hi, parent.lo, strict=True)
        )  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class Grid:
    """An axial voxel grid: i along +x (left), j along +y (posterior), k along +z (superior).

    ``origin_lps`` is the centre of voxel (0, 0, 0); ``spacing_mm`` is (i, j, k) spacing.
    """

    shape: tuple[int, int, int]  # (nk, nj, ni)
    origin_lps: FloatArray
    spacing_mm: FloatArray

    @property
    def affine_lps(self) -> FloatArray:
        a = np.diag([*self.spacing_mm, 1.0])
        a[:3, 3] = self.origin_lps
        return a

    @property
    def full_box(self) -> Box:
        return Box((0, 0, 0), self.shape)

    def z_of_slices(self) -> FloatArray:
        return self.origin_lps[2] + np.arange(self.shape[0]) * self.spacing_mm[2]

    def box_around(self, lo_lps: FloatArray, hi_lps: FloatArray, margin_mm: float = 1.0) -> (
            Box | None):
        """Voxels whose centres lie in the LPS box (grown by a margin), clipped to the grid."""
        lo_ijk = np.floor((lo_lps - margin_mm - self.origin_lps) / self.spacing_mm).astype(int)
        hi_ijk = np.ceil((hi_lps + margin_mm - self.origin_lps) / self.spacing_mm).astype(int) + 1
        lo = (max(lo_ijk[2], 0), max(lo_ijk[1], 0), max(lo_ijk[0], 0))
        hi = (min(hi_ijk[2], self.shape[0]), min(hi_ijk[1], self.shape[1]),
              min(hi_ijk[0], self.shape[2]))
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            return None
        return Box(lo, hi)

    def axes(self, box: Box) -> Axes:
        """Broadcastable LPS coordinates (float32) of the voxel centres of a box."""
        k0, j0, i0 = box.lo
        k1, j1, i1 = box.hi
        o, s = self.origin_lps, self.spacing_mm
        x = (o[0] + np.arange(i0, i1) * s[0]).astype(np.float32).reshape(1, 1, -1)
        y = (o[1] + np.arange(j0, j1) * s[1]).astype(np.float32).reshape(1, -1, 1)
        z = (o[2] + np.arange(k0, k1) * s[2]).astype(np.float32).reshape(-1, 1, 1)
        return x, y, z

    def to_index(self, point_lps: FloatArray) -> FloatArray:
        """LPS mm → continuous (i, j, k)."""
        return (np.asarray(point_lps, dtype=np.float64) - self.origin_lps) / self.spacing_mm


class Shape(Protocol):
    """Anything that can say which voxels of a box it covers."""

    def bounds_lps(self) -> tuple[FloatArray, FloatArray]: ...

    def inside(self, axes: Axes) -> BoolArray: ...


@dataclass(frozen=True, eq=False)
class EllipticCapsule:
    """A tube from ``start`` to ``end`` with a (super)elliptic cross-section and rounded ends.

    The cross-section has half-axes ``radius_v`` along ``v_hint`` (made perpendicular to the
    tube) and ``radius_w`` across; both vary linearly from start to end. The ends are capped
    by half-ellipsoids of length ``radius_w``. Exponent 2 gives ellipses, 4 flat plates.
    """

    start_lps: FloatArray
    end_lps: FloatArray
    v_hint_lps: FloatArray
    radius_v_mm: tuple[float, float]
    radius_w_mm: tuple[float, float]
    exponent: float = 2.0

    def _axes(self) -> tuple[FloatArray, FloatArray, FloatArray, float]:
        d = np.asarray(self.end_lps, dtype=np.float64) - self.start_lps
        length = float(np.linalg.norm(d))
        u = d / length
        v = np.asarray(self.v_hint_lps, dtype=np.float64)
        v = unit(v - np.dot(v, u) * u)
        w = np.cross(u, v)
        return u, v, w, length

    def bounds_lps(self) -> tuple[FloatArray, FloatArray]:
        r = max(*self.radius_v_mm, *self.radius_w_mm)
        a, b = np.asarray(self.start_lps), np.asarray(self.end_lps)
        return np.minimum(a, b) - r, np.maximum(a, b) + r

    def value(self, axes: Axes) -> F32Array:
        """Implicit value: ≤ 1 inside; for exponent 2 it is the squared radial fraction."""
        u, v, w, length = self._axes()
        x, y, z = axes
        a = self.start_lps.astype(np.float32)
        dx, dy, dz = x - a[0], y - a[1], z - a[2]
        t = dx * np.float32(u[0]) + dy * np.float32(u[1]) + dz * np.float32(u[2])
        pv = dx * np.float32(v[0]) + dy * np.float32(v[1]) + dz * np.float32(v[2])
        pw = dx * np.float32(w[0]) + dy * np.float32(w[1]) + dz * np.float32(w[2])
        s = np.clip(t * np.float32(1.0 / length), 0.0, 1.0)
        rv0, rv1 = self.radius_v_mm
        rw0, rw1 = self.radius_w_mm
        rv = np.float32(rv0) + np.float32(rv1 - rv0) * s
        rw = np.float32(rw0) + np.float32(rw1 - rw0) * s
        q = (t - s * np.float32(length)) / rw
        n = self.exponent
        if n == 2.0:
            return (pv / rv) ** 2 + (pw / rw) ** 2 + q**2
        return np.abs(pv / rv) ** n + np.abs(pw / rw) ** n + np.abs(q) ** n

    def inside(self, axes: Axes) -> BoolArray:
        return self.value(axes) <= 1.0


@dataclass(frozen=True, eq=False)
class Ellipsoid:
    """A (super)ellipsoid with half-axes ``radii_mm`` along the axes of ``frame``."""

    frame: Frame
    radii_mm: tuple[float, float, float]
    exponent: float = 2.0

    def bounds_lps(self) -> tuple[FloatArray, FloatArray]:
        r = np.asarray(self.radii_mm)
        c = self.frame.corners_lps(-r, r)
        return c.min(axis=0), c.max(axis=0)

    def value(self, axes: Axes) -> F32Array:
        lx, ly, lz = self.frame.local_axes(axes)
        rx, ry, rz = (np.float32(1.0 / r) for r in self.radii_mm)
        n = self.exponent
        if n == 2.0:
            return (lx * rx) ** 2 + (ly * ry) ** 2 + (lz * rz) ** 2
        return np.abs(lx * rx) ** n + np.abs(ly * ry) ** n + np.abs(lz * rz) ** n

    def inside(self, axes: Axes) -> BoolArray:
        return self.value(axes) <= 1.0

    def grown(self, margin_mm: float) -> Ellipsoid:
        return Ellipsoid(self.frame, tuple(r + margin_mm for r in self.radii_mm),  # type: ignore[arg-type]
                         self.exponent)


@dataclass(frozen=True, eq=False)
class AxialProfile:
    """A shape given slice by slice: a superellipse per axial slice ``k0 + n``.

    Why: soft tissues (body outline, muscles, vessels) follow the spine's curve, which is
    easiest to state as a centre and half-axes per slice. ``centre_x/y`` and ``half_x/y``
    are LPS mm arrays, one entry per slice from ``k0``; a non-positive half-axis means the
    shape is absent in that slice. ``posterior_half_y`` (optional) replaces ``half_y`` for
    the posterior half (y above the centre), to make egg shapes.
    """

    grid: Grid
    k0: int
    centre_x: FloatArray
    centre_y: FloatArray
    half_x: FloatArray
    half_y: FloatArray
    exponent: float = 2.0
    posterior_half_y: FloatArray | None = None

    def box(self) -> Box | None:
        present = (self.half_x > 0) & (self.half_y > 0)
        if not np.any(present):
            return None
        ks = np.nonzero(present)[0]
        hy = self.half_y if self.posterior_half_y is None else np.maximum(
            self.half_y, self.posterior_half_y)
        cx, cy = self.centre_x[present], self.centre_y[present]
        hx, hy = self.half_x[present], hy[present]
        z = self.grid.z_of_slices()
        k_lo, k_hi = self.k0 + int(ks[0]), self.k0 + int(ks[-1]) + 1
        lo = np.array([np.min(cx - hx), np.min(cy - hy), z[k_lo]])
        hi = np.array([np.max(cx + hx), np.max(cy + hy), z[k_lo]])
        plane = self.grid.box_around(lo, hi, margin_mm=0.5)
        if plane is None:
            return None
        return Box((k_lo, plane.lo[1], plane.lo[2]), (k_hi, plane.hi[1], plane.hi[2]))

    def bounds_lps(self) -> tuple[FloatArray, FloatArray]:
        box = self.box()
        if box is None:
            return np.zeros(3), np.zeros(3)
        lo = self.grid.origin_lps + np.array(box.lo[::-1]) * self.grid.spacing_mm
        hi = self.grid.origin_lps + (np.array(box.hi[::-1]) - 1) * self.grid.spacing_mm
        return lo, hi

    def value(self, axes: Axes, box: Box) -> F32Array:
        x, y, _ = axes
        sel = slice(box.lo[0] - self.k0, box.hi[0] - self.k0)

        def col(a: FloatArray) -> F32Array:
            return a[sel].astype(np.float32).reshape(-1, 1, 1)

        hx, hy = col(np.maximum(self.half_x, 1e-3)), col(np.maximum(self.half_y, 1e-3))
        dy = y - col(self.centre_y)
        if self.posterior_half_y is not None:
            hy = np.where(dy > 0, col(np.maximum(self.posterior_half_y, 1e-3)), hy)
        n = self.exponent
        v = np.abs((x - col(self.centre_x)) / hx) ** n + np.abs(dy / hy) ** n
        absent = col(np.minimum(self.half_x, self.half_y)) <= 0
        return np.where(absent, np.float32(9.0), v)

    def inside(self, axes: Axes, box: Box) -> BoolArray:
        return self.value(axes, box) <= 1.0
