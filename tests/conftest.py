"""Fixtures shared by every test package (keep this small: builders live next to their tests)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["orthanc_pacs"]  # the real test PACS (Orthanc), started only when asked for

_USER_FOLDER_OWNED = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """No test writes the user's own study cache or case list, whichever folder it is in
    (tests/app gives each test its own; this covers every other window a test opens)."""
    import os
    import tempfile

    # the tests run as the app does, with the memo of derived results, whatever imports
    # `bench` (which turns it off for its timings) and whichever child process they start
    from planning.result_memo import DEFAULT_BUDGET_MB

    os.environ.setdefault("VERTEBROPLAN_MEMO_MB", str(DEFAULT_BUDGET_MB))
    if "VERTEBROPLAN_TEST_USER" not in os.environ:  # the first process of the run (not a worker)
        base = tempfile.mkdtemp(prefix="vertebroplan-test-user-")
        os.environ["VERTEBROPLAN_TEST_USER"] = base
        config.stash[_USER_FOLDER_OWNED] = base
        os.environ.setdefault("VERTEBROPLAN_CACHE", os.path.join(base, "study-cache"))
        os.environ.setdefault("VERTEBROPLAN_DATA", os.path.join(base, "user-data"))
        # one folder of results for the run's workers and child processes (each made the
        # demo CT's anatomy, check context and surface again)
        os.environ.setdefault("VERTEBROPLAN_RESULTS_DIR", os.path.join(base, "results"))
    from planning.result_memo import MEMO, ResultFiles

    if MEMO.files is None:  # imported above, before the folder was named
        MEMO.files = ResultFiles(Path(os.environ["VERTEBROPLAN_RESULTS_DIR"]))


def pytest_unconfigure(config: pytest.Config) -> None:
    """The process that made the run's user folder removes it (the workers share it)."""
    import os
    import shutil

    owned = config.stash.get(_USER_FOLDER_OWNED, None)
    if owned:
        shutil.rmtree(owned, ignore_errors=True)
        os.environ.pop("VERTEBROPLAN_TEST_USER", None)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so a failing test fails the same way every time."""
    return np.random.default_rng(20240314)


def _read_only(obj: object) -> None:
    """Make every array held by a dataclass (one level down) read-only, so a test that
    changed the shared demo CT in place fails at once instead of spoiling the next one."""
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            _read_only(value)


@pytest.fixture(scope="session")
def shared_demo_ct():
    """The built-in demo CT and its truth, made once per test run (about 4 s each time):
    read-only, shared by every test that only reads it."""
    from planning.demo import generate_demo_ct

    volume, truth = generate_demo_ct()
    _read_only(volume)
    _read_only(truth)
    return volume, truth
