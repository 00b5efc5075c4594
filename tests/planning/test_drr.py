"""DRR (simulated fluoroscopy): projection geometry, line integrals and what the picture shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from planning.demo import DemoTruth
from planning.drr import (
    MU_WATER_PER_MM,
    AttenuationVolume,
    DrrGeometry,
    project_points,
    render_drr,
    to_display,
)
from planning.volume import Volume
from tests.planning.grids import BOX_CENTRE_LPS, BOX_SHAPE_KJI, ball_volume, box_affine
from tests.planning.regrid import rotation

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SHAPE_KJI, CENTRE_LPS = BOX_SHAPE_KJI, BOX_CENTRE_LPS
AFFINES = {
    "identity": box_affine(np.eye(3)),
    "flipped": box_affine(np.diag([-1.0, -1.0, -1.0])),
    "oblique": box_affine(rotation(30, 25)),
}


def _ball_volume(affine: np.ndarray, ball_lps: np.ndarray, radius_mm: float = 5.0) -> Volume:
    return ball_volume(affine, SHAPE_KJI, ball_lps, radius_mm, ball_hu=1200, background_hu=-1000)


def _darkest_px(image: np.ndarray) -> np.ndarray:
    """(x, y) of the densest spot: the integral-weighted centroid of the pixels above 80 %
    of the maximum (a voxelised ball's top is flat, so the single maximum wanders)."""
    w = np.where(image >= 0.8 * image.max(), image, 0.0)
    y, x = np.indices(image.shape)
    return np.array([(w * x).sum(), (w * y).sum()]) / w.sum()


@pytest.mark.parametrize("name", list(AFFINES))
@pytest.mark.parametrize("beam", [(0.0, -1.0, 0.0), (0.5, -1.0, 0.3), (1.0, 0.2, -0.2)])
def test_ball_projects_where_project_points_says(name: str, beam: tuple[float, float, float]
                                                 ) -> None:
    ball = CENTRE_LPS + np.array([6.0, -4.0, 9.0])
    vol = _ball_volume(AFFINES[name], ball)
    geometry = DrrGeometry.looking_at(CENTRE_LPS, beam, size_px=129, detector_size_mm=150.0)
    image = render_drr(vol, geometry, voxel_mm=1.0)
    assert image.shape == (129, 129) and image.dtype == np.float32
    expected = project_points(geometry, ball)
    assert np.linalg.norm(_darkest_px(image) - expected) <= 1.0
    assert np.linalg.norm(expected - (129 - 1) / 2) > 5.0  # the test is not trivially central


@pytest.mark.parametrize("hu, weight", [(0, 1.0), (1000, 1.5)])
@pytest.mark.parametrize("voxel_mm", [1.0, 2.0])
def test_slab_line_integral_is_analytic(hu: int, weight: float, voxel_mm: float) -> None:
    array = np.full((60, 60, 60), -1000, dtype=np.int16)
    array[:, 20:40, :] = hu  # 20 mm thick along y (1 mm voxels)
    vol = Volume(array, np.eye(4))
    geometry = DrrGeometry.looking_at(vol.center_lps(), (0.0, -1.0, 0.0), size_px=65,
                                      detector_size_mm=60.0)
    image = render_drr(vol, geometry, bone_weight=1.5, voxel_mm=voxel_mm)
    expected = MU_WATER_PER_MM * (1 + hu / 1000) * weight * 20.0
    assert image[32, 32] == pytest.approx(expected, rel=0.02)


def test_oblique_ray_through_slab_is_longer() -> None:
    """Off-axis rays cross the slab obliquely: integral = thickness / cos(angle)."""
    array = np.full((60, 60, 60), -1000, dtype=np.int16)
    array[:, 20:40, :] = 0
    vol = Volume(array, np.eye(4))
    geometry = DrrGeometry.looking_at(vol.center_lps(), (0.0, -1.0, 0.0), size_px=65,
                                      detector_size_mm=60.0, source_to_detector_mm=300.0,
                                      source_to_patient_mm=200.0)
    image = render_drr(vol, geometry, voxel_mm=1.0)
    x = 32 + 25
    offset_mm = 25 * geometry.pixel_mm
    cos = 300.0 / np.hypot(300.0, offset_mm)
    assert image[32, x] == pytest.approx(MU_WATER_PER_MM * 20.0 / cos, rel=0.02)


def test_ap_view_shows_patient_left_on_image_right() -> None:
    """AP: source posterior, detector anterior, head up; columns run to the patient's left."""
    geometry = DrrGeometry.looking_at(CENTRE_LPS, (0.0, -1.0, 0.0))
    np.testing.assert_allclose(geometry.detector_u_lps, [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(geometry.detector_v_lps, [0.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(geometry.source_lps, CENTRE_LPS + np.array([0.0, 800.0, 0.0]))
    left_ball = CENTRE_LPS + np.array([12.0, 0.0, 0.0])
    vol = _ball_volume(AFFINES["identity"], left_ball)
    image = render_drr(vol, geometry)
    x, _ = project_points(geometry, left_ball)
    assert x > (geometry.width_px - 1) / 2 + 10  # patient's left → image right
    assert abs(_darkest_px(image)[0] - x) <= 1.0
    head = project_points(geometry, CENTRE_LPS + np.array([0.0, 0.0, 20.0]))
    assert head[1] < (geometry.height_px - 1) / 2  # head up


def test_lateral_view_has_posterior_on_the_right() -> None:
    geometry = DrrGeometry.looking_at(CENTRE_LPS, (1.0, 0.0, 0.0))  # source on the right
    np.testing.assert_allclose(geometry.detector_u_lps, [0.0, 1.0, 0.0], atol=1e-12)


def test_project_points_magnifies_and_rejects_points_behind_the_source() -> None:
    geometry = DrrGeometry.looking_at(CENTRE_LPS, (0.0, -1.0, 0.0))
    pts = CENTRE_LPS + np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 900.0, 0.0]])
    xy = project_points(geometry, pts)
    assert xy.shape == (3, 2)
    np.testing.assert_allclose(xy[0], [255.5, 255.5])
    assert xy[1, 0] - xy[0, 0] == pytest.approx(10.0 * 1200 / 800 / geometry.pixel_mm)
    assert np.all(np.isnan(xy[2]))


def test_invalid_geometry_and_weight_are_refused() -> None:
    with pytest.raises(ValueError, match="up_lps"):
        DrrGeometry.looking_at(CENTRE_LPS, (0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="perpendicular"):
        DrrGeometry(np.zeros(3), np.array([0.0, 0.0, 100.0]), np.array([1.0, 0.0, 0.0]),
                    np.array([1.0, 1.0, 0.0]), 10, 10, 1.0)
    vol = _ball_volume(AFFINES["identity"], CENTRE_LPS)
    att = AttenuationVolume.from_volume(vol, bone_weight=2.0)
    with pytest.raises(ValueError, match="bone_weight"):
        render_drr(att, DrrGeometry.looking_at(CENTRE_LPS, (0.0, -1.0, 0.0)), bone_weight=1.0)


def test_display_is_dark_where_dense() -> None:
    image = np.array([[0.0, 1.0], [2.0, 4.0]], dtype=np.float32)
    grey = to_display(image, window=(0.0, 4.0))
    assert grey.dtype == np.uint8
    assert grey[0, 0] == 255 and grey[1, 1] == 0 and grey[0, 1] > grey[1, 0]


@pytest.fixture(scope="module")
def demo(shared_demo_ct) -> tuple[Volume, DemoTruth]:
    return shared_demo_ct


def test_demo_ct_ap_and_lateral_show_the_spine(demo: tuple[Volume, DemoTruth]) -> None:
    volume, truth = demo
    att = AttenuationVolume.from_volume(volume)
    centroids = np.array([lv.centroid_lps for lv in truth.levels])
    target = centroids.mean(axis=0)
    ap = DrrGeometry.looking_at(target, (0.0, -1.0, 0.0))
    lateral = DrrGeometry.looking_at(target, (1.0, 0.0, 0.0))
    ap_image, lat_image = render_drr(att, ap), render_drr(att, lateral)
    ARTIFACTS.mkdir(exist_ok=True)
    Image.fromarray(to_display(ap_image)).save(ARTIFACTS / "drr_ap.png")
    Image.fromarray(to_display(lat_image)).save(ARTIFACTS / "drr_lateral.png")

    # AP: the densest column (mean over the vertebrae's rows) is the spine, on the midline
    rows = project_points(ap, centroids)[:, 1]
    band = ap_image[int(rows.min()):int(rows.max()) + 1]
    profile = band.mean(axis=0)
    spine_x = project_points(ap, target)[0]
    assert abs(int(np.argmax(profile)) - spine_x) <= 20  # within ~8 mm at the patient
    soft = profile[int(spine_x) + 120]  # ~47 mm to the patient's left: soft tissue
    assert profile.max() > 1.2 * soft
    # each vertebral body is darker on screen than the soft tissue beside it
    grey = to_display(ap_image)
    inside = [xy for xy in project_points(ap, centroids) if 0 <= xy[1] < ap.height_px - 1]
    assert len(inside) >= 3
    for xy in inside:
        x, y = (round(float(v)) for v in xy)
        assert grey[y, x] < grey[y, min(x + 120, ap.width_px - 1)]
    assert lat_image.max() > ap_image.max() * 0.5  # the lateral sees the whole body too
