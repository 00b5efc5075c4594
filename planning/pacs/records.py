"""What a search asks and what it finds: plain values shared by DIMSE and DICOMweb.

Why here: the command line prints these as JSON, the window lists them and the case list
keeps them; whichever protocol found a study, it looks the same afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from planning.pacs.node import PacsError, check_uid

_DATE = re.compile(r"^\d{8}$")
RETRIEVAL_CANCELLED = ("Retrieval cancelled; the images received so far are kept and the "
                       "next retrieval fetches only the rest.")


def _check_date_range(text: str) -> str:
    """``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``, ``YYYYMMDD-`` or ``-YYYYMMDD`` (range matching)."""
    value = text.strip()
    start, dash, end = value.partition("-")
    for part in (start, end):
        if part and not _DATE.match(part):
            raise PacsError(
                f"The study date '{text}' is not a date or range: write YYYYMMDD or "
                "YYYYMMDD-YYYYMMDD, e.g. 20240101-20241231"
            )
    if not start and not end:
        raise PacsError(f"The study date '{text}' is empty")
    if start and end and start > end:
        raise PacsError(f"The study date range '{text}' ends before it starts")
    return value if dash else start


@dataclass(frozen=True)
class StudyQuery:
    """The search form: every key optional; a name may hold the wildcards * and ?.

    An empty query matches every study of the modality, which a large PACS may refuse or
    truncate; the window asks for at least one key.
    """

    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    study_date: str = ""
    accession: str = ""
    modality: str = "CT"
    study_uid: str = ""

    def __post_init__(self) -> None:
        if self.study_date:
            object.__setattr__(self, "study_date", _check_date_range(self.study_date))
        if self.birth_date and not _DATE.match(self.birth_date.strip()):
            raise PacsError(f"The birth date '{self.birth_date}' is not a date: write YYYYMMDD")
        for name in ("patient_id", "patient_name", "accession", "modality", "study_uid"):
            value = getattr(self, name)
            if "\\" in value:
                raise PacsError(f"The {name.replace('_', ' ')} '{value}' contains a backslash")
            object.__setattr__(self, name, value.strip())

    @property
    def is_empty(self) -> bool:
        return not any((self.patient_id, self.patient_name, self.birth_date, self.study_date,
                        self.accession, self.study_uid))

    def matching_keys(self) -> dict[str, str]:
        """The form as study-level matching keys by DICOM keyword, for C-FIND and QIDO-RS
        alike; an empty value matches every study."""
        return {"PatientID": self.patient_id, "PatientName": self.patient_name,
                "PatientBirthDate": self.birth_date, "StudyDate": self.study_date,
                "AccessionNumber": self.accession, "ModalitiesInStudy": self.modality,
                "StudyInstanceUID": self.study_uid}


@dataclass(frozen=True)
class SeriesRecord:
    series_uid: str
    modality: str = ""
    images: int | None = None
    description: str = ""
    number: int | None = None


@dataclass(frozen=True)
class StudyRecord:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    study_date: str = ""
    accession: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    series: tuple[SeriesRecord, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The ``pacs find --json`` shape: study keys, then its series."""
        return {
            "study_uid": self.study_uid,
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "birth_date": self.birth_date,
            "study_date": self.study_date,
            "accession": self.accession,
            "description": self.description,
            "series": [
                {k: v for k, v in asdict(s).items() if k != "number"} | {"number": s.number}
                for s in self.series
            ],
        }


@dataclass(frozen=True)
class RetrieveReport:
    """What a retrieval of one series did.

    ``expected`` is how many images the PACS lists for the series; ``already_present`` were in
    the cache before and not fetched again; ``fetched`` came now; ``missing`` lists the SOP
    instance UIDs still absent afterwards (a partly failed retrieval).
    """

    study_uid: str
    series_uid: str
    folder: str
    expected: int
    already_present: int
    fetched: int
    missing: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        parts = [f"{self.fetched} image(s) retrieved"]
        if self.already_present:
            parts.append(f"{self.already_present} already in the cache")
        if self.missing:
            shown = ", ".join(self.missing[:3]) + (" …" if len(self.missing) > 3 else "")
            parts.append(f"{len(self.missing)} of {self.expected} could not be retrieved "
                         f"({shown})")
        return "; ".join(parts)


# ---- reading a PACS's answers (C-FIND identifiers and QIDO-RS JSON alike) -------------
def text_of(ds: Dataset, keyword: str) -> str:
    """An attribute as text, '' where absent or empty."""
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def number_of(ds: Dataset, keyword: str) -> int | None:
    """An IS/US attribute as an int; None where absent or not a number."""
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def in_instance_order(matches: Iterable[Dataset]) -> list[Dataset]:
    """Image-level matches with a SOP instance UID, by instance number (unnumbered last)."""
    found = [m for m in matches if text_of(m, "SOPInstanceUID")]
    return sorted(found, key=lambda m: (number_of(m, "InstanceNumber") is None,
                                        number_of(m, "InstanceNumber") or 0))


def study_from(match: Dataset, series_matches: Iterable[Dataset],
               modality: str) -> StudyRecord | None:
    """A study-level match and its series-level matches as a `StudyRecord`; None when it
    has no UID or, for a query of ``modality``, no series of it (a PACS that ignores
    Modalities in Study as a key)."""
    study_uid = text_of(match, "StudyInstanceUID")
    if not study_uid:
        return None
    series = tuple(sorted(
        (SeriesRecord(text_of(s, "SeriesInstanceUID"), text_of(s, "Modality"),
                      number_of(s, "NumberOfSeriesRelatedInstances"),
                      text_of(s, "SeriesDescription"), number_of(s, "SeriesNumber"))
         for s in series_matches if text_of(s, "SeriesInstanceUID")),
        key=lambda s: (s.number is None, s.number or 0)))
    if modality and not any(s.modality == modality for s in series):
        return None
    raw = match.get("ModalitiesInStudy")
    modalities = tuple(str(m) for m in (raw if isinstance(raw, MultiValue) else [raw]) if m)
    return StudyRecord(
        study_uid=study_uid, patient_id=text_of(match, "PatientID"),
        patient_name=text_of(match, "PatientName"),
        birth_date=text_of(match, "PatientBirthDate"), study_date=text_of(match, "StudyDate"),
        accession=text_of(match, "AccessionNumber"),
        description=text_of(match, "StudyDescription"), modalities=modalities, series=series)


def newest_first(studies: Iterable[StudyRecord | None]) -> list[StudyRecord]:
    return sorted((s for s in studies if s is not None), key=lambda s: s.study_date,
                  reverse=True)


def studies_found(matches: Iterable[Dataset], series_of: Callable[[str], Iterable[Dataset]],
                  modality: str) -> list[StudyRecord]:
    """The studies of a search, newest first: each study-level match with the series-level
    matches ``series_of(study_uid)`` finds for it (`study_from` drops a study without a UID
    or without a series of ``modality``)."""
    studies = []
    for match in matches:
        study_uid = text_of(match, "StudyInstanceUID")
        series = series_of(study_uid) if study_uid else []
        studies.append(study_from(match, series, modality))
    return newest_first(studies)


def instance_uids(matches: Iterable[Dataset]) -> list[str]:
    """The SOP instance UIDs of image-level matches, in instance order, each one checked."""
    return [check_uid(text_of(m, "SOPInstanceUID"), "SOP instance")
            for m in in_instance_order(matches)]
