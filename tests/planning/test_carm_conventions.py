"""Both C-arm conventions and the words, checked against the DICOM definition derived
independently (`carm_reference`): hand-worked needles, a sweep of straight, medial, lateral,
cranial, caudal and combined needles on both sides, prone and supine, planned on CTs of
several orientations, and the DRR of each view checked to be the view its numbers describe."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planning.carm import (
    CONVENTION_NAMES,
    CArmAngles,
    CArmError,
    CArmSetting,
    beam_direction_lps,
    detector_words,
    working_views,
)
from planning.drr import AttenuationVolume
from planning.fluoro_views import FluoroSetup, edge_letters, needle_views, standard_views
from planning.plan import Side, Trajectory
from planning.report.report_fluoro import fluoro_image
from planning.volume import Volume
from tests.planning.carm_reference import (
    angle_between_deg,
    detector_direction,
    detector_direction_table,
    expected_bulls_eye_detector,
    parse_label,
    words_for,
)
from tests.planning.grids import AFFINES
from tests.planning.test_carm import _needle, _needle_direction

TABLE, DICOM = CONVENTION_NAMES["table"], CONVENTION_NAMES["patient"]

# Worked by hand from PS3.3 C.8.7.5 (see carm_reference): side, medial° (+ towards the
# midline), caudal° (+ tip towards the feet), position → bull's-eye (table, DICOM, words).
HAND_WORKED = [
    ("left", 15, 0, "prone", "RAO 15° CRAN 0°", "LAO 165° CRAN 0°",
     "detector over the patient's back, tilted 15° towards the patient's left"),
    ("right", 15, 0, "prone", "LAO 15° CRAN 0°", "RAO 165° CRAN 0°",
     "detector over the patient's back, tilted 15° towards the patient's right"),
    ("left", 0, 0, "prone", "LAO 0° CRAN 0°", "LAO 180° CRAN 0°",
     "detector over the patient's back"),
    ("left", -10, 0, "prone", "LAO 10° CRAN 0°", "RAO 170° CRAN 0°",
     "detector over the patient's back, tilted 10° towards the patient's right"),
    ("left", 0, 10, "prone", "LAO 0° CRAN 10°", "LAO 180° CRAN 10°",
     "detector over the patient's back, tilted 10° towards the head"),
    ("right", 0, -12, "prone", "LAO 0° CAUD 12°", "LAO 180° CAUD 12°",
     "detector over the patient's back, tilted 12° towards the feet"),
    ("left", 15, 10, "prone", "RAO 15° CRAN 10°", "LAO 165° CRAN 10°",
     "detector over the patient's back, tilted 15° towards the patient's left and 10° "
     "towards the head"),
    ("right", 25, -8, "prone", "LAO 25° CAUD 8°", "RAO 155° CAUD 8°",
     "detector over the patient's back, tilted 25° towards the patient's right and 8° "
     "towards the feet"),
    # supine: the entry side is on the table, so the detector is on the tip side
    ("left", 15, 10, "supine", "RAO 15° CAUD 10°", "RAO 15° CAUD 10°",
     "detector in front of the patient's chest, tilted 15° towards the patient's right and "
     "10° towards the feet"),
    ("right", 20, 0, "supine", "LAO 20° CRAN 0°", "LAO 20° CRAN 0°",
     "detector in front of the patient's chest, tilted 20° towards the patient's left"),
]


@pytest.mark.parametrize(("side", "medial", "caudal", "position", "table", "dicom", "words"),
                         HAND_WORKED)
def test_hand_worked_bulls_eye_in_both_conventions(side, medial, caudal, position, table,
                                                   dicom, words) -> None:
    needle = _needle(Side(side), _needle_direction(Side(side), medial, caudal))
    view = working_views(needle, position)["bulls_eye"]
    assert view.table.label() == table
    assert view.patient.label() == dicom
    assert view.words == words
    lines = view.lines("table")
    if position == "prone":
        assert lines == [f"{table} ({TABLE})", f"{dicom} ({DICOM})", words]
        assert view.lines("patient")[:2] == [f"{dicom} ({DICOM})", f"{table} ({TABLE})"]
    else:
        assert lines == [f"{table} (both conventions: patient supine)", words]


def test_the_issue_example_left_needle_15_medial_prone() -> None:
    """"A left needle 15° medial, prone, reads RAO 15 here; its DICOM primary angle is +165
    (LAO side)."""
    needle = _needle(Side.LEFT, _needle_direction(Side.LEFT, 15.0, 0.0))
    view = working_views(needle, "prone")["bulls_eye"]
    assert view.patient.primary_deg == pytest.approx(165.0, abs=1e-9)
    assert view.table.primary_deg == pytest.approx(-15.0, abs=1e-9)


SWEEP = [(side, medial, caudal) for side in Side for medial in (-10.0, 0.0, 15.0, 30.0)
         for caudal in (-15.0, 0.0, 10.0)]


@pytest.mark.parametrize("orientation", list(AFFINES))
@pytest.mark.parametrize("position", ["prone", "supine"])
def test_every_number_matches_the_definition(orientation: str, position: str) -> None:
    """Needles given by voxel indices of a CT of each orientation: DICOM's angles and the
    table-referenced ones each put the detector where the definition says, and the words
    say where that is."""
    vol = Volume(np.zeros((40, 64, 64), np.int16), AFFINES[orientation])
    for side, medial, caudal in SWEEP:
        anatomical = _needle(side, _needle_direction(side, medial, caudal))
        # through the CT's indices and back, as a needle placed on its slices
        needle = Trajectory("L2", side, vol.to_lps(vol.to_index(anatomical.entry)),
                            vol.to_lps(vol.to_index(anatomical.target)))
        views = working_views(needle, position)
        eye, prog = views["bulls_eye"], views["progression"]
        want = expected_bulls_eye_detector(needle.entry, needle.target, position)
        for view in (eye, prog):
            p, t = view.patient, view.table
            got = detector_direction(p.primary_deg, p.secondary_deg)
            also = detector_direction_table(t.primary_deg, t.secondary_deg, position)
            assert angle_between_deg(got, also) < 1e-6  # two conventions, one detector
            # every label shown parses back to the same detector, to its rounding (1°)
            for label, frame in ((view.patient.label(), "patient"),
                                 (view.table.label(), "table")):
                a, b = parse_label(label)
                back = (detector_direction(a, b) if frame == "patient"
                        else detector_direction_table(a, b, position))
                assert angle_between_deg(back, got) < 1.0, (label, side, medial, caudal)
            assert view.words == words_for(got)
        assert angle_between_deg(detector_direction(eye.patient.primary_deg,
                                                    eye.patient.secondary_deg), want) < 1e-6
        # progression: perpendicular to the needle, detector above the table
        d = detector_direction(prog.patient.primary_deg, prog.patient.secondary_deg)
        assert abs(float(d @ needle.direction)) < 1e-9
        assert (d[1] >= -1e-9) if position == "prone" else (d[1] <= 1e-9)


def test_setting_round_trips_from_either_convention() -> None:
    for position in ("prone", "supine"):
        for a, b in ((15.0, 10.0), (-165.0, -20.0), (90.0, 0.0), (179.0, 44.0)):
            for convention in ("table", "patient"):
                s = CArmSetting.from_angles(CArmAngles(a, b), position, convention)
                got = s.angles(convention)
                assert (got.primary_deg, got.secondary_deg) == pytest.approx((a, b), abs=1e-9)
    with pytest.raises(CArmError, match="convention"):
        CArmSetting.from_angles(CArmAngles(0, 0), "prone", "sideways")  # type: ignore[arg-type]
    with pytest.raises(CArmError, match="position"):
        CArmSetting.from_beam((0, 1, 0), "standing")  # type: ignore[arg-type]


def test_words_for_lateral_and_axial_detectors() -> None:
    assert detector_words((1, 0, 0)) == "detector at the patient's left"
    assert detector_words((-1, 0.2, 0)) == ("detector at the patient's right, tilted 11° "
                                            "towards the back")
    assert detector_words((0, 0, 1)).startswith("detector at the patient's head")


def test_frontal_view_is_named_from_where_the_beam_enters() -> None:
    """C-arm at table 0°/0°, tube under the table: prone → beam enters the front (AP);
    supine → beam enters the back (PA)."""
    for position, title, beam_y in (("prone", "AP", 1.0), ("supine", "PA", -1.0)):
        frontal = standard_views((0, 0, 0), FluoroSetup(position=position))[0]
        assert frontal.title == title
        assert beam_direction_lps(frontal.angles, position)[1] == pytest.approx(beam_y)
        assert frontal.setting.patient.label() == ("LAO 180° CRAN 0°" if position == "prone"
                                                   else "LAO 0° CRAN 0°")


@pytest.fixture(scope="module")
def demo_attenuation():
    """A 1 mm CT of soft tissue with a bony block (a vertebral body stand-in), oblique grid."""
    hu = np.full((90, 110, 110), 40, np.int16)
    hu[30:60, 30:80, 35:75] = 700
    affine = AFFINES["oblique"].copy()
    affine[:3, :3] = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)  # 1 mm voxels
    volume = Volume(hu, affine)
    return volume, AttenuationVolume.from_volume(volume)


def _letter_of(direction: np.ndarray) -> str:
    axis = int(np.argmax(np.abs(direction)))
    return ("RL", "AP", "IS")[axis][int(direction[axis] > 0)]


@pytest.mark.parametrize("position", ["prone", "supine"])
@pytest.mark.parametrize("side", [Side.LEFT, Side.RIGHT])
def test_drr_of_each_view_is_the_view_its_numbers_describe(demo_attenuation, position, side
                                                           ) -> None:
    """On an oblique CT: the bull's-eye DRR shows the needle as a dot, the progression DRR at
    full length, and the edge letters put the patient where a viewer standing at the
    detector (found from the DICOM angles alone) sees it."""
    volume, att = demo_attenuation
    centre = volume.to_lps(np.array([55.0, 55.0, 45.0]))
    d = _needle_direction(side, 20.0, 8.0)
    entry = centre + np.array([side.lps_sign * 25.0, 45.0, 0.0])
    needle = Trajectory("L2", side, entry, entry + 45.0 * d)
    setup = FluoroSetup(position=position, size_px=160)
    eye, prog = needle_views(needle, setup)
    for view in (eye, prog):
        image = fluoro_image(att, view, [needle], {}, position=position)
        (shadow,) = image.needles
        p = view.setting.patient
        detector = detector_direction(p.primary_deg, p.secondary_deg)
        # standing at the detector, facing the source, head up: the viewer's right
        facing = -detector
        up = np.array([0.0, 0.0, 1.0]) - detector[2] * detector
        right = np.cross(facing, up / np.linalg.norm(up))
        assert image.letters["right"][0] == _letter_of(right)
        assert edge_letters(view.geometry)["left"][0] == _letter_of(-right)
        if view.kind == "bulls_eye":
            assert shadow.length_px <= shadow.radius_px
        else:
            full = needle.length_mm * view.magnification / view.geometry.pixel_mm
            assert shadow.length_px == pytest.approx(full, rel=0.1)
        assert image.caption.splitlines()[1:] == view.setting.tags("table")


def test_words_and_sides_on_a_prone_bulls_eye_of_a_left_needle(demo_attenuation) -> None:
    """The plain reading: a left needle, prone — detector behind, towards the left; on the
    monitor (seen from behind) the patient's right is on the right."""
    volume, _ = demo_attenuation
    centre = volume.to_lps(np.array([55.0, 55.0, 45.0]))
    entry = centre + np.array([25.0, 45.0, 0.0])
    needle = Trajectory("L2", Side.LEFT, entry,
                        entry + 45.0 * _needle_direction(Side.LEFT, 15.0, 0.0))
    eye = needle_views(needle, FluoroSetup(position="prone", size_px=96))[0]
    assert eye.setting.words == ("detector over the patient's back, tilted 15° towards the "
                                 "patient's left")
    letters = edge_letters(eye.geometry)
    assert letters["right"][0] == "R" and letters["left"][0] == "L"
    assert math.isclose(eye.setting.patient.primary_deg, 165.0, abs_tol=1e-6)
