"""Fractures painted into a real label map (`planning.demo.painted_fracture`): the painted
vertebra is graded with the shape and about the grade painted, on the painted truth, and
nothing else changes.

Why: the accuracy harness counts the painted fractures the automatic anatomy finds; that
count means something only if the painting itself makes the fracture that it says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planning.anatomy.label_tables import VERSE
from planning.assessment.fracture import (
    SHAPE_BICONCAVE,
    SHAPE_CRUSH,
    SHAPE_WEDGE,
    assess_fractures,
)
from planning.demo.painted import paint_from_labels
from planning.demo.painted_fracture import PaintedFracture, fractured_labels
from planning.io.nifti import load_nifti

VERSE_DIR = Path(__file__).parents[3] / ".." / "shared" / "data" / "ct-verse012-sagittal"

pytestmark = pytest.mark.skipif(not (VERSE_DIR / "labels.nii.gz").exists(),
                                reason="shared test data absent")


@pytest.mark.parametrize(("level", "shape", "loss"), [
    ("T11", SHAPE_WEDGE, 0.35), ("T12", SHAPE_BICONCAVE, 0.30), ("L2", SHAPE_CRUSH, 0.45)])
def test_the_painted_vertebra_is_graded_as_painted(level: str, shape: str, loss: float
                                                   ) -> None:
    labels = load_nifti(VERSE_DIR / "labels.nii.gz")
    fracture = PaintedFracture(level, shape, loss)
    broken = fractured_labels(labels, VERSE, fracture)
    code = VERSE.code_of(level)
    before = fractured_labels(labels, VERSE, PaintedFracture(level, shape, 0.0))
    removed = int((before.array == code).sum() - (broken.array == code).sum())
    assert removed > 0
    others = (before.array != code) & (before.array > 0)
    assert np.array_equal(before.array[others], broken.array[others])  # only this level

    phantom = paint_from_labels(broken, VERSE)
    graded = assess_fractures(phantom.ct, phantom.anatomy)[level]
    assert graded.genant_grade is not None
    assert abs(graded.genant_grade - fracture.grade) <= 1 and graded.shape == shape


def test_an_unknown_shape_is_refused() -> None:
    labels = load_nifti(VERSE_DIR / "labels.nii.gz")
    with pytest.raises(ValueError, match="unknown fracture shape"):
        fractured_labels(labels, VERSE, PaintedFracture("L2", "burst", 0.3))
