"""C-arm working angles: the convention on known cases, round trips, and that the bull's-eye
and progression views project each needle as they should, whatever the CT's orientation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planning.carm import (
    CArmAngles,
    CArmError,
    PatientPosition,
    angles_for_beam,
    beam_direction_lps,
    bulls_eye,
    is_reachable,
    progression_view,
    project,
    project_cone,
    working_angles,
)
from planning.plan import Side, Trajectory
from planning.volume import Volume
from tests.planning.grids import AFFINES

POSITIONS: tuple[PatientPosition, ...] = ("prone", "supine")
SOURCE_TO_ISOCENTRE_MM = 1000.0
SOURCE_TO_DETECTOR_MM = 1200.0


def _needle_direction(side: Side, medial_deg: float, caudal_deg: float) -> np.ndarray:
    """Entry → tip of a posterior needle: anterior, ``medial_deg`` towards the midline in the
    axial plane, ``caudal_deg`` towards the feet out of it (LPS)."""
    m, c = math.radians(medial_deg), math.radians(caudal_deg)
    return np.array(
        [-side.lps_sign * math.sin(m) * math.cos(c), -math.cos(m) * math.cos(c), -math.sin(c)]
    )


def _needle(side: Side, direction: np.ndarray, length_mm: float = 45.0) -> Trajectory:
    entry = np.array([side.lps_sign * 35.0, 60.0, 420.0])
    return Trajectory("L2", side, entry, entry + length_mm * direction)


def _transpedicular_needles(seed: int, n: int = 40) -> list[Trajectory]:
    rng = np.random.default_rng(seed)
    needles = []
    for _ in range(n):
        side = Side.LEFT if rng.random() < 0.5 else Side.RIGHT
        d = _needle_direction(side, rng.uniform(0, 40), rng.uniform(-25, 25))
        needles.append(_needle(side, d, rng.uniform(25, 70)))
    return needles


EXTREME_DIRECTIONS = {
    "straight anterior": (0.0, -1.0, 0.0),
    "straight posterior": (0.0, 1.0, 0.0),
    "lateral to the left": (1.0, 0.0, 0.0),
    "lateral to the right": (-1.0, 0.0, 0.0),
    "head to foot": (0.0, 0.0, -1.0),
    "foot to head": (0.0, 0.0, 1.0),
    "45 medial 45 caudal": (-0.5, -0.5, -math.sqrt(0.5)),
    "almost lateral": (1.0, -1e-4, 1e-4),
}


def _all_needles() -> list[Trajectory]:
    needles = _transpedicular_needles(7)
    for d in EXTREME_DIRECTIONS.values():
        needles.append(_needle(Side.LEFT, np.array(d) / np.linalg.norm(d)))
    return needles


def _spread_mm(uv: np.ndarray) -> float:
    return float(np.linalg.norm(uv[0] - uv[1]))


# --- convention ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "angles", "beam"),
    [
        ("supine", (0, 0), (0, -1, 0)),  # tube under the table: posterior → anterior (AP)
        ("supine", (90, 0), (1, 0, 0)),  # LAO 90: detector on the patient's left
        ("supine", (-90, 0), (-1, 0, 0)),  # RAO 90: detector on the patient's right
        ("supine", (0, 30), (0, -math.cos(math.radians(30)), 0.5)),  # CRAN: detector to head
        ("prone", (0, 0), (0, 1, 0)),  # PA: anterior → posterior, detector over the back
        ("prone", (90, 0), (-1, 0, 0)),  # LAO 90 puts the detector on the prone patient's right
        ("prone", (0, -30), (0, math.cos(math.radians(30)), -0.5)),  # CAUD: detector to feet
    ],
)
def test_known_beams(
    position: PatientPosition, angles: tuple[float, float], beam: tuple[float, ...]
) -> None:
    a = CArmAngles(*angles)
    np.testing.assert_allclose(beam_direction_lps(a, position), beam, atol=1e-12)
    back = angles_for_beam(beam, position)
    assert back.primary_deg == pytest.approx(angles[0], abs=1e-9)
    assert back.secondary_deg == pytest.approx(angles[1], abs=1e-9)


@pytest.mark.parametrize("position", POSITIONS)
def test_round_trip(position: PatientPosition) -> None:
    rng = np.random.default_rng(1)
    for _ in range(500):
        a = CArmAngles(rng.uniform(-179.9, 179.9), rng.uniform(-89.9, 89.9))
        beam = beam_direction_lps(a, position)
        assert np.linalg.norm(beam) == pytest.approx(1.0, abs=1e-12)
        back = angles_for_beam(beam, position)
        assert back.primary_deg == pytest.approx(a.primary_deg, abs=1e-9)
        assert back.secondary_deg == pytest.approx(a.secondary_deg, abs=1e-9)


def test_labels_and_validation() -> None:
    assert CArmAngles(12.3, 7.6).label() == "LAO 12° CRAN 8°"
    assert CArmAngles(-20.0, -10.4).label() == "RAO 20° CAUD 10°"
    assert CArmAngles(-0.4, -0.2).label() == "LAO 0° CRAN 0°"
    with pytest.raises(CArmError, match="secondary angle"):
        CArmAngles(0.0, 95.0)
    with pytest.raises(CArmError, match="primary angle"):
        CArmAngles(float("nan"), 0.0)
    with pytest.raises(CArmError, match="'sitting'"):
        beam_direction_lps(CArmAngles(0, 0), "sitting")  # type: ignore[arg-type]
    with pytest.raises(CArmError, match="zero length"):
        angles_for_beam((0.0, 0.0, 0.0))


# --- the typical left L2 needle -----------------------------------------------------------


def test_typical_left_l2_prone_bulls_eye() -> None:
    """Medial 20°, caudal 10°, prone: the detector swings 20° towards the patient's left,
    which the table-referenced C-arm reads as RAO, and tilts 10° towards the head."""
    needle = _needle(Side.LEFT, _needle_direction(Side.LEFT, 20.0, 10.0))
    view = bulls_eye(needle, "prone")
    assert view.primary_deg == pytest.approx(-20.0, abs=1e-9)
    assert view.secondary_deg == pytest.approx(10.0, abs=1e-9)
    assert view.label() == "RAO 20° CRAN 10°"
    beam = beam_direction_lps(view, "prone")
    assert beam[0] > 0  # detector on the patient's left, the needle's side
    assert beam[1] > 0  # above the patient's back
    assert is_reachable(view)

    mirrored = _needle(Side.RIGHT, _needle_direction(Side.RIGHT, 20.0, 10.0))
    assert bulls_eye(mirrored, "prone").label() == "LAO 20° CRAN 10°"
    # Supine, the detector stays above the table, i.e. in front of the patient, so the beam
    # runs entry → tip: detector towards the patient's right (RAO) and the feet (CAUD).
    assert bulls_eye(needle, "supine").label() == "RAO 20° CAUD 10°"


def test_typical_left_l2_progression_is_near_lateral() -> None:
    needle = _needle(Side.LEFT, _needle_direction(Side.LEFT, 20.0, 10.0))
    views = working_angles(needle, "prone")
    assert set(views) == {"bulls_eye", "progression"}
    beam = beam_direction_lps(views["progression"], "prone")
    assert float(beam @ needle.direction) == pytest.approx(0.0, abs=1e-12)
    # Perpendicular to the needle, the beam can be no closer to lateral than this:
    best = math.sqrt(1.0 - needle.direction[0] ** 2)
    assert abs(beam[0]) == pytest.approx(best, abs=1e-12)
    assert is_reachable(views["progression"])


# --- projections, for many needles in many CT orientations --------------------------------


@pytest.mark.parametrize("position", POSITIONS)
def test_bulls_eye_projects_needle_to_a_point(position: PatientPosition) -> None:
    worst = 0.0
    for needle in _all_needles():
        beam = beam_direction_lps(bulls_eye(needle, position), position)
        uv = project(np.stack([needle.entry, needle.target]), beam)
        worst = max(worst, _spread_mm(uv))
    assert worst < 0.5
    assert worst < 1e-6  # in fact exact to rounding


@pytest.mark.parametrize("position", POSITIONS)
def test_bulls_eye_cone_beam(position: PatientPosition) -> None:
    worst = 0.0
    for needle in _all_needles():
        beam = beam_direction_lps(bulls_eye(needle, position), position)
        isocentre = (needle.entry + needle.target) / 2
        source = isocentre - SOURCE_TO_ISOCENTRE_MM * beam
        detector = source + SOURCE_TO_DETECTOR_MM * beam
        uv = project_cone(np.stack([needle.entry, needle.target]), source, detector)
        worst = max(worst, _spread_mm(uv))
    assert worst < 0.5


def test_cone_beam_off_the_needle_axis_does_not_give_a_dot() -> None:
    """Control: the same view with the source 50 mm off the needle's line spreads it out."""
    needle = _needle(Side.LEFT, _needle_direction(Side.LEFT, 20.0, 10.0))
    beam = beam_direction_lps(bulls_eye(needle), "prone")
    shift = 50.0 * np.cross(beam, [0.0, 0.0, 1.0]) / np.linalg.norm(np.cross(beam, [0, 0, 1]))
    isocentre = (needle.entry + needle.target) / 2 + shift
    source = isocentre - SOURCE_TO_ISOCENTRE_MM * beam
    uv = project_cone(
        np.stack([needle.entry, needle.target]), source, source + SOURCE_TO_DETECTOR_MM * beam
    )
    # magnification 1.2 × 45 mm × 50 mm / ~1000 mm ≈ 2.7 mm
    assert 2.0 < _spread_mm(uv) < 3.5


@pytest.mark.parametrize("position", POSITIONS)
def test_progression_shows_full_length(position: PatientPosition) -> None:
    worst = 1.0
    for needle in _all_needles():
        view = progression_view(needle, position)
        beam = beam_direction_lps(view, position)
        uv = project(np.stack([needle.entry, needle.target]), beam)
        worst = min(worst, _spread_mm(uv) / needle.length_mm)
        assert abs(view.primary_deg) <= 90.0 + 1e-9  # detector above the table
    assert worst >= 0.999


@pytest.mark.parametrize("name", AFFINES)
def test_needles_planned_in_any_ct_orientation(name: str) -> None:
    """Needles picked by voxel index in an identity, a flipped and an oblique CT: the views
    depend on the LPS needle only, and still give a dot and a full-length view."""
    vol = Volume(np.zeros((40, 64, 64), np.int16), AFFINES[name])
    rng = np.random.default_rng(3)
    for _ in range(30):
        entry_ijk = rng.uniform(0, 40, 3)
        tip_ijk = entry_ijk + rng.uniform(-20, 20, 3)
        needle = Trajectory("L1", "left", vol.to_lps(entry_ijk), vol.to_lps(tip_ijk))
        ends = np.stack([needle.entry, needle.target])
        for position in POSITIONS:
            be = beam_direction_lps(bulls_eye(needle, position), position)
            assert _spread_mm(project(ends, be)) < 0.5
            pv = beam_direction_lps(progression_view(needle, position), position)
            assert _spread_mm(project(ends, pv)) >= 0.999 * needle.length_mm

    # One anatomical needle expressed through each CT's indices gives the same angles.
    reference = _needle(Side.LEFT, _needle_direction(Side.LEFT, 20.0, 10.0))
    again = Trajectory(
        "L2",
        "left",
        vol.to_lps(vol.to_index(reference.entry)),
        vol.to_lps(vol.to_index(reference.target)),
    )
    assert bulls_eye(again).primary_deg == pytest.approx(-20.0, abs=1e-6)
    assert bulls_eye(again).secondary_deg == pytest.approx(10.0, abs=1e-6)


def test_project_axes() -> None:
    """Supine AP image: patient's left on the right of the screen, head up."""
    beam = beam_direction_lps(CArmAngles(0, 0), "supine")
    uv = project([[10.0, 5.0, 20.0]], beam)
    np.testing.assert_allclose(uv, [[10.0, 20.0]], atol=1e-12)
    with pytest.raises(CArmError, match="behind the X-ray source"):
        project_cone([[0.0, 0.0, 0.0]], [0.0, 0.0, 10.0], [0.0, 0.0, 100.0])
