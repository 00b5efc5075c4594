"""A CT as read is the patient's image: read-only from DICOM and NIfTI alike, so nothing
changes it in place and the memo of derived results hashes it once (`planning.io`)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from planning.io import load_path
from planning.result_memo import _DIGESTS, fingerprint
from tests.planning.io.dicom_corpus import write_axial_series


def _nifti(tmp_path):
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.full((16, 12, 10), 40, dtype=np.int16), np.eye(4)), path)
    return path


@pytest.mark.parametrize("kind", ["dicom", "nifti"])
def test_a_loaded_ct_cannot_be_changed_in_place_and_is_hashed_once(tmp_path, kind) -> None:
    if kind == "dicom":
        write_axial_series(tmp_path / "ct", 6)
        volume = load_path(tmp_path / "ct")
    else:
        volume = load_path(_nifti(tmp_path))
    with pytest.raises(ValueError, match="read-only"):
        volume.array[0, 0, 0] = 1000
    first = fingerprint(volume.array)
    assert id(volume.array) in _DIGESTS, "the digest of an unchangeable CT is kept"
    assert fingerprint(volume.array) == first
    changed = volume.array.copy()  # a derived volume is a new array, and another key
    changed[0, 0, 0] += 1
    assert fingerprint(changed) != first
