"""The local study cache: retrieved images on disk, fetched once, evicted least recently used.

Layout: ``ROOT/<study UID>/<series UID>/<SOP instance UID>.dcm``. A file appears under its
final name only when it is complete (written beside it, then renamed), so a retrieval that
was cancelled or cut off leaves whole images only, and the next retrieval fetches exactly the
ones that are missing. Which images a series has is read from the file names, so the cache
needs no index that could disagree with the disk.

A study can be pinned (``.unsaved-plan``) while a plan on it is not saved; eviction never
removes a pinned study, nor one the caller names as in use.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from planning.atomic_file import TEMP_SUFFIX, atomic_open
from planning.pacs.node import check_uid
from planning.pacs.records import RetrieveReport

CACHE_ENV = "VERTEBROPLAN_CACHE"
DEFAULT_LIMIT_BYTES = 20 * 1024**3
_LAST_USED = ".last-used"
_PIN = ".unsaved-plan"


def default_cache_root() -> Path:
    """``$VERTEBROPLAN_CACHE``, else ``$XDG_CACHE_HOME/vertebroplan/studies``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "vertebroplan" / "studies"


class InstanceStore:
    """Images filed by study, series and instance UID, each file whole or absent."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def study_dir(self, study_uid: str) -> Path:
        return self.root / check_uid(study_uid, "study")

    def series_dir(self, study_uid: str, series_uid: str) -> Path:
        return self.study_dir(study_uid) / check_uid(series_uid, "series")

    def present(self, study_uid: str, series_uid: str) -> set[str]:
        """The SOP instance UIDs of the series already on disk (complete files only)."""
        folder = self.series_dir(study_uid, series_uid)
        if not folder.is_dir():
            return set()
        return {p.name[:-4] for p in folder.iterdir() if p.name.endswith(".dcm")}

    def write_file(self, study_uid: str, series_uid: str, sop_uid: str, data: bytes) -> Path:
        """Write one encoded DICOM file (preamble, meta, data set) under its UIDs."""
        final = self.series_dir(study_uid, series_uid) / f"{check_uid(sop_uid, 'SOP instance')}.dcm"
        with atomic_open(final, durable=False) as handle:  # fetched again if ever lost
            handle.write(data)
        return final

    def to_fetch(self, study_uid: str, series_uid: str, listed: list[str],
                 only: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
        """What a retrieval of a series expects (the ``listed`` images, or of them only those
        in ``only``: a few for a thumbnail) and, of these, what the store does not hold yet;
        both in ``listed``'s order."""
        if only is not None:
            wanted = set(only)
            listed = [uid for uid in listed if uid in wanted]
        present = self.present(study_uid, series_uid)
        return listed, [uid for uid in listed if uid not in present]

    def report(self, study_uid: str, series_uid: str, expected: list[str], already: int,
               started_s: float) -> RetrieveReport:
        """What a retrieval of ``expected`` images did, read from the disk afterwards:
        ``already`` were there before, the rest arrived now or are named as missing."""
        now = self.present(study_uid, series_uid)
        missing = tuple(uid for uid in expected if uid not in now)
        return RetrieveReport(study_uid, series_uid, str(self.series_dir(study_uid, series_uid)),
                              len(expected), already, len(expected) - already - len(missing),
                              missing, time.monotonic() - started_s)

    def write_dataset(self, ds: Dataset) -> Path:
        """File a received data set (with its file meta) under its own UIDs."""
        from io import BytesIO

        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        return self.write_file(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                               str(ds.SOPInstanceUID), buffer.getvalue())


@dataclass(frozen=True)
class CachedStudy:
    study_uid: str
    path: Path
    size_bytes: int
    last_used: float
    pinned: bool


class StudyCache(InstanceStore):
    """An `InstanceStore` in the user's cache folder with a size limit."""

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 limit_bytes: int = DEFAULT_LIMIT_BYTES) -> None:
        super().__init__(default_cache_root() if root is None else root)
        if limit_bytes <= 0:
            raise ValueError(f"limit_bytes must be positive, got {limit_bytes}")
        self.limit_bytes = limit_bytes

    def touch(self, study_uid: str) -> None:
        """Mark the study as used now (opening or retrieving it)."""
        folder = self.study_dir(study_uid)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _LAST_USED).write_text(f"{time.time():.3f}\n", encoding="ascii")

    def pin(self, study_uid: str) -> None:
        """A plan on this study is not saved: never evict it until `unpin`."""
        folder = self.study_dir(study_uid)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _PIN).touch()

    def unpin(self, study_uid: str) -> None:
        (self.study_dir(study_uid) / _PIN).unlink(missing_ok=True)

    def studies(self) -> list[CachedStudy]:
        """Every cached study, least recently used first."""
        found: list[CachedStudy] = []
        if not self.root.is_dir():
            return found
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            marker = folder / _LAST_USED
            try:
                last_used = float(marker.read_text(encoding="ascii"))
            except (OSError, ValueError):
                last_used = folder.stat().st_mtime
            found.append(CachedStudy(folder.name, folder, size, last_used,
                                     (folder / _PIN).exists()))
        return sorted(found, key=lambda s: s.last_used)

    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self.studies())

    def evict(self, keep: Iterable[str] = (),
              protected: Callable[[str], bool] | None = None) -> list[str]:
        """Remove least recently used studies until the cache fits its limit.

        Never removes a pinned study, one in ``keep`` (the one being opened) or one for which
        ``protected(study_uid)`` is true (the case list's unsaved plans). Returns the removed
        study UIDs; the cache may stay over its limit when everything left is protected.
        """
        keep = set(keep)
        studies = self.studies()
        total = sum(s.size_bytes for s in studies)
        removed = []
        for study in studies:
            if total <= self.limit_bytes:
                break
            if study.pinned or study.study_uid in keep or \
                    (protected is not None and protected(study.study_uid)):
                continue
            shutil.rmtree(study.path, ignore_errors=True)
            total -= study.size_bytes
            removed.append(study.study_uid)
        return removed

    def sweep_partials(self) -> int:
        """Delete files left half written by a crash; returns how many."""
        count = 0
        if self.root.is_dir():
            for path in self.root.rglob(f".*{TEMP_SUFFIX}"):
                path.unlink(missing_ok=True)
                count += 1
        return count
