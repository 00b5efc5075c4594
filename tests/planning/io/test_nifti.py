"""NIfTI files: RAS world coordinates become LPS, whichever affine (sform, qform) holds them.

NIfTI's world space is RAS+ (x right→left is negative), DICOM's is LPS+, so a voxel at RAS
(x, y, z) must land at LPS (-x, -y, z). Each case marks voxels, loads the file and compares.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from planning.errors import VolumeFileError
from planning.io import load_path
from planning.io.dicom_series import load_dicom_folder
from planning.io.nifti import load_nifti
from tests.planning.io.dicom_corpus import assert_names, write_axial_series

NI, NJ, NK = 32, 24, 20  # NIfTI data is indexed [i, j, k]
MARKERS_IJK = {3001: (7, 5, 3), 2802: (25, 17, 12), 2603: (3, 20, 7), 2404: (29, 2, 16)}
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def _data(dtype=np.int16) -> np.ndarray:
    data = np.full((NI, NJ, NK), 40, dtype=dtype)
    for hu, ijk in MARKERS_IJK.items():
        data[ijk] = hu
    return data


def _rotation_z(angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0, 0, 1.0]])


def _affine(linear: np.ndarray, offset) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = linear
    a[:3, 3] = offset
    return a


def _assert_markers_ras(volume, affine_ras: np.ndarray, tol_mm: float = 1e-3) -> None:
    for hu, ijk in MARKERS_IJK.items():
        hits = np.argwhere(volume.array == hu)
        assert len(hits) == 1, f"marker {hu} found {len(hits)} times"
        k, j, i = (int(v) for v in hits[0])
        ras = affine_ras @ np.array([*ijk, 1.0])
        expected_lps = RAS_TO_LPS @ ras[:3]
        got = volume.to_lps([i, j, k])
        assert np.allclose(got, expected_lps, atol=tol_mm), (hu, got, expected_lps)


def _save(path: Path, data: np.ndarray, affine_ras: np.ndarray, *, sform_code: int,
          qform_code: int) -> Path:
    """``data`` saved as NIfTI with ``affine_ras`` in the sform and / or the qform: a code of 0
    leaves that field empty, so the loader has to take the other one."""
    img = nib.Nifti1Image(data, affine_ras)
    img.set_sform(affine_ras if sform_code else None, code=sform_code)
    img.set_qform(affine_ras if qform_code else None, code=qform_code)
    nib.save(img, path)
    return path


SFORM_RAS = _affine(np.diag([0.7, 0.8, 2.0]), (-11.0, 20.0, -300.0))


def test_ras_sform_nii_gz(tmp_path):
    path = _save(tmp_path / "spine.nii.gz", _data(), SFORM_RAS, sform_code=2, qform_code=0)

    volume = load_nifti(path)

    assert volume.array.dtype == np.int16
    assert volume.array.shape == (NK, NJ, NI)
    _assert_markers_ras(volume, SFORM_RAS)
    assert np.allclose(volume.spacing_mm, [0.7, 0.8, 2.0], atol=1e-6)
    assert np.count_nonzero(volume.array == 40) == NI * NJ * NK - len(MARKERS_IJK)


def test_qform_only_rotated_nii(tmp_path):
    affine = _affine(_rotation_z(20.0) @ np.diag([0.9, 0.9, 2.5]), (30.0, -12.0, 45.0))
    path = _save(tmp_path / "qform_only.nii", _data(), affine, sform_code=0, qform_code=1)
    assert int(nib.load(path).header["sform_code"]) == 0

    volume = load_nifti(path)

    _assert_markers_ras(volume, affine)


def test_las_flipped_nii(tmp_path):
    affine = _affine(np.diag([-0.7, 0.8, 2.0]), (11.0, -20.0, 60.0))
    path = _save(tmp_path / "las.nii", _data(), affine, sform_code=1, qform_code=1)

    volume = load_nifti(path)

    _assert_markers_ras(volume, affine)
    assert np.allclose(sorted(volume.spacing_mm), [0.7, 0.8, 2.0], atol=1e-6)


def test_scaled_int16_nifti_gives_exact_hu(tmp_path):
    """scl_slope 2, scl_inter -1000 on int16 data (patched in the header as a scanner would)."""
    raw = np.full((NI, NJ, NK), 520, dtype=np.int16)  # 2·520 − 1000 = 40 HU
    for hu, ijk in MARKERS_IJK.items():
        raw[ijk] = (hu + 1000) // 2 if hu % 2 == 0 else 0
    path = tmp_path / "scaled.nii"
    img = nib.Nifti1Image(raw, SFORM_RAS)
    img.set_sform(SFORM_RAS, code=1)
    nib.save(img, path)
    data = bytearray(path.read_bytes())
    data[112:120] = np.array([2.0, -1000.0], dtype="<f4").tobytes()  # scl_slope, scl_inter
    path.write_bytes(bytes(data))
    expected = (2 * raw.astype(np.int32) - 1000)
    np.testing.assert_array_equal(nib.load(path).get_fdata(), expected)  # the file is right

    volume = load_nifti(path)

    np.testing.assert_array_equal(volume.array, np.transpose(expected, (2, 1, 0)))


def test_float32_nifti_is_rounded_to_int16_hu(tmp_path):
    data = _data(np.float32)
    data[0, 0, 0] = -1000.0
    path = tmp_path / "float.nii.gz"
    nib.save(nib.Nifti1Image(data, SFORM_RAS), path)

    volume = load_nifti(path)

    assert volume.array.dtype == np.int16
    assert volume.hu_range == (-1000, 3001)
    _assert_markers_ras(volume, SFORM_RAS)


# ---- refusals ---------------------------------------------------------------------------------
def test_4d_nifti_is_refused_by_name(tmp_path):
    path = tmp_path / "dwi_4d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 3), dtype=np.int16), SFORM_RAS), path)
    with pytest.raises(VolumeFileError) as exc:
        load_nifti(path)
    assert_names(str(exc.value), path)


def test_corrupt_gzip_is_refused_by_name(tmp_path, rng):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(gzip.compress(bytes(rng.integers(0, 256, 2000, dtype=np.uint8)))[:700])
    with pytest.raises(VolumeFileError) as exc:
        load_nifti(path)
    assert_names(str(exc.value), path)


def test_truncated_voxel_data_is_refused_by_name(tmp_path):
    path = tmp_path / "cut.nii"
    nib.save(nib.Nifti1Image(_data(), SFORM_RAS), path)
    path.write_bytes(path.read_bytes()[: 352 + 1000])  # header whole, voxels cut short
    with pytest.raises(VolumeFileError) as exc:
        load_nifti(path)
    assert_names(str(exc.value), path)


def test_file_that_is_not_nifti_is_refused_by_name(tmp_path):
    path = tmp_path / "notes.nii"
    path.write_text("this is not an image\n" * 30)
    with pytest.raises(VolumeFileError) as exc:
        load_nifti(path)
    assert_names(str(exc.value), path)


# ---- load_path dispatch -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["spine.nii.gz", "spine.nii", "SPINE.NII.GZ"])
def test_load_path_opens_nifti_files(tmp_path, name):
    path = tmp_path / name
    img = nib.Nifti1Image(_data(), SFORM_RAS)
    img.set_sform(SFORM_RAS, code=1)
    if name.isupper():  # nibabel will not write an upper-case suffix; a Windows export does
        path.write_bytes(gzip.compress(img.to_bytes()))
    else:
        nib.save(img, path)

    volume = load_path(path)

    _assert_markers_ras(volume, SFORM_RAS)


def test_load_path_opens_dicom_folders_and_single_dicom_files(tmp_path):
    paths, _, _ = write_axial_series(tmp_path / "series")

    from_folder = load_path(tmp_path / "series")
    from_file = load_path(paths[4])
    reference = load_dicom_folder(tmp_path / "series")

    for volume in (from_folder, from_file):
        np.testing.assert_array_equal(volume.array, reference.array)
        np.testing.assert_allclose(volume.affine_lps, reference.affine_lps)


def test_missing_nifti_file_is_refused_by_name(tmp_path):
    path = tmp_path / "gone.nii.gz"
    with pytest.raises((VolumeFileError, OSError)) as exc:
        load_path(path)
    assert_names(str(exc.value), path)
    assert re.search("not exist|not found|no such", str(exc.value), re.I)
