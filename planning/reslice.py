"""Multi-planar reformatting (MPR): sample a CT volume on any plane given in patient LPS.

Why sampling goes through patient space: a series may be stored flipped, tilted or oblique,
but the surgeon must always see the patient the same way (radiological convention: the
patient's right on the screen's left). Each screen pixel is placed in LPS millimetres first
and only then converted to a continuous voxel index with ``Volume.to_index``, so the picture
is correct for every affine.

Screen frame: pixel ``(x, y)`` is column ``x`` (to the right) and row ``y`` (downwards);
pixel centres are at integer coordinates and the plane's centre is at the middle of the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.volume import FloatArray, Volume

AIR_HU = -1024.0
"""Value given to pixels outside the volume: air, so they look black in every window."""

_LETTERS = {0: ("R", "L"), 1: ("A", "P"), 2: ("I", "S")}  # (negative, positive) LPS axis


def unit_vector(vector: FloatArray | tuple[float, float, float], name: str) -> FloatArray:
    """``vector`` scaled to length 1; a ValueError naming ``name`` when it is not a finite,
    non-zero 3-vector (a plane or a detector given wrong is said, not drawn askew)."""
    v = np.asarray(vector, dtype=np.float64)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be a finite 3-vector, got {vector!r}")
    n = float(np.linalg.norm(v))
    if n < 1e-9:
        raise ValueError(f"{name} must not be the zero vector")
    return v / n


def check_image_size(width_px: int, height_px: int, pixel_mm: float) -> None:
    """A ValueError for an image of no pixels or of pixels without size (any picture of
    the patient: a slice, a DRR's detector)."""
    if width_px < 1 or height_px < 1:
        raise ValueError(f"image size must be positive, got {width_px}×{height_px}")
    if not pixel_mm > 0:
        raise ValueError(f"pixel_mm must be positive, got {pixel_mm}")


@dataclass(frozen=True)
class ViewPlane:
    """Orientation of one MPR view: which LPS directions point screen-right and screen-down.

    ``normal_lps`` (= right × down) is the direction in which scrolling forward moves the slice.
    """

    name: str
    right_lps: FloatArray
    down_lps: FloatArray

    def __post_init__(self) -> None:
        right = unit_vector(self.right_lps, "right_lps")
        down = unit_vector(self.down_lps, "down_lps")
        if abs(float(right @ down)) > 1e-6:
            raise ValueError(f"{self.name}: right_lps and down_lps must be perpendicular")
        object.__setattr__(self, "right_lps", right)
        object.__setattr__(self, "down_lps", down)

    @cached_property
    def normal_lps(self) -> FloatArray:
        """(cached: views ask for it many times per frame)"""
        return np.cross(self.right_lps, self.down_lps)


AXIAL = ViewPlane("Axial", np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
"""Seen from the feet: screen-right = patient left (+x), screen-down = posterior (+y)."""
CORONAL = ViewPlane("Coronal", np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0]))
"""Seen from the front: screen-right = patient left, screen-down = inferior."""
SAGITTAL = ViewPlane("Sagittal", np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0]))
"""Seen from the patient's left: screen-right = posterior, screen-down = inferior."""
STANDARD_PLANES = (AXIAL, SAGITTAL, CORONAL)


def direction_letters(direction_lps: FloatArray, min_component: float = 0.3) -> str:
    """Patient-orientation letters of a direction, strongest component first ("L", "PS", ...).

    Components weaker than ``min_component`` are left out, as scanners do for oblique views.
    """
    d = unit_vector(direction_lps, "direction_lps")
    order = np.argsort(-np.abs(d))
    return "".join(
        _LETTERS[int(a)][int(d[a] > 0)] for a in order if abs(d[a]) >= min_component
    )


def orientation_letters(plane: ViewPlane) -> dict[str, str]:
    """The letter to show at each screen edge: keys "left", "right", "top", "bottom"."""
    return {
        "left": direction_letters(-plane.right_lps),
        "right": direction_letters(plane.right_lps),
        "top": direction_letters(-plane.down_lps),
        "bottom": direction_letters(plane.down_lps),
    }


@dataclass(frozen=True)
class SliceGeometry:
    """Where each pixel of a resliced image lies in the patient (LPS mm).

    The image is ``height_px`` rows × ``width_px`` columns of square ``pixel_mm`` pixels,
    centred on ``center_lps``, with rows along ``plane.down_lps``.
    """

    plane: ViewPlane
    center_lps: FloatArray
    width_px: int
    height_px: int
    pixel_mm: float

    def __post_init__(self) -> None:
        check_image_size(self.width_px, self.height_px, self.pixel_mm)
        object.__setattr__(self, "center_lps", np.asarray(self.center_lps, dtype=np.float64))

    @property
    def _center_px(self) -> FloatArray:
        return np.array([(self.width_px - 1) / 2.0, (self.height_px - 1) / 2.0])

    def pixel_to_lps(self, pixel_xy: FloatArray | tuple[float, float]) -> FloatArray:
        """Screen pixel ``(x, y)`` (or an (N, 2) array of them) → LPS mm on the plane."""
        d = (np.asarray(pixel_xy, dtype=np.float64) - self._center_px) * self.pixel_mm
        return (
            self.center_lps
            + d[..., 0:1] * self.plane.right_lps
            + d[..., 1:2] * self.plane.down_lps
        )

    def lps_to_pixel(self, point_lps: FloatArray | tuple[float, float, float]) -> FloatArray:
        """LPS mm → screen pixel ``(x, y)`` of the point's projection onto the plane."""
        d = np.asarray(point_lps, dtype=np.float64) - self.center_lps
        xy = np.stack([d @ self.plane.right_lps, d @ self.plane.down_lps], axis=-1)
        return xy / self.pixel_mm + self._center_px

    def distance_to_plane_mm(self, point_lps: FloatArray | tuple[float, float, float]) -> float:
        """Signed distance of a point from the plane along ``plane.normal_lps``."""
        d = np.asarray(point_lps, dtype=np.float64) - self.center_lps
        return float(d @ self.plane.normal_lps)


def slice_step_mm(volume: Volume, plane: ViewPlane) -> float:
    """Distance along the plane's normal that moves one voxel through the data.

    For an axial view of an axial series this is the slice spacing; for oblique planes it is
    the step after which the fastest-changing voxel index has advanced by one.
    """
    index_per_mm = np.linalg.inv(volume.affine_lps[:3, :3]) @ plane.normal_lps
    return float(1.0 / np.max(np.abs(index_per_mm)))


def extent_mm(volume: Volume, plane: ViewPlane) -> tuple[float, float]:
    """Width and height (mm) of the volume's projection onto the plane's screen axes."""
    corners = volume.corners_lps()
    spacing = volume.spacing_mm
    width = float(np.ptp(corners @ plane.right_lps)) + float(
        np.abs(volume.direction.T @ plane.right_lps) @ spacing
    )
    height = float(np.ptp(corners @ plane.down_lps)) + float(
        np.abs(volume.direction.T @ plane.down_lps) @ spacing
    )
    return width, height


def fit_pixel_mm(volume: Volume, plane: ViewPlane, width_px: int, height_px: int) -> float:
    """Pixel size (mm) at which the whole volume fits a view of the given size."""
    width_mm, height_mm = extent_mm(volume, plane)
    return max(width_mm / max(width_px, 1), height_mm / max(height_px, 1))


def reslice(
    volume: Volume, geometry: SliceGeometry, outside_hu: float = AIR_HU
) -> NDArray[np.float32]:
    """Sample the volume on a plane with trilinear interpolation.

    Returns a float32 image of HU, shape ``(height_px, width_px)``; pixels outside the voxel
    grid get ``outside_hu``. Works for any affine because each pixel goes LPS → index.
    """
    index_of_center = volume.to_index(geometry.center_lps)
    inv = np.linalg.inv(volume.affine_lps[:3, :3])
    step_x = inv @ geometry.plane.right_lps * geometry.pixel_mm  # index change per pixel
    step_y = inv @ geometry.plane.down_lps * geometry.pixel_mm
    xs = np.arange(geometry.width_px, dtype=np.float64) - (geometry.width_px - 1) / 2.0
    ys = np.arange(geometry.height_px, dtype=np.float64) - (geometry.height_px - 1) / 2.0

    fast = _axis_aligned_reslice(volume, index_of_center, step_x, step_y, xs, ys, outside_hu)
    if fast is not None:
        return fast

    # coords[axis, y, x] in array order (k, j, i) for map_coordinates
    coords = np.empty((3, geometry.height_px, geometry.width_px), dtype=np.float32)
    for out_axis, ijk_axis in enumerate((2, 1, 0)):
        coords[out_axis] = (
            index_of_center[ijk_axis]
            + ys[:, None] * step_y[ijk_axis]
            + xs[None, :] * step_x[ijk_axis]
        )
    image = np.empty((geometry.height_px, geometry.width_px), dtype=np.float32)
    # "nearest" keeps the border value over the half voxel beyond the outer voxel centres
    # (the volume's extent, see Volume.contains); farther out is blanked below.
    ndimage.map_coordinates(
        volume.array, coords, output=image, order=1, mode="nearest", prefilter=False
    )
    outside = np.zeros(image.shape, dtype=bool)
    for axis, n in enumerate(volume.array.shape):
        outside |= (coords[axis] < -0.5) | (coords[axis] > n - 0.5)
    image[outside] = outside_hu
    return image


def _axis_aligned_reslice(
    volume: Volume,
    index_of_center: FloatArray,
    step_x: FloatArray,
    step_y: FloatArray,
    xs: FloatArray,
    ys: FloatArray,
    outside_hu: float,
) -> NDArray[np.float32] | None:
    """Fast path when screen x and y each follow one voxel axis (the usual case).

    Trilinear sampling then separates into three 1-D linear interpolations — between two
    stored slices, then along rows, then along columns — several times faster than
    map_coordinates. Returns None when the plane is oblique to the voxel grid.
    """
    # a drift below 1/1000 voxel across the whole image counts as aligned
    ax_x = np.flatnonzero(np.abs(step_x) * len(xs) > 1e-3)
    ax_y = np.flatnonzero(np.abs(step_y) * len(ys) > 1e-3)
    if len(ax_x) != 1 or len(ax_y) != 1 or ax_x[0] == ax_y[0]:
        return None
    a_x, a_y = int(ax_x[0]), int(ax_y[0])  # ijk axes followed by screen x and screen y
    a_n = 3 - a_x - a_y
    n_ijk = volume.size

    lo_n, hi_n, w_n, in_n = _taps(np.array([index_of_center[a_n]]), n_ijk[a_n])
    if not in_n[0]:
        return np.full((len(ys), len(xs)), outside_hu, dtype=np.float32)
    array_axis = 2 - a_n  # ijk axis → axis of array[k, j, i]
    slab = np.take(volume.array, lo_n[0], axis=array_axis).astype(np.float32)
    if w_n[0] > 0:
        upper = np.take(volume.array, hi_n[0], axis=array_axis).astype(np.float32)
        slab += w_n[0] * (upper - slab)
    # the slab keeps the two other array axes in array order (higher ijk axis first)
    if max(a_x, a_y) != a_y:
        slab = slab.T  # now slab[y-axis index, x-axis index]

    lo_y, hi_y, w_y, in_y = _taps(index_of_center[a_y] + ys * step_y[a_y], n_ijk[a_y])
    rows = slab[lo_y]
    rows += w_y[:, None] * (slab[hi_y] - rows)
    lo_x, hi_x, w_x, in_x = _taps(index_of_center[a_x] + xs * step_x[a_x], n_ijk[a_x])
    image = rows[:, lo_x]
    image += w_x[None, :] * (rows[:, hi_x] - image)
    image[~in_y, :] = outside_hu
    image[:, ~in_x] = outside_hu
    return np.ascontiguousarray(image)


def _taps(
    position: FloatArray, n: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32], NDArray[np.bool_]]:
    """Neighbour indices and weight for 1-D linear interpolation at continuous positions.

    Positions within half a voxel beyond the outer centres take the border value (the
    volume's extent, as in ``Volume.contains``); ``inside`` is False farther out.
    """
    inside = (position >= -0.5) & (position <= n - 0.5)
    p = np.clip(position, 0.0, n - 1.0)
    lo = np.minimum(np.floor(p).astype(np.intp), max(n - 2, 0))
    hi = np.minimum(lo + 1, n - 1)
    return lo, hi, (p - lo).astype(np.float32), inside
