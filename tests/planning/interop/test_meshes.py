"""STL / OBJ export: geometry checked by maths (watertight, volume, outward normals) and the
files read back by VTK's own readers, the ones 3D Slicer and ParaView use."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from planning.anatomy.model import Anatomy, VertebraGeometry
from planning.interop.meshes import (
    MeshError,
    mask_surface,
    needle_mesh,
    signed_volume_mm3,
    write_obj,
    write_scene_meshes,
    write_stl,
)
from planning.plan import Plan, Side, Trajectory
from planning.progress import Progress
from planning.surface import BoneSurface

vtk = pytest.importorskip("vtk")


def _rotation(axis: list[float], angle_rad: float) -> np.ndarray:
    a = np.asarray(axis, dtype=np.float64)
    a /= np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * k @ k


AFFINES = {
    "identity": np.eye(4),
    # a CT stored feet-first and mirrored in x: two flipped axes, anisotropic voxels
    "flipped": np.array(
        [[-0.7, 0, 0, 30.0], [0, 0.7, 0, -20.0], [0, 0, -1.25, 95.0], [0, 0, 0, 1]]
    ),
    # one flipped axis (negative determinant) and an oblique rotation
    "oblique-mirrored": np.block([
        [_rotation([1, 2, 0.5], 0.5) @ np.diag([0.8, -0.9, 1.1]), np.array([[-40.0, 7, 12]]).T],
        [np.zeros((1, 3)), np.ones((1, 1))],
    ]),
}

TRAJECTORIES = [
    Trajectory("L1", Side.LEFT, (45.0, 60.0, -120.0), (12.0, 20.0, -118.0), "11G"),
    Trajectory("L2", Side.RIGHT, (-44.0, 61.0, -150.0), (-11.5, 19.75, -160.5), "13G"),
    Trajectory("T12", Side.LEFT, (0.0, 0.0, 0.0), (0.0, 0.0, 35.0), "10G"),  # along an axis
]


def _edges_shared_twice(faces: np.ndarray) -> bool:
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    counts = Counter(map(tuple, edges.tolist()))
    return set(counts.values()) == {2}


def _volume_centroid(mesh: BoneSurface) -> np.ndarray:
    """Centroid of the enclosed solid (signed tetrahedra from the origin)."""
    tri = mesh.vertices_lps.astype(np.float64)[mesh.faces]
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    return (vol[:, None] * tri.sum(axis=1) / 4.0).sum(axis=0) / vol.sum()


def _read_stl(path: Path):
    reader = vtk.vtkSTLReader()
    reader.SetFileName(str(path))
    reader.Update()
    return reader


def _read_obj(path: Path):
    reader = vtk.vtkOBJReader()
    reader.SetFileName(str(path))
    reader.Update()
    return reader


def _bounds(vertices: np.ndarray) -> list[float]:
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    return [float(x) for pair in zip(lo, hi, strict=True) for x in pair]


# ----------------------------------------------------------------------------- needle


@pytest.mark.parametrize("t", TRAJECTORIES, ids=lambda t: t.label)
def test_needle_is_watertight_with_the_right_volume_and_outward_normals(t: Trajectory) -> None:
    mesh = needle_mesh(t)
    assert _edges_shared_twice(mesh.faces)
    true_volume = np.pi * t.radius_mm**2 * t.length_mm
    volume = signed_volume_mm3(mesh)
    assert volume > 0  # counter-clockwise seen from outside
    assert abs(volume - true_volume) / true_volume < 0.02
    # every face normal points away from the needle's axis or out of its end caps
    tri = mesh.vertices_lps.astype(np.float64)[mesh.faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centre = tri.mean(axis=1)
    along = (centre - t.entry) @ t.direction
    axis_point = t.entry + along[:, None] * t.direction
    outward = centre - axis_point
    caps = np.isclose(along, 0, atol=1e-3) | np.isclose(along, t.length_mm, atol=1e-3)
    outward[caps] = np.where(along[caps, None] < 1e-3, -t.direction, t.direction)
    assert np.all(np.einsum("ij,ij->i", normal, outward) > 0)
    # vertex normals agree: none points into the needle
    v_out = mesh.vertices_lps - mesh.vertices_lps.mean(axis=0)
    assert np.all(np.einsum("ij,ij->i", mesh.normals_lps, v_out) > 0)


def test_needle_is_never_thinner_than_the_real_one() -> None:
    t = TRAJECTORIES[0]
    mesh = needle_mesh(t, segments=8)
    tri = mesh.vertices_lps.astype(np.float64)[mesh.faces]
    centre = tri.mean(axis=1)
    along = (centre - t.entry) @ t.direction
    side = (along > 1e-3) & (along < t.length_mm - 1e-3)
    dist = np.linalg.norm(centre[side] - (t.entry + along[side, None] * t.direction), axis=1)
    assert dist.min() >= t.radius_mm - 1e-4  # flat sides touch the needle's circle
    with pytest.raises(MeshError, match="at least 3 segments"):
        needle_mesh(t, segments=2)


# ----------------------------------------------------------------------------- mask surface


def _sphere_mask(affine: np.ndarray, centre_lps: np.ndarray, radius_mm: float) -> np.ndarray:
    k, j, i = np.mgrid[:40, :40, :40]
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(np.float64)
    lps = ijk @ affine[:3, :3].T + affine[:3, 3]
    inside = np.linalg.norm(lps - centre_lps, axis=1) <= radius_mm
    return inside.reshape(40, 40, 40)


@pytest.mark.parametrize("name", list(AFFINES))
def test_mask_surface_of_a_sphere_is_outward_and_in_place(name: str) -> None:
    affine = AFFINES[name]
    centre = affine[:3, :3] @ np.array([19.3, 20.6, 19.8]) + affine[:3, 3]
    radius = 11.0
    mask = _sphere_mask(affine, centre, radius)
    mesh = mask_surface(mask, affine)
    volume = signed_volume_mm3(mesh)
    true_volume = 4.0 / 3.0 * np.pi * radius**3
    assert volume > 0, f"{name}: the surface is inside out"
    assert abs(volume - true_volume) / true_volume < 0.10
    voxel_mm = float(np.linalg.norm(affine[:3, :3], axis=0).max())
    assert np.linalg.norm(_volume_centroid(mesh) - centre) < voxel_mm
    # vertex normals point away from the centre
    assert np.mean(np.einsum("ij,ij->i", mesh.normals_lps, mesh.vertices_lps - centre) > 0) > 0.99


def test_mask_surface_of_an_empty_mask_is_empty() -> None:
    mesh = mask_surface(np.zeros((5, 5, 5), bool), np.eye(4))
    assert mesh.is_empty
    with pytest.raises(MeshError, match="3-D"):
        mask_surface(np.zeros((5, 5), bool), np.eye(4))


# ----------------------------------------------------------------------------- files


def test_stl_reads_back_in_vtk_with_the_same_points_and_bounds(tmp_path: Path) -> None:
    mesh = needle_mesh(TRAJECTORIES[1])
    path = write_stl(tmp_path / "needle.stl", mesh)
    raw = path.read_bytes()
    assert len(raw) == 84 + 50 * len(mesh.faces)
    assert b"LPS" in raw[:80] and not raw.startswith(b"solid")
    assert int.from_bytes(raw[80:84], "little") == len(mesh.faces)
    reader = _read_stl(path)
    assert "SPACE=LPS" in reader.GetHeader()  # what 3D Slicer looks for
    out = reader.GetOutput()
    assert out.GetNumberOfPoints() == len(mesh.vertices_lps)  # VTK merges shared corners
    assert out.GetNumberOfCells() == len(mesh.faces)
    np.testing.assert_allclose(out.GetBounds(), _bounds(mesh.vertices_lps), atol=1e-5)
    # facet normals point outwards: VTK's own volume of the read-back mesh is positive
    mass = vtk.vtkMassProperties()
    mass.SetInputData(out)
    mass.Update()
    assert abs(mass.GetVolume() - signed_volume_mm3(mesh)) < 1e-3 * signed_volume_mm3(mesh)
    assert [p.name for p in tmp_path.iterdir()] == ["needle.stl"]  # no temp file left


def test_obj_reads_back_in_vtk_with_points_bounds_and_normals(tmp_path: Path) -> None:
    affine = AFFINES["oblique-mirrored"]
    mesh = mask_surface(_sphere_mask(affine, affine[:3, 3] + [10.0, -5.0, 20.0], 9.0), affine)
    path = write_obj(tmp_path / "canal.obj", mesh)
    reader = _read_obj(path)
    assert "SPACE=LPS" in reader.GetComment()
    out = reader.GetOutput()
    assert out.GetNumberOfPoints() == len(mesh.vertices_lps)
    assert out.GetNumberOfCells() == len(mesh.faces)
    np.testing.assert_allclose(out.GetBounds(), _bounds(mesh.vertices_lps), atol=1e-5)
    normals = out.GetPointData().GetNormals()
    assert normals is not None and normals.GetNumberOfTuples() == len(mesh.vertices_lps)
    pts = np.array([out.GetPoint(n) for n in range(0, out.GetNumberOfPoints(), 97)])
    # 9 significant digits: the text parses back to exactly the float32 that was written
    np.testing.assert_array_equal(pts.astype(np.float32), mesh.vertices_lps[::97])


def test_large_mesh_is_written_quickly(tmp_path: Path) -> None:
    """~1 M triangles (a typical bone surface) in well under the time a user waits."""
    rng = np.random.default_rng(3)
    n_vertices, n_faces = 500_000, 1_000_000
    mesh = BoneSurface(
        rng.uniform(-200, 200, (n_vertices, 3)).astype(np.float32),
        rng.integers(0, n_vertices, (n_faces, 3)).astype(np.int32),
        np.tile(np.array([[0, 0, 1]], np.float32), (n_vertices, 1)),
    )
    start = time.perf_counter()
    write_stl(tmp_path / "big.stl", mesh)
    stl_s = time.perf_counter() - start
    assert (tmp_path / "big.stl").stat().st_size == 84 + 50 * n_faces
    assert stl_s < 3.0
    raw = np.fromfile(tmp_path / "big.stl", dtype=np.float32, count=13, offset=84)
    np.testing.assert_array_equal(raw[3:12].reshape(3, 3), mesh.vertices_lps[mesh.faces[0]])


def test_bad_meshes_are_refused_with_the_file_name(tmp_path: Path) -> None:
    bad = BoneSurface(np.zeros((3, 3), np.float32), np.array([[0, 1, 5]], np.int32),
                      np.zeros((3, 3), np.float32))
    with pytest.raises(MeshError, match=r"bad\.stl.*do not exist"):
        write_stl(tmp_path / "bad.stl", bad)


# ----------------------------------------------------------------------------- scene


def _anatomy() -> Anatomy:
    affine = AFFINES["flipped"]
    labels = np.zeros((40, 40, 40), np.int16)
    labels[4:18, 8:30, 8:30] = 21  # L1 (a box)
    labels[22:36, 8:30, 8:30] = 22  # L2
    canal = np.zeros_like(labels, dtype=bool)
    canal[2:38, 30:36, 16:22] = True
    geometry = {
        name: VertebraGeometry(name, code, np.zeros(3), np.array([0, 0, 1.0]),
                               np.array([0, -1.0, 0]), np.array([1.0, 0, 0]))
        for name, code in (("L1", 21), ("L2", 22))
    }
    return Anatomy(affine, labels, canal, labels > 0, geometry)


@pytest.mark.parametrize("fmt", ["stl", "obj"])
def test_scene_export_writes_one_file_per_structure_and_a_readme(
    tmp_path: Path, fmt: str
) -> None:
    anatomy = _anatomy()
    bone = mask_surface(anatomy.labels > 0, anatomy.affine_lps)
    plan = Plan(trajectories=tuple(TRAJECTORIES[:2]))
    reports: list[tuple[int, int, str]] = []
    paths = write_scene_meshes(tmp_path / "export", bone=bone, anatomy=anatomy, plan=plan,
                               fmt=fmt, progress=Progress(lambda *a: reports.append(a)))
    names = [p.name for p in paths]
    assert names == [f"bone.{fmt}", f"canal.{fmt}", f"L1.{fmt}", f"L2.{fmt}",
                     f"needle_L1_left.{fmt}", f"needle_L2_right.{fmt}", "README.txt"]
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == sorted(names)
    readme = (tmp_path / "export" / "README.txt").read_text(encoding="utf-8")
    assert "For research and training — not for clinical use" in readme
    assert "LPS" in readme and "+x patient left, +y posterior, +z head" in readme
    assert "millimetres" in readme
    assert reports[-1][0] == reports[-1][1]
    # each vertebra's file lies where its voxels are (LPS), read back by VTK
    read = _read_stl if fmt == "stl" else _read_obj
    out = read(tmp_path / "export" / f"L2.{fmt}").GetOutput()
    ijk = np.argwhere(anatomy.labels == 22)[:, ::-1].astype(np.float64)
    lps = ijk @ anatomy.affine_lps[:3, :3].T + anatomy.affine_lps[:3, 3]
    lo, hi = np.array(out.GetBounds()[0::2]), np.array(out.GetBounds()[1::2])
    assert np.all(lo <= lps.min(axis=0)) and np.all(hi >= lps.max(axis=0))
    assert np.all(hi - lo < np.ptp(lps, axis=0) + 2 * 1.25)


def test_scene_export_skips_empty_structures_and_refuses_unknown_formats(
    tmp_path: Path,
) -> None:
    anatomy = _anatomy()
    anatomy.canal[...] = False
    paths = write_scene_meshes(tmp_path, anatomy=anatomy)
    assert "canal.stl" not in [p.name for p in paths]
    assert "Not written (empty surface):\n  canal" in (tmp_path / "README.txt").read_text()
    with pytest.raises(MeshError, match="'ply' is not a mesh format"):
        write_scene_meshes(tmp_path, fmt="ply")
