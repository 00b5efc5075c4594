"""A Genant grade only from a plausible measurement (`assessment.body_plausibility.judge`):
here, a wedge must tilt the body (its middle height between front and back), not miss a
corner; the endplates must show on the CT; the depth must be like the neighbours'."""

from __future__ import annotations

import pytest

from planning.assessment.body_plausibility import EndplateSteps, corner_only, judge

CLEAR = EndplateSteps({(b, e): 120.0 for b in ("anterior", "middle", "posterior")
                       for e in ("superior", "inferior")})


@pytest.mark.parametrize(("heights", "corner"), [
    ((18.1, 28.4, 26.5), True),   # VerSe 012's intact L3 on a turned grid: a lost corner
    ((19.4, 28.6, 27.1), True),
    ((18.1, 18.2, 23.8), False),  # its true L1 wedge: the middle as low as the front
    ((20.0, 23.0, 27.0), False),  # a planar wedge: the middle between front and back
    ((26.0, 21.0, 26.5), False),  # biconcave: the middle lowest
    ((17.0, 17.5, 17.2), False),  # crush: all alike
])
def test_only_a_short_front_corner_is_no_wedge(heights, corner) -> None:
    assert corner_only(*heights) is corner


def test_a_corner_is_not_graded_and_says_why() -> None:
    p = judge(38.0, 37.0, CLEAR, would_grade=True, heights_mm=(18.1, 28.4, 26.5))
    assert p.reasons and "front corner" in p.reasons[0] and "not graded" in p.reasons[0]
    wedge = judge(38.0, 37.0, CLEAR, would_grade=True, heights_mm=(18.1, 18.2, 23.8))
    assert wedge.reasons == ()
    # asked only of a body whose heights would grade it, as the endplates are
    assert judge(38.0, 37.0, CLEAR, would_grade=False, heights_mm=(24.0, 28.4, 26.5)
                 ).reasons == ()


def test_a_shallow_body_and_an_unseen_endplate_each_withhold_the_grade() -> None:
    shallow = judge(25.0, 38.0, CLEAR, would_grade=True, heights_mm=(18.0, 18.0, 24.0))
    assert any("front to back" in r for r in shallow.reasons)
    flat = EndplateSteps({**CLEAR.steps, ("anterior", "superior"): 5.0})
    unseen = judge(38.0, 37.0, flat, would_grade=True, heights_mm=(18.0, 18.0, 24.0))
    assert any("superior endplate is not seen" in r for r in unseen.reasons)
