"""Fuzz cases written to disk: DICOM files built and broken on purpose, JSON plans edited.

Why apart from `fuzz.cases` (which runs a case and judges the outcome): writing the
input is the larger half and needs none of the judging; `fuzz.cases` and the regression
tests import what they need from here.
"""

from __future__ import annotations

import copy
import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.charset import convert_encodings
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import UID

from fuzz import seeds
from fuzz.strategies import encode_value


class Unmaterializable(Exception):
    """The recipe cannot be written (e.g. a value too long for its VR): not a finding."""



# ---- DICOM encoding -----------------------------------------------------------------------

SYNTAX_UIDS = {"explicit": "1.2.840.10008.1.2.1", "implicit": "1.2.840.10008.1.2",
               "big": "1.2.840.10008.1.2.2", "deflated": "1.2.840.10008.1.2.1.99",
               "no_meta": "1.2.840.10008.1.2"}
LONG_LENGTH_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UT", b"UN", b"UC",
                   b"UR", b"SV", b"UV"}


@dataclass
class DicomFile:
    """One file being built: its dataset, where it goes, how it is encoded."""

    name: str
    ds: Dataset
    meta: FileMetaDataset
    subdir: str = ""
    syntax: str = "explicit"
    ts_label: str | None = None
    data: bytes | None = None
    encodings: list[str] = field(default_factory=lambda: ["iso8859"])

    @classmethod
    def read(cls, name: str, data: bytes) -> DicomFile:
        ds = pydicom.dcmread(io.BytesIO(data))
        charset = ds.get("SpecificCharacterSet") or "ISO_IR 6"
        return cls(name, ds, ds.file_meta, encodings=convert_encodings(charset))


def encode(f: DicomFile) -> bytes:
    """Encode with full control: the file meta may name another transfer syntax than the
    one the dataset is written in (a "transfer syntax mismatch")."""
    body = DicomBytesIO()
    body.is_little_endian = f.syntax != "big"
    body.is_implicit_VR = f.syntax in {"implicit", "no_meta"}
    # Element by element, not `write_dataset`: that one re-parses every raw element when
    # the character set changed, and a fuzzed value must be written as it is.
    for tag in sorted(f.ds.keys()):
        write_data_element(body, f.ds.get_item(tag), f.encodings)
    data = body.getvalue()
    if f.syntax == "deflated":
        packer = zlib.compressobj(wbits=-15)
        data = packer.compress(data) + packer.flush()
    if f.syntax == "no_meta":
        return data
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    meta = FileMetaDataset()
    meta.update(f.meta)
    meta.TransferSyntaxUID = UID(f.ts_label if f.ts_label is not None else SYNTAX_UIDS[f.syntax])
    write_file_meta_info(head, meta, enforce_standard=False)
    return head.getvalue() + data


def reencoded(f: DicomFile, syntax: str) -> None:
    """Re-encode ``f`` in ``syntax`` now, so later raw edits are written as they are."""
    f.syntax = syntax
    data = encode(f)
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    f.ds = ds
    if syntax != "no_meta":
        f.meta = ds.file_meta


def _resolve(ds: Dataset, path: list[Any]) -> Dataset | None:
    item = ds
    for kw, index in zip(path[::2], path[1::2], strict=True):
        try:
            seq = item.get(kw)
        except Exception:
            return None
        if not isinstance(seq, DicomSequence) or index >= len(seq):
            return None
        item = seq[index]
    return item


def set_raw(item: Dataset, keyword: str, vr: str, raw: bytes) -> None:
    tag = tag_for_keyword(keyword)
    if tag is None:
        return
    short = vr.encode() not in LONG_LENGTH_VRS
    if short and len(raw) > 0xFFFE:
        raise Unmaterializable(f"{len(raw)} bytes do not fit a {vr} element")
    item._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(raw), raw, 0, False, True)


def nested_sequence(keyword: str, depth: int, undefined: bool) -> bytes:
    """The items of a sequence nested ``depth`` levels deep in itself (explicit VR LE),
    built without recursion."""
    tag = tag_for_keyword(keyword) or 0x0040A730
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + b"SQ\0\0"
    item_start, item_end = b"\xfe\xff\x00\xe0", b"\xfe\xff\x0d\xe0\0\0\0\0"
    seq_end = b"\xfe\xff\xdd\xe0\0\0\0\0"
    if undefined:
        level = (item_start + b"\xff\xff\xff\xff" + head + b"\xff\xff\xff\xff")
        tail = seq_end + item_end
        innermost = item_start + b"\xff\xff\xff\xff" + item_end
        return level * (depth - 1) + innermost + tail * (depth - 1)
    parts: list[bytes] = []
    size = 8  # the innermost, empty item
    for _ in range(depth - 1):
        parts.append(head + struct.pack("<I", size))
        parts.append(item_start + struct.pack("<I", size + 12))
        size += 20
    return b"".join(reversed(parts)) + item_start + b"\0\0\0\0"


def apply_dataset_op(f: DicomFile, op: dict[str, Any]) -> None:
    kind = op["op"]
    path = list(op.get("path", []))
    if kind in {"drop_item", "dup_item", "empty_seq"}:
        parent = _resolve(f.ds, path[:-2])
        if parent is None:
            return
        try:
            seq = parent.get(path[-2])
        except Exception:
            return
        if not isinstance(seq, DicomSequence) or path[-1] >= len(seq):
            return
        if kind == "drop_item":
            del seq[path[-1]]
        elif kind == "dup_item":
            seq.append(copy.deepcopy(seq[path[-1]]))
        else:
            setattr(parent, path[-2], DicomSequence([]))
        return
    item = _resolve(f.ds, path)
    if item is None:
        return
    if kind == "set":
        set_raw(item, op["kw"], op["vr"], encode_value(op["vr"], op["value"]))
    elif kind == "delete":
        tag = tag_for_keyword(op["kw"])
        if tag is not None and Tag(tag) in item._dict:
            del item._dict[Tag(tag)]
    elif kind == "nest":
        raw = nested_sequence(op["kw"], int(op["depth"]), bool(op.get("undefined", False)))
        set_raw(item, op["kw"], "SQ", raw)


def _tag_offset(data: bytes, keyword: str) -> tuple[int, int] | None:
    """(offset, size) of the length field of the last element ``keyword`` in ``data``."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    pos = data.rfind(struct.pack("<HH", tag >> 16, tag & 0xFFFF))
    if pos < 0:
        return None
    vr = data[pos + 4:pos + 6]
    if vr.isalpha() and vr.isupper():
        return (pos + 8, 4) if vr in LONG_LENGTH_VRS else (pos + 6, 2)
    return pos + 4, 4


def apply_byte_op(data: bytes, op: dict[str, Any]) -> bytes:
    kind = op["op"]
    buf = bytearray(data)
    n = len(buf)
    if kind == "empty":
        return b""
    if kind == "truncate":
        return bytes(buf[: int(op["at"] * n)])
    if not n:
        return data
    at = min(int(op.get("at", 0.0) * n), n - 1)
    if kind == "flip":
        for i in range(int(op["count"])):
            buf[(at + 7 * i) % n] ^= int(op["xor"])
    elif kind == "overwrite":
        patch = bytes.fromhex(op["hex"])
        buf[at:at + len(patch)] = patch
    elif kind == "length":
        where = _tag_offset(data, op["tag"])
        if where is not None:
            offset, size = where
            value = int(op["length"]) & (0xFFFF if size == 2 else 0xFFFFFFFF)
            buf[offset:offset + size] = struct.pack("<H" if size == 2 else "<I", value)
    return bytes(buf)


def _shift(f: DicomFile, k: int, delta: list[float]) -> None:
    """Move image ``k``'s position (the k-th frame's, in a multi-frame file)."""
    item: Dataset | None = f.ds
    frames = f.ds.get("PerFrameFunctionalGroupsSequence") if "NumberOfFrames" in f.ds else None
    if isinstance(frames, DicomSequence) and frames:
        item = _resolve(f.ds, ["PerFrameFunctionalGroupsSequence", k % len(frames),
                               "PlanePositionSequence", 0])
    if item is None:
        return
    try:
        position = [float(v) for v in item.ImagePositionPatient]
    except Exception:
        return
    moved = [p + d for p, d in zip(position, delta, strict=False)]
    set_raw(item, "ImagePositionPatient", "DS", encode_value("DS", moved))


FUNCTIONAL_GROUPS = {  # where an Enhanced CT keeps what a single-frame CT has at its root
    "ImagePositionPatient": "PlanePositionSequence",
    "ImageOrientationPatient": "PlaneOrientationSequence",
    "PixelSpacing": "PixelMeasuresSequence",
    "SliceThickness": "PixelMeasuresSequence",
    "RescaleSlope": "PixelValueTransformationSequence",
    "RescaleIntercept": "PixelValueTransformationSequence",
}


def _set_attribute(f: DicomFile, k: int, keyword: str, vr: str, value: Any) -> None:
    """Set ``keyword`` where the loader reads it: at the root of a single-frame image, in
    the functional groups of a multi-frame one (frame ``k``'s, or the shared ones)."""
    item: Dataset | None = f.ds
    group = FUNCTIONAL_GROUPS.get(keyword)
    if group is not None and "PerFrameFunctionalGroupsSequence" in f.ds:
        try:
            n = len(f.ds.get("PerFrameFunctionalGroupsSequence") or [])
        except Exception:  # an earlier edit broke it
            n = 0
        per_frame = ["PerFrameFunctionalGroupsSequence", k % max(n, 1), group, 0]
        item = _resolve(f.ds, per_frame) or _resolve(
            f.ds, ["SharedFunctionalGroupsSequence", 0, group, 0])
    if item is not None:
        set_raw(item, keyword, vr, encode_value(vr, value))


def _pick(files: list[DicomFile], k: int) -> DicomFile | None:
    return files[k % len(files)] if files else None


def _special(root: Path, kind: str, files: list[DicomFile]) -> None:
    target = root / f"special_{kind}.dcm"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dangling_link":
        os.symlink(root / "nowhere.dcm", target)
    elif kind == "link_loop":
        os.symlink(root / "special_loop_b.dcm", target)
        os.symlink(target, root / "special_loop_b.dcm")
    elif kind == "dir_named_dcm":
        target.mkdir()
    elif kind == "unreadable":
        target.write_bytes(seeds.ct_series_files()[0])
        target.chmod(0)
    elif kind == "link_to_dev_zero":
        os.symlink("/dev/zero", target)
    elif kind == "link_to_file" and files:
        os.symlink(root / files[0].subdir / files[0].name, target)
    elif kind == "link_to_parent":
        os.symlink(root, root / "special_parent")


def materialize_dicom(case: dict[str, Any], root: Path) -> Path:
    """Write the case's DICOM folder under ``root``; returns the path to open."""
    root.mkdir(parents=True, exist_ok=True)
    sources: list[tuple[str, bytes]] = []
    if case["seed"] in {"series", "both"}:
        sources += [(f"IM{k:05d}.dcm", b) for k, b in enumerate(seeds.ct_series_files())]
    if case["seed"] in {"enhanced", "both"}:
        sources.append(("ENHANCED.dcm", seeds.enhanced_ct_file()))
    files = [DicomFile.read(name, data) for name, data in sources]
    ops = case["ops"]
    for op in [o for o in ops if o["op"] == "encode"]:
        f = _pick(files, op["file"])
        if f is not None:
            reencoded(f, op["syntax"])
    extra: list[dict[str, Any]] = []
    byte_ops: list[dict[str, Any]] = []
    for n, op in enumerate(ops):
        kind = op["op"]
        f = _pick(files, op.get("file", 0))
        if kind in {"truncate", "flip", "overwrite", "length", "empty"}:
            byte_ops.append(op)
        elif kind in {"junk", "special"}:
            extra.append(op)
        elif f is None or kind == "encode":
            continue
        elif kind in {"dup", "dup_same_uid"}:
            twin = DicomFile(f"{Path(f.name).stem}_dup{n}.dcm", copy.deepcopy(f.ds),
                             copy.deepcopy(f.meta), f.subdir, f.syntax, f.ts_label,
                             encodings=f.encodings)
            if kind == "dup":
                new = seeds.uid("duplicate", str(n))
                set_raw(twin.ds, "SOPInstanceUID", "UI", encode_value("UI", new))
                twin.meta.MediaStorageSOPInstanceUID = UID(new)
            files.append(twin)
        elif kind == "drop":
            files.remove(f)
        elif kind == "move":
            f.subdir = op["dir"]
        elif kind == "shift":
            _shift(f, op["file"], op["delta"])
        elif kind == "huge":
            for g in files if op["file"] == -1 else [f]:
                set_raw(g.ds, "Rows", "US", encode_value("US", [op["rows"]]))
                set_raw(g.ds, "Columns", "US", encode_value("US", [op["columns"]]))
                if op["frames"] is not None:
                    set_raw(g.ds, "NumberOfFrames", "IS", encode_value("IS", [op["frames"]]))
        elif kind == "attr":
            vr, value = op["vr_value"]
            for n_file, g in enumerate(files if op["file"] == -1 else [f]):
                _set_attribute(g, op["file"] if op["file"] != -1 else n_file, op["kw"], vr,
                               value)
        elif kind == "pixels":
            set_raw(f.ds, "PixelData", "OW", bytes([op["fill"]]) * int(op["size"]))
        elif kind == "ts":
            f.ts_label = op["uid"]
        else:
            apply_dataset_op(f, op)
    for f in files:
        f.data = encode(f)
    for op in byte_ops:
        f = _pick(files, op["file"])
        if f is not None and f.data is not None:
            f.data = apply_byte_op(f.data, op)
    for f in files:
        folder = root / f.subdir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f.name).write_bytes(f.data or b"")
    for op in extra:
        if op["op"] == "junk":
            path = root / op["name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = bytes.fromhex(op["hex"])
            content = {"random": raw, "dicm": b"\0" * 128 + b"DICM" + raw,
                       "text": b"not an image\n", "empty": b""}[op["kind"]]
            if not path.exists():
                path.write_bytes(content)
        else:
            _special(root, op["kind"], files)
    return root


def materialize_single(case: dict[str, Any], root: Path, seed: bytes, name: str
                       ) -> tuple[Path, bool]:
    """One DICOM file (an SR or a SEG) with the case's edits, and whether it was cut short
    (then it must be refused: pydicom reads a truncated file without an error, and a plan
    or label map missing its end must not pass for a whole one)."""
    root.mkdir(parents=True, exist_ok=True)
    f = DicomFile.read(name, seed)
    for op in case["ops"]:
        if op["op"] == "encode":
            reencoded(f, op["syntax"])
    byte_ops = []
    for op in case["ops"]:
        if op["op"] in {"truncate", "flip", "overwrite", "length", "empty"}:
            byte_ops.append(op)
        elif op["op"] == "ts":
            f.ts_label = op["uid"]
        elif op["op"] != "encode":
            apply_dataset_op(f, op)
    data = encode(f)
    cut = False
    for op in byte_ops:
        before = len(data)
        data = apply_byte_op(data, op)
        cut = cut or (op["op"] == "truncate" and len(data) < before)
    path = root / name
    path.write_bytes(data)
    return path, cut


# ---- JSON -----------------------------------------------------------------------------


def _json_apply(data: Any, op: dict[str, Any]) -> Any:
    path = list(op["path"])
    if not path:
        if op["op"] == "replace":
            return op["value"]
        if op["op"] == "wrap":
            return _wrapped(data, int(op["depth"]))
        if op["op"] == "add" and isinstance(data, dict):
            data[op["key"]] = op["value"]
        return data
    parent = data
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return data
    last = path[-1]
    try:
        if op["op"] == "replace":
            parent[last] = op["value"]
        elif op["op"] == "delete":
            del parent[last]
        elif op["op"] == "wrap":
            parent[last] = _wrapped(parent[last], int(op["depth"]))
        elif op["op"] == "add" and isinstance(parent[last], dict):
            parent[last][op["key"]] = op["value"]
    except (KeyError, IndexError, TypeError):
        pass
    return data


def _wrapped(value: Any, depth: int) -> Any:
    """``value`` inside ``depth`` nested lists (as a marker: written out as text, since
    json.dumps itself would recurse that deep)."""
    return {"__wrapped__": depth, "value": value}


def _dumps(data: Any) -> str:
    """JSON text; a ``__wrapped__`` marker becomes that many brackets around its value."""
    import json

    if isinstance(data, dict) and set(data) == {"__wrapped__", "value"}:
        depth = int(data["__wrapped__"])
        return "[" * depth + _dumps(data["value"]) + "]" * depth
    if isinstance(data, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_dumps(v)}"
                               for k, v in data.items()) + "}"
    if isinstance(data, list):
        return "[" + ", ".join(_dumps(v) for v in data) + "]"
    return json.dumps(data, ensure_ascii=False)


def materialize_json(case: dict[str, Any], root: Path, seed_text: str) -> Path:
    import json

    root.mkdir(parents=True, exist_ok=True)
    if case["kind"] == "random":
        data = case["random"]
    else:
        data = json.loads(seed_text)
        for op in case["ops"]:
            data = _json_apply(data, op)
    raw = _dumps(data).encode("utf-8", "surrogatepass")
    for op in case["text_ops"]:
        if op["op"] == "prefix":
            raw = bytes.fromhex(op["hex"]) + raw
        elif op["op"] == "number":
            raw = raw.replace(b"1", op["text"].encode(), 1)
        else:
            raw = apply_byte_op(raw, op)
    path = root / case["name"]
    path.write_bytes(raw)
    return path
