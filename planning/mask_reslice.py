"""Masks and label maps cut by a view plane, and as surfaces: what the views outline.

The anatomy's masks live on a crop of the CT grid with their own index→LPS affine; a view's
plane may be oblique to it. Each pixel goes LPS → index and takes the nearest voxel's value,
so an outline drawn from the result sits exactly where the checks see the structure.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter
from skimage.measure import marching_cubes

from planning.reslice import SliceGeometry
from planning.triangle_mesh import TriangleMesh, empty_mesh
from planning.volume import FloatArray, inverse_affine


def reslice_labels(
    labels: NDArray, affine_lps: FloatArray, geometry: SliceGeometry, outside: int = 0
) -> NDArray:
    """Nearest-voxel values of ``labels`` ([k, j, i], index→LPS ``affine_lps``) at every
    pixel of ``geometry``; pixels outside the grid get ``outside``. Same dtype as labels."""
    inv = inverse_affine(np.asarray(affine_lps, dtype=np.float64))
    h, w = geometry.height_px, geometry.width_px
    xs = np.arange(w, dtype=np.float64) - (w - 1) / 2.0
    ys = np.arange(h, dtype=np.float64) - (h - 1) / 2.0
    c = inv[:3, :3] @ geometry.center_lps + inv[:3, 3]
    sx = inv[:3, :3] @ geometry.plane.right_lps * geometry.pixel_mm
    sy = inv[:3, :3] @ geometry.plane.down_lps * geometry.pixel_mm
    out = np.full((h, w), outside, dtype=labels.dtype)
    inside = np.ones((h, w), dtype=bool)
    idx = []
    for axis in (2, 1, 0):  # array axes k, j, i ← ijk components 2, 1, 0
        pos = np.rint(c[axis] + ys[:, None] * sy[axis] + xs[None, :] * sx[axis]).astype(np.intp)
        n = labels.shape[2 - axis]
        inside &= (pos >= 0) & (pos < n)
        idx.append(np.clip(pos, 0, n - 1))
    out[inside] = labels[idx[0][inside], idx[1][inside], idx[2][inside]]
    return out


Mesh = TriangleMesh
"""A triangle surface in LPS mm (`planning.triangle_mesh`, the one mesh type)."""


def mask_mesh(
    mask: NDArray[np.bool_], affine_lps: FloatArray, *, step_vox: int = 1, sigma_vox: float = 0.8
) -> Mesh:
    """Smooth surface of a mask in LPS mm: (vertices, triangles, outward normals).

    Empty masks give empty arrays. The mask is blurred slightly before marching cubes so the
    surface is not a staircase of voxels; ``step_vox`` > 1 trades detail for speed.
    """
    if not mask.any():
        return empty_mesh()
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        box.append((max(0, int(hit[0]) - 2), int(hit[-1]) + 3))
    sub = np.zeros(tuple(hi - lo for lo, hi in box), dtype=np.float32)
    src = mask[box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]]
    sub[:src.shape[0], :src.shape[1], :src.shape[2]] = src
    field = gaussian_filter(sub, sigma_vox, mode="constant")
    if field.max() <= 0.5:
        return empty_mesh()
    verts_kji, faces, normals_kji, _ = marching_cubes(field, 0.5, step_size=step_vox)
    affine = np.asarray(affine_lps, dtype=np.float64)
    ijk = verts_kji[:, ::-1] + np.array([box[2][0], box[1][0], box[0][0]])
    verts = ijk @ affine[:3, :3].T + affine[:3, 3]
    normals = normals_kji[:, ::-1] @ np.linalg.inv(affine[:3, :3])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    if np.linalg.det(affine[:3, :3]) < 0:  # a mirrored grid turns the triangles inside out
        faces = faces[:, ::-1]
    return TriangleMesh(verts.astype(np.float32), faces.astype(np.int32),
                        normals.astype(np.float32))
