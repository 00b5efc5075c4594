"""The study cache on its own: whole files only, least recently used out first, pinned and
in-use studies kept, half-written files swept."""

from __future__ import annotations

import os

import pytest

from planning.pacs.cache import CACHE_ENV, StudyCache, default_cache_root
from planning.pacs.node import PacsError


def _study(cache: StudyCache, uid: str, kb: int, last_used: float) -> None:
    cache.write_file(uid, f"{uid}.1", f"{uid}.1.1", b"x" * (kb * 1024))
    (cache.study_dir(uid) / ".last-used").write_text(f"{last_used}\n")


def test_least_recently_used_go_first_until_the_cache_fits(tmp_path) -> None:
    cache = StudyCache(tmp_path, limit_bytes=250 * 1024)
    for uid, used in (("1.1", 300.0), ("1.2", 100.0), ("1.3", 200.0), ("1.4", 400.0)):
        _study(cache, uid, 100, used)
    assert [s.study_uid for s in cache.studies()] == ["1.2", "1.3", "1.1", "1.4"]
    assert cache.evict() == ["1.2", "1.3"]
    assert sorted(s.study_uid for s in cache.studies()) == ["1.1", "1.4"]
    assert cache.size_bytes() <= 250 * 1024


def test_pinned_kept_and_protected_studies_are_never_evicted(tmp_path) -> None:
    cache = StudyCache(tmp_path, limit_bytes=150 * 1024)
    for uid, used in (("2.1", 1.0), ("2.2", 2.0), ("2.3", 3.0), ("2.4", 4.0)):
        _study(cache, uid, 100, used)
    cache.pin("2.1")  # a plan on it is not saved
    removed = cache.evict(keep={"2.2"}, protected=lambda uid: uid == "2.3")
    assert removed == ["2.4"]
    assert sorted(s.study_uid for s in cache.studies()) == ["2.1", "2.2", "2.3"]
    cache.unpin("2.1")
    assert cache.evict(keep={"2.2"}) == ["2.1", "2.3"]


def test_touch_makes_a_study_the_most_recent(tmp_path) -> None:
    cache = StudyCache(tmp_path)
    _study(cache, "3.1", 1, 10.0)
    _study(cache, "3.2", 1, 20.0)
    cache.touch("3.1")
    assert [s.study_uid for s in cache.studies()] == ["3.2", "3.1"]


def test_partial_files_are_not_images_and_are_swept(tmp_path) -> None:
    cache = StudyCache(tmp_path)
    cache.write_file("4.1", "4.1.1", "4.1.1.1", b"whole")
    folder = cache.series_dir("4.1", "4.1.1")
    (folder / ".4.1.1.2.dcm.k3x9q2.tmp").write_bytes(b"half")  # as atomic_open names it
    assert cache.present("4.1", "4.1.1") == {"4.1.1.1"}
    assert cache.sweep_partials() == 1
    assert sorted(p.name for p in folder.iterdir()) == ["4.1.1.1.dcm"]


@pytest.mark.parametrize("uid", ["../x", "1.2/3", "", "1..2", "1.2.a", "9" * 65])
def test_a_uid_is_checked_before_it_names_a_folder(tmp_path, uid) -> None:
    with pytest.raises(PacsError, match="not a valid DICOM UID"):
        StudyCache(tmp_path).study_dir(uid)


def test_default_root_follows_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert default_cache_root() == tmp_path / "c"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_root() == tmp_path / "xdg" / "vertebroplan" / "studies"
    assert os.fspath(StudyCache().root).startswith(str(tmp_path / "xdg"))
