"""What the plan report prints, checked before a page is drawn.

A `PlanReport` is the session's result as the report needs it: the plan and the check of
every needle, the CT (the header, the frame of reference, the DRRs), each level's pictures,
who made it, when and with which version, the warnings, the limits, the C-arm set-up and
the level assessment. Making one refuses what would print a misleading report — a needle
without its check, a result of a needle that is not in the plan, a plan made on another
CT's frame of reference without the user's override, a level without its pictures — with
a message that names the needle or the level. `planning.report.pdf.write_pdf_report` then
only draws it.

This module draws nothing (no Pillow, no fpdf: an import-linter contract keeps it so); the
pictures of a level, `LevelImages`, are PNG bytes made by `planning.report.report_images`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from planning.check_result import CheckResult, SafetyLimits
from planning.drr import AttenuationVolume
from planning.errors import VertebroPlanError
from planning.fluoro_views import FluoroSetup
from planning.interop.derived_dicom import refuse_plan_of_other_ct
from planning.plan import Plan, Side
from planning.reslice import SliceGeometry
from planning.volume import Volume

if TYPE_CHECKING:
    from planning.anatomy.model import Anatomy
    from planning.assessment.levels import LevelAssessment
    from planning.training import TrainingCase, TrainingScore


class ReportModelError(VertebroPlanError, ValueError):
    """The session's results cannot make a truthful report (a needle not checked, a plan of
    another CT, a level without its pictures); the message names the needle or level."""


@dataclass(frozen=True)
class LevelImages:
    """The report's pictures of one level: PNG bytes and what the PDF writes under them.

    ``*_geometry`` say where each pixel of the PNG lies in the patient (LPS mm) and
    ``*_letters`` the orientation letters drawn at the image edges (keys "left", "right",
    "top", "bottom"), so a caller or a test can find any point in the picture.
    """

    axial_png: bytes
    sagittal_png: bytes
    level: str = ""
    axial_caption: str = ""
    sagittal_caption: str = ""
    axial_geometry: SliceGeometry | None = None
    sagittal_geometry: SliceGeometry | None = None
    axial_letters: Mapping[str, str] = field(default_factory=dict)
    sagittal_letters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FluoroscopyPages:
    """Ask for a simulated fluoroscopy (DRR) page after each level's page.

    ``attenuation`` is the CT's `AttenuationVolume` when the caller already has one (the
    GUI keeps one for its own fluoroscopy view); without it the report builds it from the
    CT (~2 s for 3 levels of the demo CT on 2 cores, with the six DRRs a level).
    """

    attenuation: AttenuationVolume | None = None


def _now() -> datetime:
    return datetime.now().astimezone()


@dataclass(frozen=True, eq=False)
class PlanReport:
    """Everything the plan report prints, validated when made (`ReportModelError`).

    Parameters
    ----------
    plan, results
        The plan and the check of each of its needles, keyed by (level, Side): every needle
        has one, and every result is of a needle of the plan.
    volume
        The CT: patient and study for the header, the frame of reference UID (the plan's
        must be the same, or the plan must carry the user's `Plan.frame_override`), the
        DRRs.
    images
        Per level of the plan, the axial and sagittal pictures
        (`planning.report.report_images.level_images`).
    software_version, planner
        Printed in every page's header.
    snapshots
        Per level name, a PNG of the 3-D scene (e.g. ``widgets.snapshot3d``), optional.
    deidentify
        Leave out everything that names the patient or the study.
    warnings
        Sentences printed on the summary page (the anatomy's or the CT's warnings).
    created
        The creation time printed in the header (default: now); kept in local time.
    limits
        The limits the checks used, quoted in the explanations.
    carm
        The C-arm's distances and the patient's position (default `FluoroSetup`: 1200 /
        800 mm, prone), for the C-arm views and the fluoroscopy pages. Its image size is
        ignored: the report renders `report_fluoro.FLUORO_DRR_PX` square DRRs, sized for
        the page and for time.
    fluoroscopy
        The simulated fluoroscopy pages, or None for none.
    assessment
        `planning.assessment.levels.assess_levels` of the CT and plan: a "Levels" table on
        the summary (fractured levels first) and an assessment card per level, under its
        simulated fluoroscopy (or after its page without fluoroscopy); None leaves both out.

    Raises
    ------
    ReportModelError
        When a needle has no check result, a result is of no needle of the plan, the plan
        was made on another CT's frame of reference without an override, or a level of
        the plan has no pictures.
    """

    plan: Plan
    results: Mapping[tuple[str, Side], CheckResult]
    volume: Volume
    images: Mapping[str, LevelImages]
    _: KW_ONLY
    software_version: str
    planner: str = ""
    snapshots: Mapping[str, bytes] = field(default_factory=dict)
    deidentify: bool = False
    warnings: Sequence[str] = ()
    created: datetime = field(default_factory=_now)
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    carm: FluoroSetup = field(default_factory=FluoroSetup)
    fluoroscopy: FluoroscopyPages | None = field(default_factory=FluoroscopyPages)
    assessment: Mapping[str, LevelAssessment] | None = None

    @property
    def unchecked(self) -> list[str]:
        """The needles without a check (their labels): printed as "Not checked"."""
        return [t.label for t in self.plan.trajectories if t.key not in self.results]

    def __post_init__(self) -> None:
        refuse_unprintable(self.plan, self.results, self.volume)
        missing = [level for level in self.plan.levels if level not in self.images]
        if missing:
            raise ReportModelError(
                f"The report has no pictures of {_and(missing)}: make the level's slice "
                "images before writing the report.")
        # frozen values: the caller's dicts and lists may change after this, the report not
        for name in ("results", "images", "snapshots"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        if self.assessment is not None:
            object.__setattr__(self, "assessment", MappingProxyType(dict(self.assessment)))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "created", self.created.astimezone())


@dataclass(frozen=True)
class TraineeReport:
    """Everything the trainee report prints of one attempt at a case, validated when made
    (`ReportModelError`), as `PlanReport` is for a plan.

    ``results`` are the checks that colour and label the trainee's needles (default: what
    the score recorded of them); ``show_patient`` prints the CT's patient in the header,
    off by default because a trainee report is teaching material and should name nobody.
    """

    case: TrainingCase
    score: TrainingScore
    volume: Volume
    attempt: Plan
    reference: Plan
    _: KW_ONLY
    anatomy: Anatomy | None = None
    results: Mapping[tuple[str, Side], CheckResult] | None = None
    trainee_name: str = ""
    show_patient: bool = False
    software_version: str = ""
    created: datetime = field(default_factory=datetime.now)

    def __post_init__(self) -> None:
        # both plans' needles are drawn on this CT's images, the attempt's in its checks'
        # colours: the rules of the plan report, for each plan
        refuse_unprintable(self.attempt, self.results or {}, self.volume)
        refuse_unprintable(self.reference, {}, self.volume)
        if self.results is not None:
            object.__setattr__(self, "results", MappingProxyType(dict(self.results)))
        object.__setattr__(self, "trainee_name", self.trainee_name.strip())
        object.__setattr__(self, "created", self.created.astimezone())


def refuse_unprintable(
    plan: Plan, results: Mapping[tuple[str, Side], CheckResult], volume: Volume
) -> None:
    """Raise `ReportModelError` when ``plan`` and ``results`` would print a misleading
    report on ``volume``: a result of no needle of the plan, a plan made on another frame
    of reference without `Plan.frame_override`. A needle without a check (placed by hand
    on a CT whose spine was not found) is printed as "Not checked" (`PlanReport.unchecked`),
    as it always was: a hand plan may still be documented.

    `PlanReport` asks this itself; an export calls it first too, to refuse before the
    slow pictures are made and before any other file of the export is written.
    """
    _refuse_results_of_other_needles(plan, results)
    if volume.frame_of_reference_uid:  # (a NIfTI CT has none to compare with)
        refuse_plan_of_other_ct(
            plan, volume.frame_of_reference_uid, ReportModelError,
            "its needles would be printed on this CT's images, where they may not lie.")


def _refuse_results_of_other_needles(
    plan: Plan, results: Mapping[tuple[str, Side], CheckResult]
) -> None:
    strays = [f"{side.value.capitalize()} {level}" for level, side in results
              if plan.get(level, side) is None]
    if strays:
        raise ReportModelError(
            f"The check results of {_and(strays)} belong to no needle of the plan: check "
            "the plan again before writing its report.")


def _and(names: Sequence[str]) -> str:
    """"L1", "L1 and L2", "T12, L1 and L2"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
