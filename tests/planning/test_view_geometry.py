"""The view geometry that left the widgets: the needle's planes, a mask's outline in a slice,
and the nearest points of a needle segment — on identity, mirrored and oblique grids."""

from __future__ import annotations

import numpy as np
import pytest

from planning.needle_planes import (
    along_plane,
    needle_reference_frame,
    probe_plane,
    rotated_right_lps,
)
from planning.reslice import AXIAL, SAGITTAL, SliceGeometry
from planning.segment_geometry import nearest_on_segment, segment_point_nearest_line
from planning.slice_contours import coarse_slice, outline_contours_px, smoothed_contours_px


def _rotation(deg_x: float, deg_z: float) -> np.ndarray:
    a, b = np.radians(deg_x), np.radians(deg_z)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    return rz @ rx


GRIDS = {  # index → LPS: identity, mirrored in x and z, oblique with anisotropic voxels
    "identity": np.diag([1.0, 1.0, 1.0]),
    "mirrored": np.diag([-1.0, 1.0, -1.0]),
    "oblique": _rotation(20.0, 15.0) @ np.diag([0.8, 0.8, 1.5]),
}


def _sphere(linear: np.ndarray, centre_lps: np.ndarray, radius_mm: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """A ball of ``radius_mm`` around ``centre_lps`` on a grid with ``linear`` (3×3), the
    grid placed so that the ball lies inside it."""
    n = 48
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = centre_lps - linear @ np.full(3, (n - 1) / 2.0)
    k, j, i = np.indices((n, n, n))
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(float)
    lps = ijk @ linear.T + affine[:3, 3]
    inside = np.linalg.norm(lps - centre_lps, axis=1) <= radius_mm
    return inside.reshape(n, n, n), affine


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("plane", [AXIAL, SAGITTAL], ids=["axial", "sagittal"])
def test_outline_of_a_ball_is_its_circle_in_the_slice(grid: str, plane) -> None:
    centre = np.array([12.0, -30.0, 250.0])
    mask, affine = _sphere(GRIDS[grid], centre, 12.0)
    geometry = SliceGeometry(plane, centre, 80, 60, 0.5)
    for contours in (outline_contours_px(mask, affine, geometry),
                     smoothed_contours_px(mask, affine, geometry)):
        assert contours is not None and len(contours) == 1
        lps = geometry.pixel_to_lps(contours[0])
        r = np.linalg.norm(lps - centre, axis=1)
        voxel = float(np.linalg.norm(GRIDS[grid], axis=0).max())
        assert abs(np.median(r) - 12.0) < voxel  # the staircase of the voxels, no more
        # where it lies: the circle's centre is the ball's, so left is the patient's left
        assert np.allclose(lps.mean(axis=0), centre, atol=voxel)


def test_a_slice_that_misses_the_mask_has_no_outline() -> None:
    centre = np.array([0.0, 0.0, 0.0])
    mask, affine = _sphere(GRIDS["oblique"], centre, 8.0)
    away = SliceGeometry(AXIAL, centre + np.array([0.0, 0.0, 30.0]), 40, 40, 0.5)
    assert outline_contours_px(mask, affine, away) == []
    assert smoothed_contours_px(mask, affine, away) is None


def test_coarse_slice_keeps_plane_centre_and_field() -> None:
    fine = SliceGeometry(AXIAL, np.array([1.0, 2.0, 3.0]), 400, 300, 0.25)
    coarse = coarse_slice(fine, 1.0)
    assert coarse.pixel_mm == 1.0 and coarse.plane is AXIAL
    assert np.allclose(coarse.center_lps, fine.center_lps)
    assert coarse.width_px * coarse.pixel_mm >= fine.width_px * fine.pixel_mm
    assert coarse_slice(fine, 0.1).pixel_mm == 0.25  # never finer than the view


@pytest.mark.parametrize("direction", [
    [0.3, -1.0, 0.1],  # a left needle, posterior to anterior, slightly caudal
    [-0.3, -1.0, -0.2],  # a right one
    [0.0, 0.0, 1.0],  # cranio-caudal: the left axis takes superior's place
])
def test_needle_planes_contain_the_needle_and_stay_right_handed(direction) -> None:
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    right, normal = needle_reference_frame(d)
    assert abs(right @ d) < 1e-9 and abs(normal @ d) < 1e-9 and abs(right @ normal) < 1e-9
    assert np.allclose(np.cross(d, normal), right)
    along = along_plane(d, 30.0)
    assert np.allclose(along.down_lps, d)  # the entry at the top, the tip below
    assert abs(along.right_lps @ d) < 1e-9
    probe = probe_plane(d)
    assert np.allclose(probe.normal_lps, d)  # seen from the entry
    assert np.allclose(probe.right_lps, right)


def test_reference_plane_is_the_one_nearest_axial_and_seen_from_the_feet() -> None:
    d = np.array([0.3, -1.0, 0.1]) / np.linalg.norm([0.3, -1.0, 0.1])
    _right, normal = needle_reference_frame(d)
    assert normal[2] > 0.99  # superior, less its part along the needle
    assert np.allclose(rotated_right_lps(d, 0.0), needle_reference_frame(d)[0])
    # turning by +90° about the needle (right-hand rule) turns screen-right to -normal0
    _right0, normal0 = needle_reference_frame(d)
    turned = rotated_right_lps(d, 90.0)
    assert np.allclose(turned, -normal0)
    with pytest.raises(ValueError):
        needle_reference_frame(np.zeros(3))


def test_nearest_points_on_a_segment() -> None:
    a, b = np.array([0.0, 0.0, 0.0]), np.array([10.0, 0.0, 0.0])
    assert nearest_on_segment(np.array([4.0, 3.0, 0.0]), a, b) == pytest.approx((0.4, 3.0))
    assert nearest_on_segment(np.array([-5.0, 0.0, 0.0]), a, b) == pytest.approx((0.0, 5.0))
    assert nearest_on_segment(np.array([12.0, 0.0, 0.0]), a, b) == pytest.approx((1.0, 2.0))
    # a viewing ray along -z through x = 7: the segment's point under it
    hit = segment_point_nearest_line(np.array([7.0, 1.0, 50.0]), np.array([0.0, 0.0, -1.0]),
                                     a, b)
    assert np.allclose(hit, [7.0, 0.0, 0.0])
    # beyond the end: clamped to it; a ray along the segment: its start
    hit = segment_point_nearest_line(np.array([20.0, 1.0, 50.0]), np.array([0.0, 0.0, -1.0]),
                                     a, b)
    assert np.allclose(hit, b)
    assert np.allclose(segment_point_nearest_line(np.array([0.0, 5.0, 0.0]),
                                                  np.array([1.0, 0.0, 0.0]), a, b), a)
