"""The demo CT in the user's cache folder, generated once and reused.

The cache key is a hash of the generator's own source, so a changed phantom is regenerated
instead of silently serving an old series whose ground truth no longer matches.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from planning.progress import Progress

COMPLETE_MARKER = ".complete"


def cache_root() -> Path:
    """The user's cache folder for VertebroPlan (XDG_CACHE_HOME honoured)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vertebroplan"


def generator_fingerprint() -> str:
    """Short hash of the demo generator's and DICOM writer's source files."""
    here = Path(__file__).resolve().parent
    sources = [*sorted(here.glob("*.py")), here.parent / "io" / "dicom_write.py"]
    digest = hashlib.sha256()
    for src in sources:
        digest.update(src.name.encode())
        digest.update(src.read_bytes())
    return digest.hexdigest()[:12]


def demo_ct_path(progress: Progress | None = None) -> Path:
    """Folder of the cached demo DICOM series, writing it first if it is not there yet."""
    from planning.demo import write_demo_ct  # the generator is heavy; import on first use

    root = cache_root()
    target = root / f"demo-ct-{generator_fingerprint()}"
    if (target / COMPLETE_MARKER).exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-ct-", dir=root))
    try:
        write_demo_ct(staging, progress)
        (staging / COMPLETE_MARKER).touch()
        if (target / COMPLETE_MARKER).exists():  # another process finished first (two
            return target  # windows or test workers starting at once): keep its copy
        if target.exists():  # an incomplete leftover of an interrupted run
            shutil.rmtree(target, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:
            if not (target / COMPLETE_MARKER).exists():  # not another process's finished copy
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    for old in root.glob("demo-ct-*"):
        if old != target and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return target
