"""C-arm angles derived from the DICOM definition with the tests' own formulas.

Why its own: a test that checked `planning.carm` against `planning.carm` would pass on any
convention. These read PS3.3 C.8.7.5 directly and build the detector's position with
rotations (scipy), not with the project's closed-form atan2 expressions:

* Positioner Primary Angle: in the patient's transverse plane, 0° with the detector
  perpendicular to the chest (in front of the patient, LPS −y), +90° at the patient's left
  (LAO), −90° at the right (RAO), ±180° behind the back.
* Positioner Secondary Angle: in the sagittal plane through the primary direction, +90°
  towards the head (CRAN).
* A C-arm registered "head first, supine" whatever the real position reads the same
  definition in the frame of a supine patient on its table; a prone patient lies in that
  frame turned 180° about the long axis.
"""

from __future__ import annotations

import math
import re

import numpy as np
from scipy.spatial.transform import Rotation

LONG_AXIS = np.array([0.0, 0.0, 1.0])  # the patient's head, LPS +z
IN_FRONT_OF_CHEST = np.array([0.0, -1.0, 0.0])  # primary 0°: LPS anterior
TURNED_OVER = Rotation.from_rotvec(math.pi * LONG_AXIS)  # prone in a supine patient's frame


def detector_direction(primary_deg: float, secondary_deg: float) -> np.ndarray:
    """Unit vector from the isocentre to the detector in the patient's LPS frame, from
    DICOM's patient-referenced angles."""
    in_plane = Rotation.from_rotvec(math.radians(primary_deg) * LONG_AXIS).apply(
        IN_FRONT_OF_CHEST)
    tilt_axis = np.cross(in_plane, LONG_AXIS)
    return np.asarray(Rotation.from_rotvec(math.radians(secondary_deg) * tilt_axis)
                      .apply(in_plane))


def detector_direction_table(primary_deg: float, secondary_deg: float,
                             position: str) -> np.ndarray:
    """The same from the angles of a C-arm on which the patient is registered head-first
    supine: the definition applied in the table's frame, then brought to the patient."""
    d = detector_direction(primary_deg, secondary_deg)
    return np.asarray(TURNED_OVER.apply(d)) if position == "prone" else d


def expected_bulls_eye_detector(entry: np.ndarray, tip: np.ndarray, position: str
                                ) -> np.ndarray:
    """Where the detector must be for the bull's-eye view: on the needle's axis, above the
    table. Prone: on the entry side (over the back); supine: the entry side is under the
    table, so on the tip side."""
    along = np.asarray(entry, float) - np.asarray(tip, float)
    along /= np.linalg.norm(along)
    above_table = along[1] > 0 if position == "prone" else along[1] < 0
    return along if above_table else -along


def angle_between_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


LABEL = re.compile(r"(LAO|RAO) (\d+)° (CRAN|CAUD) (\d+)°")


def parse_label(text: str) -> tuple[float, float]:
    """("LAO 165° CRAN 10°") → (165, 10); signed as DICOM signs them."""
    m = LABEL.fullmatch(text.strip())
    assert m is not None, text
    primary = float(m.group(2)) * (1 if m.group(1) == "LAO" else -1)
    secondary = float(m.group(4)) * (1 if m.group(3) == "CRAN" else -1)
    return primary, secondary


def words_for(detector: np.ndarray) -> str:
    """The detector's position in words, derived here from the vector itself: the nearer
    of front/back or left/right, then the in-plane and the out-of-plane tilt."""
    x, y, z = (float(v) for v in detector / np.linalg.norm(detector))
    side = "left" if x > 0 else "right"
    if abs(y) >= abs(x):
        base = "over the patient's back" if y > 0 else "in front of the patient's chest"
        turn, towards = math.degrees(math.atan(abs(x) / abs(y))), f"the patient's {side}"
    else:
        base = f"at the patient's {side}"
        turn, towards = (math.degrees(math.atan(abs(y) / abs(x))),
                         "the back" if y > 0 else "the front")
    head = math.degrees(math.asin(max(-1.0, min(1.0, z))))
    tilts = [f"{round(turn)}° towards {towards}"] if round(turn) else []
    if round(abs(head)):
        tilts.append(f"{round(abs(head))}° towards the {'head' if head > 0 else 'feet'}")
    return f"detector {base}" + (f", tilted {' and '.join(tilts)}" if tilts else "")
