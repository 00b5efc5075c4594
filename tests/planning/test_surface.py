"""The bone surface must sit where the bone is, in LPS mm, with normals pointing outwards."""

from __future__ import annotations

import numpy as np
import pytest

from planning.errors import Cancelled
from planning.progress import Progress
from planning.surface import downsample_factors, extract_bone_surface, not_bone_mask
from planning.volume import Volume

SHAPE_KJI = (70, 80, 90)
SPACING = np.array([0.8, 0.8, 1.0])
CENTRE = np.array([-15.0, 40.0, 120.0])
RADIUS_MM = 18.0


def _rotation(axis: int, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    r = np.eye(3)
    i, j = [x for x in range(3) if x != axis]
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


DIRECTIONS = {
    "identity": np.eye(3),
    "flipped": np.diag([-1.0, -1.0, 1.0]),
    "mirrored": np.diag([1.0, 1.0, -1.0]),  # negative determinant
    "oblique30": _rotation(2, 30) @ _rotation(0, 30),
}


def _sphere_volume(direction: np.ndarray, centre_offset_mm: np.ndarray | None = None) -> Volume:
    """A ball of 1000 HU bone in soft tissue, centred on CENTRE (+ offset) in LPS."""
    affine = np.eye(4)
    affine[:3, :3] = direction * SPACING
    affine[:3, 3] = CENTRE - affine[:3, :3] @ ((np.array(SHAPE_KJI[::-1]) - 1) / 2)
    vol = Volume(np.full(SHAPE_KJI, 30, dtype=np.int16), affine)
    k, j, i = np.indices(SHAPE_KJI)
    lps = vol.to_lps(np.stack([i, j, k], axis=-1).reshape(-1, 3)).reshape(*SHAPE_KJI, 3)
    centre = CENTRE + (centre_offset_mm if centre_offset_mm is not None else 0.0)
    vol.array[np.linalg.norm(lps - centre, axis=-1) <= RADIUS_MM] = 1000
    return vol


@pytest.mark.parametrize("name", list(DIRECTIONS))
def test_sphere_surface_is_at_its_lps_radius_with_outward_normals(name: str) -> None:
    offset = np.array([3.0, -2.0, 1.0])
    vol = _sphere_volume(DIRECTIONS[name], offset)
    verts, faces, normals = extract_bone_surface(vol, target_spacing_mm=1.6)
    centre = CENTRE + offset
    radial = verts - centre
    r = np.linalg.norm(radial, axis=1)
    coarse_voxel_mm = 1.6
    assert len(faces) > 500
    assert np.abs(r - RADIUS_MM).max() < coarse_voxel_mm
    assert abs(np.median(r) - RADIUS_MM) < 0.3  # no systematic growth or shrinkage
    np.testing.assert_allclose(verts.mean(axis=0), centre, atol=0.3)
    # vertex normals point away from the centre
    assert np.all(np.sum(normals * radial, axis=1) > 0)
    # faces are counter-clockwise seen from outside: winding normal points outward
    tri = verts[faces]
    winding = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    outward = np.sum(winding * (tri.mean(axis=1) - centre), axis=1)
    assert np.mean(outward > 0) > 0.99


def test_patient_left_sphere_has_positive_x() -> None:
    """Flipped storage must not mirror the surface: bone on the patient's left stays at +x."""
    vol = _sphere_volume(DIRECTIONS["flipped"], np.array([10.0, 0.0, 0.0]))
    verts, _, _ = extract_bone_surface(vol)
    assert verts[:, 0].mean() == pytest.approx(CENTRE[0] + 10.0, abs=0.3)


def test_small_fragments_are_dropped_and_no_bone_gives_empty_mesh() -> None:
    vol = _sphere_volume(np.eye(3))
    vol.array[5:7, 5:7, 5:7] = 1500  # a 2-mm speck far from the ball
    verts, _, _ = extract_bone_surface(vol)
    assert np.linalg.norm(verts - CENTRE, axis=1).max() < RADIUS_MM + 2.0
    empty = extract_bone_surface(Volume(np.zeros((10, 10, 10), np.int16), np.eye(4)))
    assert empty.is_empty and empty.vertices_lps.shape == (0, 3)


def test_bone_cut_by_the_scan_edge_gives_a_closed_surface() -> None:
    vol = Volume(np.full((20, 30, 30), 1000, dtype=np.int16), np.eye(4))
    verts, faces, _ = extract_bone_surface(vol, target_spacing_mm=1.0, smoothing_sigma_vox=0)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    # every edge is shared by exactly two triangles: no hole where the scan cuts the bone
    assert len(verts) > 0 and np.all(counts == 2)


def test_downsample_factors_and_cancel() -> None:
    assert downsample_factors(np.array([0.7, 0.7, 1.0]), 1.5) == (2, 2, 2)
    assert downsample_factors(np.array([0.5, 0.5, 3.0]), 1.5) == (3, 3, 1)
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        extract_bone_surface(_sphere_volume(np.eye(3)), progress=progress)


def test_progress_is_reported_up_to_completion() -> None:
    seen: list[float] = []
    progress = Progress(callback=lambda done, total, _msg: seen.append(done / total))
    extract_bone_surface(_sphere_volume(np.eye(3)), progress=progress)
    assert seen and seen == sorted(seen) and seen[-1] >= 0.9


def test_sharp_kernel_noise_still_gives_the_bone_not_a_box_of_noise(rng) -> None:
    """±100 HU of noise in soft tissue (a sharp lung kernel): the surface is still the ball."""
    vol = _sphere_volume(np.eye(3))
    noisy = vol.array.astype(np.float32) + rng.normal(0.0, 100.0, vol.array.shape)
    vol = Volume(np.clip(noisy, -1024, 3071).astype(np.int16), vol.affine_lps)
    verts, faces, _ = extract_bone_surface(vol, target_spacing_mm=1.6)
    r = np.linalg.norm(verts - CENTRE, axis=1)
    assert len(faces) > 500
    assert np.percentile(np.abs(r - RADIUS_MM), 99) < 2.5  # no specks away from the ball


def test_the_ct_table_and_contrast_vessels_are_not_bone() -> None:
    """A phantom painted from real labels, with an aorta, a vena cava and iliac arteries of
    300/200 HU and a CT table behind the patient."""
    from tests.planning import painted_cases as pc

    ph = pc.abdomen_phantom()
    field = pc.vessel_truth_field(ph)
    without = extract_bone_surface(ph.ct)
    with_mask = extract_bone_surface(ph.ct, not_bone=not_bone_mask(ph.ct))
    j = np.nonzero(ph.table)[1]
    table_front_y = float(ph.ct.to_lps(np.array([[0.0, j.min(), 0.0]]))[0, 1])
    for surface in (without, with_mask):  # the table is gone either way
        assert surface.vertices_lps[:, 1].max() < table_front_y - 5.0
    inside = lambda s: int((field.approximate(s.vertices_lps.astype(float)) < -2.0).sum())  # noqa: E731
    assert inside(without) > 1000  # the test can fail: contrast is bright enough to be "bone"
    assert inside(with_mask) < 0.05 * inside(without)  # (a stub of one iliac artery)
