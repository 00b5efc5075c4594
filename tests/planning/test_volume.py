"""Volume: the index→LPS affine, its inverse, and that patient data stays out of reprs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planning.errors import SeriesError
from planning.volume import PatientInfo, Volume, affine_from_dicom
from tests.planning.grids import AFFINES


@pytest.mark.parametrize("name", AFFINES)
def test_to_lps_and_back(name: str) -> None:
    vol = Volume(np.zeros((4, 5, 6), np.int16), AFFINES[name])
    ijk = np.array([[0, 0, 0], [5, 4, 3], [2.5, 1.25, 0.5]])
    lps = vol.to_lps(ijk)
    # by hand: origin + i·col0 + j·col1 + k·col2
    a = AFFINES[name]
    expected = a[:3, 3] + ijk[:, :1] * a[:3, 0] + ijk[:, 1:2] * a[:3, 1] + ijk[:, 2:] * a[:3, 2]
    np.testing.assert_allclose(lps, expected, atol=1e-9)
    np.testing.assert_allclose(vol.to_index(lps), ijk, atol=1e-9)


def test_spacing_direction_and_size() -> None:
    vol = Volume(np.zeros((4, 5, 6), np.int16), AFFINES["oblique"])
    assert vol.size == (6, 5, 4)
    np.testing.assert_allclose(vol.spacing_mm, [0.8, 0.9, 2.5])
    np.testing.assert_allclose(vol.direction.T @ vol.direction, np.eye(3), atol=1e-12)


def test_hu_at_uses_the_affine() -> None:
    arr = np.zeros((3, 4, 5), np.int16)
    arr[2, 1, 3] = 999  # k=2, j=1, i=3
    vol = Volume(arr, AFFINES["flipped"])
    assert vol.hu_at(vol.to_lps([3, 1, 2])) == 999
    assert vol.hu_at([1e6, 0, 0]) is None


@pytest.mark.parametrize(
    ("affine", "fragment"),
    [
        (np.zeros((3, 3)), "4×4"),
        (np.diag([1.0, 1.0, 0.0, 1.0]), "zero-length"),
        (np.full((4, 4), np.nan), "non-finite"),
    ],
)
def test_bad_affines_are_refused(affine: np.ndarray, fragment: str) -> None:
    with pytest.raises(SeriesError, match=fragment):
        Volume(np.zeros((2, 2, 2), np.int16), affine)


def test_wrong_dtype_refused() -> None:
    with pytest.raises(SeriesError, match="int16"):
        Volume(np.zeros((2, 2, 2), np.float32), np.eye(4))  # type: ignore[arg-type]


def test_patient_data_never_in_repr() -> None:
    patient = PatientInfo(name="Doe^Jane", patient_id="PID-12345", birth_date="19400101")
    vol = Volume(np.zeros((2, 2, 2), np.int16), np.eye(4), patient=patient)
    for text in (repr(vol), str(vol), repr(patient), str(patient), f"{vol!r} {patient}"):
        assert "Doe" not in text and "PID-12345" not in text and "1940" not in text


def test_affine_from_dicom_matches_hand_computation() -> None:
    # ImageOrientationPatient rows along +x, columns along −y; PixelSpacing (0.5 rows, 0.7 cols)
    a = affine_from_dicom([1, 2, 3], [1, 0, 0], [0, -1, 0], (0.5, 0.7), [0, 0, -2])
    # pixel (i=10, j=4) of slice k=3: x = 1 + 10·0.7, y = 2 − 4·0.5, z = 3 − 3·2
    np.testing.assert_allclose(a @ [10, 4, 3, 1], [8.0, 0.0, -3.0, 1.0])


def test_every_patient_field_is_read_from_a_dicom_attribute() -> None:
    """Each field of PatientInfo names a real DICOM keyword, and the header reader fills
    each from it: a field added without its keyword would silently stay empty."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataset import Dataset

    from planning.io.dicom_headers import patient_info

    keywords = PatientInfo.dicom_keywords()
    assert set(keywords) == {f.name for f in dataclasses.fields(PatientInfo)}
    ds, values = Dataset(), {}
    for n, (name, keyword) in enumerate(keywords.items()):
        assert tag_for_keyword(keyword) is not None, keyword
        vr = dictionary_VR(keyword)
        values[name] = {"DA": f"199901{n + 10}", "TM": f"1200{n + 10}", "CS": "O"}.get(vr, f"v{n}")
        setattr(ds, keyword, values[name])
    read = patient_info(ds)
    assert {name: getattr(read, name) for name in keywords} == values
