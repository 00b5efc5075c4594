"""The report's simulated fluoroscopy pictures: the patient's left is where the letters say,
on CTs whose grid is not the identity, and the needles' shadows are where the geometry puts
them, in their status colours."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from planning.checks import Status
from planning.drr import AttenuationVolume, project_points
from planning.fluoro_views import FluoroSetup, needle_views, standard_views
from planning.plan import Side, Trajectory
from planning.report.report_fluoro import fluoro_image, fluoro_window
from planning.vocabulary import STATUS_COLORS
from planning.volume import Volume
from tests.planning.report.made_up_results import made_up_result

LEFT = Trajectory("L2", Side.LEFT, (30.0, 45.0, 5.0), (6.0, -10.0, 2.0), "11G")

ORIENTATIONS = {
    "identity": np.eye(3),
    "flipped rows and slices": np.diag([1.0, -1.0, -1.0]),
    # columns along patient's P, rows along the patient's right: the grid is rotated
    "rotated 90 degrees": np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    "oblique": np.array([[np.cos(0.4), -np.sin(0.4), 0.0], [np.sin(0.4), np.cos(0.4), 0.0],
                         [0.0, 0.0, 1.0]]),
}


def _volume(directions: np.ndarray) -> Volume:
    """A soft-tissue cylinder with a bone block on the patient's left (+x in LPS).

    The grid's axes point along ``directions`` (columns: i, j, k) and it is centred on the
    LPS origin, so whatever the grid the block is at the patient's left.
    """
    n, spacing = 96, 2.0
    affine = np.eye(4)
    affine[:3, :3] = directions * spacing
    affine[:3, 3] = -directions @ np.full(3, (n - 1) / 2 * spacing)
    k, j, i = np.indices((n, n, n))
    ijk = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(np.float64)
    lps = ijk @ affine.T
    x, y, z = lps[..., 0], lps[..., 1], lps[..., 2]
    hu = np.full((n, n, n), -1000, np.int16)
    hu[x**2 + y**2 < 80**2] = 40
    hu[(x > 20) & (x < 50) & (np.abs(y) < 15) & (np.abs(z) < 40)] = 1500
    return Volume(hu, affine)


def _grey(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)


@pytest.mark.parametrize("name", list(ORIENTATIONS))
@pytest.mark.parametrize("position", ["prone", "supine"])
def test_the_bone_on_the_patients_left_is_on_the_side_lettered_l(name: str,
                                                                 position: str) -> None:
    volume = _volume(ORIENTATIONS[name])
    att = AttenuationVolume.from_volume(volume)
    setup = FluoroSetup(position=position, size_px=128)  # type: ignore[arg-type]
    ap = standard_views((0.0, 0.0, 0.0), setup)[0]
    image = fluoro_image(att, ap, [], {}, position=position)  # type: ignore[arg-type]
    grey = _grey(image.png)
    assert grey.shape == (ap.geometry.height_px, ap.geometry.width_px)
    middle = grey[66:88]  # rows through the block, below the corner texts (two conventions)
    left_half, right_half = middle[:, 16:60].mean(), middle[:, 68:112].mean()
    # bone is dark on a radiograph, as on the C-arm monitor
    if image.letters["left"] == "L":
        assert left_half < right_half - 20, (name, position, left_half, right_half)
    else:
        assert image.letters["right"] == "L"
        assert right_half < left_half - 20, (name, position, left_half, right_half)
    assert image.letters["left"] == ("L" if position == "prone" else "R")
    assert f"patient {position}" in image.caption


def test_needle_shadows_are_in_their_status_colour_where_the_geometry_puts_them() -> None:
    volume = _volume(ORIENTATIONS["oblique"])
    att = AttenuationVolume.from_volume(volume)
    setup = FluoroSetup(size_px=256)
    eye, progression = needle_views(LEFT, setup)
    results = {LEFT.key: made_up_result(LEFT, Status.UNSAFE, -1.0)}  # (only its colour shows)
    red = np.array([int(STATUS_COLORS[Status.UNSAFE][i:i + 2], 16) for i in (1, 3, 5)])

    shown = fluoro_image(att, progression, [LEFT], results)
    rgb = np.asarray(Image.open(io.BytesIO(shown.png)).convert("RGB"), dtype=np.float64)
    entry_px, tip_px = project_points(progression.geometry, np.array([LEFT.entry, LEFT.target]))
    for f in (0.3, 0.5, 0.7):  # along the shadow's middle the pixels are the status red
        x, y = np.round(entry_px + f * (tip_px - entry_px)).astype(int)
        assert np.linalg.norm(rgb[y, x] - red) < 40, (f, rgb[y, x])
    assert len(shown.needles) == 1
    length_mm = np.linalg.norm(tip_px - entry_px) * progression.geometry.pixel_mm
    assert length_mm == pytest.approx(LEFT.length_mm * progression.magnification, rel=0.02)
    assert shown.isocentre_pixel_mm == pytest.approx(
        progression.geometry.pixel_mm / progression.magnification)

    end_on = fluoro_image(att, eye, [LEFT], results)
    (dot,) = end_on.needles
    assert dot.length_px * eye.geometry.pixel_mm < 0.5  # bull's-eye: a point
    rgb = np.asarray(Image.open(io.BytesIO(end_on.png)).convert("RGB"), dtype=np.float64)
    x, y = np.round(dot.tip_px).astype(int)
    assert np.linalg.norm(rgb[y, x] - red) < 40


def test_window_spreads_the_grey_over_the_rays_through_the_patient() -> None:
    drr = np.zeros((10, 10), np.float32)
    assert fluoro_window(drr) == (0.0, 1.0)
    drr[2:8, 2:8] = np.linspace(1.0, 3.0, 36, dtype=np.float32).reshape(6, 6)
    low, high = fluoro_window(drr)
    assert 1.0 <= low < 1.1 and 2.9 < high <= 3.0
