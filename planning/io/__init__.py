"""Loading CT from DICOM folders and NIfTI files into `Volume` (LPS mm).

A CT as read is read-only: it is the patient's image, nothing may change it in place (a
derived volume is a new array), and `planning.result_memo` computes the content digest
of an array nobody can change once, where it hashed a writable CT again on every look-up
(87 ms for 512 × 512 × 300 voxels, on every needle edit in the window).
"""

from __future__ import annotations

from pathlib import Path

from planning.errors import SeriesError
from planning.io.dicom_headers import read_header
from planning.io.dicom_series import load_dicom_folder
from planning.io.nifti import is_nifti, load_nifti
from planning.progress import Progress
from planning.volume import Volume


def load_path(
    path: str | Path, series_uid: str | None = None, progress: Progress | None = None
) -> Volume:
    """Load a CT from a DICOM folder or a NIfTI file, whichever ``path`` is."""
    p = Path(path)
    if is_nifti(p):
        return load_nifti(p, progress)
    if p.is_dir():
        return load_dicom_folder(p, series_uid, progress)
    if not p.exists():
        raise SeriesError(f"'{p}' does not exist.")
    header = read_header(p)
    if header.images:
        # One image of a series was chosen: open its whole series from its folder.
        return load_dicom_folder(p.parent, series_uid or header.images[0].series_uid, progress)
    raise SeriesError(
        f"'{p}' is neither a DICOM folder nor a NIfTI file (.nii, .nii.gz): open the folder "
        "that holds the DICOM images."
    )
