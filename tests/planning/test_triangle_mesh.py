"""The one mesh type: every producer returns it, merging re-indexes the triangles."""

from __future__ import annotations

import numpy as np

from planning.interop.meshes import needle_mesh
from planning.mask_reslice import mask_mesh
from planning.plan import Side, Trajectory
from planning.triangle_mesh import TriangleMesh, empty_mesh, merge_meshes


def _cube_mesh() -> TriangleMesh:
    mask = np.zeros((12, 12, 12), dtype=bool)
    mask[3:9, 3:9, 3:9] = True
    return mask_mesh(mask, np.diag([2.0, 2.0, 2.0, 1.0]))


def test_every_producer_returns_the_one_type() -> None:
    needle = needle_mesh(Trajectory("L1", Side.LEFT, (0, 0, 0), (0, 40, 0), "11G"))
    for mesh in (_cube_mesh(), needle, empty_mesh(), merge_meshes([])):
        assert isinstance(mesh, TriangleMesh)
    assert empty_mesh().is_empty and not _cube_mesh().is_empty


def test_merging_keeps_every_triangle_on_its_own_vertices() -> None:
    cube = _cube_mesh()
    shifted = TriangleMesh(cube.vertices_lps + np.float32(100.0), cube.faces, cube.normals_lps)
    merged = merge_meshes([cube, shifted])
    n_v, n_f = len(cube.vertices_lps), len(cube.faces)
    assert merged.vertices_lps.shape == (2 * n_v, 3) and merged.faces.shape == (2 * n_f, 3)
    np.testing.assert_array_equal(merged.faces[n_f:], cube.faces + n_v)
    # the second half's triangles sit on the shifted copy, 100 mm away
    np.testing.assert_allclose(merged.vertices_lps[merged.faces[n_f:]] -
                               cube.vertices_lps[cube.faces], 100.0, atol=1e-4)
    assert merged.faces.dtype == np.int32 and merged.vertices_lps.dtype == np.float32
