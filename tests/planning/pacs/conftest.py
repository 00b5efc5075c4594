"""One Orthanc for the PACS tests of this folder, filled once with three patients.

- DOE^JOHN (P001, born 19600101): a 2024 CT study (accession ACC1) with a 14-image CT
  series and a 6-image series of modality OT;
- DOE^JANE (P002, born 19650505): a 2023 CT study (ACC2), 10 images;
- SMITH^ANNA (P003): a 2022 MR study (ACC3), which a CT search must not list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from orthanc_pacs import Orthanc, fill, generated_ct, needs_orthanc, running_orthanc
from pydicom.uid import generate_uid

from planning.volume import PatientInfo


@dataclass
class FilledPacs:
    pacs: Orthanc
    john_study: str
    john_ct: str
    john_other: str
    jane_study: str
    jane_ct: str
    anna_study: str
    john_files: list[Path]


def _patient(name: str, pid: str, born: str, sex: str, date: str, what: str,
             accession: str) -> PatientInfo:
    return PatientInfo(name=name, patient_id=pid, birth_date=born, sex=sex, study_date=date,
                       study_description=what, accession_number=accession)


@pytest.fixture(scope="session")
def filled_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilledPacs]:
    if needs_orthanc.args[0]:
        pytest.skip(needs_orthanc.kwargs["reason"])
    base = tmp_path_factory.mktemp("orthanc")
    uid = {key: generate_uid() for key in ("john", "john_ct", "john_other", "jane", "jane_ct",
                                           "anna", "anna_mr")}
    john = _patient("DOE^JOHN", "P001", "19600101", "M", "20240310", "CT spine", "ACC1")
    jane = _patient("DOE^JANE", "P002", "19650505", "F", "20230705", "CT abdomen", "ACC2")
    anna = _patient("SMITH^ANNA", "P003", "19700303", "F", "20221120", "MR spine", "ACC3")
    with running_orthanc(base / "pacs") as pacs:
        john_files = fill(pacs, base / "john_ct", replace(
            generated_ct(john, slices=14, seed=1), study_uid=uid["john"],
            series_uid=uid["john_ct"]), "CT spine 2 mm", 2)
        fill(pacs, base / "john_other", replace(
            generated_ct(john, slices=6, modality="OT", seed=2), study_uid=uid["john"],
            series_uid=uid["john_other"]), "Scout", 1)
        fill(pacs, base / "jane_ct", replace(
            generated_ct(jane, slices=10, seed=3), study_uid=uid["jane"],
            series_uid=uid["jane_ct"]), "CT abdomen 3 mm")
        fill(pacs, base / "anna_mr", replace(
            generated_ct(anna, slices=5, modality="MR", seed=4), study_uid=uid["anna"],
            series_uid=uid["anna_mr"]), "T2 sagittal")
        yield FilledPacs(pacs, uid["john"], uid["john_ct"], uid["john_other"], uid["jane"],
                         uid["jane_ct"], uid["anna"], john_files)
