"""Masks cut by view planes and their surfaces land where the masks are, in LPS."""

from __future__ import annotations

import numpy as np

from planning.mask_reslice import mask_mesh, reslice_labels
from planning.reslice import AXIAL, SliceGeometry
from tests.planning.regrid import rotation


def _ball(affine: np.ndarray, centre_lps: np.ndarray, radius: float, shape=(40, 40, 40)):
    k, j, i = np.indices(shape)
    ijk = np.stack([i, j, k], -1).reshape(-1, 3).astype(float)
    lps = ijk @ affine[:3, :3].T + affine[:3, 3]
    return (np.linalg.norm(lps - centre_lps, axis=1) <= radius).reshape(shape)


def _affines():
    identity = np.eye(4)
    flipped = np.diag([-1.0, 1.0, -2.0, 1.0])
    flipped[:3, 3] = [39.0, 0.0, 78.0]
    oblique = np.eye(4)
    oblique[:3, :3] = rotation(20.0, 12.0) @ np.diag([1.0, 1.0, 1.5])
    mirrored = np.diag([-1.0, 1.0, 1.0, 1.0])  # a left-handed grid (determinant < 0)
    mirrored[:3, 3] = [39.0, 0.0, 0.0]
    return {"identity": identity, "flipped": flipped, "oblique": oblique, "mirrored": mirrored}


def test_reslice_labels_cuts_a_ball_where_it_is() -> None:
    for name, affine in _affines().items():
        centre = affine[:3, :3] @ np.array([20.0, 20.0, 20.0]) + affine[:3, 3]
        ball = _ball(affine, centre, 8.0)
        geo = SliceGeometry(AXIAL, centre + np.array([3.0, 0.0, 0.0]), 61, 61, 0.5)
        cut = reslice_labels(ball.astype(np.uint8), affine, geo)
        ys, xs = np.nonzero(cut)
        lps = geo.pixel_to_lps(np.stack([xs.mean(), ys.mean()]))
        assert np.linalg.norm(lps - centre) < 0.6, name  # the cut's centre is the ball's
        area_mm2 = cut.sum() * 0.25
        assert abs(area_mm2 - np.pi * 64) / (np.pi * 64) < 0.15, name
        # patient's left (+x) of the centre is inside; a point 12 mm left is outside
        px = geo.lps_to_pixel(centre + np.array([12.0, 0.0, 0.0]))
        assert cut[round(px[1]), round(px[0])] == 0, name


def test_mask_mesh_surrounds_the_ball_with_outward_normals() -> None:
    for name, affine in _affines().items():
        centre = affine[:3, :3] @ np.array([20.0, 20.0, 20.0]) + affine[:3, 3]
        verts, faces, normals = mask_mesh(_ball(affine, centre, 8.0), affine)
        r = np.linalg.norm(verts - centre, axis=1)
        assert abs(np.median(r) - 8.0) < 1.0, name
        radial = (verts - centre) / r[:, None]
        assert np.mean(np.einsum("ij,ij->i", radial, normals) > 0.5) > 0.95, name
        # triangle winding agrees with the normals (VTK lights the outside)
        a, b, c = (verts[faces[:, n]] for n in range(3))
        face_n = np.cross(b - a, c - a)
        mid = (a + b + c) / 3 - centre
        assert np.mean(np.einsum("ij,ij->i", face_n, mid) > 0) > 0.95, name


def test_empty_mask_gives_empty_mesh() -> None:
    v, f, n = mask_mesh(np.zeros((5, 5, 5), bool), np.eye(4))
    assert v.shape == (0, 3) and f.shape == (0, 3) and n.shape == (0, 3)
