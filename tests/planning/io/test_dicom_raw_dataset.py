"""DICOM files without the 128-byte preamble and file meta (raw datasets, as older exporters
and PACS dumps write them) load like any other CT, with a warning; files that are not DICOM
are still ignored, and counted in that warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset

from planning.io import load_path
from planning.io.dicom_headers import read_header, starts_like_a_raw_dataset
from planning.io.dicom_series import SeriesError
from tests.planning.io.dicom_corpus import (
    rotated_iop,
    stacked_positions,
    write_axial_series,
    write_ct_series,
)
from tests.planning.io.dicom_corpus_quirks import (
    write_non_dicom_files,
)


def _strip_file_meta(path: Path, dst: Path, *, implicit: bool = True) -> Path:
    """Rewrite ``path`` as a bare dataset: no preamble, no "DICM", no group 0002."""
    ds = pydicom.dcmread(path)
    with open(dst, "wb") as fp:
        out = DicomFileLike(fp)
        out.is_little_endian, out.is_implicit_VR = True, implicit
        write_dataset(out, ds)
    head = dst.read_bytes()[:132]
    assert head[128:132] != b"DICM" and head[:2] == b"\x08\x00"
    return dst


def test_a_folder_of_raw_datasets_loads_as_the_same_ct(tmp_path: Path) -> None:
    """An oblique series written twice, with and without file meta: same HU, same affine,
    same patient; the warning counts the raw images and the non-DICOM files."""
    iop = rotated_iop("x", 20.0)
    positions = stacked_positions((-10.0, -8.0, 100.0),
                                  2.0 * np.cross(iop[:3], iop[3:]), 12)
    hu = np.random.default_rng(4).integers(-1000, 1500, (12, 24, 20)).astype(np.int16)
    with_meta = tmp_path / "with_meta"
    paths = write_ct_series(with_meta, hu, positions, iop=iop)
    raw = tmp_path / "raw"
    raw.mkdir()
    for n, p in enumerate(paths):  # half implicit, half explicit VR, no extension
        _strip_file_meta(p, raw / f"IM{n:04d}", implicit=n % 2 == 0)
    junk = write_non_dicom_files(raw, np.random.default_rng(1))
    (raw / "tagged_junk").write_bytes(b"\x08\x00\x05\x00" + b"\xff" * 60)  # looks, is not

    reference, got = load_path(with_meta), load_path(raw)
    assert np.array_equal(got.array, reference.array)
    assert np.allclose(got.affine_lps, reference.affine_lps)
    assert got.patient == reference.patient and got.series_uid == reference.series_uid
    assert got.source_instances == reference.source_instances
    (warning,) = [w for w in got.warnings if "preamble" in w]
    assert warning.startswith("12 of the 12 images have no DICOM preamble or file meta")
    assert "explicit / implicit VR little endian" in warning
    assert f"{len(junk) + 1} other file(s) are not DICOM and were ignored" in warning
    assert not any("preamble" in w for w in reference.warnings)


def test_raw_and_meta_files_mixed_in_one_series(tmp_path: Path) -> None:
    paths, _, _ = write_axial_series(tmp_path / "ct", 6)
    reference = load_path(tmp_path / "ct")
    for p in paths[::2]:
        _strip_file_meta(p, p)
    got = load_path(tmp_path / "ct")
    assert np.array_equal(got.array, reference.array)
    assert np.allclose(got.affine_lps, reference.affine_lps)
    assert any(w.startswith("3 of the 6 images have no DICOM preamble") for w in got.warnings)


def test_a_folder_of_only_non_dicom_files_is_still_refused(tmp_path: Path) -> None:
    write_non_dicom_files(tmp_path, np.random.default_rng(2))
    (tmp_path / "tagged_junk").write_bytes(b"\x08\x00\x05\x00" + b"\xff" * 60)
    with pytest.raises(SeriesError, match="No DICOM images found") as err:
        load_path(tmp_path)
    assert str(tmp_path) in str(err.value)


@pytest.mark.parametrize(("head", "expected"), [
    (b"\x08\x00\x05\x00\x0a\x00\x00\x00", True),  # implicit VR, SpecificCharacterSet
    (b"\x08\x00\x16\x00UI\x1a\x00", True),  # explicit VR, SOPClassUID
    (b"\x02\x00\x10\x00UI\x14\x00", True),  # file meta group without the preamble
    (b"%PDF-1.4", False),
    (b"\x89PNG\r\n\x1a\n", False),
    (b"\x10\x00\x10\x00\x0a\x00\x00\x00", False),  # group 0010 first: not how images start
    (b"\x08\x00", False),
])
def test_only_what_opens_like_a_data_element_is_tried(head: bytes, expected: bool) -> None:
    assert starts_like_a_raw_dataset(head) is expected


def test_a_raw_dataset_header_says_so(tmp_path: Path) -> None:
    paths, _, _ = write_axial_series(tmp_path / "ct", 2)
    raw = _strip_file_meta(paths[0], tmp_path / "raw0")
    (image,) = read_header(raw).images
    assert image.raw_dataset and image.transfer_syntax == "1.2.840.10008.1.2"
    assert image.pixel_offset is not None  # read straight from the file, no decoder
    (normal,) = read_header(paths[0]).images
    assert not normal.raw_dataset
