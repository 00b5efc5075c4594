"""The automatic bodies are cut back to their endplates: disc beyond a dense endplate goes,
the body inside it stays, on a tilted vertebra as well as a straight one."""

from __future__ import annotations

import numpy as np
import pytest

from planning.anatomy.endplates import trim_bodies_to_endplates
from planning.anatomy.model import Anatomy, VertebraGeometry
from planning.volume import Volume

SPACING = 1.0


def _rotation(deg: float) -> np.ndarray:
    """About the left–right axis: the spine leaning forward, as at L5–S1."""
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _case(tilt_deg: float, endplate_hu: int = 600):
    """A 30 × 30 × 24 mm body (120 HU) between two 2 mm endplates, with 4 mm of disc
    (100 HU) beyond each, all in the body mask as the slice fill leaves it."""
    n = 64
    affine = np.eye(4)
    affine[:3, 3] = -n / 2 * SPACING
    k, j, i = np.mgrid[:n, :n, :n].astype(float)
    lps = np.stack([i, j, k], axis=-1) * SPACING + affine[:3, 3]
    rot = _rotation(tilt_deg)
    local = lps @ rot  # (x, y, z) in the vertebra's frame
    x, y, z = local[..., 0], local[..., 1], local[..., 2]
    in_plane = (np.abs(x) <= 15) & (np.abs(y) <= 15)
    body = in_plane & (np.abs(z) < 10)
    endplate = in_plane & (np.abs(z) >= 10) & (np.abs(z) < 12)
    disc = in_plane & (np.abs(z) >= 12) & (np.abs(z) < 16)
    hu = np.full((n, n, n), -100, np.int16)
    hu[body], hu[endplate], hu[disc] = 120, endplate_hu, 100
    mask = body | endplate | disc
    labels = np.where(mask, 20, 0).astype(np.int16)
    superior = rot[:, 2]
    anterior = -rot[:, 1]
    geometry = VertebraGeometry("L3", 20, np.zeros(3), superior, anterior,
                                np.cross(superior, anterior))
    anatomy = Anatomy(affine, labels, np.zeros_like(mask), mask.copy(), {"L3": geometry})
    return anatomy, Volume(hu, affine), body, endplate, disc


@pytest.mark.parametrize("tilt_deg", [0.0, 20.0])
def test_disc_beyond_the_endplates_is_dropped(tilt_deg: float) -> None:
    anatomy, ct, body, endplate, disc = _case(tilt_deg)
    dropped = trim_bodies_to_endplates(anatomy, ct)
    kept = anatomy.bodies
    assert dropped > 0
    assert kept[body].mean() > 0.99  # the body stays
    assert kept[endplate].mean() > 0.9  # the endplate is part of the body
    assert kept[disc].mean() < 0.1  # the disc goes


def test_without_a_dense_endplate_nothing_is_cut() -> None:
    """A column whose endplate is not seen (a collapsed, lucent body) is left whole: no
    guessing where the body ends."""
    anatomy, ct, *_ = _case(0.0, endplate_hu=110)
    before = anatomy.bodies.copy()
    assert trim_bodies_to_endplates(anatomy, ct) == 0
    assert np.array_equal(anatomy.bodies, before)


def test_the_next_vertebras_rim_across_the_disc_is_not_taken_for_the_endplate() -> None:
    """Where a column's outermost voxel is dense bone across the disc (the neighbour's
    rim, in the mask by mistake), the disc and the rim are cut at the endplate plane of
    the other columns: else that wall would look taller (a false wedge)."""
    anatomy, ct, body, _endplate, disc = _case(0.0)
    n = ct.array.shape[0]
    k, j, i = np.mgrid[:n, :n, :n]
    x, y, z = i - n / 2, j - n / 2, k - n / 2  # identity affine centred on the body
    rim = (np.abs(x) <= 15) & (y > 8) & (y <= 15) & (np.abs(z) >= 16) & (np.abs(z) < 18)
    ct.array[rim] = 500
    anatomy.bodies |= rim
    anatomy.labels[rim] = 20
    trim_bodies_to_endplates(anatomy, ct)
    assert anatomy.bodies[rim].mean() < 0.1
    assert anatomy.bodies[disc].mean() < 0.1
    assert anatomy.bodies[body].mean() > 0.99
