"""NIfTI (.nii, .nii.gz) → `Volume` in LPS.

NIfTI world coordinates are RAS (+x towards the patient's right, i.e. −x in LPS),
so the LPS affine is ``diag(-1, -1, 1, 1) @ ras_affine``. The voxel array is kept in file
order and transposed to our ``[k, j, i]`` convention: NIfTI's first axis is our column i.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.uid import generate_uid

from planning.errors import VolumeFileError
from planning.progress import Progress, no_progress
from planning.volume import Volume

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def load_nifti(path: str | Path, progress: Progress | None = None) -> Volume:
    """Load a 3-D CT NIfTI, values taken as HU after the file's scl_slope/scl_inter."""
    progress = progress or no_progress()
    p = Path(path)
    if not p.exists():
        raise VolumeFileError(f"'{p}' does not exist.")
    progress.report(0, 2, "Reading NIfTI")
    try:
        img = nib.load(str(p))
        if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
            raise VolumeFileError(f"'{p}' is not a NIfTI image.")
        shape = img.shape
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if len(shape) != 3:
            raise VolumeFileError(
                f"'{p}' is a {len(img.shape)}-D image {tuple(img.shape)}; a CT volume must be 3-D."
            )
        data = np.asarray(img.dataobj).reshape(shape)
        ras = img.affine
    except VolumeFileError:
        raise
    except (OSError, EOFError, ValueError, nib.filebasedimages.ImageFileError) as exc:
        raise VolumeFileError(f"'{p}' cannot be read as NIfTI: {exc}") from exc
    progress.report(1, 2, "Converting to HU")
    if ras is None or not np.all(np.isfinite(ras)) or abs(np.linalg.det(ras[:3, :3])) < 1e-9:
        raise VolumeFileError(f"'{p}' has no usable orientation (qform/sform): refusing to guess.")
    warnings: list[str] = []
    if np.issubdtype(data.dtype, np.floating):
        data = np.rint(np.nan_to_num(data, nan=-1024.0))
    clipped = int(np.count_nonzero((data < -32768) | (data > 32767)))
    if clipped:
        warnings.append(f"{clipped} voxel(s) outside the 16-bit HU range were clipped.")
    hu = np.clip(data, -32768, 32767).astype(np.int16)
    array = np.ascontiguousarray(hu.transpose(2, 1, 0))
    # the patient's CT as read (`planning.io` module doc): the array, and the one it may
    # be a view of, so that the memo sees an array nobody can change
    hu.flags.writeable = array.flags.writeable = False
    # NIfTI has no DICOM UIDs; derive stable ones from the header so that a plan made on
    # this file is recognised as belonging to it when the file is opened again.
    seed = [p.name, bytes(img.header.binaryblock).hex(), str(array.shape)]
    volume = Volume(
        array=array,
        affine_lps=RAS_TO_LPS @ ras,
        modality="CT",
        study_uid=generate_uid(entropy_srcs=["study", *seed]),
        series_uid=generate_uid(entropy_srcs=["series", *seed]),
        frame_of_reference_uid=generate_uid(entropy_srcs=["frame", *seed]),
        source=str(p),
        warnings=warnings,
    )
    progress.report(2, 2, "Done")
    return volume
