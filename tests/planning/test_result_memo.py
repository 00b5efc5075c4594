"""The memo of derived results: by content, never by identity; shared results read-only;
the caller's own arrays untouched; a budget that holds; results shared between processes
through files, per version of the code."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from planning.result_memo import ResultFiles, ResultMemo, fingerprint, freeze, size_of
from planning.volume import Volume


@dataclasses.dataclass
class _Made:
    values: np.ndarray
    given: np.ndarray


def _counting(memo: ResultMemo, made: list[int]):
    def make(a: np.ndarray) -> _Made:
        made.append(1)
        return _Made(a * 2, a)
    return lambda a: memo.remembered("double", (a,), lambda: make(a))


def test_same_content_is_one_result_other_content_another() -> None:
    memo, made = ResultMemo(10**8), []
    double = _counting(memo, made)
    a = np.arange(12, dtype=np.int16).reshape(3, 4)
    first = double(a)
    again = double(a.copy())  # another object, the same content: the result is kept
    assert again is first and len(made) == 1 and memo.hits == 1
    b = a.copy()
    b[2, 3] += 1  # one voxel differs: made again
    assert double(b) is not first and len(made) == 2
    assert double(a.astype(np.int32)) is not first, "the dtype is part of the content"
    assert double(a.reshape(4, 3)) is not first, "so is the shape"


def test_a_result_is_read_only_and_the_callers_arrays_are_not() -> None:
    memo = ResultMemo(10**8)
    a = np.ones((4, 4), dtype=np.float32)
    made = memo.remembered("double", (a,), lambda: _Made(a * 2, a))
    assert not made.values.flags.writeable
    with pytest.raises(ValueError):
        made.values[0, 0] = 7
    assert a.flags.writeable and made.given is a, "the caller's input stays the caller's"


def test_the_budget_holds_least_recently_used_first_out() -> None:
    memo = ResultMemo(3 * 8000 + 100)
    arrays = [np.full(1000, i, dtype=np.float64) for i in range(4)]  # 8000 bytes each
    for a in arrays[:3]:
        memo.remembered("copy", (a,), lambda a=a: a.copy())
    memo.remembered("copy", (arrays[0],), lambda: pytest.fail("should be kept"))  # now newest
    memo.remembered("copy", (arrays[3],), lambda: arrays[3].copy())  # pushes out arrays[1]
    assert len(memo) == 3 and memo.held_bytes <= memo.budget_bytes
    made = []
    memo.remembered("copy", (arrays[1],), lambda: made.append(1) or arrays[1].copy())
    assert made == [1], "the least recently used result went first"
    huge = ResultMemo(100)
    assert huge.remembered("copy", (arrays[0],), lambda: arrays[0].copy()).size == 1000
    assert len(huge) == 0, "a result over the whole budget is returned, not kept"


def test_what_cannot_be_fingerprinted_is_made_every_time() -> None:
    memo, made = ResultMemo(10**8), []
    thing = object()
    for _ in range(2):
        memo.remembered("x", (thing,), lambda: made.append(1) or np.zeros(3))
    assert len(made) == 2 and len(memo) == 0


def test_an_empty_budget_turns_the_memo_off() -> None:
    memo, made = ResultMemo(0), []
    double = _counting(memo, made)
    a = np.arange(5)
    double(a)
    double(a)
    assert len(made) == 2


def test_fingerprints_see_fields_and_mappings() -> None:
    v = Volume(np.zeros((2, 3, 4), np.int16), np.eye(4))
    w = Volume(np.zeros((2, 3, 4), np.int16), np.diag([1.0, 1.0, 2.0, 1.0]))
    assert fingerprint(v) == fingerprint(Volume(np.zeros((2, 3, 4), np.int16), np.eye(4)))
    assert fingerprint(v) != fingerprint(w), "the affine is content"
    assert fingerprint({"a": 1, "b": 2}) != fingerprint({"a": 1, "b": 3})
    assert fingerprint((1, 2)) != fingerprint((2, 1))


def test_size_counts_shared_memory_once() -> None:
    a = np.zeros(1000, dtype=np.float64)
    assert size_of(a) == 8000
    assert size_of((a, a[10:], a)) == size_of((a,)), "a view or a repeat adds nothing"
    frozen = freeze([np.zeros(10, np.float32)])
    assert not frozen[0].flags.writeable


def test_the_check_context_of_a_ct_read_again_is_the_one_made(shared_demo_ct) -> None:
    """The window, the export and the CLI ask for the same CT's context: made once, and
    each caller still gets its own anatomy and CT in it."""
    from planning.anatomy.from_demo import anatomy_from_demo_truth
    from planning.checks import CheckContext

    volume, truth = shared_demo_ct
    first = CheckContext.build(volume, anatomy_from_demo_truth(truth))
    again_volume = dataclasses.replace(volume, array=volume.array.copy())
    again_anatomy = anatomy_from_demo_truth(truth)
    again = CheckContext.build(again_volume, again_anatomy)
    assert again.canal is first.canal and again.evidence is first.evidence
    assert again.anatomy is again_anatomy and again.hu is again_volume.array
    assert again_volume.array.flags.writeable, "the caller's CT is not made read-only"


def test_a_digest_is_kept_only_for_arrays_nobody_can_change() -> None:
    """The digest of a read-only array is kept (the window asks on every edit); a read-only
    view of a writeable array is hashed every time, so a change through the array shows."""
    base = np.arange(100, dtype=np.int16)
    view = base[:]
    view.flags.writeable = False
    before = fingerprint(view)
    base[5] = -1
    assert fingerprint(view) != before
    frozen = np.arange(100, dtype=np.int16)
    frozen.flags.writeable = False
    assert fingerprint(frozen) == fingerprint(frozen.copy())


def test_a_result_written_by_one_process_is_read_by_another(tmp_path) -> None:
    """Another process (a fresh interpreter) finds the result in the folder instead of
    making it; the copy it reads is read-only like one made in memory."""
    first = ResultMemo(10**8, ResultFiles(tmp_path))
    a = np.arange(20, dtype=np.float32)
    made = first.remembered("plain", (a,), lambda: {"values": a * 3, "label": "tripled"})
    assert len(list(first.files.folder.glob("plain-*.pickle"))) == 1
    script = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from planning.result_memo import ResultMemo, ResultFiles\n"
        "memo = ResultMemo(10**8, ResultFiles(Path(sys.argv[1])))\n"
        "a = np.arange(20, dtype=np.float32)\n"
        "got = memo.remembered('plain', (a,), lambda: sys.exit('made again'))\n"
        "assert not got['values'].flags.writeable\n"
        "print(memo.file_hits, got['label'], float(got['values'].sum()))\n")
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "tripled", str(float(made["values"].sum()))]


def test_files_are_per_version_of_the_code_and_other_content_misses(tmp_path, monkeypatch
                                                                     ) -> None:
    a = np.ones(5)
    ResultMemo(10**8, ResultFiles(tmp_path)).remembered("kind", (a,), lambda: a * 2)
    made: list[int] = []
    fresh = ResultMemo(10**8, ResultFiles(tmp_path))
    fresh.remembered("kind", (a + 1,), lambda: made.append(1) or a)  # other content
    assert made == [1]
    monkeypatch.setattr("planning.result_memo.code_version", lambda: "edited-code")
    edited = ResultMemo(10**8, ResultFiles(tmp_path))
    edited.remembered("kind", (a,), lambda: made.append(2) or a * 2)
    assert made == [1, 2] and edited.file_hits == 0, "older code's results are never read"


def test_a_torn_file_is_made_again_and_a_result_holding_an_input_is_not_written(tmp_path
                                                                                  ) -> None:
    a = np.arange(6.0)
    files = ResultFiles(tmp_path)
    ResultMemo(10**8, files).remembered("kind", (a,), lambda: a * 2)
    (path,) = files.folder.glob("kind-*.pickle")
    path.write_bytes(path.read_bytes()[:10])
    again = ResultMemo(10**8, files).remembered("kind", (a,), lambda: a * 4)
    assert np.array_equal(again, a * 4), "the torn file was ignored and the result made"
    assert ResultMemo(10**8, files).remembered("kind", (a,), pytest.fail).sum() == a.sum() * 4
    ResultMemo(10**8, files).remembered("view", (a,), lambda: _Made(a * 2, a))
    assert not list(files.folder.glob("view-*")), "the caller's own array went to a file"
    assert not list(files.folder.glob("*.part"))
