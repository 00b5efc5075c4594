"""C-arm working angles for a planned needle, and the projections that check them.

Convention
----------
Angles are the C-arm's own angles, as its display reads them, for a patient lying head first
on the table. They follow the angiography convention in which a projection is named after
the part of the body next to the *detector* (image intensifier / flat panel), and the DICOM
Positioner Primary / Secondary Angle (C.8.7.5): primary positive = LAO, negative = RAO;
secondary positive = CRAN, negative = CAUD.

The machine measures its angles in the *table frame*: the LPS frame of a supine, head-first
patient. The X-ray tube is under the table and the detector above it, so at LAO 0 / CRAN 0
the beam (source → detector) travels from the floor to the ceiling: table direction
``(0, -1, 0)``. LAO turns the detector about the table's long axis towards the table's
"patient left" (+x); CRAN tilts it towards the head end (+z). With ``a`` the primary and
``b`` the secondary angle, the beam in the table frame is::

    beam_table = (sin a · cos b,  −cos a · cos b,  sin b)
    a = atan2(beam_x, −beam_y),   b = atan2(beam_z, hypot(beam_x, beam_y))

A supine patient's LPS frame is the table frame. A prone patient (the usual position for a
vertebroplasty) is turned over about the long axis, head still at the head end, so the
patient's x and y are the table's reversed: ``beam_lps = diag(−1, −1, +1) · beam_table``.
Consequences, all tested:

* supine, LAO 0 CRAN 0: beam posterior → anterior (LPS −y), an AP projection;
  LAO 90: beam towards the patient's left (+x), detector on the patient's left.
* prone, LAO 0 CRAN 0: beam anterior → posterior (LPS +y), a PA projection with the detector
  over the patient's back; LAO 90: beam towards the patient's *right* (−x), because the
  detector swings to the table side where the prone patient's right lies; CRAN still tilts
  the detector towards the patient's head.
* so for a prone patient, turning the detector towards the patient's left reads RAO.

A C-arm that has been told the patient is prone and reports patient-relative angles would
read these views differently; this module always returns what a machine referenced to a
supine, head-first patient displays.

Reachability: a C-arm keeps its detector above the table, i.e. ``|primary| <= 90`` (table
beam y <= 0), and a craniocaudal tilt beyond ``|secondary| <= 45`` is usually blocked by the
table or the gantry; `is_reachable` tests both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planning.errors import VertebroPlanError
from planning.plan import Trajectory

FloatArray = NDArray[np.float64]
PatientPosition = Literal["prone", "supine"]

MAX_PRIMARY_DEG = 90.0
MAX_SECONDARY_DEG = 45.0

_TABLE_FROM_PATIENT: dict[str, FloatArray] = {
    "supine": np.diag([1.0, 1.0, 1.0]),
    "prone": np.diag([-1.0, -1.0, 1.0]),
}
_EPS = 1e-12


class CArmError(VertebroPlanError, ValueError):
    """A C-arm angle, beam or projection geometry is invalid."""


@dataclass(frozen=True)
class CArmAngles:
    """C-arm angles in degrees: primary (+LAO / −RAO), secondary (+CRAN / −CAUD).

    See the module docstring for the convention (table-referenced, detector-named).
    """

    primary_deg: float
    secondary_deg: float

    def __post_init__(self) -> None:
        p, s = float(self.primary_deg), float(self.secondary_deg)
        if not (math.isfinite(p) and -180.0 <= p <= 180.0):
            raise CArmError(f"primary angle {self.primary_deg} must be between -180° and 180°")
        if not (math.isfinite(s) and -90.0 <= s <= 90.0):
            raise CArmError(f"secondary angle {self.secondary_deg} must be between -90° and 90°")
        object.__setattr__(self, "primary_deg", p)
        object.__setattr__(self, "secondary_deg", s)

    def label(self) -> str:
        """The angles as a radiographer says them, rounded to a degree: "LAO 12° CRAN 8°"."""
        p, s = round(self.primary_deg), round(self.secondary_deg)
        primary = "LAO" if p >= 0 else "RAO"
        secondary = "CRAN" if s >= 0 else "CAUD"
        return f"{primary} {abs(p)}° {secondary} {abs(s)}°"


def _table_from_patient(position: str) -> FloatArray:
    try:
        return _TABLE_FROM_PATIENT[position]
    except KeyError:
        raise CArmError(f"patient position '{position}' must be 'prone' or 'supine'") from None


def _unit(vector: ArrayLike, what: str) -> FloatArray:
    v = np.asarray(vector, dtype=np.float64)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise CArmError(f"{what} must be three finite numbers (LPS)")
    n = float(np.linalg.norm(v))
    if n < _EPS:
        raise CArmError(f"{what} has zero length")
    return np.asarray(v / n)


def beam_direction_lps(angles: CArmAngles, position: PatientPosition = "prone") -> FloatArray:
    """Unit beam direction, source → detector, in patient LPS, for C-arm ``angles``.

    Parameters
    ----------
    angles
        Primary (+LAO) and secondary (+CRAN) angles in degrees.
    position
        How the patient lies on the table, head first: "prone" or "supine".
    """
    a = math.radians(angles.primary_deg)
    b = math.radians(angles.secondary_deg)
    beam_table = np.array([math.sin(a) * math.cos(b), -math.cos(a) * math.cos(b), math.sin(b)])
    # diag(±1) is its own inverse: patient-from-table equals table-from-patient.
    return np.asarray(_table_from_patient(position) @ beam_table)


def angles_for_beam(direction_lps: ArrayLike, position: PatientPosition = "prone") -> CArmAngles:
    """The C-arm angles whose beam (source → detector) runs along ``direction_lps``.

    The inverse of `beam_direction_lps`. A beam along the head–foot axis (±90° secondary)
    has no defined primary angle; 0 is returned for it.
    """
    beam = _table_from_patient(position) @ _unit(direction_lps, "beam direction")
    horizontal = math.hypot(float(beam[0]), float(beam[1]))
    secondary = math.degrees(math.atan2(float(beam[2]), horizontal))
    primary = (
        0.0 if horizontal < 1e-12 else math.degrees(math.atan2(float(beam[0]), -float(beam[1])))
    )
    return CArmAngles(primary, secondary)


def is_reachable(
    angles: CArmAngles,
    max_primary_deg: float = MAX_PRIMARY_DEG,
    max_secondary_deg: float = MAX_SECONDARY_DEG,
) -> bool:
    """Whether a C-arm with the detector above the table can take these angles."""
    return (
        abs(angles.primary_deg) <= max_primary_deg + 1e-9
        and abs(angles.secondary_deg) <= max_secondary_deg + 1e-9
    )


def _detector_above_table(
    beam_lps: FloatArray, position: PatientPosition, tie_break_lps: FloatArray
) -> FloatArray:
    """``beam_lps`` or its opposite, whichever keeps the detector above the table.

    When the beam is horizontal both are equally high; the one with a positive component
    along ``tie_break_lps`` is chosen.
    """
    up_component = -float((_table_from_patient(position) @ beam_lps)[1])
    if abs(up_component) > 1e-9:
        return beam_lps if up_component > 0 else -beam_lps
    return beam_lps if float(beam_lps @ tie_break_lps) >= 0 else -beam_lps


def bulls_eye(trajectory: Trajectory, position: PatientPosition = "prone") -> CArmAngles:
    """The "down the barrel" view: the beam runs along the needle, which projects to a dot.

    Of the two beams along the needle (tip → entry or entry → tip) the one that keeps the
    detector above the table (``|primary| <= 90``) is returned. For a posterior approach
    in a prone patient that is tip → entry: the tube under the table, the detector over
    the patient's back beyond the hub. The craniocaudal tilt is the same for both, so a
    needle steeper than 45° to the axial plane gives an angle `is_reachable` rejects; it is
    returned anyway so the caller can say so.
    """
    d = trajectory.direction
    beam = _detector_above_table(-d, position, -d)
    return angles_for_beam(beam, position)


def progression_beam_lps(trajectory: Trajectory, position: PatientPosition = "prone") -> FloatArray:
    """Beam for `progression_view`: perpendicular to the needle, nearest the lateral axis."""
    d = trajectory.direction
    lateral = np.array([1.0, 0.0, 0.0])
    v = lateral - float(lateral @ d) * d
    if float(np.linalg.norm(v)) < 1e-6:  # the needle itself is lateral: look from the front
        ap = np.array([0.0, 1.0, 0.0])
        v = ap - float(ap @ d) * d
    v = v / float(np.linalg.norm(v))
    side = np.array([trajectory.side.lps_sign, 0.0, 0.0])
    return _detector_above_table(v, position, side)


def progression_view(trajectory: Trajectory, position: PatientPosition = "prone") -> CArmAngles:
    """The view that shows the needle at full length, to watch it advance in depth.

    The beam is perpendicular to the needle and, of all such beams, the closest to the
    patient's left–right axis (the lateral view surgeons use to see the tip approach the
    anterior wall of the body). For a needle along the left–right axis itself, the beam
    closest to the antero-posterior axis is used instead. The detector is kept above the
    table; for a horizontal beam it is put on the needle's side.
    """
    return angles_for_beam(progression_beam_lps(trajectory, position), position)


def working_angles(
    trajectory: Trajectory, position: PatientPosition = "prone"
) -> dict[str, CArmAngles]:
    """The working views of one needle: ``"bulls_eye"`` and ``"progression"``."""
    return {
        "bulls_eye": bulls_eye(trajectory, position),
        "progression": progression_view(trajectory, position),
    }


def detector_axes_lps(
    beam_direction_lps: ArrayLike, detector_up_lps: ArrayLike | None = None
) -> tuple[FloatArray, FloatArray]:
    """Unit (right, up) axes of the image on the detector, in LPS.

    ``up`` is ``detector_up_lps`` (default: the patient's head, +z) made perpendicular to
    the beam; if the beam runs along it, the patient's anterior (−y) is used. The image is
    seen as on the monitor, looking at the detector against the beam, so ``right = up ×
    beam``: in a supine AP view the patient's left is on the right of the screen.
    """
    beam = _unit(beam_direction_lps, "beam direction")
    candidates = [np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])]
    if detector_up_lps is not None:
        candidates = [_unit(detector_up_lps, "detector up")]
    for up in candidates:
        u = up - float(up @ beam) * beam
        if float(np.linalg.norm(u)) > 1e-6:
            u = u / float(np.linalg.norm(u))
            return np.cross(u, beam), u
    raise CArmError("detector up direction is parallel to the beam")


def _points(points_lps: ArrayLike) -> FloatArray:
    p = np.asarray(points_lps, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != 3:
        raise CArmError("points must be an (N, 3) array of LPS mm")
    return p


def project(
    points_lps: ArrayLike,
    beam_direction_lps: ArrayLike,
    detector_up_lps: ArrayLike | None = None,
) -> FloatArray:
    """Orthographic (parallel-beam) projection onto the detector: (N, 2) mm (right, up).

    The origin is the projection of the LPS origin; axes as `detector_axes_lps`.
    """
    p = _points(points_lps)
    right, up = detector_axes_lps(beam_direction_lps, detector_up_lps)
    return np.stack([p @ right, p @ up], axis=1)


def project_cone(
    points_lps: ArrayLike,
    source_lps: ArrayLike,
    detector_centre_lps: ArrayLike,
    detector_up_lps: ArrayLike | None = None,
) -> FloatArray:
    """Cone-beam (point source) projection onto a flat detector: (N, 2) mm (right, up).

    The detector is perpendicular to the central ray, source → ``detector_centre_lps``, and
    the result is measured on it from its centre (so it includes the magnification).
    Points must lie between the source's plane and beyond, on the detector side.
    """
    p = _points(points_lps)
    s = np.asarray(source_lps, dtype=np.float64)
    c = np.asarray(detector_centre_lps, dtype=np.float64)
    beam = _unit(c - s, "source → detector centre")
    sid = float((c - s) @ beam)
    depth = (p - s) @ beam
    if np.any(depth <= 1e-6):
        raise CArmError("a point lies behind the X-ray source")
    hits = s + (p - s) * (sid / depth)[:, None]
    right, up = detector_axes_lps(beam, detector_up_lps)
    rel = hits - c
    return np.stack([rel @ right, rel @ up], axis=1)
