"""A fuzz case → files on disk → the reader's outcome, judged against the contract.

The contract (the issue's wording): for any input, a reader returns a valid result or
raises a `VertebroPlanError` subclass (or an OSError for an unreadable path) whose message
names the file, and it never hangs. An outcome is one of:

- ``accepted``: a valid result (a 3-D int16 volume with a finite, sane affine; a plan; a
  label map on the CT's grid);
- ``refused``: a `VertebroPlanError` (or OSError) naming the file or folder;
- failures: ``uncaught`` (any other exception, including numpy RuntimeWarnings about NaN
  arithmetic, which are raised as errors while a case runs), ``unnamed`` (a domain error
  whose message does not say which file), ``invalid`` (a result that is not valid),
  ``hang`` (over the time limit) and ``crash`` (the worker process died).
"""

from __future__ import annotations

import copy
import io
import math
import os
import shutil
import signal
import struct
import sys
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
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

FAILURES = ("uncaught", "unnamed", "invalid", "hang", "crash")
STATUSES = ("accepted", "refused", *FAILURES, "skipped")
TIME_LIMIT_S = 5.0
MAX_AFFINE_MM = 1e7  # ten times the loader's bound on a coordinate: past it, corrupt


@dataclass(frozen=True)
class Outcome:
    """What one case did; ``signature`` groups failures that are one bug."""

    status: str
    detail: str = ""
    signature: str = ""
    trace: str = field(default="", repr=False)

    @property
    def failed(self) -> bool:
        return self.status in FAILURES


class CaseTimeout(BaseException):
    """Raised by the per-case alarm; a BaseException so no ``except Exception`` eats it."""


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


# ---- running and judging ----------------------------------------------------------------


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `CaseTimeout` in the main thread after ``seconds`` (SIGALRM; POSIX)."""
    if not seconds:
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        if frame is not None and "hypothesis" in frame.f_code.co_filename:
            # inside hypothesis's gc callback, where an exception is only printed and
            # ignored: try again as soon as the code under test runs
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            return
        raise CaseTimeout(f"over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def memory_headroom(megabytes: int | None) -> Iterator[None]:
    """Limit this process's address space to its present size plus ``megabytes`` while a
    case runs (Linux; nothing elsewhere), so that a reader believing a header that claims
    a terabyte image fails with MemoryError instead of taking the machine down. The long
    run limits its workers for good instead (``--memory-mb``)."""
    try:
        import resource

        pages = int(Path("/proc/self/statm").read_text().split()[0])
        size = pages * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError, IndexError):
        megabytes = None
    if not megabytes:
        yield
        return
    limit = size + megabytes * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        yield  # already limited at least as tightly
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _check_volume(volume: Any) -> str | None:
    from planning.volume import Volume

    if not isinstance(volume, Volume):
        return f"returned a {type(volume).__name__}, not a Volume"
    a = volume.array
    if a.ndim != 3 or a.dtype != np.int16 or min(a.shape) < 1:
        return f"array {a.dtype} {a.shape}"
    if volume.modality == "CT" and a.shape[0] < 2:
        return f"a CT of {a.shape[0]} slice(s)"
    affine = volume.affine_lps
    if not np.all(np.isfinite(affine)) or np.abs(affine).max() > MAX_AFFINE_MM:
        return f"affine not finite or absurd: {affine.tolist()}"
    spacing = volume.spacing_mm
    if np.any(spacing <= 0):
        return f"spacing {spacing.tolist()}"
    return None


def _check_plan(plan: Any) -> str | None:
    from planning.plan import Plan

    if not isinstance(plan, Plan):
        return f"returned a {type(plan).__name__}, not a Plan"
    for t in plan.trajectories:
        if not all(math.isfinite(c) for c in (*t.entry_lps, *t.target_lps)):
            return f"{t.label}: non-finite point"
    return None


def _check_seg(result: Any, ct: Any) -> str | None:
    from planning.anatomy.label_tables import LabelTable

    if not isinstance(result, tuple) or len(result) != 2:
        return f"returned {type(result).__name__}"
    volume, table = result
    if not isinstance(table, LabelTable):
        return "no LabelTable"
    problem = _check_volume(volume)
    if problem:
        return problem
    if volume.array.shape != ct.array.shape:
        return f"label map {volume.array.shape} on a CT of {ct.array.shape}"
    return None


@dataclass(frozen=True)
class Prepared:
    """A materialized case: what to call, what its error messages must name."""

    run: Callable[[], str | None]  # returns a validity problem, or None
    names: tuple[str, ...]
    must_refuse: str = ""  # why accepting this input would be wrong ("" if it may pass)


def _regular_files(root: Path) -> list[Path]:
    out = []
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            p = Path(folder) / name
            if p.is_file() and not p.is_symlink():
                out.append(p)
    return sorted(out)


def prepare(case: dict[str, Any], root: Path) -> Prepared:
    """Write the case's files under ``root`` and say how to read them."""
    target = case["target"]
    if target == "dicom":
        from planning.io import load_path
        from planning.io.dicom_series import load_series, scan_folder

        folder = materialize_dicom(case, root / "ct_case")
        names = (str(folder), folder.name, *(p.name for p in _regular_files(folder)))
        entry = case["entry"]

        def run() -> str | None:
            if entry == "scan":
                scan = scan_folder(folder)
                for info in scan.series:
                    problem = _check_volume(load_series(info))
                    if problem:
                        return problem
                return None
            if entry == "file":
                files = _regular_files(folder)
                return _check_volume(load_path(files[0] if files else folder))
            if entry == "series_uid":
                return _check_volume(load_path(folder, series_uid=seeds.SERIES_UID))
            return _check_volume(load_path(folder))

        return Prepared(run, names)
    if target in {"plan", "markups"}:
        from planning.interop.any_plan import load_any_plan

        seed = seeds.plan_json() if target == "plan" else seeds.markups_json()
        path = materialize_json(case, root, seed)
        return Prepared(lambda: _check_plan(load_any_plan(path)), (path.name,))
    if target == "sr":
        from planning.interop.any_plan import load_any_plan

        path, cut = materialize_single(case, root, seeds.sr_file(), "plan_sr.dcm")
        return Prepared(lambda: _check_plan(load_any_plan(path)), (path.name,),
                        "a truncated SR was accepted" if cut else "")
    if target == "seg":
        from planning.interop.labels_from_seg import read_seg_labels

        ct = seeds.seed_ct()
        path, cut = materialize_single(case, root, seeds.seg_file(), "labels_seg.dcm")
        return Prepared(lambda: _check_seg(read_seg_labels(path, ct), ct), (path.name,),
                        "a truncated SEG was accepted" if cut else "")
    raise KeyError(target)


def _signature(exc: BaseException) -> str:
    """Exception type + innermost project frame + innermost frame: one bug, one signature."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/planning/" in f.filename]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].name}" if ours else "-"
    inner = f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else "-"
    return f"{type(exc).__name__}@{where}|{inner}"


def judge(prepared: Prepared, time_limit_s: float | None = TIME_LIMIT_S,
          headroom_mb: int | None = None) -> Outcome:
    """Run a prepared case under the time (and memory) limit and classify what it did."""
    from planning.errors import VertebroPlanError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # NaN arithmetic is a finding
            warnings.simplefilter("ignore", UserWarning)  # pydicom's notes on odd values
            # numpy's own defaults made explicit: overflow, invalid and divide warn (and so
            # fail the case); underflow to zero is ordinary arithmetic
            with time_limit(time_limit_s), memory_headroom(headroom_mb), \
                    np.errstate(over="warn", invalid="warn", divide="warn", under="ignore"):
                problem = prepared.run()
    except CaseTimeout as exc:
        return Outcome("hang", str(exc), f"hang@{_signature(exc).split('@', 1)[1]}",
                       traceback.format_exc())
    except (VertebroPlanError, OSError) as exc:
        message = str(exc)
        if any(name and name in message for name in prepared.names):
            return Outcome("refused", f"{type(exc).__name__}: {message}")
        return Outcome("unnamed", f"{type(exc).__name__}: {message}",
                       f"unnamed:{_signature(exc)}", traceback.format_exc())
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return Outcome("uncaught", f"{type(exc).__name__}: {str(exc)[:300]}",
                       _signature(exc), traceback.format_exc())
    problem = problem or prepared.must_refuse
    if problem:
        return Outcome("invalid", problem, f"invalid:{problem.split(':')[0][:40]}")
    return Outcome("accepted")


PREPARE_FRAMES = 600
"""Python frames the harness may use to write one case (a real seed needs well under 100)."""


def _with_little_recursion(fn: Callable[[], Prepared]) -> Prepared:
    """``fn()`` with the recursion limit only `PREPARE_FRAMES` above the current depth.

    Writing a case re-encodes sequences nested a thousand deep, and pydicom recurses per
    level, wrapping each level's error with the formatted traceback of the one below. Under
    hypothesis's raised recursion limit that grows without bound: the process ran out of C
    stack (a segfault) or of memory (the OOM killer) on an SR seed with nested containers.
    Stopped early, the RecursionError is cheap and the case is skipped as unwritable. Only
    the harness's writing runs so: the readers under test keep the normal limit.
    """
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + PREPARE_FRAMES)
    try:
        return fn()
    finally:
        sys.setrecursionlimit(previous)


def run_case(case: dict[str, Any], root: Path, time_limit_s: float | None = TIME_LIMIT_S,
             headroom_mb: int | None = None) -> Outcome:
    """Materialize ``case`` under ``root`` (emptied first and after) and judge it."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    try:
        try:
            prepared = _with_little_recursion(lambda: prepare(case, root))
        except Exception as exc:
            return Outcome("skipped", f"cannot write the case: {type(exc).__name__}: {exc}")
        return judge(prepared, time_limit_s, headroom_mb)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def save_inputs(case: dict[str, Any], root: Path, out: Path) -> None:
    """Materialize ``case`` again into ``out`` for a crash report (regular files only:
    special files such as FIFOs are listed, not copied)."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / "case.json").write_text(json.dumps(case, indent=1, ensure_ascii=False))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    try:
        prepare(case, root)
        specials = []
        for folder, _dirs, files in os.walk(root):
            for name in files:
                src = Path(folder) / name
                rel = src.relative_to(root)
                if src.is_symlink() or not src.is_file():
                    specials.append(f"{rel} ({'link' if src.is_symlink() else 'special'})")
                    continue
                dst = out / "input" / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        if specials:
            (out / "specials.txt").write_text("\n".join(specials) + "\n")
    except Exception as exc:
        (out / "inputs-not-saved.txt").write_text(repr(exc))
    finally:
        shutil.rmtree(root, ignore_errors=True)
