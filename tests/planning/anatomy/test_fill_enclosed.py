"""A vertebra's label takes what it encloses in 3D (porotic cavities in a pedicle), never
the canal that runs on through it, nor anything inside its body (`from_ct.fill_enclosed`)."""

from __future__ import annotations

import numpy as np

from planning.anatomy.from_ct import fill_enclosed

CODE = 20


def _vertebra() -> tuple[np.ndarray, np.ndarray]:
    """A block of bone 20 slices high with a canal running through it from top to bottom,
    a closed cavity in its posterior part and another in its front (the body)."""
    codes = np.zeros((24, 40, 40), dtype=np.int16)
    codes[2:22, 5:35, 5:35] = CODE
    codes[:, 22:28, 17:23] = 0  # the canal: open at both ends, on through the next vertebra
    codes[8:12, 30:33, 8:11] = 0  # a porotic cavity in a pedicle, bone on every side
    codes[8:12, 10:13, 15:18] = 0  # a cavity in the body
    codes[8:12, 12:14, 30:32] = 7  # another code's voxels: never taken
    body = np.zeros(codes.shape, dtype=bool)
    body[:, :18, :] = True
    return codes, body


def test_enclosed_cavities_of_the_posterior_elements_are_filled_and_nothing_else() -> None:
    codes, body = _vertebra()
    before = codes.copy()
    fill_enclosed(codes, CODE, body)
    assert (codes[8:12, 30:33, 8:11] == CODE).all(), "the pedicle's cavity is the vertebra's"
    assert (codes[:, 22:28, 17:23] == 0).all(), "the canal stays open"
    assert (codes[8:12, 10:13, 15:18] == 0).all(), "the body keeps its own interior test"
    assert (codes[8:12, 12:14, 30:32] == 7).all()
    changed = codes != before
    assert changed.sum() == 4 * 3 * 3


def test_a_cavity_open_to_the_outside_is_not_filled() -> None:
    codes, body = _vertebra()
    codes[8:12, 30:40, 8:11] = 0  # the cavity runs out through the back of the bone
    before = codes.copy()
    fill_enclosed(codes, CODE, body)
    assert np.array_equal(codes, before)
