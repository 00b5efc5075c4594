"""Results derived from a CT, made once per content in a process and then reused.

Why: the window, the export, a training case, the CLI and a second window each ask for the
same check context, vessel mask, bone surface, fracture measurements and pedicles of the
same CT, and each of those costs 0.5–3 s. Before this, the window built the check context
once when the anatomy came and the export built it again; opening the CT again (a recent
file, a recovered session, a training case on a CT just planned) redid all of it.

Keys are the *content* of the inputs (XXH3-128 of every array, at ~30 GB/s: 5 ms for a
512 × 512 × 300 CT, within a SHA-256 of the whole), never their identity: a CT read again
from its files finds its results, and a result can never be handed to other data, even if
an array was changed in place. Results are kept up to a memory budget (least recently used
first out), and arrays in them are made read-only, because every caller now shares them.

Only deterministic functions of their inputs belong here: a remembered result is the result
the function would have returned again. What reports progress reports its end at once.

Processes can share their results through files (`ResultFiles`, ``VERTEBROPLAN_RESULTS_DIR``):
off unless that names a directory. The test suite turns it on for its two workers and ~20
child processes, which each made the same demo CT's anatomy, context and surface again.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import os
import pickle
import re
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import xxhash

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_BUDGET_MB = 1024.0
"""What the remembered results may hold (``VERTEBROPLAN_MEMO_MB`` changes it; 0 turns the
memo off). A 512 × 512 × 300 CT's check context, surface and vessel mask are ~300 MB."""


class NotRemembered(TypeError):
    """An input the memo cannot fingerprint (an object that is not data): the result is
    then made, and not kept."""


def fingerprint(*parts: object) -> bytes:
    """A SHA-256 digest of the content of ``parts``: numpy arrays (dtype, shape and their
    bytes' XXH3-128), dataclasses (every field), mappings, sequences, enums and plain values.

    Raises `NotRemembered` for anything else, rather than hashing an object's identity."""
    h = hashlib.sha256()
    _feed(h, parts, 0)
    return h.digest()


def _feed(h: Any, value: object, depth: int) -> None:
    if depth > 8:
        raise NotRemembered("inputs nested too deeply to fingerprint")
    if isinstance(value, np.ndarray):
        h.update(f"a{value.dtype.str}{value.shape}".encode())
        h.update(_array_digest(value))
    elif value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, enum.Enum):
        h.update(f"e{type(value).__qualname__}.{value.name};".encode())
    elif isinstance(value, np.generic):
        h.update(f"s{value.dtype.str}:{value.item()!r};".encode())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(f"d{type(value).__qualname__}(".encode())
        for f in dataclasses.fields(value):
            h.update(f.name.encode())
            _feed(h, getattr(value, f.name), depth + 1)
        h.update(b")")
    elif isinstance(value, Mapping):
        h.update(f"m{len(value)}{{".encode())
        for k, v in value.items():
            _feed(h, k, depth + 1)
            _feed(h, v, depth + 1)
        h.update(b"}")
    elif isinstance(value, (tuple, list)):
        h.update(f"l{len(value)}[".encode())
        for v in value:
            _feed(h, v, depth + 1)
        h.update(b"]")
    else:
        raise NotRemembered(f"cannot fingerprint a {type(value).__name__}")


_DIGESTS: dict[int, bytes] = {}
_DIGESTS_LOCK = threading.Lock()


def _array_digest(a: np.ndarray) -> bytes:
    """XXH3-128 of ``a``'s bytes; kept for an array nobody can change (read-only, and so is
    every array it is a view of), which is what every remembered result and the shared
    demo CT hold: the window asks for the same anatomy's results on every edit.

    Why XXH3 and not SHA-256: the key guards against accidents (two different images),
    not against an attacker, and 128 bits make an accidental collision as unlikely as
    SHA-256's; it hashes 157 MB (512 × 512 × 300 int16) in 5 ms where SHA-256 took 87 ms,
    and the anatomy's masks are hashed on every look-up (19 s of the test suite's CPU)."""
    frozen = _unchangeable(a)
    if frozen:
        with _DIGESTS_LOCK:
            known = _DIGESTS.get(id(a))
        if known is not None:
            return known
    digest = xxhash.xxh3_128(np.ascontiguousarray(a).view(np.uint8).data).digest()
    if frozen:
        with _DIGESTS_LOCK:
            _DIGESTS[id(a)] = digest
        weakref.finalize(a, _forget_digest, id(a))
    return digest


def _forget_digest(key: int) -> None:
    with _DIGESTS_LOCK:
        _DIGESTS.pop(key, None)


def _unchangeable(a: np.ndarray) -> bool:
    base: object = a
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    return base is None or isinstance(base, bytes)


def _leaves(value: object, depth: int = 0, seen: set[int] | None = None
            ) -> Iterator[object]:
    """Every array and other non-container object reachable from ``value`` through
    dataclass fields, mappings and sequences, each once (what `freeze` and `size_of` walk)."""
    seen = set() if seen is None else seen
    if depth > 8 or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _leaves(getattr(value, f.name), depth + 1, seen)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v, depth + 1, seen)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _leaves(v, depth + 1, seen)
    else:
        yield value


def freeze(value: T, inputs: tuple[object, ...] = ()) -> T:
    """``value`` with every array reachable through dataclasses, mappings and sequences made
    read-only (a shared result that a caller changed would change it for every other),
    except arrays that share memory with ``inputs``': those are the caller's own."""
    _freeze(value, inputs)
    return value


def _freeze(value: object, inputs: tuple[object, ...]) -> bool:
    """`freeze` in place; whether an array of ``value`` was left as (part of) one of the
    ``inputs``'. Such a result is not written to a file, where it would lose that link (and
    copy the CT to disk)."""
    theirs = [a for a in _leaves(inputs) if isinstance(a, np.ndarray)]
    holds = False
    for leaf in _leaves(value):
        if isinstance(leaf, np.ndarray):
            if any(np.may_share_memory(leaf, b) for b in theirs):
                holds = True
            else:
                leaf.flags.writeable = False
    return holds


def size_of(value: object) -> int:
    """The bytes ``value``'s arrays (and KD-trees) keep alive, counted once each (an array
    of the inputs too: a kept result keeps it alive after its CT is closed)."""
    owners: set[int] = set()
    total = 0
    for leaf in _leaves(value):
        if isinstance(leaf, np.ndarray):
            owner = leaf if leaf.base is None else leaf.base  # a view's memory is its base's
            if id(owner) not in owners:
                owners.add(id(owner))
                total += int(getattr(owner, "nbytes", leaf.nbytes))
        elif isinstance(data := getattr(leaf, "data", None), np.ndarray):
            total += 3 * int(data.nbytes)  # scipy's cKDTree: its points, about thrice over
    return total


FILE_LIMIT_BYTES = 256 * 1024 * 1024
"""The largest result written to a file; a larger one is quicker made again than read."""


def code_version() -> str:
    """A digest of every source file of `planning` (its path and bytes).

    Why: a result file is only valid for the code that made it. Any edit to the domain
    names another folder, so no result of older code is ever read."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


class ResultFiles:
    """Remembered results as pickle files in a folder that several processes share.

    Pickle runs code when it is read: the folder must be the user's own (a temporary folder
    of the test run, say), never one that others can write. A file that cannot be read is
    ignored and made again; writes go to a temporary name first, so a reader never sees half
    a file, and two processes making the same result both write the same bytes.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder) / code_version()

    def _path(self, kind: str, digest: bytes) -> Path:
        return self.folder / f"{re.sub(r'[^A-Za-z0-9]+', '-', kind)}-{digest.hex()}.pickle"

    def load(self, kind: str, digest: bytes) -> tuple[bool, object]:
        """(True, the result) when a file holds it, else (False, None)."""
        path = self._path(kind, digest)
        try:
            with path.open("rb") as fh:
                return True, pickle.load(fh)
        except FileNotFoundError:
            return False, None
        except Exception as exc:  # a torn or foreign file: made again and overwritten
            log.debug("result file %s unreadable (%s): made again", path.name, exc)
            return False, None

    def store(self, kind: str, digest: bytes, value: object) -> None:
        path = self._path(kind, digest)
        part: Path | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=self.folder, suffix=".part")
            part = Path(name)
            with os.fdopen(handle, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(part, path)
        except Exception as exc:  # no room, no rights, or a result pickle cannot hold
            log.debug("result %s not written to a file (%s)", kind, exc)
            if part is not None:
                part.unlink(missing_ok=True)


class ResultMemo:
    """Results by (kind, content of the inputs), least recently used first out of a budget.

    Thread-safe: the window's jobs ask from worker threads. Two threads asking for the same
    result at once both make it (the second keeps the first's), rather than one waiting on
    the other where it could not be cancelled.
    """

    def __init__(self, budget_bytes: int, files: ResultFiles | None = None) -> None:
        self.budget_bytes = budget_bytes
        self.files = files
        self._items: OrderedDict[tuple[str, bytes], tuple[object, int]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.file_hits = 0

    def remembered(self, kind: str, inputs: tuple[object, ...], make: Callable[[], T]) -> T:
        """``make()``, or the result it gave for inputs of the same content before."""
        if self.budget_bytes <= 0:
            return make()
        try:
            key = (kind, fingerprint(*inputs))
        except NotRemembered:
            return make()
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return item[0]  # type: ignore[return-value]
            self.misses += 1
        value, to_file = self._from_file_or_made(key, inputs, make)
        size = size_of(value)
        if to_file and self.files is not None and size <= FILE_LIMIT_BYTES:
            self.files.store(*key, value)
        if size > self.budget_bytes:
            return value
        with self._lock:
            if key in self._items:
                return self._items[key][0]  # type: ignore[return-value]
            self._items[key] = (value, size)
            self._held += size
            while self._held > self.budget_bytes:
                _, (_, freed) = self._items.popitem(last=False)
                self._held -= freed
        return value

    def _from_file_or_made(self, key: tuple[str, bytes], inputs: tuple[object, ...],
                           make: Callable[[], T]) -> tuple[T, bool]:
        """(the result, read-only, from the files or made; whether to write it to a file)."""
        if self.files is not None:
            found, value = self.files.load(*key)
            if found:
                self.file_hits += 1
                return freeze(value, inputs), False  # type: ignore[return-value]
        made = make()
        holds_inputs = _freeze(made, inputs)
        return made, self.files is not None and not holds_inputs

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._held = 0

    @property
    def held_bytes(self) -> int:
        return self._held

    def __len__(self) -> int:
        return len(self._items)


def _budget_from_environment() -> int:
    raw = os.environ.get("VERTEBROPLAN_MEMO_MB", "")
    try:
        mb = float(raw) if raw.strip() else DEFAULT_BUDGET_MB
    except ValueError:
        mb = DEFAULT_BUDGET_MB
    return int(max(0.0, mb) * 1024 * 1024)


def _files_from_environment() -> ResultFiles | None:
    folder = os.environ.get("VERTEBROPLAN_RESULTS_DIR", "").strip()
    return ResultFiles(Path(folder)) if folder else None


MEMO = ResultMemo(_budget_from_environment(), _files_from_environment())
"""The process's one memo (the window, its jobs, the export and the CLI share it)."""
