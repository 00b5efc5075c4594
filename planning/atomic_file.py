"""Files that appear whole or not at all: the plan, SR, SEG, markups and mesh writers.

Why: a crash, a kill or a full disk mid-write must never leave a half-written file that a
reader might take as whole. The data goes to a temporary file beside the target, is
synced, then renamed over the target (the rename is the commit), and the folder is synced
so that the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"
"""The suffix of a file still being written (hidden: its name starts with a dot)."""


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None, *,
                durable: bool = True) -> Iterator[IO[Any]]:
    """Open ``path`` for writing (``"wb"`` or ``"w"``); it appears only once the block
    ends without an error. Its folder is created; the temporary file (hidden,
    `TEMP_SUFFIX`) is removed on failure.

    ``durable=False`` skips the syncs: still whole or absent after a crash of the program,
    but not necessarily after a power cut. For copies that can be fetched again (the study
    cache's images), where a sync per image would halve the retrieval speed."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=TEMP_SUFFIX, dir=p.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, p)
        if durable:
            _fsync_dir(p.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
