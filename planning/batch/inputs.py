"""What a batch runs on: each CT series found in the inputs, as a task a worker can take.

Tasks carry paths or PACS references, never volumes: a worker on another machine reads the
CT itself (through a path all workers see, or from the PACS), so the scheduler stays light.
A task's key is stable (the same input gives the same key), which makes a rerun skip what is
done.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from planning.errors import VertebroPlanError
from planning.progress import Progress

NIFTI_SUFFIXES = (".nii", ".nii.gz")


class BatchInputError(VertebroPlanError, ValueError):
    """An input of the batch is missing or holds no CT; the message names it."""


@dataclass(frozen=True)
class StudyTask:
    """One CT series to plan: ``kind`` "dicom" (a folder and a series UID), "nifti" (a file)
    or "pacs" (a node, a study UID and a series UID)."""

    kind: str
    source: str
    study_uid: str = ""
    series_uid: str = ""
    description: str = ""

    @property
    def key(self) -> str:
        text = "|".join((self.kind, self.source, self.study_uid, self.series_uid))
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"key": self.key}


def discover(inputs: list[str], progress: Progress | None = None) -> list[StudyTask]:
    """Every CT series in ``inputs`` (DICOM folders, searched recursively, and NIfTI files),
    in the order given; an input that does not exist or holds no CT is an error."""
    from planning.io.dicom_series import scan_folder

    tasks: list[StudyTask] = []
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_file() and path.name.lower().endswith(NIFTI_SUFFIXES):
            tasks.append(StudyTask("nifti", str(path.resolve()), description=path.name))
        elif path.is_dir():
            scan = scan_folder(path, progress)
            found = [s for s in scan.series if s.is_ct]
            if not found:
                raise BatchInputError(f"{path}: no CT series in this folder")
            for series in found:
                tasks.append(StudyTask("dicom", str(path.resolve()), series.study_uid,
                                       series.series_uid, series.description))
        elif path.exists():
            raise BatchInputError(f"{path}: neither a DICOM folder nor a NIfTI file "
                                  "(.nii, .nii.gz)")
        else:
            raise BatchInputError(f"{path}: no such file or folder")
    seen: set[str] = set()
    unique = []
    for task in tasks:
        if task.key not in seen:
            seen.add(task.key)
            unique.append(task)
    return unique


def pacs_tasks(node_text: str, studies: list[Any], modality: str = "CT") -> list[StudyTask]:
    """One task per series of ``modality`` of the studies a PACS search found."""
    return [StudyTask("pacs", node_text, study.study_uid, series.series_uid,
                      series.description)
            for study in studies for series in study.series
            if not modality or series.modality == modality]
