"""Fixtures of the assessment tests: the shared demo CT with its true anatomy, and the
fracture assessment of every level (each made once per module, read only)."""

from __future__ import annotations

import pytest

from planning.anatomy import anatomy_from_demo_truth
from planning.assessment.fracture import FractureAssessment, assess_fractures
from tests.planning.assessment.edited_demo import Demo


@pytest.fixture(scope="module")
def demo(shared_demo_ct) -> Demo:
    volume, truth = shared_demo_ct
    return volume, truth, anatomy_from_demo_truth(truth)


@pytest.fixture(scope="module")
def assessed(demo: Demo) -> dict[str, FractureAssessment]:
    return assess_fractures(demo[0], demo[2])
