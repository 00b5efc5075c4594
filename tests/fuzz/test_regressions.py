"""One test per bug the fuzzer found in the readers, each with its minimal input built here.

Before the fixes each of these inputs hung, exhausted memory, leaked a non-domain exception
(KeyError-like, RecursionError, pydicom's or zlib's own), raised a domain error that did not
say which file, or was accepted although it was damaged. Now each is refused with a
`VertebroPlanError` that names the file (or, for one bad file among good ones, skipped
with a warning that names it). Inputs start from the fuzzer's seeds (`fuzz.seeds`: a small
CT series, an Enhanced CT, a plan as .vplan.json, .mrk.json, SR, and a SEG).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom.errors import BytesLengthException

from fuzz import seeds
from fuzz.cases import memory_headroom, time_limit
from fuzz.materialize import DicomFile, apply_dataset_op, encode, nested_sequence, set_raw
from planning.errors import SeriesError
from planning.interop.any_plan import load_any_plan
from planning.interop.labels_from_seg import SEGFormatError, read_seg_labels
from planning.interop.plan_file import PlanFormatError
from planning.interop.slicer_markups import MarkupsError
from planning.io import load_path
from planning.io.dicom_series import scan_folder

N_SLICES = seeds.CT_SHAPE[0]
Edit = Callable[[int, DicomFile], None]


def write_series(folder: Path, edit: Edit | None = None) -> Path:
    """The seed CT series in ``folder``, ``edit(k, file)`` applied to each slice first."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, data in enumerate(seeds.ct_series_files()):
        f = DicomFile.read(f"IM{k:05d}.dcm", data)
        if edit is not None:
            edit(k, f)
        (folder / f.name).write_bytes(encode(f))
    return folder


def set_text(keyword: str, value: str, *, only: int | None = None) -> Edit:
    """An edit writing ``value`` as a DS/IS/CS text into every slice (or slice ``only``)."""
    from fuzz.strategies import vr_of

    def edit(k: int, f: DicomFile) -> None:
        if only is None or k == only:
            set_raw(f.ds, keyword, vr_of(keyword), value.encode())

    return edit


def write_enhanced(folder: Path, edit: Callable[[DicomFile], None]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = DicomFile.read("ENHANCED.dcm", seeds.enhanced_ct_file())
    edit(f)
    (folder / f.name).write_bytes(encode(f))
    return folder


def load(path: Path) -> object:
    """Load under the fuzzer's limits: 10 s, and 1 GB more address space than now."""
    with time_limit(10.0), memory_headroom(1024):
        return load_path(path)


def refusal(path: Path, *names: str) -> str:
    with pytest.raises(SeriesError) as exc:
        load(path)
    message = str(exc.value)
    for name in names or (path.name,):
        assert name in message, message
    return message


# ---- DICOM series: hangs and memory -----------------------------------------------------


def test_a_named_pipe_in_the_folder_is_skipped_not_waited_on(tmp_path: Path) -> None:
    """Was: the scan opened the FIFO and blocked for ever (no writer ever comes)."""
    folder = write_series(tmp_path / "ct")
    os.mkfifo(folder / "pipe.dcm")
    volume = load(folder)
    assert volume.array.shape[0] == N_SLICES  # type: ignore[attr-defined]
    reasons = {p.name: r for p, r in scan_folder(folder).skipped}
    assert "not a regular file" in reasons["pipe.dcm"]


@pytest.mark.parametrize("frames", ["2147483647", "65535", "0"])
def test_a_frame_count_its_header_does_not_describe_is_not_believed(tmp_path: Path,
                                                                    frames: str) -> None:
    """Was: NumberOfFrames 2147483647 built a header per claimed frame: the scan ran for
    ever and grew until the kernel killed it (20 GB)."""
    folder = write_enhanced(tmp_path / "ct", lambda f: set_raw(f.ds, "NumberOfFrames", "IS",
                                                              frames.encode()))
    message = refusal(folder, str(folder), "ENHANCED.dcm")
    assert f"NumberOfFrames is {frames}, but {N_SLICES} frames are described" in message


def test_a_single_frame_image_claiming_frames_is_skipped(tmp_path: Path) -> None:
    folder = write_series(tmp_path / "ct", set_text("NumberOfFrames", "65535", only=7))
    volume = load(folder)
    assert volume.array.shape[0] == N_SLICES - 1  # type: ignore[attr-defined]
    assert any("IM00007.dcm" in w for w in volume.warnings)  # type: ignore[attr-defined]


@pytest.mark.parametrize("compressed", [False, True], ids=["native", "jpeg2000-label"])
def test_a_header_claiming_a_huge_image_fails_on_its_file_before_any_allocation(
        tmp_path: Path, compressed: bool) -> None:
    """Was: Rows = Columns = 65535 (pixel data of 512 bytes) made the loader allocate the
    whole claimed volume first: 8 × 65535 × 65535 × 2 bytes, a MemoryError."""

    def huge(k: int, f: DicomFile) -> None:
        set_raw(f.ds, "Rows", "US", (65535).to_bytes(2, "little"))
        set_raw(f.ds, "Columns", "US", (65535).to_bytes(2, "little"))
        if compressed:
            f.ts_label = "1.2.840.10008.1.2.4.90"

    folder = write_series(tmp_path / "ct", huge)
    with pytest.raises(SeriesError) as exc:
        load(folder)  # under 1 GB of headroom: a MemoryError would fail the test instead
    assert re.search(r"IM0000\d\.dcm", str(exc.value)), exc.value


# ---- DICOM series: damaged headers -----------------------------------------------------


def test_an_element_too_short_for_its_vr_skips_that_file(tmp_path: Path) -> None:
    """Was: pydicom's BytesLengthException (a 2-byte value with VR FL) escaped the scan."""
    folder = write_series(
        tmp_path / "ct", lambda k, f: set_raw(f.ds, "Rows", "FL", b"1 ") if k == 7 else None)
    reasons = {p.name: r for p, r in scan_folder(folder).skipped}
    assert "length does not fit its value type" in reasons["IM00007.dcm"]
    volume = load(folder)
    assert volume.array.shape[0] == N_SLICES - 1  # type: ignore[attr-defined]
    assert any("IM00007.dcm" in w for w in volume.warnings)  # type: ignore[attr-defined]


def test_sequences_nested_thousands_deep_skip_the_file(tmp_path: Path) -> None:
    """Was: RecursionError from pydicom parsing a per-frame group nested 3000 deep."""

    def deep(f: DicomFile) -> None:
        frame = f.ds.PerFrameFunctionalGroupsSequence[0]
        set_raw(frame, "PlanePositionSequence", "SQ",
                nested_sequence("PlanePositionSequence", 3000, undefined=True))

    folder = write_enhanced(tmp_path / "ct", deep)
    message = refusal(folder, str(folder), "ENHANCED.dcm")
    assert "nested too deeply" in message


@pytest.mark.parametrize("position", ["nan\\0\\100", "inf\\0\\100", "1e300\\0\\100"])
def test_a_position_that_is_not_a_number_of_mm_is_not_used(tmp_path: Path,
                                                           position: str) -> None:
    """Was: ValueError "cannot convert float NaN to integer" (or NaN arithmetic) in the
    slice grid. One such slice is now left out with a warning; a series of them refused."""
    one = write_series(tmp_path / "one", set_text("ImagePositionPatient", position, only=7))
    volume = load(one)
    assert volume.array.shape[0] == N_SLICES - 1  # type: ignore[attr-defined]
    assert any("IM00007.dcm" in w and "ImagePositionPatient" in w
               for w in volume.warnings)  # type: ignore[attr-defined]
    every = write_series(tmp_path / "all", set_text("ImagePositionPatient", position))
    assert "ImagePositionPatient of" in refusal(every, str(every), "IM00000.dcm")


@pytest.mark.parametrize("spacing", ["0\\0", "-0.8\\-0.7", "nan\\nan", "1e300\\1e300",
                                     "1e-300\\1e-300"])
def test_a_pixel_spacing_that_is_not_a_size_is_refused_by_name(tmp_path: Path,
                                                               spacing: str) -> None:
    """Was: 0 (or 1e-300) gave "affine_lps has a zero-length axis" without a file name; a
    negative spacing silently mirrored the image (the patient's left on the right); NaN
    leaked as a ValueError; 1e300 made a kilometre-wide volume."""
    folder = write_series(tmp_path / "ct", set_text("PixelSpacing", spacing))
    assert "PixelSpacing of" in refusal(folder, str(folder), "IM00000.dcm")


@pytest.mark.parametrize("orientation", ["0\\0\\0\\0\\0\\0", "nan\\0\\0\\0\\1\\0",
                                         "1e300\\0\\0\\0\\1\\0", "1\\0\\0\\1\\0\\0"])
def test_an_orientation_that_is_not_two_unit_vectors_is_refused_by_name(
        tmp_path: Path, orientation: str) -> None:
    """Was: a zero or NaN vector divided by its zero length: NaN geometry, then either a
    ValueError in the slice grid or "affine_lps contains non-finite values" unnamed (a
    vector 1e300 long was silently normalised; parallel vectors were already refused)."""
    folder = write_series(tmp_path / "ct", set_text("ImageOrientationPatient", orientation))
    assert "ImageOrientationPatient" in refusal(folder, "IM00000.dcm")


@pytest.mark.parametrize(("keyword", "value"), [("RescaleSlope", "nan"), ("RescaleSlope", "inf"),
                                                ("RescaleSlope", "1e300"),
                                                ("RescaleIntercept", "-inf")])
def test_a_rescale_that_cannot_give_hu_is_refused_by_name(tmp_path: Path, keyword: str,
                                                          value: str) -> None:
    """Was: NaN × pixels cast to int16: garbage Hounsfield units, silently."""
    folder = write_series(tmp_path / "ct", set_text(keyword, value))
    assert f"{keyword} of" in refusal(folder, str(folder), "IM00000.dcm")


@pytest.mark.parametrize("bits", [0, 12, 24])
def test_an_unsupported_bits_allocated_is_refused_by_name(tmp_path: Path, bits: int) -> None:
    """Was: numpy's TypeError "data type '<u3' not understood" (24, 0), or 12 bits read as
    bytes: garbage values."""
    folder = write_series(tmp_path / "ct", lambda k, f: set_raw(
        f.ds, "BitsAllocated", "US", bits.to_bytes(2, "little")))
    assert f"BitsAllocated {bits}" in refusal(folder, str(folder), "IM00000.dcm")


# ---- SR ------------------------------------------------------------------------------


def write_single(path: Path, seed: bytes, ops: list[dict[str, Any]] | None = None,
                 ts_label: str | None = None, keep: float = 1.0) -> Path:
    """``seed`` with the fuzzer's dataset edits, a transfer syntax label and a cut."""
    f = DicomFile.read(path.name, seed)
    for op in ops or []:
        apply_dataset_op(f, op)
    f.ts_label = ts_label
    data = encode(f)
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_a_truncated_sr_is_refused_not_read_as_a_smaller_plan(tmp_path: Path) -> None:
    """Was: an SR cut at 80 % (an interrupted copy) loaded as a plan with needles missing."""
    assert len(load_any_plan(write_single(tmp_path / "whole.dcm", seeds.sr_file()))
               .trajectories) == 3
    cut = write_single(tmp_path / "cut.dcm", seeds.sr_file(), keep=0.8)
    with pytest.raises(PlanFormatError, match=r"cut\.dcm' is truncated"):
        load_any_plan(cut)


Damage = tuple[list[dict[str, Any]], str | None, type[BaseException]]


def _assert_refused_by_name(read: Callable[[Path], object], path: Path,
                            error: type[Exception], cause: type[BaseException]) -> None:
    """``read(path)`` raises ``error`` with the file's name in its message, and keeps what
    the library raised (an instance of ``cause``) as its ``__cause__``."""
    with pytest.raises(error, match=re.escape(path.name)) as exc:
        read(path)
    assert isinstance(exc.value.__cause__, cause), repr(exc.value.__cause__)


ROOT_CODE = ["ConceptNameCodeSequence", 0]
SR_DAMAGE: dict[str, Damage] = {
    "value-too-short-for-its-vr": (
        [{"op": "set", "path": ROOT_CODE, "kw": "CodeValue", "vr": "FL", "value": "1"}],
        None, BytesLengthException),
    "unknown-vr": (
        [{"op": "set", "path": ROOT_CODE, "kw": "CodeValue", "vr": "CQ", "value": "126000"}],
        None, NotImplementedError),
    "content-nested-3000-deep": (
        [{"op": "nest", "path": ["ContentSequence", 7], "kw": "ContentSequence",
          "depth": 3000, "undefined": True}], None, RecursionError),
    "sequence-that-is-not-one": (  # was an OSError "No tag to read …" without the file name
        [{"op": "set", "path": ["CurrentRequestedProcedureEvidenceSequence", 0],
          "kw": "ReferencedSeriesSequence", "vr": "UN", "value": {"hex": "0000"}}],
        None, OSError),
    "deflate-label-on-plain-data": ([], "1.2.840.10008.1.2.1.99", zlib.error),
}


@pytest.mark.parametrize("damage", sorted(SR_DAMAGE))
def test_a_damaged_sr_is_refused_by_name(tmp_path: Path, damage: str) -> None:
    """Was: pydicom parses lazily, and what it raised on reading a damaged element escaped
    the reader as it was (BytesLengthException, NotImplementedError, RecursionError,
    zlib.error), or as an OSError that did not say which file."""
    ops, ts_label, cause = SR_DAMAGE[damage]
    path = write_single(tmp_path / "plan_sr.dcm", seeds.sr_file(), ops, ts_label)
    _assert_refused_by_name(load_any_plan, path, PlanFormatError, cause)


# ---- SEG -----------------------------------------------------------------------------

SEGMENT_CODE = ["SegmentSequence", 0, "SegmentedPropertyTypeCodeSequence", 0]
SEG_DAMAGE: dict[str, Damage] = {
    "value-too-short-for-its-vr": (
        [{"op": "set", "path": SEGMENT_CODE, "kw": "CodingSchemeDesignator", "vr": "FL",
          "value": "1"}], None, BytesLengthException),
    "no-decoder-for-its-transfer-syntax": ([], "1.2.840.10008.1.2.4.110",
                                           NotImplementedError),
    "sequence-that-is-not-one": (
        [{"op": "set", "path": ["PerFrameFunctionalGroupsSequence", 0],
          "kw": "SegmentIdentificationSequence", "vr": "UN", "value": {"hex": "5426b91307"}}],
        None, OSError),
    "deflate-label-on-plain-data": ([], "1.2.840.10008.1.2.1.99", zlib.error),
}


@pytest.mark.parametrize("damage", sorted(SEG_DAMAGE))
def test_a_damaged_seg_is_refused_by_name(tmp_path: Path, damage: str) -> None:
    """Was: the same lazily raised pydicom, numpy and zlib errors escaping `read_seg_labels`
    (or an OSError that did not name the file)."""
    ops, ts_label, cause = SEG_DAMAGE[damage]
    path = write_single(tmp_path / "labels_seg.dcm", seeds.seg_file(), ops, ts_label)
    _assert_refused_by_name(lambda p: read_seg_labels(p, seeds.seed_ct()), path,
                            SEGFormatError, cause)


def test_a_truncated_seg_is_refused_as_truncated(tmp_path: Path) -> None:
    path = write_single(tmp_path / "labels_seg.dcm", seeds.seg_file(), keep=0.97)
    with pytest.raises(SEGFormatError, match=r"labels_seg\.dcm' is truncated"):
        read_seg_labels(path, seeds.seed_ct())


# ---- JSON plans and markups ------------------------------------------------------------

JSON_FILES = [("plan.vplan.json", PlanFormatError), ("plan.mrk.json", MarkupsError)]


@pytest.mark.parametrize(("name", "error"), JSON_FILES)
def test_json_nested_too_deeply_is_refused_by_name(tmp_path: Path, name: str,
                                                   error: type[Exception]) -> None:
    """Was: json's RecursionError escaped (only JSONDecodeError was caught)."""
    path = tmp_path / name
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(error, match=re.escape(name) + ".*nested too deeply"):
        load_any_plan(path)


@pytest.mark.parametrize(("name", "error"), JSON_FILES)
def test_an_integer_longer_than_python_reads_is_refused_by_name(
        tmp_path: Path, name: str, error: type[Exception]) -> None:
    """Was: ValueError "Exceeds the limit (4300 digits) for integer string conversion",
    not a JSONDecodeError, escaped."""
    path = tmp_path / name
    path.write_text('{"version": ' + "1" * 5000 + "}")
    with pytest.raises(error, match=re.escape(name)):
        load_any_plan(path)


def _with_coordinate(text: str, value: str) -> str:
    return text.replace("4.5", value, 1)


@pytest.mark.parametrize(("name", "seed", "error", "where"), [
    ("plan.vplan.json", seeds.plan_json, PlanFormatError, r"trajectories\[0\]\.entry_lps\[0\]"),
    ("plan.mrk.json", seeds.markups_json, MarkupsError, r"markup 1 \('L1 left'\)"),
])
def test_a_coordinate_too_large_for_a_float_is_refused_by_name(
        tmp_path: Path, name: str, seed: Callable[[], str], error: type[Exception],
        where: str) -> None:
    """Was: OverflowError "int too large to convert to float" from numpy (plan files) or
    math.isfinite (markups) for an integer coordinate of 400 digits."""
    assert "4.5" in seed()
    path = tmp_path / name
    path.write_text(_with_coordinate(seed(), "1" + "0" * 400))
    with pytest.raises(error, match=re.escape(name) + ".*" + where):
        load_any_plan(path)
    assert json.loads(path.read_text())  # the file itself is valid JSON
