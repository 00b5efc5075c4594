"""C-arm working angles for a planned needle, in both conventions, and the projections.

Two conventions, both named wherever an angle is shown
-------------------------------------------------------
Angles follow the angiography convention: a projection is named after the side of the
patient next to the *detector* (image intensifier / flat panel); primary positive = LAO,
negative = RAO; secondary positive = CRAN, negative = CAUD. What they are measured against
differs, and for a prone patient (the usual position for a vertebroplasty) the two readings
are mirror images:

``"patient"`` — DICOM's Positioner Primary / Secondary Angles (PS3.3 C.8.7.5), referenced to
    the patient. With ``d`` the unit vector from the isocentre towards the detector (the
    beam, source → detector) in the patient's LPS frame: primary 0° is the detector in front
    of the patient's chest, +90° at the patient's left, −90° at the right, ±180° behind the
    back; secondary +90° is towards the head::

        d = (sin a · cos b,  −cos a · cos b,  sin b)
        a = atan2(d_x, −d_y),   b = atan2(d_z, hypot(d_x, d_y))

    This is what a C-arm displays when it has been told how the patient lies.

``"table"`` — what a C-arm displays when the patient is registered on it as head first and
    supine whatever the real position (many suites do so): the same formula applied to the
    beam in the *table frame*, the LPS frame of a supine, head-first patient. A prone
    patient is turned over about the long axis, head still at the head end, so
    ``beam_table = diag(−1, −1, +1) · beam_lps``. For a supine patient both conventions give
    the same numbers.

Consequences, all tested:

* supine, 0° / 0°: beam posterior → anterior (LPS −y), a PA projection (named from where
  the beam enters to where it leaves); table LAO 90: detector at the patient's left.
* prone, table 0° / 0°: beam anterior → posterior (LPS +y), an AP projection with the
  detector over the patient's back (DICOM primary 180°); table LAO 90: beam towards the
  patient's *right* (−x), because the detector swings to the table side where the prone
  patient's right lies (DICOM primary −90°, RAO 90); CRAN still tilts the detector towards
  the patient's head in both conventions.
* so for a prone patient, turning the detector from the back towards the patient's left
  reads RAO on the table-referenced display and LAO (primary > 90°) in DICOM's terms. A
  left needle 15° medial, prone: bull's-eye table RAO 15°, DICOM primary +165°. The words of
  `detector_words` ("detector over the patient's back, tilted 15° towards the patient's
  left") need no convention at all, and go with the numbers everywhere.

Reachability: a C-arm keeps its detector above the table, i.e. ``|table primary| <= 90``
(table beam y <= 0), and a craniocaudal tilt beyond ``|secondary| <= 45`` is usually
blocked by the table or the gantry; `is_reachable` tests both on the table angles.
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
Convention = Literal["patient", "table"]
"""Which frame C-arm angles are read in; see the module docstring."""

CONVENTIONS: tuple[Convention, ...] = ("table", "patient")
CONVENTION_NAMES: dict[str, str] = {
    "patient": "DICOM, patient-referenced",
    "table": "C-arm display, patient registered head-first supine",
}
"""How each convention is labelled next to its numbers (screen, report, SR)."""
CONVENTION_TAGS: dict[str, str] = {"patient": "DICOM patient", "table": "C-arm HFS"}
"""Short labels, where a line has no room for `CONVENTION_NAMES` (a corner of an image)."""
REGISTRATION_QUESTION = "How is the patient registered on the C-arm?"
REGISTRATION_CHOICES: dict[str, str] = {
    "table": "Always head-first supine: the C-arm's angles refer to the table",
    "patient": "As the patient lies (prone or supine): the C-arm's angles refer to the "
               "patient, as DICOM defines them",
}
"""The answers to `REGISTRATION_QUESTION`, keyed by the convention that then leads."""
DEFAULT_CONVENTION: Convention = "table"

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

    The numbers alone do not say which convention they are in (see the module docstring):
    whoever holds them says, as `CArmSetting` does.
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


def check_convention(convention: str) -> Convention:
    """``convention`` if it is one of `CONVENTIONS`, else a `CArmError` naming it."""
    if convention not in CONVENTIONS:
        raise CArmError(f"C-arm convention '{convention}' must be 'table' or 'patient'")
    return convention  # type: ignore[return-value]


def other_convention(convention: Convention) -> Convention:
    """The convention that is not ``convention``."""
    return "patient" if check_convention(convention) == "table" else "table"


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


def patient_angles(direction_lps: ArrayLike) -> CArmAngles:
    """DICOM's patient-referenced Positioner Primary / Secondary Angles (PS3.3 C.8.7.5) of a
    beam (source → detector) along ``direction_lps``, whatever the patient's position."""
    return angles_for_beam(direction_lps, "supine")  # supine: table frame == patient frame


def detector_words(direction_lps: ArrayLike) -> str:
    """Where the detector is, in words that need no convention.

    E.g. "detector over the patient's back, tilted 15° towards the patient's left and 10°
    towards the head". ``direction_lps`` is the beam, source → detector, so it points from
    the patient to the detector. The base side is the nearer of front/back or left/right;
    the tilts are the in-plane angle away from it and the angle out of the axial plane.
    """
    d = _unit(direction_lps, "beam direction")
    x, y, z = (float(v) for v in d)
    horizontal = math.hypot(x, y)
    cc = math.degrees(math.atan2(z, horizontal))
    if horizontal < 1e-9:
        return f"detector at the patient's {'head' if z > 0 else 'feet'}, along the spine"
    side = "left" if x > 0 else "right"
    if abs(y) >= abs(x):
        base = "over the patient's back" if y > 0 else "in front of the patient's chest"
        turn, towards = math.degrees(math.atan2(abs(x), abs(y))), f"the patient's {side}"
    else:
        base = f"at the patient's {side}"
        turn, towards = (math.degrees(math.atan2(abs(y), abs(x))),
                         "the back" if y > 0 else "the front")
    tilts = []
    if round(turn):
        tilts.append(f"{round(turn)}° towards {towards}")
    if round(abs(cc)):
        tilts.append(f"{round(abs(cc))}° towards the {'head' if cc > 0 else 'feet'}")
    return f"detector {base}" + (f", tilted {' and '.join(tilts)}" if tilts else "")


@dataclass(frozen=True)
class CArmSetting:
    """One C-arm view of a patient: its beam, and the angles in both conventions and words.

    Why a class: the same view is read three ways (table-referenced display, DICOM's
    patient-referenced angles, plain words), and every place that shows an angle must show
    which; building all three from one beam keeps them from disagreeing.
    """

    beam: tuple[float, float, float]
    """Unit beam direction, source → detector, in patient LPS."""
    position: PatientPosition

    @classmethod
    def from_beam(cls, beam_lps: ArrayLike, position: PatientPosition) -> CArmSetting:
        _table_from_patient(position)
        b = _unit(beam_lps, "beam direction")
        return cls((float(b[0]), float(b[1]), float(b[2])), position)

    @classmethod
    def from_angles(cls, angles: CArmAngles, position: PatientPosition,
                    convention: Convention = "table") -> CArmSetting:
        frame = position if check_convention(convention) == "table" else "supine"
        return cls.from_beam(beam_direction_lps(angles, frame), position)

    @property
    def beam_lps(self) -> FloatArray:
        return np.asarray(self.beam, dtype=np.float64)

    @property
    def table(self) -> CArmAngles:
        """As a C-arm displays them with the patient registered head-first supine."""
        return angles_for_beam(self.beam_lps, self.position)

    @property
    def patient(self) -> CArmAngles:
        """DICOM Positioner Primary / Secondary Angles, referenced to the patient."""
        return patient_angles(self.beam_lps)

    def angles(self, convention: Convention) -> CArmAngles:
        return self.table if check_convention(convention) == "table" else self.patient

    @property
    def words(self) -> str:
        return detector_words(self.beam_lps)

    @property
    def conventions_agree(self) -> bool:
        """True for a supine patient: both conventions give the same numbers."""
        return self.position == "supine"

    def angle_lines(self, lead: Convention = DEFAULT_CONVENTION) -> list[str]:
        """The angles, lead convention first, each labelled: one line, or two when they differ.

        E.g. ``["RAO 15° CRAN 10° (C-arm display, patient registered head-first supine)",
        "LAO 165° CRAN 10° (DICOM, patient-referenced)"]``.
        """
        return self._labelled(lead, CONVENTION_NAMES, "both conventions: patient supine")

    def _labelled(self, lead: Convention, names: dict[str, str], agreed: str) -> list[str]:
        """Each convention's angles with its name from ``names``, ``lead`` first; one line
        labelled ``agreed`` when both give the same numbers."""
        if self.conventions_agree:
            check_convention(lead)
            return [f"{self.table.label()} ({agreed})"]
        order: tuple[Convention, Convention] = (lead, other_convention(lead))
        return [f"{self.angles(c).label()} ({names[c]})" for c in order]

    def tag(self, lead: Convention = DEFAULT_CONVENTION) -> str:
        """The lead convention's angles with a short label: "RAO 15° CRAN 0° (C-arm HFS)"."""
        return f"{self.angles(lead).label()} ({CONVENTION_TAGS[check_convention(lead)]})"

    def tags(self, lead: Convention = DEFAULT_CONVENTION) -> list[str]:
        """`angle_lines` with the short labels of `CONVENTION_TAGS`, for narrow captions."""
        return self._labelled(lead, CONVENTION_TAGS, "both: supine")

    def lines(self, lead: Convention = DEFAULT_CONVENTION) -> list[str]:
        """`angle_lines` and then the detector's position in words."""
        return [*self.angle_lines(lead), self.words]


def working_views(
    trajectory: Trajectory, position: PatientPosition = "prone"
) -> dict[str, CArmSetting]:
    """The working views of one needle, ``"bulls_eye"`` and ``"progression"``, as settings
    readable in both conventions (see `CArmSetting`)."""
    return {
        "bulls_eye": CArmSetting.from_beam(bulls_eye_beam_lps(trajectory, position), position),
        "progression": CArmSetting.from_beam(progression_beam_lps(trajectory, position),
                                             position),
    }


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
    return angles_for_beam(bulls_eye_beam_lps(trajectory, position), position)


def bulls_eye_beam_lps(trajectory: Trajectory, position: PatientPosition = "prone") -> FloatArray:
    """Beam for `bulls_eye`: along the needle, the detector above the table."""
    d = trajectory.direction
    return _detector_above_table(-d, position, -d)


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
    """The table-referenced angles of `working_views`: ``"bulls_eye"``, ``"progression"``."""
    return {k: v.table for k, v in working_views(trajectory, position).items()}


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
