"""The fluoroscopy views shared by the GUI and the report: angles, overlay, orientation."""

from __future__ import annotations

import numpy as np
import pytest

from planning.fluoro_views import (
    FluoroSetup,
    edge_letters,
    needle_views,
    plan_views,
    project_needles,
    standard_views,
)
from planning.plan import Side, Trajectory

LEFT_L2 = Trajectory("L2", Side.LEFT, (35.0, 60.0, 10.0), (5.0, -5.0, 6.0), "11G")
RIGHT_L2 = Trajectory("L2", Side.RIGHT, (-35.0, 60.0, 10.0), (-5.0, -5.0, 6.0), "11G")


def test_prone_ap_shows_the_patients_left_on_the_screen_left() -> None:
    ap, lateral = standard_views((0.0, 0.0, 0.0), FluoroSetup(position="prone"))
    assert ap.angles.label() == "LAO 0° CRAN 0°"
    assert edge_letters(ap.geometry) == {"left": "L", "right": "R", "top": "S", "bottom": "I"}
    # the left needle's shadow is on the left half of a prone PA image
    left, right = project_needles(ap, [LEFT_L2, RIGHT_L2])
    assert left.entry_px[0] < ap.geometry.width_px / 2 < right.entry_px[0]
    assert edge_letters(lateral.geometry)["top"] == "S"
    assert {edge_letters(lateral.geometry)["left"], edge_letters(lateral.geometry)["right"]} \
        == {"A", "P"}


def test_supine_ap_is_the_mirror_of_prone() -> None:
    ap = standard_views((0.0, 0.0, 0.0), FluoroSetup(position="supine"))[0]
    assert edge_letters(ap.geometry)["left"] == "R"


@pytest.mark.parametrize("needle", [LEFT_L2, RIGHT_L2])
def test_working_views_show_the_needle_end_on_and_at_full_length(needle: Trajectory) -> None:
    eye, progression = needle_views(needle)
    (dot,) = project_needles(eye, [needle])
    assert dot.length_px * eye.geometry.pixel_mm < 0.5  # a point on the detector
    centre = (eye.geometry.width_px - 1) / 2
    assert abs(dot.entry_px[0] - centre) < 1 and abs(dot.entry_px[1] - centre) < 1
    (shadow,) = project_needles(progression, [needle])
    magnification = progression.geometry.source_to_detector_mm / FluoroSetup().source_to_patient_mm
    assert shadow.length_px * progression.geometry.pixel_mm == pytest.approx(
        needle.length_mm * magnification, rel=0.02)
    assert shadow.radius_px > 0
    assert needle.label in eye.title and "bull's-eye" in eye.title


def test_plan_views_are_ap_lateral_then_two_per_needle() -> None:
    views = plan_views([LEFT_L2, RIGHT_L2])
    assert [v.kind for v in views] == ["ap", "lateral", "bulls_eye", "progression",
                                       "bulls_eye", "progression"]
    assert views[2].trajectory is LEFT_L2
    with pytest.raises(ValueError, match="centre"):
        plan_views([])
    assert len(plan_views([], centre_lps=(0, 0, 0))) == 2


def test_setup_is_validated() -> None:
    with pytest.raises(ValueError, match="shorter"):
        FluoroSetup(source_to_detector_mm=500, source_to_patient_mm=600)
    with pytest.raises(ValueError, match="prone or supine"):
        FluoroSetup(position="lateral")  # type: ignore[arg-type]


def test_projection_does_not_depend_on_the_ct_grid() -> None:
    """Views are built in LPS only: a caption and geometry are the same whatever the CT."""
    a = standard_views(np.array([1.0, 2.0, 3.0]))[0].geometry
    b = standard_views([1.0, 2.0, 3.0])[0].geometry
    assert np.allclose(a.source_lps, b.source_lps)


def test_isocentre_is_the_aimed_point_and_magnification_the_distance_ratio() -> None:
    setup = FluoroSetup(source_to_detector_mm=1000, source_to_patient_mm=700)
    for view in plan_views([LEFT_L2], centre_lps=(1.0, 2.0, 3.0), setup=setup):
        assert view.magnification == pytest.approx(1000 / 700)
    ap = standard_views((1.0, 2.0, 3.0), setup)[0]
    assert np.allclose(ap.isocentre_lps, (1.0, 2.0, 3.0))
    eye = needle_views(LEFT_L2, setup)[0]
    assert np.allclose(eye.isocentre_lps, (LEFT_L2.entry + LEFT_L2.target) / 2)
