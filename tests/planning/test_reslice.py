"""MPR sampling must show the patient the same way whatever the series' stored orientation."""

from __future__ import annotations

import numpy as np
import pytest

from planning.reslice import (
    AIR_HU,
    AXIAL,
    CORONAL,
    SAGITTAL,
    SliceGeometry,
    ViewPlane,
    direction_letters,
    fit_pixel_mm,
    orientation_letters,
    reslice,
    slice_step_mm,
)
from planning.volume import Volume
from tests.planning.grids import (
    BOX_CENTRE_LPS,
    BOX_SHAPE_KJI,
    BOX_SPACING,
    ball_volume,
    box_affine,
)
from tests.planning.regrid import rotation

SHAPE_KJI, SPACING, CENTRE = BOX_SHAPE_KJI, BOX_SPACING, BOX_CENTRE_LPS
AFFINES = {
    "identity": box_affine(np.eye(3)),
    "flipped": box_affine(np.diag([-1.0, -1.0, -1.0])),  # stored R→L, P→A, S→I
    "flipped_x_only": box_affine(np.diag([-1.0, 1.0, 1.0])),  # negative determinant
    "oblique30": box_affine(rotation(30, 30)),
}


def _volume_with_blob(affine: np.ndarray, blob_lps: np.ndarray, radius_mm: float = 4.0) -> Volume:
    """Soft tissue everywhere, a bone blob of the given radius around ``blob_lps``."""
    return ball_volume(affine, SHAPE_KJI, blob_lps, radius_mm, ball_hu=1000, background_hu=40)


def _bright_centroid(image: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(image > 500)
    assert len(xs) > 0, "the bone blob is not visible in the view"
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("name", list(AFFINES))
@pytest.mark.parametrize("plane", [AXIAL, CORONAL, SAGITTAL], ids=lambda p: p.name)
def test_blob_appears_where_its_lps_position_projects(name: str, plane: ViewPlane) -> None:
    offset = np.array([12.0, -6.0, 9.0])  # patient left, anterior, superior of centre
    blob = CENTRE + offset
    vol = _volume_with_blob(AFFINES[name], blob)
    geom = SliceGeometry(plane, blob, 101, 81, 0.5)  # the plane passes through the blob
    image = reslice(vol, geom)
    assert image.shape == (81, 101) and image.dtype == np.float32
    expected = geom.lps_to_pixel(blob)
    np.testing.assert_allclose(_bright_centroid(image), expected, atol=1.0)


@pytest.mark.parametrize("name", list(AFFINES))
@pytest.mark.parametrize("plane", [AXIAL, CORONAL], ids=lambda p: p.name)
def test_patient_left_is_on_screen_right(name: str, plane: ViewPlane) -> None:
    """Radiological convention: a blob 15 mm to the patient's LEFT is on the screen RIGHT."""
    blob = CENTRE + np.array([15.0, 0.0, 0.0])
    vol = _volume_with_blob(AFFINES[name], blob)
    geom = SliceGeometry(plane, CENTRE, 80, 80, 0.5)
    x, _ = _bright_centroid(reslice(vol, geom))
    assert x > 40 + 15 / 0.5 - 2


@pytest.mark.parametrize("name", list(AFFINES))
def test_sagittal_shows_posterior_on_the_right_and_superior_at_top(name: str) -> None:
    blob = CENTRE + np.array([0.0, 12.0, 10.0])  # posterior and superior
    vol = _volume_with_blob(AFFINES[name], blob)
    geom = SliceGeometry(SAGITTAL, CENTRE, 80, 80, 0.5)
    x, y = _bright_centroid(reslice(vol, geom))
    assert x > 40 + 20 and y < 40 - 16


def test_outside_the_volume_is_air_and_half_voxel_fringe_keeps_border_value() -> None:
    vol = Volume(np.full(SHAPE_KJI, 100, dtype=np.int16), AFFINES["identity"])
    lo, hi = vol.bounds_lps()
    # an axial plane 0.4 mm above the top slice centre (less than half of 1.5 mm) is inside
    geom = SliceGeometry(AXIAL, np.array([CENTRE[0], CENTRE[1], hi[2] + 0.4]), 200, 10, 0.5)
    image = reslice(vol, geom)
    width_mm = hi[0] - lo[0] + SPACING[0]
    inside_cols = np.abs(np.arange(200) - 99.5) * 0.5 <= width_mm / 2 - 0.25
    assert np.all(image[:, inside_cols] == 100)
    assert np.all(image[:, np.abs(np.arange(200) - 99.5) * 0.5 > width_mm / 2 + 0.25] == AIR_HU)
    above = SliceGeometry(AXIAL, np.array([CENTRE[0], CENTRE[1], hi[2] + 1.0]), 20, 10, 0.5)
    assert np.all(reslice(vol, above) == AIR_HU)


@pytest.mark.parametrize("plane", [AXIAL, CORONAL, SAGITTAL], ids=lambda p: p.name)
def test_fast_axis_aligned_path_matches_trilinear_map_coordinates(plane: ViewPlane) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(1)
    vol = Volume(rng.integers(-1000, 2000, SHAPE_KJI).astype(np.int16), AFFINES["flipped"])
    geom = SliceGeometry(plane, CENTRE + np.array([0.37, -0.21, 0.44]), 37, 29, 0.77)
    image = reslice(vol, geom)
    ys, xs = np.mgrid[0:29, 0:37]
    lps = geom.pixel_to_lps(np.stack([xs, ys], axis=-1).reshape(-1, 2))
    ijk = vol.to_index(lps)
    reference = ndimage.map_coordinates(vol.array.astype(np.float64), ijk[:, ::-1].T, order=1)
    np.testing.assert_allclose(image.ravel(), reference, atol=0.05)


@pytest.mark.parametrize("plane", [AXIAL, CORONAL, SAGITTAL], ids=lambda p: p.name)
def test_pixel_and_lps_round_trip(plane: ViewPlane) -> None:
    geom = SliceGeometry(plane, CENTRE, 64, 48, 0.7)
    px = np.array([[0.0, 0.0], [63.0, 47.0], [12.5, 30.25]])
    lps = geom.pixel_to_lps(px)
    np.testing.assert_allclose(geom.lps_to_pixel(lps), px, atol=1e-9)
    np.testing.assert_allclose([geom.distance_to_plane_mm(p) for p in lps], 0.0, atol=1e-9)
    np.testing.assert_allclose(geom.pixel_to_lps([31.5, 23.5]), CENTRE, atol=1e-9)
    # one pixel to the right is pixel_mm along the plane's right direction
    np.testing.assert_allclose(
        geom.pixel_to_lps([32.5, 23.5]) - CENTRE, 0.7 * plane.right_lps, atol=1e-9
    )


def test_orientation_letters_follow_radiological_convention() -> None:
    assert orientation_letters(AXIAL) == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert orientation_letters(CORONAL) == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert orientation_letters(SAGITTAL) == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    assert direction_letters(np.array([1.0, 1.0, 0.1])) in ("LP", "PL")
    assert direction_letters(np.array([0.0, -0.9, 0.2])) == "A"


def test_scroll_step_is_one_voxel_and_fit_covers_the_volume() -> None:
    vol = Volume(np.zeros(SHAPE_KJI, dtype=np.int16), AFFINES["flipped"])
    assert slice_step_mm(vol, AXIAL) == pytest.approx(1.5)
    assert slice_step_mm(vol, CORONAL) == pytest.approx(1.2)
    assert slice_step_mm(vol, SAGITTAL) == pytest.approx(1.0)
    # axial: 60 columns × 1.0 mm wide, 50 rows × 1.2 mm high → 60 mm across 100 px
    assert fit_pixel_mm(vol, AXIAL, 100, 100) == pytest.approx(0.6)


def test_view_plane_rejects_non_perpendicular_axes() -> None:
    with pytest.raises(ValueError, match="perpendicular"):
        ViewPlane("bad", np.array([1.0, 0, 0]), np.array([1.0, 1.0, 0]))
