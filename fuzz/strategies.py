"""Hypothesis strategies of fuzz cases.

A case is a JSON-able recipe: which seed (`fuzz.seeds`) to start from, which mutations to
apply, and how to open the result. Keeping cases as data rather than as files means a
case is small to generate, to send to a worker process and to store with a crash, and
`fuzz.materialize` turns it into the same bytes everywhere.

Mutations are of three kinds:

- dataset edits, addressed by a path into the seed's own items (so that they hit the
  attributes the readers look at): set an attribute to a value of its own VR or another,
  delete it, duplicate / drop / empty sequence items, nest sequences thousands deep;
- file edits for DICOM folders: duplicate or drop files, move them into sub-folders,
  relabel or re-encode the transfer syntax, shift slice positions, claim huge images,
  add junk and special files (FIFOs, dangling links);
- byte edits after encoding: truncate, flip bytes, lie about an element's length, empty.
"""

from __future__ import annotations

import io
import json
import math
from functools import cache
from typing import Any

import pydicom
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset

from fuzz import seeds

Case = dict[str, Any]
Path_ = list[Any]  # alternating sequence keyword, item index: ["ContentSequence", 2, ...]

SPECIAL_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, 1e-300, 5e-324, 1e300, -1e300, 1e16,
                  1.7976931348623157e308, 65535.0, math.nan, math.inf, -math.inf]
SPECIAL_INTS = [0, 1, -1, 2, 3, 7, 8, 12, 15, 16, 24, 32, 64, 255, 256, 4096, 32767, 32768,
                65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 10**30]
ODD_TEXT = ["", " ", "\\", "\\\\\\", "1\\2", "0\\0", "1e999", "-1e999", "nan", "inf", "-0",
            " 1 ", "1,5", "0x10", "\x00", "\x00\x00\x00\x00", "é", "Ä\\Ö", "日本語", "\u202e",
            "RGB", "YBR_FULL_422", "PALETTE COLOR", "MONOCHROME1", "MONOCHROME2", "FRACTIONAL",
            "BINARY", "LABELMAP", "LOCALIZER", "ORIGINAL\\PRIMARY\\LOCALIZER", "CT", "MR",
            "ISO_IR 192", "ISO 2022 IR 87", "ISO_IR 13", "GB18030", "ISO_IR 999"]
OTHER_UIDS = [
    "1.2.3", "0.0", "", "1." + "9" * 62, "not a uid",
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
]
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.201", "1.2.3.4.5", "",
]
OTHER_VRS = ["UN", "OB", "LO", "DS", "IS", "US", "UL", "SS", "FD", "FL", "CS", "UT", "AT"]
BINARY_VRS = {"US": "<H", "SS": "<h", "UL": "<I", "SL": "<i", "FL": "<f", "FD": "<d",
              "AT": "<I", "OF": "<f", "OD": "<d", "OL": "<I", "OW": "<H"}
BYTES_VRS = {"OB", "UN", "OV"}

# ---- values ---------------------------------------------------------------------------

floats = st.one_of(
    st.sampled_from(SPECIAL_FLOATS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1000.0, 1000.0),
)
ints = st.one_of(st.sampled_from(SPECIAL_INTS), st.integers(-5, 70000))
junk_text = st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=24))
hex_bytes = st.binary(max_size=600).map(lambda b: {"hex": b.hex()})


def _fmt(x: float | int) -> str:
    if isinstance(x, float):
        return repr(x) if math.isfinite(x) else str(x)
    return str(x)


def text_pool(data: bytes | None) -> list[str]:
    """Every text value in a seed (codes, UIDs, labels) plus odd texts: mutating a code to
    another real code reaches deeper than random text does."""
    pool = set(ODD_TEXT)
    if data is not None:
        for item in _items(pydicom.dcmread(io.BytesIO(data))).values():
            for elem in item:
                if elem.VR in {"CS", "LO", "SH", "UI", "UT", "LT", "ST"} and elem.value:
                    pool.add(str(elem.value)[:64])
    return sorted(pool)


def values_for(vr: str, pool: list[str]) -> st.SearchStrategy[Any]:
    """Values of VR ``vr``: real ones from the seeds, special numbers, junk, wrong counts."""
    if vr in {"DS", "FL", "FD", "OF", "OD"}:
        numbers = st.lists(floats, min_size=0, max_size=7)
    else:
        numbers = st.lists(ints, min_size=0, max_size=4)
    if vr in BINARY_VRS or vr in BYTES_VRS:
        return st.one_of(numbers, hex_bytes)
    if vr in {"DS", "IS"}:
        return st.one_of(numbers, junk_text)
    if vr == "UI":
        return st.one_of(st.sampled_from(pool + OTHER_UIDS + TRANSFER_SYNTAXES), junk_text)
    return st.one_of(st.sampled_from(pool), junk_text, numbers, hex_bytes)


def encode_value(vr: str, value: Any) -> bytes:
    """The bytes of ``value`` as an element of VR ``vr`` (little endian), even length.

    Numbers that do not fit the VR wrap around, as a careless writer's would."""
    import struct

    if isinstance(value, dict):
        raw = bytes.fromhex(value["hex"])
    elif isinstance(value, list) and vr in BINARY_VRS:
        fmt = BINARY_VRS[vr]
        out = b""
        for v in value:
            if fmt in {"<f", "<d"}:
                x = float(v)
                out += struct.pack(fmt, x if fmt == "<d" or not math.isfinite(x)
                                   or abs(x) < 3e38 else math.copysign(math.inf, x))
            else:
                bits = struct.calcsize(fmt) * 8
                n = int(v) if not isinstance(v, float) or math.isfinite(v) else 0
                n %= 1 << bits
                if fmt in {"<h", "<i"} and n >= 1 << (bits - 1):
                    n -= 1 << bits
                out += struct.pack(fmt, n)
        raw = out
    elif isinstance(value, list):
        raw = "\\".join(_fmt(v) for v in value).encode("utf-8")
    else:
        raw = str(value).encode("utf-8", "surrogatepass")
    if len(raw) % 2:
        raw += b"\0" if vr in {"UI", "OB", "UN"} else b" "
    return raw


# ---- paths into a seed ------------------------------------------------------------------


def _items(ds: Dataset, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Dataset]:
    """Every item of ``ds`` (the dataset itself at ``()``) by its path."""
    out = {path: ds}
    for elem in ds:
        if elem.VR == "SQ" and elem.keyword:
            for n, child in enumerate(elem.value):
                out.update(_items(child, (*path, elem.keyword, n)))
    return out


@cache
def seed_structure(name: str) -> tuple[list[tuple[Any, ...]], dict[tuple[Any, ...], list[str]],
                                       list[str]]:
    """(item paths, keywords present at each path, text pool) of a DICOM seed."""
    data = seed_bytes(name)
    ds = pydicom.dcmread(io.BytesIO(data))
    items = _items(ds)
    paths = sorted(items, key=lambda p: (len(p), [str(x) for x in p]))
    keywords = {p: sorted(e.keyword for e in items[p] if e.keyword) for p in paths}
    return paths, keywords, text_pool(data)


def seed_bytes(name: str) -> bytes:
    if name == "series":
        return seeds.ct_series_files()[0]
    if name == "enhanced":
        return seeds.enhanced_ct_file()
    if name == "sr":
        return seeds.sr_file()
    if name == "seg":
        return seeds.seg_file()
    raise KeyError(name)


def vr_of(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    try:
        return str(dictionary_VR(tag)).split(" or ")[0] if tag is not None else "UN"
    except KeyError:
        return "UN"


EXTRA_KEYWORDS = {
    "series": ["NumberOfFrames", "PlanarConfiguration", "RescaleSlope", "RescaleIntercept",
               "PixelRepresentation", "SliceThickness", "FrameOfReferenceUID",
               "SpecificCharacterSet", "ImageType", "SeriesInstanceUID", "SOPClassUID"],
    "enhanced": ["NumberOfFrames", "RescaleSlope", "ImagePositionPatient",
                 "ImageOrientationPatient", "PixelSpacing", "FrameType", "SOPClassUID"],
    "sr": ["ValueType", "GraphicType", "GraphicData", "TextValue",
           "ReferencedFrameOfReferenceUID", "SpecificCharacterSet", "SOPClassUID"],
    "seg": ["SegmentNumber", "ReferencedSegmentNumber", "NumberOfFrames",
            "MaximumFractionalValue", "SegmentationType", "SOPClassUID", "BitsAllocated",
            "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"],
}
SEQUENCE_KEYWORDS = ["ContentSequence", "ConceptCodeSequence", "SegmentSequence",
                     "PerFrameFunctionalGroupsSequence", "ReferencedSeriesSequence",
                     "PlanePositionSequence", "ReferencedImageSequence"]


def dataset_ops(seed: str, file_index: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Edits of one dataset of seed ``seed``, addressed by item path."""
    paths, keywords, pool = seed_structure(seed)
    extra = EXTRA_KEYWORDS.get(seed, [])
    file = st.integers(0, 9) if file_index else st.just(0)
    item_paths = st.sampled_from(paths)
    seq_items = st.sampled_from([p for p in paths if p] or [("ContentSequence", 0)])

    def set_op(path: tuple[Any, ...]) -> st.SearchStrategy[dict[str, Any]]:
        def with_keyword(kw: str) -> st.SearchStrategy[dict[str, Any]]:
            own = vr_of(kw)
            vr = st.one_of(st.just(own), st.just(own), st.just(own), st.sampled_from(OTHER_VRS))
            return vr.flatmap(lambda v: st.fixed_dictionaries({
                "op": st.just("set"), "file": file, "path": st.just(list(path)),
                "kw": st.just(kw), "vr": st.just("UN" if v == "SQ" else v),
                "value": values_for("UN" if v == "SQ" else v, pool)}))

        return st.sampled_from(keywords[path] + extra).flatmap(with_keyword)

    def delete_op(path: tuple[Any, ...]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({
            "op": st.just("delete"), "file": file, "path": st.just(list(path)),
            "kw": st.sampled_from(keywords[path] or ["SOPClassUID"])})

    return st.one_of(
        item_paths.flatmap(set_op),
        item_paths.flatmap(set_op),
        item_paths.flatmap(delete_op),
        st.fixed_dictionaries({"op": st.sampled_from(["drop_item", "dup_item", "empty_seq"]),
                               "file": file, "path": seq_items.map(list)}),
        st.fixed_dictionaries({"op": st.just("nest"), "file": file,
                               "path": item_paths.map(list),
                               "kw": st.sampled_from(SEQUENCE_KEYWORDS),
                               "depth": st.one_of(st.integers(1, 8),
                                                  st.sampled_from([200, 1000, 3000, 20000])),
                               "undefined": st.booleans()}),
    )


def byte_ops(file_index: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Edits of the encoded bytes."""
    file = st.integers(0, 9) if file_index else st.just(0)
    fraction = st.floats(0.0, 1.0)
    return st.one_of(
        st.fixed_dictionaries({"op": st.just("truncate"), "file": file, "at": fraction}),
        st.fixed_dictionaries({"op": st.just("flip"), "file": file, "at": fraction,
                               "xor": st.integers(1, 255),
                               "count": st.integers(1, 8)}),
        st.fixed_dictionaries({"op": st.just("overwrite"), "file": file, "at": fraction,
                               "hex": st.binary(min_size=1, max_size=8).map(bytes.hex)}),
        st.fixed_dictionaries({"op": st.just("length"), "file": file,
                               "tag": st.sampled_from(LENGTH_TAGS),
                               "length": st.sampled_from([0, 1, 2, 3, 0xFFFF, 0x10000,
                                                          0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFE,
                                                          0xFFFFFFFF])}),
        st.fixed_dictionaries({"op": st.just("empty"), "file": file}),
    )


LENGTH_TAGS = ["PixelData", "Rows", "ImagePositionPatient", "PixelSpacing",
               "SeriesInstanceUID", "ContentSequence", "GraphicData",
               "PerFrameFunctionalGroupsSequence", "SegmentSequence",
               "FileMetaInformationGroupLength", "TransferSyntaxUID", "SOPClassUID"]


def with_byte_ops(seed: str) -> st.SearchStrategy[Case]:
    """A single-file DICOM case (SR or SEG): dataset edits, then byte edits."""
    ops = st.one_of(dataset_ops(seed), dataset_ops(seed), dataset_ops(seed), byte_ops(),
                    st.fixed_dictionaries({"op": st.just("ts"), "file": st.just(0),
                                           "uid": st.sampled_from(TRANSFER_SYNTAXES)}),
                    st.fixed_dictionaries({"op": st.just("encode"), "file": st.just(0),
                                           "syntax": st.sampled_from(ENCODINGS)}))
    return st.fixed_dictionaries({"target": st.just(seed),
                                  "ops": st.lists(ops, min_size=0, max_size=6)})


ENCODINGS = ["implicit", "big", "deflated", "no_meta"]


# ---- DICOM series ---------------------------------------------------------------------


# Values the loader must survive in the attributes it reads, as (VR, value) pairs: the
# classic corruptions (zero, NaN, parallel or non-unit vectors, wrong counts, absurd sizes).
ATTRIBUTE_VALUES: dict[str, list[tuple[str, Any]]] = {
    "ImageOrientationPatient": [("DS", v) for v in [
        "0\\0\\0\\0\\0\\0", "1\\0\\0\\1\\0\\0", "1\\0\\0\\-1\\0\\0",
        "nan\\0\\0\\0\\1\\0", "1\\0\\0\\0\\0\\-1", "-1\\0\\0\\0\\-1\\0",
        "0.7071068\\0.7071068\\0\\-0.7071068\\0.7071068\\0", "2\\0\\0\\0\\2\\0",
        "1e300\\0\\0\\0\\1\\0", "1\\0\\0\\0\\1", "1\\0\\0\\0\\0.9\\0.1",
        "1\\0\\0\\0\\0.99\\0.14", "inf\\0\\0\\0\\1\\0", "0\\1\\0\\0\\0\\1"]],
    "ImagePositionPatient": [("DS", v) for v in [
        "0\\0\\0", "nan\\0\\0", "inf\\0\\0", "1e300\\0\\0", "0\\0", "", "-1e6\\0\\0",
        "0\\0\\1e-5", "1e16\\1e16\\1e16"]],
    "PixelSpacing": [("DS", v) for v in [
        "0\\0", "-0.7\\-0.8", "nan\\nan", "inf\\1", "1e300\\1e300", "1e-300\\1e-300", "0.7",
        "0.7\\0.8\\0.9", "abc\\def", "0.001\\0.001", "0.8\\-0.7"]],
    "SliceThickness": [("DS", v) for v in ["nan", "inf", "0", "-2", "1e300", "abc"]],
    "RescaleSlope": [("DS", v) for v in ["nan", "inf", "-inf", "0", "1e300", "-1e300",
                                         "1e-300", "abc", "1\\2", "65536"]],
    "RescaleIntercept": [("DS", v) for v in ["nan", "inf", "-inf", "1e300", "-1e300", "0.5",
                                             "-1024.5", "abc", "-32768", "40000"]],
    "BitsAllocated": [("US", [v]) for v in [0, 1, 7, 8, 12, 24, 32, 64, 65535]],
    "BitsStored": [("US", [v]) for v in [0, 1, 8, 12, 16, 17, 33, 65535]],
    "HighBit": [("US", [v]) for v in [0, 15, 16, 65535]],
    "PixelRepresentation": [("US", [v]) for v in [0, 1, 2, 65535]],
    "SamplesPerPixel": [("US", [v]) for v in [0, 1, 3, 4, 65535]],
    "Rows": [("US", [v]) for v in [0, 1, 15, 17, 32, 256, 65535]],
    "Columns": [("US", [v]) for v in [0, 1, 15, 17, 32, 256, 65535]],
    "PhotometricInterpretation": [("CS", v) for v in [
        "RGB", "YBR_FULL", "PALETTE COLOR", "MONOCHROME1", "", "HSV", "ARGB", "monochrome2"]],
    "NumberOfFrames": [("IS", v) for v in ["0", "-1", "1", "2", "7", "9", "65535",
                                           "2147483647", "1e3", ""]],
    "SeriesInstanceUID": [("UI", v) for v in [seeds.SERIES_UID, "1.2.3", "", "1.2.3.4"]],
    "Modality": [("CS", v) for v in ["MR", "", "SEG", "OT", "ct"]],
    "SOPClassUID": [("UI", v) for v in ["1.2.840.10008.5.1.4.1.1.4", "", "1.2.3",
                                        "1.2.840.10008.5.1.4.1.1.2.1"]],
    "ImageType": [("CS", v) for v in ["ORIGINAL\\PRIMARY\\LOCALIZER", "", "DERIVED"]],
    "InstanceNumber": [("IS", v) for v in ["", "-1", "99999999999999999999", "x"]],
    "SpecificCharacterSet": [("CS", v) for v in ["ISO_IR 192", "ISO 2022 IR 87", "GB18030",
                                                 "ISO_IR 999", "\\\\"]],
}


def series_ops(seed: str) -> st.SearchStrategy[dict[str, Any]]:
    file = st.integers(0, 9)
    small = st.floats(-5.0, 5.0, allow_nan=False)
    attribute = st.sampled_from(sorted(ATTRIBUTE_VALUES)).flatmap(
        lambda kw: st.fixed_dictionaries({
            "op": st.just("attr"), "file": st.one_of(file, file, st.just(-1)),
            "kw": st.just(kw), "vr_value": st.sampled_from(ATTRIBUTE_VALUES[kw]).map(list)}))
    files_ops = st.one_of(
        attribute,
        attribute,
        st.fixed_dictionaries({"op": st.sampled_from(["dup", "dup_same_uid", "drop"]),
                               "file": file}),
        st.fixed_dictionaries({"op": st.just("move"), "file": file,
                               "dir": st.sampled_from(["a", "a/b", "a/b/c/d", "DICOM/0001",
                                                       ".hidden", "é"])}),
        st.fixed_dictionaries({"op": st.just("shift"), "file": file,
                               "delta": st.lists(st.one_of(small, st.sampled_from(
                                   [0.0, 2.5, -2.5, 1e-4, 1e6, math.nan, math.inf])),
                                   min_size=3, max_size=3)}),
        st.fixed_dictionaries({"op": st.just("huge"), "file": st.one_of(file, st.just(-1)),
                               "rows": st.sampled_from([0, 1, 4096, 32768, 65535]),
                               "columns": st.sampled_from([1, 4096, 65535]),
                               "frames": st.sampled_from([None, 1, 2, 65535, 2**31 - 1])}),
        st.fixed_dictionaries({"op": st.just("pixels"), "file": file,
                               "size": st.sampled_from([0, 1, 2, 510, 511, 512, 513, 1024,
                                                        4096, 100000]),
                               "fill": st.integers(0, 255)}),
        st.fixed_dictionaries({"op": st.just("ts"), "file": file,
                               "uid": st.sampled_from(TRANSFER_SYNTAXES)}),
        st.fixed_dictionaries({"op": st.just("encode"), "file": file,
                               "syntax": st.sampled_from(ENCODINGS)}),
        st.fixed_dictionaries({"op": st.just("junk"),
                               "name": st.sampled_from(["junk.dcm", "README.txt", "DICOMDIR",
                                                        "x", "a/junk", ".DS_Store"]),
                               "kind": st.sampled_from(["random", "dicm", "text", "empty"]),
                               "hex": st.binary(max_size=300).map(bytes.hex)}),
        st.fixed_dictionaries({"op": st.just("special"),
                               "kind": st.sampled_from(["fifo", "dangling_link", "link_loop",
                                                        "dir_named_dcm", "unreadable",
                                                        "link_to_dev_zero", "link_to_file",
                                                        "link_to_parent"])}),
    )
    return st.one_of(dataset_ops(seed, file_index=True), dataset_ops(seed, file_index=True),
                     files_ops, byte_ops(file_index=True))


def dicom_cases() -> st.SearchStrategy[Case]:
    """A DICOM folder made from the seed series and/or the Enhanced CT seed, mutated, and
    opened as the app does (the folder, one file of it, or scan then each series)."""

    def for_seed(seed: str) -> st.SearchStrategy[Case]:
        op_seed = "enhanced" if seed == "enhanced" else "series"
        return st.fixed_dictionaries({
            "target": st.just("dicom"),
            "seed": st.just(seed),
            "entry": st.sampled_from(["folder", "folder", "scan", "file", "series_uid"]),
            "ops": st.lists(series_ops(op_seed), min_size=0, max_size=8),
        })

    return st.sampled_from(["series", "series", "series", "enhanced", "both"]).flatmap(for_seed)


def sr_cases() -> st.SearchStrategy[Case]:
    return with_byte_ops("sr")


def seg_cases() -> st.SearchStrategy[Case]:
    return with_byte_ops("seg")


# ---- JSON plans -------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, 1, -1, 2, 10**20, -(10**20), 10**400, 1.5, -0.0, 1e308, math.nan,
                     math.inf, -math.inf, 5e-324]),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "L1", "l1", "S1", "C7", "T13", "L6", "left", "RIGHT", "r", "11G",
                     "11 g", "10", "ǅ1", "Ⅼ1", "\u0130", "LPS", "RAS", "mm", "cm", "Line",
                     "Fiducial", "defined", "undefined", "vertebroplan-plan", "1.2.3",
                     "VertebroPlan trajectory; level=L1; side=left; gauge=11G; point=tip"]),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=12,
)


def _json_paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _json_paths(v, (*path, k))
    elif isinstance(data, list):
        for n, v in enumerate(data):
            out += _json_paths(v, (*path, n))
    return out


ODD_NUMBERS = [10**400, -(10**400), 2**63, 10**20, 1e308, -1e308, 5e-324, math.nan, math.inf,
               -math.inf, True, "1", None, [], 0]


def _leaf(data: Any, path: list[Any]) -> Any:
    for key in path:
        data = data[key]
    return data


def json_cases(target: str, seed_text: str, file_names: list[str], suffix: str
               ) -> st.SearchStrategy[Case]:
    """A JSON plan file: the seed edited at its own key paths, random JSON, or odd text."""
    seed = json.loads(seed_text)
    paths = [list(p) for p in _json_paths(seed)]
    keys = sorted({str(p[-1]) for p in paths if p and isinstance(p[-1], str)})
    numbers = [p for p in paths if _leaf(seed, p) is not None
               and isinstance(_leaf(seed, p), int | float)] or paths
    edit = st.one_of(
        st.fixed_dictionaries({"op": st.just("replace"), "path": st.sampled_from(numbers),
                               "value": st.sampled_from(ODD_NUMBERS)}),
        st.fixed_dictionaries({"op": st.just("replace"), "path": st.sampled_from(paths),
                               "value": json_values}),
        st.fixed_dictionaries({"op": st.just("delete"), "path": st.sampled_from(paths)}),
        st.fixed_dictionaries({"op": st.just("add"), "path": st.sampled_from(paths),
                               "key": st.one_of(st.sampled_from(keys), st.text(max_size=8)),
                               "value": json_values}),
        st.fixed_dictionaries({"op": st.just("wrap"), "path": st.sampled_from(paths),
                               "depth": st.one_of(st.integers(1, 5),
                                                  st.sampled_from([1000, 100000]))}),
    )
    text_edit = st.one_of(
        st.fixed_dictionaries({"op": st.just("truncate"), "at": st.floats(0.0, 1.0)}),
        st.fixed_dictionaries({"op": st.just("flip"), "at": st.floats(0.0, 1.0),
                               "xor": st.integers(1, 255), "count": st.integers(1, 4)}),
        st.fixed_dictionaries({"op": st.just("overwrite"), "at": st.floats(0.0, 1.0),
                               "hex": st.binary(min_size=1, max_size=6).map(bytes.hex)}),
        st.fixed_dictionaries({"op": st.just("prefix"), "hex": st.sampled_from(
            ["efbbbf", "fffe", "00", "20", "5b" * 100000, "7b2261223a" * 50000])}),
        st.fixed_dictionaries({"op": st.just("number"), "text": st.sampled_from(
            ["1" * 5000, "1e999", "-1e999", "1" + "0" * 400, "NaN", "Infinity", "0." + "0" * 5000
             + "1", "1e-999"])}),
    )
    stems = st.text(st.characters(blacklist_characters="/\\\0",
                                  blacklist_categories=["Cs"]), min_size=1, max_size=16)
    name = st.one_of(st.sampled_from(file_names), stems.map(lambda stem: stem + suffix))
    return st.fixed_dictionaries({
        "target": st.just(target),
        "name": name,
        "kind": st.sampled_from(["edit", "edit", "edit", "random"]),
        "ops": st.lists(edit, max_size=5),
        "random": json_values,
        "text_ops": st.lists(text_edit, max_size=2),
    })


def plan_cases() -> st.SearchStrategy[Case]:
    return json_cases("plan", seeds.plan_json(), ["plan.vplan.json", "x.json", "noext"],
                      ".vplan.json")


def markups_cases() -> st.SearchStrategy[Case]:
    return json_cases("markups", seeds.markups_json(),
                      ["plan.mrk.json", "L1 left.mrk.json", "T13_R.mrk.json", "x.MRK.JSON",
                       ".mrk.json"], ".mrk.json")


STRATEGIES = {
    "dicom": dicom_cases,
    "plan": plan_cases,
    "markups": markups_cases,
    "sr": sr_cases,
    "seg": seg_cases,
}
TARGETS = tuple(STRATEGIES)
