"""The simulated fluoroscopy views of a plan: AP, lateral and each needle's working views.

Why a module of its own: the GUI's fluoroscopy panel and the PDF report must show the same
projections with the same C-arm angles and the same needle overlay, so both build them here.
Every view is a C-arm setting (`CArmSetting`: the angles in both conventions of
`planning.carm`, and in words) turned into a cone-beam `DrrGeometry`; needles are projected
with that same geometry, so what is drawn over the DRR is where the needle's shadow falls.

Image orientation: the image is seen from the detector looking back at the source, as the
C-arm monitor shows it (see `planning.drr`), with the patient's head up. `edge_letters`
names the patient direction at each image edge (e.g. ``{"left": "L", "right": "R", …}``) so a
viewer can mark the sides: in the prone AP view (C-arm at 0° / 0°, the tube under the table,
the beam entering the patient's front and leaving by the back) the patient's left is on the
screen's left.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from planning.carm import (
    DEFAULT_CONVENTION,
    CArmAngles,
    CArmSetting,
    Convention,
    PatientPosition,
    beam_direction_lps,
    bulls_eye,
    bulls_eye_beam_lps,
    check_convention,
    progression_beam_lps,
    progression_view,
)
from planning.drr import DrrGeometry, project_points
from planning.plan import Trajectory
from planning.reslice import direction_letters

FloatArray = NDArray[np.float64]
ViewKind = Literal["ap", "lateral", "bulls_eye", "progression"]

DEFAULT_SOURCE_TO_DETECTOR_MM = 1200.0
"""Source–image distance of a typical mobile / fixed C-arm (about 100–120 cm)."""
DEFAULT_SOURCE_TO_PATIENT_MM = 800.0
"""Source to the isocentre (the level being treated)."""
DEFAULT_DETECTOR_MM = 300.0
"""Side of the square field on the detector (a 30 cm flat panel)."""
WORKING_DETECTOR_MM = 200.0
"""Field of a needle's working view: collimated to the level, as the operator would."""


@dataclass(frozen=True)
class FluoroSetup:
    """How the C-arm is set up: distances, field, image size and the patient's position."""

    source_to_detector_mm: float = DEFAULT_SOURCE_TO_DETECTOR_MM
    source_to_patient_mm: float = DEFAULT_SOURCE_TO_PATIENT_MM
    detector_mm: float = DEFAULT_DETECTOR_MM
    size_px: int = 512
    position: PatientPosition = "prone"
    convention: Convention = DEFAULT_CONVENTION
    """How the patient is registered on the C-arm, i.e. which angle convention leads."""

    def __post_init__(self) -> None:
        if not 0 < self.source_to_patient_mm < self.source_to_detector_mm:
            raise ValueError(
                "the source-to-patient distance must be positive and shorter than the "
                f"source-to-detector distance (got {self.source_to_patient_mm} mm and "
                f"{self.source_to_detector_mm} mm)"
            )
        if self.size_px < 16 or not self.detector_mm > 0:
            raise ValueError(f"image size {self.size_px} px / field {self.detector_mm} mm "
                             "is too small")
        if self.position not in ("prone", "supine"):
            raise ValueError(f"patient position must be prone or supine, not {self.position!r}")
        check_convention(self.convention)


@dataclass(frozen=True, eq=False)
class FluoroView:
    """One projection: what it is, the C-arm angles that give it, and its geometry."""

    kind: ViewKind
    title: str
    """Short caption, e.g. "AP" or "Left L2 — bull's-eye"."""
    angles: CArmAngles
    """The table-referenced angles (`CArmSetting.table`); `setting` has both conventions."""
    geometry: DrrGeometry
    trajectory: Trajectory | None = None
    """The needle a working view is made for (None for AP and lateral)."""
    source_to_patient_mm: float = DEFAULT_SOURCE_TO_PATIENT_MM
    """Source to the isocentre, the point the central ray is aimed at."""
    position: PatientPosition = "prone"
    convention: Convention = DEFAULT_CONVENTION
    """The convention whose angles lead in the captions (`FluoroSetup.convention`)."""

    @property
    def setting(self) -> CArmSetting:
        """The view's C-arm setting, readable in both conventions and in words."""
        return CArmSetting.from_beam(self.geometry.normal_lps, self.position)

    @property
    def isocentre_lps(self) -> FloatArray:
        g = self.geometry
        return np.asarray(g.source_lps + self.source_to_patient_mm * g.normal_lps)

    @property
    def magnification(self) -> float:
        """Detector size / object size at the isocentre (the scale bar's reference)."""
        return self.geometry.source_to_detector_mm / self.source_to_patient_mm

    @property
    def caption(self) -> str:
        """Title and the lead convention's angles, named: one line for an image's corner.

        E.g. "Left L2 — bull's-eye — RAO 15° CRAN 0° (C-arm display, patient registered
        head-first supine)".
        """
        return f"{self.title} — {self.setting.angle_lines(self.convention)[0]}"

    @property
    def caption_lines(self) -> list[str]:
        """Title and the angles in both conventions (lead first, short labels:
        `CONVENTION_TAGS`): a caption under a picture a third of a page wide. The detector's
        position in words goes beside it, in a table or a line of its own."""
        return [f"{self.title}, patient {self.position}", *self.setting.tags(self.convention)]


def _geometry(target_lps: FloatArray, beam_lps: FloatArray, setup: FluoroSetup,
              detector_mm: float) -> DrrGeometry:
    up = np.array([0.0, 0.0, 1.0])
    if abs(float(beam_lps @ up)) > 0.95:  # looking along the spine: put anterior up
        up = np.array([0.0, -1.0, 0.0])
    return DrrGeometry.looking_at(
        target_lps, beam_lps,
        source_to_detector_mm=setup.source_to_detector_mm,
        source_to_patient_mm=setup.source_to_patient_mm,
        size_px=setup.size_px, detector_size_mm=detector_mm, up_lps=up)


def standard_views(target_lps: Iterable[float], setup: FluoroSetup = FluoroSetup()
                   ) -> list[FluoroView]:
    """The frontal (C-arm at table 0° / 0°) and lateral (table 90°) views at ``target_lps``.

    The tube is under the table: for a prone patient the frontal beam enters the front and
    leaves by the back, an AP projection; for a supine patient it is a PA projection. The
    lateral puts the detector on the patient's side the C-arm swings to.
    """
    target = np.asarray(tuple(target_lps), dtype=np.float64)
    frontal = "AP" if setup.position == "prone" else "PA"
    views = []
    for kind, title, angles in (("ap", frontal, CArmAngles(0.0, 0.0)),
                                ("lateral", "Lateral", CArmAngles(90.0, 0.0))):
        beam = beam_direction_lps(angles, setup.position)
        views.append(FluoroView(kind, title, angles,  # type: ignore[arg-type]
                                _geometry(target, beam, setup, setup.detector_mm),
                                source_to_patient_mm=setup.source_to_patient_mm,
                                position=setup.position, convention=setup.convention))
    return views


def needle_views(trajectory: Trajectory, setup: FluoroSetup = FluoroSetup()) -> list[FluoroView]:
    """The bull's-eye and progression views of one needle, centred on its middle."""
    middle = (trajectory.entry + trajectory.target) / 2.0
    eye = bulls_eye(trajectory, setup.position)
    eye_beam = bulls_eye_beam_lps(trajectory, setup.position)
    prog = progression_view(trajectory, setup.position)
    prog_beam = progression_beam_lps(trajectory, setup.position)
    return [
        FluoroView("bulls_eye", f"{trajectory.label} — bull's-eye", eye,
                   _geometry(middle, eye_beam, setup, WORKING_DETECTOR_MM), trajectory,
                   setup.source_to_patient_mm, setup.position, setup.convention),
        FluoroView("progression", f"{trajectory.label} — progression", prog,
                   _geometry(middle, prog_beam, setup, WORKING_DETECTOR_MM), trajectory,
                   setup.source_to_patient_mm, setup.position, setup.convention),
    ]


def plan_views(trajectories: Sequence[Trajectory], centre_lps: Iterable[float] | None = None,
               setup: FluoroSetup = FluoroSetup()) -> list[FluoroView]:
    """AP and lateral centred on the needles (or ``centre_lps``), then each needle's views."""
    if centre_lps is None:
        if not trajectories:
            raise ValueError("give a centre when there are no needles")
        pts = np.array([p for t in trajectories for p in (t.entry_lps, t.target_lps)])
        centre = pts.mean(axis=0)
    else:
        centre = np.asarray(tuple(centre_lps), dtype=np.float64)
    views = standard_views(centre, setup)
    for t in trajectories:
        views.extend(needle_views(t, setup))
    return views


@dataclass(frozen=True)
class ProjectedNeedle:
    """A needle's shadow on one view: entry and tip in image pixels (x right, y down)."""

    trajectory: Trajectory
    entry_px: tuple[float, float]
    tip_px: tuple[float, float]
    radius_px: float
    """The needle's radius at the detector (magnified), in pixels."""

    @property
    def length_px(self) -> float:
        return float(np.hypot(self.tip_px[0] - self.entry_px[0],
                              self.tip_px[1] - self.entry_px[1]))


def project_needles(view: FluoroView, trajectories: Iterable[Trajectory]
                    ) -> list[ProjectedNeedle]:
    """Project each needle's entry and tip with the view's cone-beam geometry.

    Needles with a point behind the source (impossible for a real set-up) are left out.
    """
    g = view.geometry
    out = []
    for t in trajectories:
        xy = project_points(g, np.array([t.entry_lps, t.target_lps]))
        if not np.all(np.isfinite(xy)):
            continue
        middle = (t.entry + t.target) / 2.0
        depth = float((middle - g.source_lps) @ g.normal_lps)
        magnification = g.source_to_detector_mm / max(depth, 1e-6)
        out.append(ProjectedNeedle(t, (float(xy[0, 0]), float(xy[0, 1])),
                                   (float(xy[1, 0]), float(xy[1, 1])),
                                   t.radius_mm * magnification / g.pixel_mm))
    return out


def edge_letters(geometry: DrrGeometry) -> dict[str, str]:
    """Patient direction at each image edge ("L", "R", "A", "P", "S", "I", or two for an
    oblique view, as in the MPR views): keys "left", "right", "top", "bottom"."""
    u, v = geometry.detector_u_lps, geometry.detector_v_lps
    return {"right": direction_letters(u), "left": direction_letters(-u),
            "bottom": direction_letters(v), "top": direction_letters(-v)}
