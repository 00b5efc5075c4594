"""What the DICOM objects VertebroPlan derives from a CT (the plan's SR, the anatomy's SEG)
have in common: they join the CT's study, so both copy its patient and study modules from
header-only datasets built here; both refuse a plan made on another CT by the same rule;
both are written whole or not at all, and read back with errors that name the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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
