"""What the DICOM objects VertebroPlan derives from a CT (the plan's SR, the anatomy's SEG)
have in common: they join the CT's study, so both copy its patient and study modules from
header-only datasets built here; both refuse a plan made on another CT by the same rule;
both are written whole or not at all, and read back with errors that name the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from planning.atomic_file import atomic_open
from planning.io.dicom_headers import PARSE_ERRORS, parse_problem
from planning.plan import Plan
from planning.volume import PatientInfo, Volume

# UTF-8: the disclaimer's dash and any patient name survive, whatever the CT's character set.
CHARACTER_SET = "ISO_IR 192"

Deidentifier = Callable[[Dataset], Dataset]
T = TypeVar("T")

MODEL_NAME = "VertebroPlan"


@dataclass(frozen=True)
class Authoring:
    """Who writes a derived object, where it stands in its new series, and what is done to
    it before it is saved: what the SR and the SEG writers both take (and the export hands
    the same to both), so the equipment modules of the two objects cannot drift apart.

    ``series_number`` None means the writer's own default (the SR 900, the SEG 901).
    ``deidentify_with`` is called with the finished dataset; what it returns is written.
    """

    software_version: str = "0.1.0"
    manufacturer: str = "VertebroPlan"
    series_number: int | None = None
    instance_number: int = 1
    deidentify_with: Deidentifier | None = None

    def new_instance(self, default_series_number: int) -> dict[str, Any]:
        """The keywords every highdicom SOP class takes for a new series and instance of
        this equipment (new UIDs for both)."""
        return {
            "series_instance_uid": generate_uid(),
            "series_number": (default_series_number if self.series_number is None
                              else self.series_number),
            "sop_instance_uid": generate_uid(),
            "instance_number": self.instance_number,
            "manufacturer": self.manufacturer,
            "manufacturer_model_name": MODEL_NAME,
            "software_versions": self.software_version,
        }

    def finish(self, dataset: Dataset) -> Dataset:
        """The dataset as it is to be written: de-identified when asked."""
        return dataset if self.deidentify_with is None else self.deidentify_with(dataset)


VERTEBROPLAN = Authoring()
"""This program, unnumbered, nothing de-identified: the writers' default."""


def ct_series_header(volume: Volume, study_uid: str) -> Dataset:
    """A header-only dataset of the CT's patient, study and series, from which highdicom
    takes what the derived object copies; ``study_uid`` is the CT's (or a new one when the
    CT has none). A CT without a series UID (NIfTI) gets a new one."""
    p: PatientInfo = volume.patient
    base = Dataset()
    base.SpecificCharacterSet = CHARACTER_SET
    base.PatientName = p.name
    base.PatientID = p.patient_id
    base.PatientBirthDate = p.birth_date
    base.PatientSex = p.sex if p.sex in ("M", "F", "O") else ""
    base.StudyInstanceUID = study_uid
    base.StudyDate = p.study_date
    base.StudyTime = p.study_time
    base.AccessionNumber = p.accession_number
    base.ReferringPhysicianName = p.referring_physician
    base.StudyID = p.study_id
    if p.study_description:
        base.StudyDescription = p.study_description
    base.SeriesInstanceUID = volume.series_uid or generate_uid()
    return base


def instance_header(series: Dataset, sop_class_uid: str, sop_instance_uid: str) -> Dataset:
    """One CT image's header: ``series`` (`ct_series_header`) and the image's own UIDs."""
    ds = Dataset()
    ds.update(series)
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    return ds


def refuse_plan_of_other_ct(plan: Plan, frame_uid: str, error: type[Exception],
                            consequence: str) -> None:
    """Raise ``error`` when ``plan`` was made on a CT of another Frame of Reference than
    ``frame_uid`` and the user did not register the two (`Plan.frame_override`);
    ``consequence`` says what writing it anyway would do wrong."""
    planned_on = plan.frame_of_reference_uid
    if planned_on and planned_on != frame_uid and plan.frame_override is None:
        raise error(
            f"The plan was made on another CT (Frame of Reference {planned_on}, this CT has "
            f"{frame_uid}): {consequence}"
        )


def save_dicom(dataset: Dataset, path: Path) -> None:
    """The DICOM file written whole or not at all (`atomic_open`)."""
    with atomic_open(path, "wb") as fh:
        dataset.save_as(fh, enforce_file_format=True)


def parse_content(path: Path, error: type[Exception], parse: Callable[[], T],
                  damaged: str) -> T:
    """What ``parse()`` makes of a dataset read from ``path``, every failure as ``error``
    naming the file.

    pydicom parses and decodes lazily: a damaged element or frame fails only when the
    content is read, and then as whatever pydicom raises (OSError "No tag to read …"
    included); that becomes "'path' ``damaged`` (why)". An ``error`` raised by ``parse``
    gets the file's name in front.
    """
    try:
        return parse()
    except error as exc:
        raise error(f"'{path}': {exc}") from exc
    except (*PARSE_ERRORS, OSError) as exc:
        raise error(f"'{path}' {damaged} ({parse_problem(exc, detail=True)}).") from exc
