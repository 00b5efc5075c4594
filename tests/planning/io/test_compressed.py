"""Transfer syntaxes: every lossless encoding a PACS may send decodes to the very same HU.

The compressed files are made by the tools a site would use (dcmtk's dcmcjpeg, dcmcjpls,
dcmcrle, dcmconv) or, for JPEG 2000 (dcmtk has no free JPEG 2000 encoder), by pydicom with
pylibjpeg-openjpeg. Each test checks the output file really carries the transfer syntax, then
that the loaded volume equals both the written HU and the uncompressed original's volume.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from planning.errors import CodecError
from planning.io.dicom_series import load_dicom_folder
from tests.planning.io.dicom_corpus import (
    JPEG_XL_UID,
    SeriesUIDs,
    assert_names,
    assert_slices_match,
    stacked_positions,
    write_ct_series,
)
from tests.planning.io.dicom_corpus_quirks import (
    dcmtk_convert,
    transfer_syntax_of,
    write_encapsulated_unknown,
    write_enhanced_ct,
)

# JPEG 2000 in openjpeg uses 6 resolution levels, so both image sides must be >= 32 pixels.
ROWS, COLS, N = 40, 48, 6


@dataclass(frozen=True)
class Encoding:
    name: str
    transfer_syntax: str
    tool: str | None = None  # a dcmtk executable, or None for pydicom's own encoder
    args: tuple[str, ...] = ()

    def convert(self, src: Path, dst: Path) -> Path:
        if self.tool is not None:
            return dcmtk_convert(self.tool, self.args, src, dst)
        ds = pydicom.dcmread(src)
        ds.compress(self.transfer_syntax)
        dst.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(dst, enforce_file_format=True)
        return dst


ENCODINGS = [
    Encoding("jpeg-lossless-sv1", "1.2.840.10008.1.2.4.70", "dcmcjpeg", ("+e1",)),
    Encoding("jpeg-ls-lossless", "1.2.840.10008.1.2.4.80", "dcmcjpls", ("+el",)),
    Encoding("rle-dcmtk", "1.2.840.10008.1.2.5", "dcmcrle"),
    Encoding("rle-pydicom", RLELossless),
    Encoding("jpeg2000-lossless-pydicom", JPEG2000Lossless),
    Encoding("implicit-vr-little-endian", "1.2.840.10008.1.2", "dcmconv", ("+ti",)),
    Encoding("explicit-vr-big-endian", "1.2.840.10008.1.2.2", "dcmconv", ("+tb",)),
    Encoding("deflated-explicit-vr", "1.2.840.10008.1.2.1.99", "dcmconv", ("+td",)),
]


def _skip_without(tool: str | None) -> None:
    if tool is not None and shutil.which(tool) is None:
        pytest.skip(f"{tool} (dcmtk) is not installed")


def _original(folder: Path, rng: np.random.Generator, signed: bool):
    """A small series with noise, edges and the extreme values of its pixel range."""
    if signed:  # e.g. Siemens: signed 16-bit, intercept 0
        low, high, kwargs = -2000, 3071, {"signed": True, "intercept": 0.0}
    else:  # e.g. GE/Philips: unsigned 12 bits stored, intercept -1024
        low, high, kwargs = -1024, 3071, {"bits_stored": 12, "intercept": -1024.0}
    hu = rng.integers(low, high + 1, size=(N, ROWS, COLS)).astype(np.int16)
    hu[:, 10:30, 12:36] = 60
    hu[0, 0, 0], hu[0, 0, 1] = low, high
    positions = stacked_positions((-20.0, -15.0, 300.0), (0.0, 0.0, -1.25), N)
    paths = write_ct_series(folder, hu, positions, uids=SeriesUIDs.new(), **kwargs)
    return paths, hu, positions


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned12", "signed16"])
@pytest.mark.parametrize("encoding", ENCODINGS, ids=[e.name for e in ENCODINGS])
def test_lossless_transfer_syntax_gives_identical_hu(tmp_path, rng, encoding, signed):
    _skip_without(encoding.tool)
    paths, hu, positions = _original(tmp_path / "original", rng, signed)
    encoded = [encoding.convert(p, tmp_path / "encoded" / p.name) for p in paths]
    assert {transfer_syntax_of(p) for p in encoded} == {encoding.transfer_syntax}

    volume = load_dicom_folder(tmp_path / "encoded")
    reference = load_dicom_folder(tmp_path / "original")

    assert_slices_match(volume, hu, positions)
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_allclose(volume.affine_lps, reference.affine_lps, atol=1e-9)


def test_jpeg_ls_enhanced_ct(tmp_path, rng):
    _skip_without("dcmcjpls")
    hu = rng.integers(-1024, 3000, size=(N, ROWS, COLS)).astype(np.int16)
    positions = stacked_positions((0.0, 0.0, 0.0), (0.0, 0.0, 2.0), N)
    src = write_enhanced_ct(tmp_path / "raw" / "ENH.dcm", hu, positions)
    dst = dcmtk_convert("dcmcjpls", ["+el"], src, tmp_path / "jls" / "ENH.dcm")
    assert transfer_syntax_of(dst) == "1.2.840.10008.1.2.4.80"

    assert_slices_match(load_dicom_folder(tmp_path / "jls"), hu, positions)


def test_jpeg_xl_slice_without_a_decoder_is_named(tmp_path):
    """One slice in JPEG XL (no decoder installed) inside an otherwise plain series."""
    uids = SeriesUIDs.new()
    positions = stacked_positions((0.0, 0.0, 0.0), (0.0, 0.0, 2.0), 6)
    hu = np.zeros((6, 24, 32), dtype=np.int16)
    paths = write_ct_series(tmp_path, hu, positions, uids=uids)
    odd = paths[3]
    odd.unlink()
    write_encapsulated_unknown(odd, JPEG_XL_UID, uids, positions[3], instance_number=4)
    assert transfer_syntax_of(odd) == JPEG_XL_UID

    with pytest.raises(CodecError) as exc:
        load_dicom_folder(tmp_path)
    message = str(exc.value)
    assert re.search(re.escape(JPEG_XL_UID) + "|JPEG XL", message, re.I), message
    assert odd.name in message


def test_private_transfer_syntax_is_a_codec_error(tmp_path):
    folder = tmp_path / "vendor_private"
    uids = SeriesUIDs.new()
    private_ts = "1.2.826.0.1.3680043.10.1389.99.7"
    paths = [
        write_encapsulated_unknown(
            folder / f"P{k:03d}.dcm", private_ts, uids, (0.0, 0.0, 2.0 * k), instance_number=k + 1
        )
        for k in range(4)
    ]

    with pytest.raises(CodecError) as exc:
        load_dicom_folder(folder)
    message = str(exc.value)
    assert private_ts in message
    assert_names(message, *paths)
