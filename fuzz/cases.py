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

import math
import os
import shutil
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fuzz import seeds
from fuzz.materialize import (
    materialize_dicom,
    materialize_json,
    materialize_single,
)

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
