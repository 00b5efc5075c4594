"""The harness's non-rigid and thick storings (`bench/accuracy_storings.py`): the anatomy
moves as intended, and the labels move with the CT."""

from __future__ import annotations

import numpy as np
import pytest

from bench.accuracy_storings import bent, bent_labels, noisier, thick_slices
from planning.volume import Volume


def _column(shape=(40, 30, 30)) -> Volume:
    """A bright column along the head–feet axis in the middle of a 2 mm grid, labelled 7."""
    array = np.full(shape, -1000, dtype=np.int16)
    array[:, 13:17, 13:17] = 1000
    return Volume(array, np.diag([2.0, 2.0, 2.0, 1.0]))


def _x_of(volume: Volume, k: int) -> float:
    """The column's centre, LPS x, on slice k."""
    i = np.nonzero(volume.array[k] > 0)[1]
    return float(volume.affine_lps[0, 0] * i.mean() + volume.affine_lps[0, 3])


def test_a_bend_moves_the_middle_sideways_and_keeps_the_ends() -> None:
    column = _column()
    curved = bent(column, 6.0)
    assert _x_of(curved, 0) == pytest.approx(_x_of(column, 0), abs=0.1)
    assert _x_of(curved, 39) == pytest.approx(_x_of(column, 39), abs=0.1)
    assert _x_of(curved, 20) - _x_of(column, 20) == pytest.approx(6.0, abs=1.0)  # to the left
    labels = Volume((column.array > 0).astype(np.int16) * 7, column.affine_lps)
    moved = bent_labels(labels, 6.0)
    assert set(np.unique(moved.array)) == {0, 7}  # codes stay codes
    assert np.array_equal(moved.array > 0, curved.array > 0)  # the truth moves with the CT


def test_thick_slices_and_noise_keep_the_patient_where_it_was() -> None:
    column = _column()
    thick = thick_slices(column, 5.0)
    assert thick.spacing_mm[2] == pytest.approx(5.0)
    assert np.allclose(thick.affine_lps[:3, 3], column.affine_lps[:3, 3])
    noisy = noisier(column, 60.0)
    assert noisy.array.shape == column.array.shape
    assert 50.0 < float(np.std(noisy.array[:, 13:17, 13:17])) < 70.0  # the bone, now noisy
