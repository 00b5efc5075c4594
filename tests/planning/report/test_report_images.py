"""The report's slice images: needles on the right side of the picture for any affine.

Each synthetic CT holds a bright marker on the patient's left and one anteriorly; the
volume is stored identity, flipped on every axis, or oblique (rotated and permuted). The
images are then probed: the left needle's colour is on the image side lettered "L", the
markers are where the letters say, and the canal is outlined in its colour.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from planning.anatomy.model import Anatomy
from planning.checks import Status
from planning.plan import Plan, Side, Trajectory
from planning.report.report_images import (
    LevelImages,
    ReportError,
    level_images,
    oblique_axial_plane,
)
from planning.reslice import SliceGeometry
from planning.vocabulary import CANAL_COLOR, STATUS_COLORS
from planning.volume import Volume
from tests.planning.grids import centred_affine
from tests.planning.report.made_up_results import made_up_result

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SHAPE_KJI = (70, 104, 96)
LEFT_MARKER_LPS = np.array([32.0, -5.0, 0.0])  # patient's left
ANTERIOR_MARKER_LPS = np.array([0.0, -26.0, 12.0])  # anterior and superior, on the midline
CANAL_CENTRE_LPS = np.array([0.0, 18.0, 0.0])
CANAL_RADIUS_MM = 7.0


def _rotation_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _affine(kind: str) -> np.ndarray:
    """index→LPS with the grid's centre at LPS (0, 0, 0); spacing (1.0, 1.1, 1.4) mm."""
    spacing = np.array([1.0, 1.1, 1.4])
    if kind == "identity":
        direction = np.eye(3)
    elif kind == "flipped":
        direction = -np.eye(3)
    elif kind == "oblique":  # columns along y, rows along x, slices along −z, then 25° about z
        direction = _rotation_z(25.0) @ np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]])
    else:
        raise AssertionError(kind)
    return centred_affine(direction, spacing, SHAPE_KJI, np.zeros(3))


def _volume_and_anatomy(kind: str) -> tuple[Volume, Anatomy]:
    affine = _affine(kind)
    k, j, i = np.indices(SHAPE_KJI)
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(np.float64)
    lps = (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(*SHAPE_KJI, 3)
    hu = np.full(SHAPE_KJI, 40, dtype=np.int16)  # soft tissue
    body = (np.abs(lps[..., 0]) < 18) & (lps[..., 1] > -30) & (lps[..., 1] < 5)
    hu[body] = 300
    for marker in (LEFT_MARKER_LPS, ANTERIOR_MARKER_LPS):
        hu[np.linalg.norm(lps - marker, axis=-1) < 4.0] = 1500
    canal = np.hypot(lps[..., 0] - CANAL_CENTRE_LPS[0],
                     lps[..., 1] - CANAL_CENTRE_LPS[1]) < CANAL_RADIUS_MM
    volume = Volume(hu, affine)
    anatomy = Anatomy(affine_lps=affine, labels=np.zeros(SHAPE_KJI, np.int16), canal=canal,
                      bodies=np.zeros(SHAPE_KJI, bool), levels={})
    return volume, anatomy


LEFT = Trajectory("L1", Side.LEFT, (22.0, 34.0, 0.0), (6.0, -14.0, 0.0))
RIGHT = Trajectory("L1", Side.RIGHT, (-22.0, 34.0, 0.0), (-6.0, -14.0, 0.0))
PLAN = Plan(trajectories=(LEFT, RIGHT))
RESULTS = {LEFT.key: made_up_result(LEFT, Status.SAFE, 3.1),
           RIGHT.key: made_up_result(RIGHT, Status.UNSAFE, -2.0)}


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"), dtype=float)


def _near_colour(pixels: np.ndarray, xy: np.ndarray, hex_color: str, radius_px: int = 9,
                 tolerance: float = 40.0) -> int:
    """How many pixels within ``radius_px`` of ``xy`` are within ``tolerance`` of a colour."""
    x, y = (round(float(v)) for v in xy)
    h, w, _ = pixels.shape
    patch = pixels[max(0, y - radius_px):min(h, y + radius_px + 1),
                   max(0, x - radius_px):min(w, x + radius_px + 1)]
    return int((np.linalg.norm(patch - _rgb(hex_color), axis=-1) < tolerance).sum())


def _grey(pixels: np.ndarray, geometry: SliceGeometry, point_lps: np.ndarray) -> float:
    x, y = (round(float(v)) for v in geometry.lps_to_pixel(point_lps))
    return float(pixels[y, x].mean())


@pytest.fixture(scope="module", params=["identity", "flipped", "oblique"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, LevelImages]:
    volume, anatomy = _volume_and_anatomy(request.param)
    images = level_images(volume, PLAN, RESULTS, anatomy, "L1")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"report_axial_{request.param}.png").write_bytes(images.axial_png)
    (ARTIFACTS / f"report_sagittal_{request.param}.png").write_bytes(images.sagittal_png)
    return request.param, images


def test_letters_follow_the_patient_not_the_storage(rendered) -> None:
    _, images = rendered
    assert dict(images.axial_letters) == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert dict(images.sagittal_letters) == {"left": "A", "right": "P", "top": "S",
                                             "bottom": "I"}


def test_left_needle_is_drawn_on_the_side_lettered_l(rendered) -> None:
    _, images = rendered
    geometry = images.axial_geometry
    assert geometry is not None
    pixels = _pixels(images.axial_png)
    assert pixels.shape == (geometry.height_px, geometry.width_px, 3)
    half = geometry.width_px / 2
    left_mid = geometry.lps_to_pixel((LEFT.entry + LEFT.target) / 2)
    right_mid = geometry.lps_to_pixel((RIGHT.entry + RIGHT.target) / 2)
    # "L" is the right edge's letter: the patient's left needle is in the right half
    assert images.axial_letters["right"] == "L"
    assert left_mid[0] > half + 20 and right_mid[0] < half - 20
    safe, unsafe = STATUS_COLORS[Status.SAFE], STATUS_COLORS[Status.UNSAFE]
    # probe the needles' solid edges (the body is translucent over the bone)
    for t, own, other in ((LEFT, safe, unsafe), (RIGHT, unsafe, safe)):
        mid = geometry.lps_to_pixel((t.entry + t.target) / 2)
        assert _near_colour(pixels, mid, own) > 5, (t.label, own)
        assert _near_colour(pixels, mid, other) == 0, (t.label, other)
    # the tip dot is solid status colour
    assert _near_colour(pixels, geometry.lps_to_pixel(LEFT.target), safe, 3, 25) >= 9


def test_markers_lie_where_the_letters_say(rendered) -> None:
    _, images = rendered
    axial, sagittal = images.axial_geometry, images.sagittal_geometry
    assert axial is not None and sagittal is not None
    ax, sag = _pixels(images.axial_png), _pixels(images.sagittal_png)
    # the left marker: bright, in the right half of the axial image; its mirror is not
    assert _grey(ax, axial, LEFT_MARKER_LPS) > 240
    assert axial.lps_to_pixel(LEFT_MARKER_LPS)[0] > axial.width_px / 2
    assert _grey(ax, axial, LEFT_MARKER_LPS * np.array([-1, 1, 1])) < 200
    # the anterior marker sits on the sagittal's "A" side (left) and "S" side (up)
    x, y = sagittal.lps_to_pixel(ANTERIOR_MARKER_LPS)
    assert _grey(sag, sagittal, ANTERIOR_MARKER_LPS) > 240
    assert x < sagittal.width_px / 2 and y < sagittal.height_px / 2


def test_canal_is_outlined_in_its_colour(rendered) -> None:
    _, images = rendered
    geometry = images.axial_geometry
    assert geometry is not None
    pixels = _pixels(images.axial_png)
    edge = CANAL_CENTRE_LPS + np.array([0.0, CANAL_RADIUS_MM - 0.3, 0.0])  # posterior edge
    assert _near_colour(pixels, geometry.lps_to_pixel(edge), CANAL_COLOR, 4, 45) > 3
    assert _near_colour(pixels, geometry.lps_to_pixel(CANAL_CENTRE_LPS), CANAL_COLOR, 3) == 0


def test_axial_plane_follows_caudal_needles() -> None:
    tilted = Trajectory("L2", Side.LEFT, (20.0, 40.0, 10.0), (5.0, 0.0, 0.0))
    plane, tilt_deg = oblique_axial_plane([tilted])
    along_y_z = math.degrees(math.atan2(10.0, 40.0))
    assert tilt_deg == pytest.approx(along_y_z, abs=0.01)
    assert abs(float(plane.normal_lps @ tilted.direction)) < 0.3  # the needle is near in-plane
    # the plane contains the needle's direction once its left-right part is removed
    d = tilted.direction * np.array([0.0, 1.0, 1.0])
    assert float(plane.normal_lps @ d) == pytest.approx(0.0, abs=1e-9)
    assert float(plane.right_lps @ np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)


def test_level_without_needles_or_anatomy_is_refused() -> None:
    volume, _ = _volume_and_anatomy("identity")
    with pytest.raises(ReportError, match="L3 has no needle in the plan"):
        level_images(volume, PLAN, RESULTS, None, "L3")
